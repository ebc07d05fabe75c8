// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * KEVENT_INODE (K18): a file or directory, named by a descriptor, watched through the
 * inode timestamp tracepoints (bpf/inode.bpf.c). The kernel finds it by (s_dev, i_ino)
 * in kev_inodes, which the library mirrors here and writes whole, like kev_sockets.
 *
 * What the kernel side cannot settle is settled at delivery (kev_inode_complete(), run by
 * the core just before it copies an event out):
 * - deletion: the programs flag "maybe deleted" (KEV_PEND_HUP); fstat() tells. That
 *   fstat() also marks the inode's times as queried, which makes the kernel give the
 *   next change a fine-grained timestamp, so no change after a delivery goes unseen;
 * - the child: the programs log every entry that changed (inode number and name) to
 *   kev_inode_log; ret_data[0..1] gets the child when the event concerns just one.
 *   The log is also what kevent_inode_entries() reads;
 * - the descriptor: closing it ends the watch silently, as for sockets (K17, K25).
 *
 * What does not depend on the path is here too, shared with the inotify fallback
 * (inode_inotify.c): the watched inode, the entry log and kevent_inode_entries(), the child
 * an event names, and what a delivery settles (struct kev_inode_base).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "internal.h"
#include "kevent_inode.h"

#define KEV_INODE_ENTRIES 1024 /* logged entries an interest keeps until they are read */
#define KEV_NCHILD_MANY	  2    /* several children (or unknown ones) since the last delivery */

/* One kev_inodes element, as the library last wrote it. */
struct kev_inoderec {
	struct kev_hnode hnode;
	struct kev_inode_key key;
	struct kev_inode_val val;
};

/* A logged entry, kept until kevent_inode_entries() reads it: names are short, mostly. */
struct kev_inode_ent {
	__u64 ino;
	__u32 event;
	__u32 len;
	char *name; /* len bytes and a NUL, or NULL */
};

/* Per BPF interest (it->priv): the common part, then where log records find it. */
struct kev_inode_state {
	struct kev_inode_base base;
	struct kev_hnode by_slot; /* ino.slots */
	struct kev_inode_key key;
};

/*
 * Everything here is process-wide: the BPF side's is set up with the first BPF inode
 * interest, the table of logs with the first inode interest of either path.
 */
static struct {
	pthread_mutex_t lock;
	unsigned int users;	/* BPF interests */
	unsigned int bases;	/* interests of either path */
	struct kev_htab recs;	/* kev_inoderec by key */
	struct kev_htab slots;	/* kev_inode_state by slot */
	struct kev_htab idents; /* kev_inode_base by (queue, id, user) */
	struct kev_inode_ctl *ctl;
	struct kev_filter filter;
	struct kev_rb log;
	__u64 seen_lost;
} ino = {.lock = PTHREAD_MUTEX_INITIALIZER};

static __u64 kev_key_hash(const struct kev_inode_key *k)
{
	return kev_hash64(k->ino ^ ((__u64)k->dev << 40));
}

static bool kev_rec_match(const struct kev_hnode *n, const void *key)
{
	const struct kev_inode_key *a = &kev_container_of(n, struct kev_inoderec, hnode)->key;
	const struct kev_inode_key *b = key;

	return a->ino == b->ino && a->dev == b->dev;
}

static bool kev_slot_match(const struct kev_hnode *n, const void *key)
{
	return kev_container_of(n, struct kev_inode_state, by_slot)->base.it->slot ==
	       *(const __u32 *)key;
}

struct kev_inode_ident {
	const struct kev_queue *q;
	__u64 id, user;
};

static __u64 kev_ident_hash(const struct kev_inode_ident *k)
{
	return kev_hash64(k->id ^ kev_hash64(k->user ^ (__u64)(uintptr_t)k->q));
}

static bool kev_ident_match(const struct kev_hnode *n, const void *key)
{
	const struct kev_inode_base *b = kev_container_of(n, struct kev_inode_base, by_ident);
	const struct kev_inode_ident *k = key;

	return b->q == k->q && b->it->uk.id.raw_u64 == k->id && b->it->uk.user_u64 == k->user;
}

