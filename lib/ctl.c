// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * kevent_ctl(): ADD, REMOVE, MODIFY and READY, entry by entry, in place (K7..K11).
 * An interest is identified by (type, id, user).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define KEV_REQ_KNOWN                                                                      \
	(KEVENT_REQ_ONESHOT | KEVENT_REQ_WAKEUP_ALL | KEVENT_REQ_ET | KEVENT_REQ_LAST_CHECK | \
	 KEVENT_REQ_ALWAYS_QUEUE | KEVENT_REQ_READY)

/*
 * The sources of each type. One the BPF side serves has a fallback on plain system calls,
 * taken when its family cannot load (K26): the family's first interest decides, for the
 * process (kernel.c), and each interest keeps the source it was made with. A type without
 * a source is -ENOSYS (K7).
 */
struct kev_type {
	const struct kev_source *src; /* the BPF side's, or the only one */
	const struct kev_source *sys; /* the fallback of a BPF source, NULL: none yet */
	int family;		      /* KEV_PROGS_* of a BPF source */
	bool bpf;
	bool by_fd; /* id.raw[0] is a descriptor: checked before a load (kev_kernel_attach_fd()) */
};

/* A source the BPF side serves, and its fallback. */
#define KEV_BPF_TYPE(bpf_src, sys_src, fam, fd)                                              \
	{ .src = (bpf_src), .sys = (sys_src), .family = (fam), .bpf = true, .by_fd = (fd) }

static const struct kev_type kev_types[KEVENT_MAX] = {
	[KEVENT_SOCKET] = KEV_BPF_TYPE(&kev_socket_source, &kev_socket_sys_source,
				       KEV_PROGS_SOCKET, true),
	[KEVENT_INODE] = KEV_BPF_TYPE(&kev_inode_source, &kev_inode_sys_source, KEV_PROGS_INODE,
				      true),
	[KEVENT_TIMER] = KEV_BPF_TYPE(&kev_timer_source, &kev_timer_sys_source, KEV_PROGS_TIMER,
				      false),
	[KEVENT_POLL] = { .src = &kev_poll_source },
	[KEVENT_AIO] = { .src = &kev_aio_source },
	[KEVENT_PIPE] = { .src = &kev_pipe_source },
	[KEVENT_SIGNAL] = { .src = &kev_signal_source },
	[KEVENT_UNOTIFY] = { .src = &kev_unotify_source },
};

/* Every source, BPF side and fallback: flush (end of a call) or release (end of a queue). */
static void kev_sources_each(struct kev_queue *q, bool release)
{
	for (int t = 0; t < KEVENT_MAX; t++) {
		const struct kev_source *both[2] = { kev_types[t].src, kev_types[t].sys };

		for (int i = 0; i < 2; i++) {
			void (*fn)(struct kev_queue *) = !both[i] ? NULL
							 : release ? both[i]->release
								   : both[i]->flush;

			if (fn)
				fn(q);
		}
	}
}

void kev_sources_flush(struct kev_queue *q)
{
	kev_sources_each(q, false);
}

void kev_sources_release(struct kev_queue *q)
{
	kev_sources_each(q, true);
}

/* The path a type takes on q: KEVENT_BACKEND_*, or -errno (kevent_backend()). */
static int kev_backend_of(const struct kev_queue *q, const struct kev_type *t, int fd)
{
	if (!t->bpf)
		return KEVENT_BACKEND_SYSCALL;
	return kev_kernel_backend(t->family, fd, q->need_bpf || !t->sys);
}

/* The source a new interest is made with, or NULL and *err. */
static const struct kev_source *kev_source_pick(struct kev_queue *q, const struct ukevent *e,
						int *err)
{
	const struct kev_type *t = e->type < KEVENT_MAX ? &kev_types[e->type] : NULL;
	int b;

	if (!t || !t->src) {
		*err = -ENOSYS;
		return NULL;
	}
	b = kev_backend_of(q, t, t->by_fd && (int)e->id.raw[0] >= 0 ? (int)e->id.raw[0] : -1);
	if (b < 0) {
		*err = b;
		return NULL;
	}
	return b == KEVENT_BACKEND_BPF || !t->bpf ? t->src : t->sys;
}

struct kev_ident {
	__u32 type;
	__u64 id, user;
};

static uint64_t kev_ident_hash(const struct kev_ident *k)
{
	return kev_hash64(k->id ^ kev_hash64(k->user ^ ((__u64)k->type << 56)));
}

static bool kev_ident_match(const struct kev_hnode *n, const void *key)
{
	const struct kev_interest *it = kev_container_of(n, struct kev_interest, hnode);
	const struct kev_ident *k = key;

	return it->uk.type == k->type && it->uk.id.raw_u64 == k->id && it->uk.user_u64 == k->user;
}

static struct kev_interest *kev_find(struct kev_queue *q, const struct ukevent *e)
{
	struct kev_ident k = { e->type, e->id.raw_u64, e->user_u64 };
	struct kev_hnode *n = kev_htab_find(&q->ids, kev_ident_hash(&k), kev_ident_match, &k);

