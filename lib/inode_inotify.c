// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * KEVENT_INODE on inotify (K18, K26): the fallback when the inode family's BPF programs
 * cannot load. What an event means, the entry log and the last word at delivery are
 * inode.c's (struct kev_inode_base), the same on both paths; this file turns inotify's
 * events into them.
 *
 * Each queue has one inotify instance, made with its first inode interest and closed with
 * its last, readable in the queue's epoll set (KEV_EP_INOTIFY). inotify watches an inode,
 * not a descriptor: a watch is added through /proc/self/fd/N, which leads to the inode the
 * descriptor names, and the kernel gives one watch descriptor (wd) per inode and instance,
 * so the interests on one inode (several user values, several descriptors) share it, with
 * the union of what they ask. The descriptor itself is checked as for every descriptor
 * source: at delivery (KEV_PEND_VERIFY) and by the sweep, on its number's node (fdwatch.c).
 *
 * What inotify does not say, and how it is made up for:
 * - the child's inode number: inotify names entries; the name is looked up (fstatat())
 *   relative to the watched directory when the event is read. An entry removed by then
 *   has none (0); a rename's old name takes the inode found under its new name (the
 *   IN_MOVED_TO with the same cookie), when the new name is in a watched directory;
 * - the deletion of the watched inode: while a descriptor holds it (ours does) inotify
 *   says IN_DELETE_SELF only at the last close. A file's last unlink shows as its link
 *   count changing (IN_ATTRIB); a directory's removal shows nowhere on the directory, so
 *   its parent is watched too, for IN_DELETE and IN_MOVED_TO of directories. Either makes
 *   a delivery look (KEV_PEND_HUP): fstat() tells (kev_in_complete());
 * - a lost event: the kernel queue overflowed (IN_Q_OVERFLOW). Whose events went is not
 *   known: every interest of the queue gets its whole mask and a gap in its log (K24);
 * - one activity for one queue (K15): each queue's instance sees every change, so every
 *   queue watching gets it, as with WAKEUP_ALL; within a queue, interests without
 *   WAKEUP_ALL take turns as on the BPF side.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define KEV_IN_BUF	  16384 /* bytes a read() takes: a burst in few system calls */
/*
 * Reads per dispatch: what the kernel queued (16,384 events by default) is read at once, so
 * a burst is one event (K12); a storm that outruns us stays readable (level-triggered).
 */
#define KEV_IN_READS	  512
#define KEV_IN_PAIR_AHEAD 8	/* events looked at for the other half of a rename */
#define KEV_IN_EVENT_MAX  (sizeof(struct inotify_event) + NAME_MAX + 1)
/* What a watched directory's parent is watched for: the directory's removal or replacement. */
#define KEV_IN_PARENT (IN_DELETE | IN_MOVED_TO)

struct kev_in_int;

/* One inotify watch: an inode, and the interests of the queue on it. */
struct kev_in_watch {
	struct kev_hnode hnode; /* kev_inotify.wds, by wd; out once wd is -1 */
	int wd;			/* -1: the kernel dropped the watch (IN_IGNORED) */
	__u32 mask;		/* the events the kernel has for it */
	dev_t dev;
	ino_t ino;
	bool dir;
	struct kev_in_int **ints; /* the interests on it */
	unsigned int nints, cap;
	unsigned int rr; /* spreads activity over interests without WAKEUP_ALL (K15) */
	/* A watched directory's parent, and the watched directories this one is parent of. */
	struct kev_in_watch *parent, *kids, *kid_next;
	/* A descriptor naming the inode, as of the read numbered `batch` (kev_in_dirfd()). */
	unsigned int batch;
	int dirfd;
};

/* Per interest (it->priv): the common part first. */
struct kev_in_int {
	struct kev_inode_base base;
	struct kev_in_watch *w;
	bool maybe_gone; /* since the last delivery: something a deletion shows as */
};

/* Per queue (q->inotify). */
struct kev_inotify {
	int fd;
	unsigned int users;  /* interests */
	unsigned int batch;  /* read() calls so far */
	struct kev_htab wds; /* kev_in_watch by wd */
	char buf[KEV_IN_BUF] __attribute__((aligned(__alignof__(struct inotify_event))));
};

/* An entry an event names, and its inode number once looked up. */
struct kev_in_entry {
	const struct inotify_event *e;
	const char *end; /* of what the read() brought: where a rename's other half may be */
	struct kev_in_watch *w;
	__u32 event; /* the KEVENT_INODE_* bit */
	bool known;
	__u64 ino;
};