static void kev_inode_teardown(void)
{
	if (ino.ctl)
		munmap(ino.ctl, sizeof(*ino.ctl));
	if (ino.log.map_fd >= 0)
		kev_rb_close(&ino.log);
	kev_filter_fini(&ino.filter);
	kev_htab_free(&ino.recs);
	kev_htab_free(&ino.slots);
	ino.ctl = NULL;
}

/* fork() child (fork.c): the inode side is the parent's; start again from nothing. */
void kev_inode_forget_all(void)
{
	if (ino.users && ino.log.map_fd >= 0)
		close(ino.log.map_fd);
	memset(&ino, 0, sizeof(ino));
	pthread_mutex_init(&ino.lock, NULL);
}

/* The first inode interest maps the filter and the log; the last one unmaps them. */
static int kev_inode_setup(void)
{
	int ctl, log, err;
	void *p;

	ino.log.map_fd = -1;
	ctl = kev_kernel_map_fd(KEV_MAP_INODE_CTL);
	log = kev_kernel_map_fd(KEV_MAP_INODE_LOG);
	if (ctl < 0 || log < 0)
		return -EINVAL;
	if (kev_htab_init(&ino.recs) || kev_htab_init(&ino.slots)) {
		err = -ENOMEM;
		goto fail;
	}
	p = kev_mmap(ctl, sizeof(*ino.ctl), PROT_READ | PROT_WRITE, 0);
	if (!p) {
		err = -errno;
		goto fail;
	}
	ino.ctl = p;
	err = kev_filter_init(&ino.filter, &ino.ctl->filter);
	if (err)
		goto fail;
	ino.seen_lost = __atomic_load_n(&ino.ctl->log_lost, __ATOMIC_ACQUIRE);
	/* kev_rb_close() closes the descriptor: the ring gets its own. */
	log = fcntl(log, F_DUPFD_CLOEXEC, 0);
	err = log < 0 ? -errno : kev_rb_open(&ino.log, log, KEV_INODE_LOG_BYTES, false);
	if (err) {
		if (log >= 0)
			close(log);
		ino.log.map_fd = -1;
		goto fail;
	}
	return 0;
fail:
	kev_inode_teardown();
	return err;
}

/* Count an interest on (dev, ino)'s filter bit; the kernel sees the bit set while any does. */
static void kev_inode_ref(const struct kev_inode_key *k, int delta)
{
	kev_filter_ref(&ino.filter, kev_inode_hash(k->dev, k->ino), delta);
	__atomic_fetch_add(&ino.ctl->watched, (__u64)(__s64)delta, __ATOMIC_RELEASE);
}

static struct kev_inoderec *kev_rec_get(const struct kev_inode_key *key, bool create)
{
	struct kev_hnode *n = kev_htab_find(&ino.recs, kev_key_hash(key), kev_rec_match, key);
	struct kev_inoderec *r;

	if (n || !create)
		return n ? kev_container_of(n, struct kev_inoderec, hnode) : NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->key = *key;
	r->val.tgid = (__u32)getpid();
	r->hnode.hash = kev_key_hash(key);
	if (kev_htab_insert(&ino.recs, &r->hnode)) {
		free(r);
		return NULL;
	}
	/* Set before the element exists: the kernel never misses a watched inode. */
	kev_inode_ref(key, 1);
	return r;
}

/* Write r to kev_inodes, or delete it (and free r) once it has no watch left. */
static int kev_rec_put(struct kev_inoderec *r)
{
	int map = kev_kernel_map_fd(KEV_MAP_INODES);

	if (r->val.nr)
		return bpf_map_update_elem(map, &r->key, &r->val, BPF_ANY) ? -errno : 0;
	bpf_map_delete_elem(map, &r->key);
	kev_inode_ref(&r->key, -1);
	kev_htab_remove(&ino.recs, &r->hnode);
	free(r);
	return 0;
}