	return n ? kev_container_of(n, struct kev_interest, hnode) : NULL;
}

/*
 * Readiness checks of one kevent_ctl() call (K8, K9), made after the sources have pushed
 * their batched registrations to the kernel: an event that arrives after the check is
 * then seen by the kernel side, and all the checks cost one poll().
 */
struct kev_pending {
	struct ukevent *e;
	struct kev_interest *it;
	__u32 seq; /* the interest is still that one: nothing later in the call freed it */
	bool add;
};

struct kev_pendings {
	struct kev_pending *p;
	unsigned int n, cap;
	struct kev_pending local[64];
};

void kev_fail(struct ukevent *e, int err)
{
	e->ret_flags = KEVENT_RET_BROKEN | KEVENT_RET_DONE;
	e->ret_data[1] = (__u32)err;
}

static int kev_check_request(const struct kev_source *src, const struct ukevent *e)
{
	if (e->req_flags & ~KEV_REQ_KNOWN)
		return -EINVAL;
	if (src->events && (!e->event || (e->event & ~src->events)))
		return -EINVAL;
	return 0;
}

/*
 * K9: what to do with an interest found ready (bits, or broken) when it was added; user:
 * fired by KEVENT_REQ_READY, ready whatever its mask (an UNOTIFY mask may be 0).
 */
static void kev_ready_at_add(struct kev_queue *q, struct ukevent *e, struct kev_interest *it,
			     __u32 bits, bool user)
{
	if (!bits && !user && !(it->ret_flags & KEVENT_RET_BROKEN))
		return;
	if (e->req_flags & KEVENT_REQ_ALWAYS_QUEUE) {
		/* Registered and queued. */
		if (e->req_flags & KEVENT_REQ_READY)
			kev_fire_user(q, it);
		else
			kev_fire(q, it, bits);
		return;
	}
	/* Ready at once: returned in place and not registered. */
	e->ret_flags = KEVENT_RET_DONE | (it->ret_flags & KEVENT_RET_BROKEN);
	e->event = bits & it->uk.event;
	e->ret_data[0] = it->ret_data[0];
	e->ret_data[1] = it->ret_data[1];
	kev_interest_free(q, it);
}

#define KEV_PEND_CHUNK 256

/* Check p[0..n) with one poll() and apply K9 or K8; skip interests the call freed since. */
static void kev_pend_chunk(struct kev_queue *q, struct kev_pending *p, unsigned int n)
{
	struct kev_interest *its[KEV_PEND_CHUNK];
	__u32 bits[KEV_PEND_CHUNK];
	unsigned int i, m = 0;

	for (i = 0; i < n; i++) {
		if (kev_find(q, p[i].e) != p[i].it || p[i].it->seq != p[i].seq)
			p[i].it = NULL;
		else
			its[m++] = p[i].it;
	}
	kev_ready_now(its, m, bits);
	for (i = 0, m = 0; i < n; i++) {
		__u32 b;

		if (!p[i].it)
			continue;
		b = bits[m] & p[i].it->uk.event;
		/* A hang-up with data left is looked at again after delivery (K17). */
		if (b)
			b |= bits[m] & KEV_PEND_HUP;
		m++;
		if (p[i].add)
			kev_ready_at_add(q, p[i].e, p[i].it, b, false);
		else
			kev_fire(q, p[i].it, b); /* K8: what is ready now is queued */
	}
}

/* Push the sources' batched registrations to the kernel, then run the deferred checks. */
static void kev_pend_run(struct kev_queue *q, struct kev_pendings *ps)
{
	kev_sources_flush(q);
	for (unsigned int i = 0; i < ps->n; i += KEV_PEND_CHUNK)
		kev_pend_chunk(q, ps->p + i,
			       ps->n - i < KEV_PEND_CHUNK ? ps->n - i : KEV_PEND_CHUNK);
	ps->n = 0;
}

static void kev_pend(struct kev_queue *q, struct kev_pendings *ps, struct ukevent *e,
		     struct kev_interest *it, bool add)
{
	if (ps->n == ps->cap) {
		unsigned int cap = 2 * ps->cap;
		struct kev_pending *p = malloc(cap * sizeof(*p));

		if (p) {
			memcpy(p, ps->p, ps->n * sizeof(*p));
			if (ps->p != ps->local)
				free(ps->p);
			ps->p = p;
			ps->cap = cap;
		} else {
			kev_pend_run(q, ps); /* no room to defer more: check what is deferred now */
		}
	}
	it->seq = ++q->ctl_seq;
	ps->p[ps->n++] = (struct kev_pending){ e, it, it->seq, add };
}