static bool kev_in_match(const struct kev_hnode *n, const void *key)
{
	return kev_container_of(n, struct kev_in_watch, hnode)->wd == *(const int *)key;
}

static struct kev_in_watch *kev_in_find(struct kev_inotify *ni, int wd)
{
	struct kev_hnode *n = kev_htab_find(&ni->wds, kev_hash64((__u32)wd), kev_in_match, &wd);

	return n ? kev_container_of(n, struct kev_in_watch, hnode) : NULL;
}

/* What an interest needs from inotify. */
static __u32 kev_in_wants(const struct kev_in_int *in)
{
	__u32 ev = in->base.it->uk.event, m = IN_DELETE_SELF | IN_MOVE_SELF;

	if (ev & KEVENT_INODE_CREATE)
		m |= IN_CREATE | IN_MOVED_TO;
	if (ev & KEVENT_INODE_REMOVE)
		m |= IN_DELETE | IN_MOVED_FROM;
	if (ev & KEVENT_INODE_MODIFY)
		m |= IN_MODIFY;
	/* A file's last name going shows only as its link count changing. */
	if ((ev & KEVENT_INODE_ATTRIB) || !in->base.dir)
		m |= IN_ATTRIB;
	return m;
}

static __u32 kev_in_mask(const struct kev_in_watch *w)
{
	__u32 m = w->kids ? KEV_IN_PARENT : 0;

	for (unsigned int i = 0; i < w->nints; i++)
		m |= kev_in_wants(w->ints[i]);
	return m;
}

/*
 * Add or change the watch of what path names. Without IN_EXCL_UNLINK: an entry unlinked
 * but still open is reported as the BPF side reports it (its inode then is not known).
 */
static int kev_in_add_watch(struct kev_inotify *ni, const char *path, __u32 mask, __u32 flags)
{
	int wd = inotify_add_watch(ni->fd, path, mask | flags);

	return wd < 0 ? -errno : wd;
}

static void kev_in_path(char *buf, size_t len, int fd, bool parent)
{
	snprintf(buf, len, "/proc/self/fd/%d%s", fd, parent ? "/.." : "");
}

/* A path that names w's inode now, through a descriptor of ours; false: none left. */
static bool kev_in_path_of(const struct kev_in_watch *w, char *buf, size_t len)
{
	for (unsigned int i = 0; i < w->nints; i++) {
		if (kev_inode_named(w->ints[i]->base.it)) {
			kev_in_path(buf, len, w->ints[i]->base.it->fd, false);
			return true;
		}
	}
	for (const struct kev_in_watch *k = w->kids; k; k = k->kid_next) {
		for (unsigned int i = 0; i < k->nints; i++) {
			if (kev_inode_named(k->ints[i]->base.it)) {
				kev_in_path(buf, len, k->ints[i]->base.it->fd, true);
				return true;
			}
		}
	}
	return false;
}

/*
 * Make the kernel's mask of w the union of what it serves (K8: MODIFY, and interests that
 * go). inotify changes a watch only through a path: one of ours is used, and if it led
 * elsewhere by now (a descriptor closed and its number reused), what it changed is put
 * back. Without such a path the mask stays wider: events nobody asked for are dropped.
 */
static int kev_in_sync(struct kev_inotify *ni, struct kev_in_watch *w)
{
	__u32 want = kev_in_mask(w);
	struct kev_in_watch *other;
	char path[64];
	int wd;

	if (want == w->mask || w->wd < 0)
		return 0;
	if (!kev_in_path_of(w, path, sizeof(path)))
		return want & ~w->mask ? -EBADF : 0;
	wd = kev_in_add_watch(ni, path, want, 0);
	if (wd == w->wd) {
		w->mask = want;
		return 0;
	}
	if (wd >= 0 && (other = kev_in_find(ni, wd)))
		kev_in_add_watch(ni, path, other->mask, 0);
	else if (wd >= 0)
		inotify_rm_watch(ni->fd, wd);
	return wd < 0 ? wd : -EBADF;
}

static struct kev_in_watch *kev_in_watch_new(struct kev_inotify *ni, int wd, dev_t dev, ino_t ino,
					     bool dir)
{
	struct kev_in_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->wd = wd;
	w->dev = dev;
	w->ino = ino;
	w->dir = dir;
	w->dirfd = -1;
	w->hnode.hash = kev_hash64((__u32)wd);
	if (kev_htab_insert(&ni->wds, &w->hnode)) {
		free(w);
		return NULL;
	}
	return w;
}