static struct kev_watch *kev_rec_watch(struct kev_inoderec *r, __u32 slot)
{
	for (unsigned int i = 0; i < r->val.nr; i++)
		if (r->val.w[i].slot == slot)
			return &r->val.w[i];
	return NULL;
}

/* Make the kernel's watch for this interest match it->uk.event / req_flags. */
static int kev_inode_watch(struct kev_queue *q, struct kev_interest *it)
{
	const struct kev_inode_state *st = it->priv;
	struct kev_inoderec *r = kev_rec_get(&st->key, true);
	struct kev_watch *w;
	int err;

	if (!r)
		return -ENOMEM;
	w = kev_rec_watch(r, it->slot);
	if (!w && r->val.nr == KEV_INODE_WATCHES) {
		kev_rec_put(r);
		return -ENOSPC;
	}
	if (!w)
		w = &r->val.w[r->val.nr++];
	*w = (struct kev_watch){
	    .slot = it->slot,
	    .gen = it->gen,
	    .fd = it->fd,
	    .queue = (__u16)q->qidx,
	    .events = (__u8)(it->uk.event & KEV_INODE_EVENTS),
	    .flags = it->uk.req_flags & KEVENT_REQ_WAKEUP_ALL ? KEV_WATCH_WAKEUP_ALL : 0,
	};
	err = kev_rec_put(r);
	if (err)
		*w = r->val.w[--r->val.nr]; /* the kernel kept the old value */
	return err;
}

static void kev_inode_unwatch(const struct kev_inode_state *st, __u32 slot)
{
	struct kev_inoderec *r = kev_rec_get(&st->key, false);
	struct kev_watch *w = r ? kev_rec_watch(r, slot) : NULL;

	if (w) {
		*w = r->val.w[--r->val.nr];
		kev_rec_put(r);
	}
}

/* Room for one more logged entry: grow, or drop the oldest (the reader sees a gap). */
static struct kev_inode_ent *kev_inode_entry_new(struct kev_inode_base *b)
{
	struct kev_inode_ent *ent;
	unsigned int cap;

	if (b->count == b->cap) {
		cap = b->cap ? 2 * b->cap : 16;
		ent = b->cap < KEV_INODE_ENTRIES ? malloc(cap * sizeof(*ent)) : NULL;
		if (ent) {
			for (unsigned int i = 0; i < b->count; i++)
				ent[i] = b->ent[(b->head + i) % b->cap];
			free(b->ent);
			b->ent = ent;
			b->cap = cap;
			b->head = 0;
		} else {
			b->gap = true;
			if (!b->cap)
				return NULL;
			free(b->ent[b->head].name);
			b->head = (b->head + 1) % b->cap;
			b->count--;
		}
	}
	return &b->ent[(b->head + b->count++) % b->cap];
}

/*
 * Log that the entry (ino, name[0..len)) of the watched directory had `event` (one
 * KEVENT_INODE_* bit); ino 0 and len 0 say "not known". It is also the child the next
 * event names, when it concerns just that one. Returns the name as kept, or NULL.
 */
const char *kev_inode_log(struct kev_inode_base *b, __u32 event, __u64 ino, const char *name,
			  size_t len)
{
	struct kev_inode_ent *e;

	/* ret_data names the child only when the event concerns just one, and a known one. */
	if (!ino || (b->nchild && b->child != ino)) {
		b->nchild = KEV_NCHILD_MANY;
	} else if (!b->nchild) {
		b->nchild = 1;
		b->child = ino;
	}
	e = kev_inode_entry_new(b);
	if (!e)
		return NULL;
	e->ino = ino;
	e->event = event;
	e->len = 0;
	e->name = NULL;
	if (name && len && len <= KEVENT_INODE_NAME_MAX && (e->name = strndup(name, len)))
		e->len = (__u32)strlen(e->name);
	return e->name;
}

/* Entries were lost, whose is not known: the reader sees a gap, the event names no child. */
void kev_inode_log_lost(struct kev_inode_base *b)
{
	b->gap = true;
	b->nchild = KEV_NCHILD_MANY;
}