static void kev_ctl_add(struct kev_queue *q, struct ukevent *e, struct kev_pendings *ps)
{
	int err = 0;
	const struct kev_source *src = kev_source_pick(q, e, &err);
	struct kev_interest *it = kev_find(q, e);

	if (!src) {
		kev_fail(e, err);
		return;
	}
	err = kev_check_request(src, e);
	/* The same descriptor number may name a new object now: the old interest went (K17). */
	if (!err && it && it->src->named && !it->src->named(it)) {
		kev_interest_free(q, it);
		it = NULL;
	}
	if (!err && it)
		err = -EEXIST;
	if (!err && !(it = calloc(1, sizeof(*it))))
		err = -ENOMEM;
	if (err) {
		kev_fail(e, err);
		return;
	}
	it->uk = *e;
	it->uk.ret_flags = 0;
	it->uk.ret_data[0] = it->uk.ret_data[1] = 0;
	it->src = src;
	it->fd = -1;
	it->batched = -1;
	it->slot = KEV_NO_SLOT;
	kev_list_init(&it->link);
	it->hnode.hash = kev_ident_hash(&(struct kev_ident){ e->type, e->id.raw_u64, e->user_u64 });
	err = src->add(q, it);
	if (!err && kev_htab_insert(&q->ids, &it->hnode)) {
		src->del(q, it);
		err = -ENOMEM;
	}
	if (err) {
		kev_slot_free(it);
		free(it);
		kev_fail(e, err);
		return;
	}

	e->ret_flags = 0;
	if (e->req_flags & KEVENT_REQ_READY)
		kev_ready_at_add(q, e, it, it->uk.event, true);
	else if (src->pollmask)
		kev_pend(q, ps, e, it, true);
}

static void kev_ctl_modify(struct kev_queue *q, struct kev_interest *it, struct ukevent *e,
			   struct kev_pendings *ps)
{
	struct ukevent old = it->uk;
	int err = kev_check_request(it->src, e);

	if (!err) {
		it->uk.event = e->event;
		it->uk.req_flags = e->req_flags;
		err = it->src->modify ? it->src->modify(q, it) : 0;
		if (err) {
			it->uk = old;
			it->src->modify(q, it);
		}
	}
	if (err) {
		kev_fail(e, err);
		return;
	}
	/* No longer level: no second look at what it delivered. */
	if ((it->uk.req_flags & (KEVENT_REQ_ET | KEVENT_REQ_ONESHOT)) && it->where == KEV_RECHECK)
		kev_unqueue(it);
	/* K8: re-check readiness; what is ready now is queued. */
	if (it->uk.req_flags & KEVENT_REQ_READY)
		kev_fire_user(q, it);
	else if (it->src->pollmask)
		kev_pend(q, ps, e, it, false);
}

static void kev_ctl_one(struct kev_queue *q, unsigned int cmd, struct ukevent *e,
			struct kev_pendings *ps)
{
	struct kev_interest *it;

	e->ret_flags = 0;
	q->ctl_entry = e; /* a batching source reports a late failure here */
	if (cmd == KEVENT_CTL_ADD) {
		kev_ctl_add(q, e, ps);
		return;
	}
	it = kev_find(q, e);
	if (it && cmd == KEVENT_CTL_MODIFY && it->src->named && !it->src->named(it)) {
		kev_interest_free(q, it); /* closed since: already gone (K17) */
		it = NULL;
	}
	if (!it) {
		kev_fail(e, -ENOENT); /* K8 */
		return;
	}
	e->ret_flags = KEVENT_RET_DONE;
	if (cmd == KEVENT_CTL_REMOVE)
		kev_interest_free(q, it); /* K10: never delivered afterwards */
	else if (cmd == KEVENT_CTL_MODIFY)
		kev_ctl_modify(q, it, e, ps);
	else
		kev_fire_user(q, it); /* K11 */
}

KEV_API int kevent_ctl(int fd, unsigned int cmd, unsigned int num, struct ukevent *arg)
{
	struct kev_pendings ps = { .cap = 64 };
	struct kev_queue *q;
	unsigned int i;
	int err;

	if (cmd > KEVENT_CTL_READY || num > KEVENT_MAX_BATCH)
		return kev_err(-EINVAL);
	if (num && !arg)
		return kev_err(-EFAULT);
	ps.p = ps.local;
	q = kev_queue_get(fd, &err);
	if (!q)
		return kev_err(err);
	pthread_mutex_lock(&q->lock);
	q->calls++;
	if (q->closed) {
		err = -EBADF;
	} else {
		if (cmd == KEVENT_CTL_READY && !num)
			kev_wake_all(q); /* K11: every parked thread returns */
		for (i = 0; i < num; i++)
			kev_ctl_one(q, cmd, &arg[i], &ps);
		kev_pend_run(q, &ps);
		q->epoch_now = 0; /* not a call's: every socket record it takes is checked */
		kev_harvest_ring(q);
		err = (int)num;
	}
	kev_kick_update(q);
	pthread_mutex_unlock(&q->lock);
	kev_queue_put(q);
	if (ps.p != ps.local)
		free(ps.p);
	return err < 0 ? kev_err(err) : err;
}

KEV_API int kevent_backend(int fd, unsigned int type)
{
	struct kev_queue *q;
	int err;

	if (type >= KEVENT_MAX || !kev_types[type].src)
		return kev_err(-EINVAL);
	q = kev_queue_get(fd, &err);
	if (!q)
		return kev_err(err);
	err = q->closed ? -EBADF : kev_backend_of(q, &kev_types[type], -1);
	kev_queue_put(q);
	return err < 0 ? kev_err(err) : err;
}