/* The watch the kernel gave number wd to, for the inode (dev, ino); NULL: no memory. */
static struct kev_in_watch *kev_in_watch_get(struct kev_inotify *ni, int wd, dev_t dev, ino_t ino,
					     bool dir)
{
	struct kev_in_watch *w = kev_in_find(ni, wd);

	if (!w && !(w = kev_in_watch_new(ni, wd, dev, ino, dir)))
		inotify_rm_watch(ni->fd, wd);
	return w;
}

static void kev_in_watch_put(struct kev_inotify *ni, struct kev_in_watch *w);

/* w's inode is no longer a watched directory, or may have moved: let go of its parent. */
static void kev_in_unkid(struct kev_inotify *ni, struct kev_in_watch *w)
{
	struct kev_in_watch *p = w->parent, **k;

	if (!p)
		return;
	for (k = &p->kids; *k; k = &(*k)->kid_next) {
		if (*k == w) {
			*k = w->kid_next;
			break;
		}
	}
	w->parent = NULL;
	w->kid_next = NULL;
	kev_in_sync(ni, p);
	kev_in_watch_put(ni, p);
}

/* Let go of w once nothing needs it: no interest on it, and no watched directory in it. */
static void kev_in_watch_put(struct kev_inotify *ni, struct kev_in_watch *w)
{
	if (w->nints)
		return;
	kev_in_unkid(ni, w);
	if (w->kids) {
		kev_in_sync(ni, w);
		return;
	}
	if (w->wd >= 0) {
		inotify_rm_watch(ni->fd, w->wd);
		kev_htab_remove(&ni->wds, &w->hnode);
	}
	free(w->ints);
	free(w);
}

/*
 * A watched directory's removal shows nowhere on it while a descriptor holds it: watch its
 * parent, found through the descriptor fd ("..", as the directory is now). Best effort: a
 * directory whose parent cannot be watched is found removed at its next event.
 */
static void kev_in_parent(struct kev_inotify *ni, struct kev_in_watch *w, int fd)
{
	struct kev_in_watch *p;
	struct stat sb;
	char path[64];
	int wd;

	if (w->parent || fstatat(fd, "..", &sb, 0))
		return;
	kev_in_path(path, sizeof(path), fd, true);
	wd = kev_in_add_watch(ni, path, KEV_IN_PARENT, IN_MASK_ADD | IN_ONLYDIR);
	if (wd < 0 || wd == w->wd) /* "/" is its own parent */
		return;
	p = kev_in_watch_get(ni, wd, sb.st_dev, sb.st_ino, true);
	if (!p)
		return;
	p->mask |= KEV_IN_PARENT;
	w->parent = p;
	w->kid_next = p->kids;
	p->kids = w;
}

/* A watched directory moved: its parent may be another one now. */
static void kev_in_reparent(struct kev_inotify *ni, struct kev_in_watch *w)
{
	if (!w->nints)
		return;
	kev_in_unkid(ni, w);
	for (unsigned int i = 0; i < w->nints; i++) {
		if (kev_inode_named(w->ints[i]->base.it)) {
			kev_in_parent(ni, w, w->ints[i]->base.it->fd);
			return;
		}
	}
}

/* A descriptor that names w's inode, looked for once per read(); -1: none. */
static int kev_in_dirfd(struct kev_inotify *ni, struct kev_in_watch *w)
{
	if (w->nints == 1)
		return w->ints[0]->base.it->fd; /* closed: its events are not delivered anyway */
	if (w->batch != ni->batch) {
		w->batch = ni->batch;
		w->dirfd = -1;
		for (unsigned int i = 0; i < w->nints && w->dirfd < 0; i++)
			if (kev_inode_named(w->ints[i]->base.it))
				w->dirfd = w->ints[i]->base.it->fd;
	}
	return w->dirfd;
}

/* The IN_MOVED_TO that goes with the IN_MOVED_FROM e, if the same read() brought it. */
static const struct inotify_event *kev_in_moved_to(const struct inotify_event *e, const char *end)
{
	const char *p = (const char *)(e + 1) + e->len;

	for (int i = 0; i < KEV_IN_PAIR_AHEAD && p + sizeof(*e) <= end; i++) {
		const struct inotify_event *t = (const struct inotify_event *)p;

		if ((t->mask & IN_MOVED_TO) && t->cookie == e->cookie)
			return t;
		p += sizeof(*t) + t->len;
	}
	return NULL;
}