/* Take up to max logged entries into buf, the gap marker first. */
static unsigned int kev_inode_log_read(struct kev_inode_base *b, struct kevent_inode_entry *buf,
				       unsigned int max)
{
	unsigned int got = 0;

	if (b->gap && got < max) {
		buf[got++] = (struct kevent_inode_entry){.event = 0};
		b->gap = false;
	}
	for (; got < max && b->count; b->count--, got++) {
		struct kev_inode_ent *e = &b->ent[b->head];

		buf[got].ino = e->ino;
		buf[got].event = e->event;
		buf[got].name_len = e->len;
		memcpy(buf[got].name, e->name ? e->name : "", e->len + 1);
		free(e->name);
		b->head = (b->head + 1) % b->cap;
	}
	return got;
}

/* The part of a new inode interest both paths share: see kev_inode_base_new(). */
static int kev_inode_base_init(struct kev_inode_base *b, struct kev_queue *q,
			       struct kev_interest *it, void (*catch_up)(struct kev_queue *q))
{
	int fd = (int)it->uk.id.raw[0], err = 0;
	struct stat sb;

	/* fstat() also arms fine-grained timestamps for the first change (see the top). */
	if (fstat(fd, &sb))
		return -errno;
	if (!S_ISDIR(sb.st_mode) && !S_ISREG(sb.st_mode) && !S_ISLNK(sb.st_mode))
		return -EINVAL; /* a socket, a pipe, a device: no inode changes to report */
	b->q = q;
	b->it = it;
	b->catch_up = catch_up;
	b->dev = sb.st_dev;
	b->ino = sb.st_ino;
	b->dir = S_ISDIR(sb.st_mode);
	b->by_ident.hash =
	    kev_ident_hash(&(struct kev_inode_ident){q, it->uk.id.raw_u64, it->uk.user_u64});
	pthread_mutex_lock(&ino.lock);
	if (!ino.bases)
		err = kev_htab_init(&ino.idents);
	if (!err)
		err = kev_htab_insert(&ino.idents, &b->by_ident);
	if (!err)
		ino.bases++;
	else if (!ino.bases)
		kev_htab_free(&ino.idents);
	pthread_mutex_unlock(&ino.lock);
	if (!err) {
		it->fd = fd;
		it->priv = b;
	}
	return err;
}

/*
 * A new inode interest's state on a path: size bytes, its struct kev_inode_base first, set
 * up as both paths need it (K18, K25): the descriptor must name a directory, a file or a
 * symbolic link, and kevent_inode_entries() finds its log from now on. catch_up: how the
 * path brings its unread records into the log (ino.lock and the queue's lock held).
 * it->priv is the state, it->fd the descriptor; NULL and *err on failure.
 */
void *kev_inode_base_new(size_t size, struct kev_queue *q, struct kev_interest *it,
			 void (*catch_up)(struct kev_queue *q), int *err)
{
	struct kev_inode_base *b = calloc(1, size);

	*err = b ? kev_inode_base_init(b, q, it, catch_up) : -ENOMEM;
	if (*err) {
		free(b);
		return NULL;
	}
	return b;
}

/* Free what kev_inode_base_new() made, and the log with it. */
void kev_inode_base_free(struct kev_interest *it)
{
	struct kev_inode_base *b = it->priv;

	pthread_mutex_lock(&ino.lock);
	kev_htab_remove(&ino.idents, &b->by_ident);
	if (!--ino.bases)
		kev_htab_free(&ino.idents);
	pthread_mutex_unlock(&ino.lock);
	for (; b->count; b->count--, b->head = (b->head + 1) % b->cap)
		free(b->ent[b->head].name);
	free(b->ent);
	free(b);
	it->priv = NULL;
}

/* The descriptor may have been closed, and its number reused, since the ADD (K25). */
bool kev_inode_named(const struct kev_interest *it)
{
	const struct kev_inode_base *b = it->priv;
	struct stat sb;

	return b && !fstat(it->fd, &sb) && sb.st_dev == b->dev && sb.st_ino == b->ino;
}

/*
 * The last word on an event about to be copied out, on either path: the child concerned
 * (when just one), or, when the path says it may have been (maybe_gone), the deletion of
 * the watched inode itself. The caller has brought the log up to date.
 */
