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

#define KEV_INODE_EVENTS                                                                           \
	(KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE | KEVENT_INODE_MODIFY | KEVENT_INODE_ATTRIB)
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

/* Per interest (it->priv): what the log said about it. */
struct kev_inode_state {
	struct kev_hnode by_slot;  /* ino.slots: where log records find it */
	struct kev_hnode by_ident; /* ino.idents: where kevent_inode_entries() finds it */
	struct kev_interest *it;
	const struct kev_queue *q;
	struct kev_inode_key key;
	dev_t st_dev;
	ino_t st_ino;
	/* Since the last delivery: the child concerned, and how many there were. */
	__u64 child;
	unsigned int nchild;
	/* Logged entries not read yet: a ring, grown on demand up to KEV_INODE_ENTRIES. */
	struct kev_inode_ent *ent;
	unsigned int head, count, cap;
	bool gap; /* entries were lost before the oldest one kept */
};

/* Everything here is process-wide, set up with the first inode interest. */
static struct {
	pthread_mutex_t lock;
	unsigned int users;
	struct kev_htab recs;	/* kev_inoderec by key */
	struct kev_htab slots;	/* kev_inode_state by slot */
	struct kev_htab idents; /* kev_inode_state by (queue, id, user) */
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
	return kev_container_of(n, struct kev_inode_state, by_slot)->it->slot ==
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
	const struct kev_inode_state *st = kev_container_of(n, struct kev_inode_state, by_ident);
	const struct kev_inode_ident *k = key;