/* The inode number of the entry x names, as its name says now; 0: not known. */
static __u64 kev_in_lookup(struct kev_inotify *ni, const struct kev_in_entry *x)
{
	const struct inotify_event *e = x->e;
	struct kev_in_watch *w = x->w;
	struct stat sb;
	int fd;

	if (e->mask & IN_DELETE)
		return 0; /* gone, and its name may be taken again already */
	if (e->mask & IN_MOVED_FROM) {
		/* Gone from here: the inode is the one the new name has. */
		e = kev_in_moved_to(e, x->end);
		w = e ? kev_in_find(ni, e->wd) : NULL;
		if (!w)
			return 0;
	}
	fd = kev_in_dirfd(ni, w);
	return fd >= 0 && !fstatat(fd, e->name, &sb, AT_SYMLINK_NOFOLLOW) ? sb.st_ino : 0;
}

static __u64 kev_in_entry_ino(struct kev_inotify *ni, struct kev_in_entry *x)
{
	if (!x->known) {
		x->ino = kev_in_lookup(ni, x);
		x->known = true;
	}
	return x->ino;
}

/*
 * Activity on w's inode: bits (KEVENT_INODE_*, KEV_PEND_HUP), and x, the entry it concerns
 * (NULL: the inode itself). As on the BPF path (bpf/inode.bpf.c), an interest with
 * WAKEUP_ALL gets it, so does every interest for a possible deletion, and one of the
 * others, taken in turn (K15); the entry is logged for those that get it.
 */
static void kev_in_deliver(struct kev_queue *q, struct kev_inotify *ni, struct kev_in_watch *w,
			   __u32 bits, struct kev_in_entry *x)
{
	unsigned int n = w->nints, start, chosen = 0;

	if (!n)
		return;
	/* Everything about one entry goes to the same interest, like the BPF side's. */
	start = x && n > 1 && kev_in_entry_ino(ni, x) ? (unsigned int)x->ino : w->rr++;
	for (unsigned int i = 0; i < n; i++) {
		struct kev_in_int *in = w->ints[(start + i) % n];
		struct kev_interest *it = in->base.it;
		__u32 mine = bits & (it->uk.event | KEV_PEND_HUP);

		if (!mine || !((mine & KEV_PEND_HUP) ||
			       (it->uk.req_flags & KEVENT_REQ_WAKEUP_ALL) || !chosen++))
			continue;
		if (x && (x->event & it->uk.event))
			kev_inode_log(&in->base, x->event, kev_in_entry_ino(ni, x), x->e->name,
				      strnlen(x->e->name, x->e->len));
		/* Queued for what it asked: the delivery looks for a deletion all the same. */
		in->maybe_gone |= !!(mine & KEV_PEND_HUP);
		if (mine & it->uk.event)
			mine &= ~KEV_PEND_HUP;
		/* Read now, perhaps closed since: the delivery checks the number (K17, K25). */
		kev_fire(q, it, mine | KEV_PEND_VERIFY);
	}
}

/* Every watched directory in w may be the one removed or replaced: a delivery tells. */
static void kev_in_kids(struct kev_queue *q, struct kev_inotify *ni, struct kev_in_watch *w)
{
	for (struct kev_in_watch *k = w->kids; k; k = k->kid_next)
		kev_in_deliver(q, ni, k, KEV_PEND_HUP, NULL);
}

static __u32 kev_in_child_event(__u32 mask)
{
	if (mask & (IN_CREATE | IN_MOVED_TO))
		return KEVENT_INODE_CREATE;
	if (mask & (IN_DELETE | IN_MOVED_FROM))
		return KEVENT_INODE_REMOVE; /* a rename counts on both sides (K18) */
	if (mask & IN_MODIFY)
		return KEVENT_INODE_MODIFY;
	return mask & IN_ATTRIB ? KEVENT_INODE_ATTRIB : 0;
}

/*
 * The watched inode itself: written; its metadata changed (a rename changes its ctime too,
 * as the BPF side reports it), perhaps its last name with it; or it is going.
 */
static __u32 kev_in_self_bits(__u32 mask)
{
	__u32 bits = mask & IN_MODIFY ? KEVENT_INODE_MODIFY : 0;

	if (mask & (IN_ATTRIB | IN_MOVE_SELF))
		bits |= KEVENT_INODE_ATTRIB | KEV_PEND_HUP;
	if (mask & (IN_DELETE_SELF | IN_UNMOUNT))
		bits |= KEV_PEND_HUP;
	return bits;
}