void kev_inode_settle(struct kev_interest *it, bool maybe_gone)
{
	struct kev_inode_base *b = it->priv;
	__u64 child = b->nchild == 1 ? b->child : 0;
	struct stat sb;

	b->nchild = 0;
	it->ret_data[0] = (__u32)child;
	it->ret_data[1] = (__u32)(child >> 32);
	if (maybe_gone && !fstat(it->fd, &sb) && !sb.st_nlink) {
		/* K18: the watched inode itself was deleted: BROKEN once, then gone. */
		it->ret_flags |= KEVENT_RET_BROKEN;
		it->ret_data[0] = 0;
		it->ret_data[1] = (__u32)-ENOENT;
	}
}

/* A log record: an entry of a watched directory, as the kernel saw it. */
static void kev_inode_on_rec(void *ctx, const void *data, size_t len)
{
	const struct kev_inode_rec *rec = data;
	struct kev_inode_state *st;
	struct kev_hnode *n;
	const char *name;

	(void)ctx;
	if (len < offsetof(struct kev_inode_rec, name))
		return;
	n = kev_htab_find(&ino.slots, kev_hash64(rec->slot), kev_slot_match, &rec->slot);
	st = n ? kev_container_of(n, struct kev_inode_state, by_slot) : NULL;
	if (!st || st->base.it->gen != rec->gen)
		return; /* logged for an interest removed since */
	name = rec->len && len >= offsetof(struct kev_inode_rec, name) + rec->len + 1 ? rec->name
										      : NULL;
	name = kev_inode_log(&st->base, rec->event, rec->ino, name, name ? rec->len : 0);
	/*
	 * The kernel stamps a change with a fine-grained time only when the inode's times
	 * were read since its last change; otherwise a second change within the same clock
	 * tick leaves the ctime, and so the tracepoints, alone. Read the entry's times now,
	 * as the library does for what it watches itself, so its next write shows.
	 */
	if (name && rec->event != KEVENT_INODE_REMOVE &&
	    (st->base.it->uk.event & (KEVENT_INODE_MODIFY | KEVENT_INODE_ATTRIB))) {
		struct stat sb;

		fstatat(st->base.it->fd, name, &sb, AT_SYMLINK_NOFOLLOW);
	}
}

static void kev_inode_lost_node(struct kev_hnode *n, void *arg)
{
	(void)arg;
	kev_inode_log_lost(&kev_container_of(n, struct kev_inode_state, by_slot)->base);
}

/* Move what the kernel logged into the interests (ino.lock held). */
static void kev_inode_drain(void)
{
	__u64 lost;

	kev_rb_drain(&ino.log, kev_inode_on_rec, NULL);
	/* Acquire: pairs with the kernel's atomic add after a failed output. */
	lost = __atomic_load_n(&ino.ctl->log_lost, __ATOMIC_ACQUIRE);
	if (lost != ino.seen_lost) {
		/* Whose entries went is not known: every interest may have a gap. */
		ino.seen_lost = lost;
		kev_htab_each(&ino.slots, kev_inode_lost_node, NULL);
	}
}

/* kevent_inode_entries() of a BPF interest: the kernel's log is process-wide. */
static void kev_inode_catch_up(struct kev_queue *q)
{
	(void)q;
	kev_inode_drain();
}

/* The kernel encodes devices as major << 20 | minor, not as st_dev. */
static __u32 kev_kdev(dev_t dev)
{
	return (major(dev) << 20) | minor(dev);
}

/* Undo the BPF side of an interest (ino.lock held). */
static void kev_inode_forget(struct kev_inode_state *st)
{
	kev_htab_remove(&ino.slots, &st->by_slot);
	if (!--ino.users)
		kev_inode_teardown();
}