	return st->q == k->q && st->it->uk.id.raw_u64 == k->id && st->it->uk.user_u64 == k->user;
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
	kev_htab_free(&ino.idents);
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
	if (kev_htab_init(&ino.recs) || kev_htab_init(&ino.slots) || kev_htab_init(&ino.idents)) {
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
static struct kev_inode_ent *kev_inode_entry_new(struct kev_inode_state *st)
{
	struct kev_inode_ent *ent;
	unsigned int cap;

	if (st->count == st->cap) {
		cap = st->cap ? 2 * st->cap : 16;
		ent = st->cap < KEV_INODE_ENTRIES ? malloc(cap * sizeof(*ent)) : NULL;
		if (ent) {
			for (unsigned int i = 0; i < st->count; i++)
				ent[i] = st->ent[(st->head + i) % st->cap];
			free(st->ent);
			st->ent = ent;
			st->cap = cap;
			st->head = 0;
		} else {
			st->gap = true;
			if (!st->cap)
				return NULL;
			free(st->ent[st->head].name);
			st->head = (st->head + 1) % st->cap;
			st->count--;
		}
	}
	return &st->ent[(st->head + st->count++) % st->cap];
}

/* A log record: an entry of a watched directory, as the kernel saw it. */
static void kev_inode_on_rec(void *ctx, const void *data, size_t len)
{
	const struct kev_inode_rec *rec = data;
	struct kev_inode_state *st;
	struct kev_inode_ent *e;
	struct kev_hnode *n;

	(void)ctx;
	if (len < offsetof(struct kev_inode_rec, name))
		return;
	n = kev_htab_find(&ino.slots, kev_hash64(rec->slot), kev_slot_match, &rec->slot);
	st = n ? kev_container_of(n, struct kev_inode_state, by_slot) : NULL;
	if (!st || st->it->gen != rec->gen)
		return; /* logged for an interest removed since */
	/* ret_data names the child only when the event concerns just one, and a known one. */
	if (!rec->ino || (st->nchild && st->child != rec->ino)) {
		st->nchild = KEV_NCHILD_MANY;
	} else if (!st->nchild) {
		st->nchild = 1;
		st->child = rec->ino;
	}
	e = kev_inode_entry_new(st);
	if (!e)
		return;
	e->ino = rec->ino;
	e->event = rec->event;
	e->len = 0;
	e->name = NULL;
	if (rec->len && rec->len <= KEVENT_INODE_NAME_MAX &&
	    len >= offsetof(struct kev_inode_rec, name) + rec->len + 1 &&
	    (e->name = strndup(rec->name, rec->len)))
		e->len = rec->len;
	/*
	 * The kernel stamps a change with a fine-grained time only when the inode's times
	 * were read since its last change; otherwise a second change within the same clock
	 * tick leaves the ctime, and so the tracepoints, alone. Read the entry's times now,
	 * as the library does for what it watches itself, so its next write shows.
	 */
	if (e->name && e->event != KEVENT_INODE_REMOVE &&
	    (st->it->uk.event & (KEVENT_INODE_MODIFY | KEVENT_INODE_ATTRIB))) {
		struct stat sb;

		fstatat(st->it->fd, e->name, &sb, AT_SYMLINK_NOFOLLOW);
	}
}

static void kev_inode_lost_node(struct kev_hnode *n, void *arg)
{
	struct kev_inode_state *st = kev_container_of(n, struct kev_inode_state, by_slot);

	(void)arg;
	st->gap = true;
	st->nchild = KEV_NCHILD_MANY;
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

/* The kernel encodes devices as major << 20 | minor, not as st_dev. */
static __u32 kev_kdev(dev_t dev)
{
	return (major(dev) << 20) | minor(dev);
}

static void kev_inode_forget(struct kev_inode_state *st)
{
	kev_htab_remove(&ino.slots, &st->by_slot);
	kev_htab_remove(&ino.idents, &st->by_ident);
	for (; st->count; st->count--, st->head = (st->head + 1) % st->cap)
		free(st->ent[st->head].name);
	free(st->ent);
	free(st);
	if (!--ino.users)
		kev_inode_teardown();
}

static int kev_inode_add(struct kev_queue *q, struct kev_interest *it)
{
	int fd = (int)it->uk.id.raw[0], err;
	struct kev_inode_state *st;
	struct stat sb;

	/* fstat() also arms fine-grained timestamps for the first change (see the top). */
	if (fstat(fd, &sb))
		return -errno;
	if (!S_ISDIR(sb.st_mode) && !S_ISREG(sb.st_mode) && !S_ISLNK(sb.st_mode))
		return -EINVAL; /* a socket, a pipe, a device: no inode changes to report */
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	pthread_mutex_lock(&ino.lock);
	if (!ino.users && (err = kev_inode_setup())) {
		pthread_mutex_unlock(&ino.lock);
		free(st);
		return err;
	}
	ino.users++;
	st->it = it;
	st->q = q;
	st->st_dev = sb.st_dev;
	st->st_ino = sb.st_ino;
	st->key.dev = kev_kdev(sb.st_dev);
	st->key.ino = sb.st_ino;
	it->fd = fd;
	it->priv = st;
	err = kev_slot_alloc(it);
	if (!err) {
		st->by_slot.hash = kev_hash64(it->slot);
		st->by_ident.hash = kev_ident_hash(
		    &(struct kev_inode_ident){q, it->uk.id.raw_u64, it->uk.user_u64});
		err = kev_htab_insert(&ino.slots, &st->by_slot);
		if (!err)
			err = kev_htab_insert(&ino.idents, &st->by_ident);
	}
	if (!err)
		err = kev_inode_watch(q, it);
	if (err) {
		kev_inode_forget(st); /* removing what was not inserted is harmless */
		it->priv = NULL;
	}
	pthread_mutex_unlock(&ino.lock);
	/* On its number's node: the sweep finds it once the descriptor is closed (K18, K25). */
	return err ? err : kev_fdwatch_add(q, it, 0);
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
	it->priv = NULL;
	pthread_mutex_unlock(&ino.lock);
}

static int kev_inode_modify(struct kev_queue *q, struct kev_interest *it)
{
	int err;

	pthread_mutex_lock(&ino.lock);
	err = kev_inode_watch(q, it);
	pthread_mutex_unlock(&ino.lock);
	return err;
}

/* The descriptor may have been closed, and its number reused, since the ADD. */
static bool kev_inode_named(const struct kev_interest *it)
{
	const struct kev_inode_state *st = it->priv;
	struct stat sb;

	return st && !fstat(it->fd, &sb) && sb.st_dev == st->st_dev && sb.st_ino == st->st_ino;
}

/*
 * Called by the core right before it copies an event out: the one point where the source
 * sees a delivery, so the event is completed here (the child concerned, or the deletion of
 * the watched inode itself).
 */
static void kev_inode_complete(struct kev_interest *it)
{
	struct kev_inode_state *st = it->priv;
	struct stat sb;
	__u64 child;

	pthread_mutex_lock(&ino.lock);
	kev_inode_drain();
	child = st->nchild == 1 ? st->child : 0;
	st->nchild = 0;
	pthread_mutex_unlock(&ino.lock);
	it->ret_data[0] = (__u32)child;
	it->ret_data[1] = (__u32)(child >> 32);
	if (!fstat(it->fd, &sb) && !sb.st_nlink) {
		/* K18: the watched inode itself was deleted: BROKEN once, then gone. */
		it->ret_flags |= KEVENT_RET_BROKEN;
		it->ret_data[0] = 0;
		it->ret_data[1] = (__u32)-ENOENT;
	}
}

KEV_API int kevent_inode_entries(int kevent_fd, const struct ukevent *ev,
				 struct kevent_inode_entry *buf, unsigned int max)
{
	struct kev_inode_state *st = NULL;
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
	if (ino.users)
		n = kev_htab_find(&ino.idents, kev_ident_hash(&k), kev_ident_match, &k);
	if (n) {
		st = kev_container_of(n, struct kev_inode_state, by_ident);
		kev_inode_drain();
		if (st->gap && got < max) {
			buf[got++] = (struct kevent_inode_entry){.event = 0};
			st->gap = false;
		}
		for (; got < max && st->count; st->count--, got++) {
			struct kev_inode_ent *e = &st->ent[st->head];

			buf[got].ino = e->ino;
			buf[got].event = e->event;
			buf[got].name_len = e->len;
			memcpy(buf[got].name, e->name ? e->name : "", e->len + 1);
			free(e->name);
			st->head = (st->head + 1) % st->cap;
		}
	}
	pthread_mutex_unlock(&ino.lock);
	pthread_mutex_unlock(&q->lock);
	kev_queue_put(q);
	return st ? (int)got : kev_err(-ENOENT);
}

const struct kev_source kev_inode_source = {
    .events = KEV_INODE_EVENTS,
    .add = kev_inode_add,
    .del = kev_inode_del,
    .modify = kev_inode_modify,
    .named = kev_inode_named,
    .complete = kev_inode_complete,
};