/* The kernel dropped the watch (its inode is gone): the interests on it find out. */
static void kev_in_dropped(struct kev_queue *q, struct kev_inotify *ni, struct kev_in_watch *w)
{
	kev_htab_remove(&ni->wds, &w->hnode);
	w->wd = -1;
	kev_in_deliver(q, ni, w, KEV_PEND_HUP, NULL);
}

/* K24: the kernel's queue overflowed; whose events were lost is not known. */
static void kev_in_overflow_node(struct kev_hnode *n, void *q)
{
	struct kev_in_watch *w = kev_container_of(n, struct kev_in_watch, hnode);

	for (unsigned int i = 0; i < w->nints; i++) {
		struct kev_interest *it = w->ints[i]->base.it;

		kev_inode_log_lost(&w->ints[i]->base);
		w->ints[i]->maybe_gone = true;
		kev_fire(q, it, it->uk.event | KEV_PEND_VERIFY);
	}
}

static void kev_in_event(struct kev_queue *q, struct kev_inotify *ni, const struct inotify_event *e,
			 const char *end)
{
	struct kev_in_watch *w;
	struct kev_in_entry x;

	if (e->mask & IN_Q_OVERFLOW) {
		kev_htab_each(&ni->wds, kev_in_overflow_node, q);
		return;
	}
	w = kev_in_find(ni, e->wd);
	if (!w)
		return; /* its interests went since */
	if (e->mask & IN_IGNORED) {
		kev_in_dropped(q, ni, w);
	} else if (!e->len) {
		if ((e->mask & IN_MOVE_SELF) && w->dir)
			kev_in_reparent(ni, w);
		kev_in_deliver(q, ni, w, kev_in_self_bits(e->mask), NULL);
	} else {
		if ((e->mask & IN_ISDIR) && (e->mask & KEV_IN_PARENT))
			kev_in_kids(q, ni, w);
		x = (struct kev_in_entry){.e = e, .end = end, .w = w};
		x.event = kev_in_child_event(e->mask);
		if (x.event)
			kev_in_deliver(q, ni, w, x.event, &x);
	}
}

/* fork() child (queue.c): the parent's inotify instance is not the child's to keep open. */
void kev_inotify_forget(struct kev_queue *q)
{
	if (q->inotify)
		close(q->inotify->fd);
}

/*
 * The queue's inotify instance is readable (kev_dispatch()), or kevent_inode_entries()
 * wants the log up to date: read what the kernel has, a bounded amount at a time.
 */
void kev_inotify_dispatch(struct kev_queue *q)
{
	struct kev_inotify *ni = q->inotify;

	for (int i = 0; ni && i < KEV_IN_READS; i++) {
		ssize_t n = read(ni->fd, ni->buf, sizeof(ni->buf));
		const char *end = ni->buf + (n > 0 ? n : 0), *p = ni->buf;

		if (n <= 0)
			return;
		ni->batch++;
		while (p + sizeof(struct inotify_event) <= end) {
			const struct inotify_event *e = (const struct inotify_event *)p;

			p += sizeof(*e) + e->len;
			if (p > end)
				break;
			kev_in_event(q, ni, e, end);
		}
		/* Room was left for the longest event: the kernel had no more. */
		if ((size_t)n <= sizeof(ni->buf) - KEV_IN_EVENT_MAX)
			return;
	}
}

static void kev_in_close(struct kev_queue *q)
{
	struct kev_inotify *ni = q->inotify;

	if (!ni)
		return;
	/* Out of the epoll set first: a fork() child may hold the instance open. */
	if (q->fd >= 0)
		epoll_ctl(q->fd, EPOLL_CTL_DEL, ni->fd, NULL);
	close(ni->fd);
	q->fdregs--;
	kev_htab_free(&ni->wds);
	free(ni);
	q->inotify = NULL;
}

/*
 * The queue's instance, made with its first inode interest. It counts among the epoll
 * set's registrations (q->fdregs), which kev_harvest() asks only while there are some.
 */