/* The BPF side of a new interest: its slot, and its watch in kev_inodes (ino.lock held). */
static int kev_inode_arm(struct kev_queue *q, struct kev_interest *it, struct kev_inode_state *st)
{
	int err = 0;

	if (!ino.users && (err = kev_inode_setup()))
		return err;
	ino.users++;
	st->key.dev = kev_kdev(st->base.dev);
	st->key.ino = st->base.ino;
	err = kev_slot_alloc(it);
	if (!err) {
		st->by_slot.hash = kev_hash64(it->slot);
		err = kev_htab_insert(&ino.slots, &st->by_slot);
	}
	if (!err)
		err = kev_inode_watch(q, it);
	if (err)
		kev_inode_forget(st); /* removing what was not inserted is harmless */
	return err;
}

static void kev_inode_del(struct kev_queue *q, struct kev_interest *it)
{
	struct kev_inode_state *st = it->priv;

	kev_fdwatch_del(q, it);
	if (!st)
		return;
	pthread_mutex_lock(&ino.lock);
	kev_inode_unwatch(st, it->slot);
	kev_inode_forget(st);
	pthread_mutex_unlock(&ino.lock);
	kev_inode_base_free(it);
}

static int kev_inode_add(struct kev_queue *q, struct kev_interest *it)
{
	struct kev_inode_state *st;
	int err;

	st = kev_inode_base_new(sizeof(*st), q, it, kev_inode_catch_up, &err);
	if (!st)
		return err;
	pthread_mutex_lock(&ino.lock);
	err = kev_inode_arm(q, it, st);
	pthread_mutex_unlock(&ino.lock);
	if (err) {
		kev_inode_base_free(it);
		return err;
	}
	/* On its number's node: the sweep finds it once the descriptor is closed (K18, K25). */
	err = kev_fdwatch_add(q, it, 0);
	if (err)
		kev_inode_del(q, it);
	return err;
}

static int kev_inode_modify(struct kev_queue *q, struct kev_interest *it)
{
	int err;

	pthread_mutex_lock(&ino.lock);
	err = kev_inode_watch(q, it);
	pthread_mutex_unlock(&ino.lock);
	return err;
}

/*
 * Called by the core right before it copies an event out: the one point where the source
 * sees a delivery, so the event is completed here (the child concerned, or the deletion of
 * the watched inode itself), once the kernel's log is read.
 */
static void kev_inode_complete(struct kev_interest *it)
{
	pthread_mutex_lock(&ino.lock);
	kev_inode_drain();
	pthread_mutex_unlock(&ino.lock);
	/* Always: the fstat() also arms fine-grained timestamps for the next change. */
	kev_inode_settle(it, true);
}

KEV_API int kevent_inode_entries(int kevent_fd, const struct ukevent *ev,
				 struct kevent_inode_entry *buf, unsigned int max)
{
	struct kev_inode_base *b = NULL;
	struct kev_hnode *n = NULL;
	struct kev_inode_ident k;
	unsigned int got = 0;
	struct kev_queue *q;
	int err;

	if (!ev || (max && !buf) || ev->type != KEVENT_INODE || max > KEVENT_MAX_BATCH)
		return kev_err(-EINVAL);
	q = kev_queue_get(kevent_fd, &err);
	if (!q)
		return kev_err(err);
	k = (struct kev_inode_ident){q, ev->id.raw_u64, ev->user_u64};
	pthread_mutex_lock(&q->lock);
	pthread_mutex_lock(&ino.lock);
	if (ino.bases)
		n = kev_htab_find(&ino.idents, kev_ident_hash(&k), kev_ident_match, &k);
	if (n) {
		b = kev_container_of(n, struct kev_inode_base, by_ident);
		b->catch_up(q);
		got = kev_inode_log_read(b, buf, max);
	}
	pthread_mutex_unlock(&ino.lock);
	kev_kick_update(q); /* a catch-up may have found events: a sleeper takes them */
	pthread_mutex_unlock(&q->lock);
	kev_queue_put(q);
	return b ? (int)got : kev_err(-ENOENT);
}

const struct kev_source kev_inode_source = {
    .events = KEV_INODE_EVENTS,
    .add = kev_inode_add,
    .del = kev_inode_del,
    .modify = kev_inode_modify,
    .named = kev_inode_named,
    .complete = kev_inode_complete,
};