static int kev_in_open(struct kev_queue *q)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = KEV_EP_INOTIFY};
	struct kev_inotify *ni;
	int err = 0;

	if (q->inotify)
		return 0;
	ni = calloc(1, sizeof(*ni));
	if (!ni)
		return -ENOMEM;
	ni->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ni->fd < 0)
		err = -errno; /* EMFILE: fs.inotify.max_user_instances, or descriptors */
	else if (kev_htab_init(&ni->wds))
		err = -ENOMEM;
	else if (epoll_ctl(q->fd, EPOLL_CTL_ADD, ni->fd, &ev))
		err = -errno;
	if (err) {
		if (ni->fd >= 0)
			close(ni->fd);
		kev_htab_free(&ni->wds);
		free(ni);
		return err;
	}
	q->fdregs++;
	q->inotify = ni;
	return 0;
}

static int kev_in_link(struct kev_in_watch *w, struct kev_in_int *in)
{
	if (w->nints == w->cap) {
		unsigned int cap = w->cap ? 2 * w->cap : 2;
		struct kev_in_int **p = realloc(w->ints, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		w->ints = p;
		w->cap = cap;
	}
	w->ints[w->nints++] = in;
	in->w = w;
	return 0;
}

/* Watch the inode the interest's descriptor names, with what it asks. */
static int kev_in_attach(struct kev_inotify *ni, struct kev_in_int *in)
{
	const struct kev_inode_base *b = &in->base;
	__u32 want = kev_in_wants(in);
	struct kev_in_watch *w;
	char path[64];
	int wd, err;

	kev_in_path(path, sizeof(path), b->it->fd, false);
	wd = kev_in_add_watch(ni, path, want, IN_MASK_ADD);
	if (wd < 0)
		return wd; /* ENOSPC: fs.inotify.max_user_watches; EACCES: not readable */
	w = kev_in_watch_get(ni, wd, b->dev, b->ino, b->dir);
	if (!w)
		return -ENOMEM;
	w->mask |= want;
	/* The number named another inode by the time inotify looked (closed meanwhile). */
	err = w->dev != b->dev || w->ino != b->ino ? -EBADF : kev_in_link(w, in);
	if (err) {
		kev_in_watch_put(ni, w);
		return err;
	}
	ni->users++;
	if (w->dir)
		kev_in_parent(ni, w, b->it->fd);
	return 0;
}

static void kev_in_detach(struct kev_inotify *ni, struct kev_in_int *in)
{
	struct kev_in_watch *w = in->w;

	for (unsigned int i = 0; i < w->nints; i++) {
		if (w->ints[i] == in) {
			w->ints[i] = w->ints[--w->nints];
			break;
		}
	}
	in->w = NULL;
	ni->users--;
	if (w->nints)
		kev_in_sync(ni, w);
	else
		kev_in_watch_put(ni, w);
}

static void kev_in_del(struct kev_queue *q, struct kev_interest *it)
{
	struct kev_in_int *in = it->priv;

	kev_fdwatch_del(q, it);
	if (!in)
		return;
	if (in->w)
		kev_in_detach(q->inotify, in);
	kev_inode_base_free(it);
	if (q->inotify && !q->inotify->users)
		kev_in_close(q); /* a queue without inode interests holds no instance */
}

static int kev_in_add(struct kev_queue *q, struct kev_interest *it)
{
	struct kev_in_int *in;
	int err;

	in = kev_inode_base_new(sizeof(*in), q, it, kev_inotify_dispatch, &err);
	if (!in)
		return err;
	err = kev_in_open(q);
	if (!err)
		err = kev_in_attach(q->inotify, in);
	/* On its number's node: the sweep finds it once the descriptor is closed (K17, K25). */
	if (!err)
		err = kev_fdwatch_add(q, it, 0);
	if (err)
		kev_in_del(q, it);
	return err;
}

/*
 * The delivery's last word (inode.c). fstat() tells a deletion: asked only after what a
 * deletion shows as, since the rest cannot delete the inode.
 */
static void kev_in_complete(struct kev_interest *it)
{
	struct kev_in_int *in = it->priv;

	kev_inode_settle(it, in->maybe_gone);
	in->maybe_gone = false;
}

/* K8: the watch serves the new mask from now on. */
static int kev_in_modify(struct kev_queue *q, struct kev_interest *it)
{
	struct kev_in_int *in = it->priv;

	return kev_in_sync(q->inotify, in->w);
}

const struct kev_source kev_inode_sys_source = {
    .events = KEV_INODE_EVENTS,
    .add = kev_in_add,
    .del = kev_in_del,
    .modify = kev_in_modify,
    .named = kev_inode_named,
    .complete = kev_in_complete,
    .release = kev_in_close,
};
