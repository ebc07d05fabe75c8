// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * KEVENT_TIMER in the kernel (K19): every armed timer of the process is a node of one
 * red-black tree ordered by due time, and one bpf_timer (an hrtimer) fires at the earliest.
 * Its callback takes what is due, pushes the events, and puts periodic timers back at their
 * next absolute due time: the n-th expiry is due at start + n * period, whatever the
 * callback's own latency. No timerfd, no userspace thread, and one hrtimer however many
 * timers are armed (a bpf_timer per timer would cost an allocation each, and this
 * kernel's kmalloc_nolock() runs dry after a few hundred).
 *
 * A timer keeps its node for life (kev_shared.h): a restart only publishes a new arming in
 * the slot's kev_tslot, and the node, due no later than the new first expiry, moves to it
 * when it comes due. The tree is ordered by (place, slot) and each slot's place is in its
 * kev_tslot, so a removed timer's node is found and taken out at once (bpf_rbtree_root,
 * _left and _right: Linux 6.16 or later).
 */
#include "kevent.bpf.h"

#define CLOCK_MONOTONIC	 1
#define NSEC_PER_MSEC	 1000000ULL
#define KEV_POP_MAX	 65536 /* per callback; the rest is due now: the callback comes back */
#define KEV_TREE_DEPTH	 64    /* a red-black tree of 2^24 nodes is at most 48 deep */
#define EINVAL		 22
#define ENOMEM		 12
#define EFAULT		 14
#define U32_MAX		 0xffffffffULL

#define __contains(name, node) __attribute__((btf_decl_tag("contains:" #name ":" #node)))

/* Graph kfuncs (the kernel's; libbpf 1.1 ships no declarations for them). */
extern void *bpf_obj_new_impl(__u64 local_type_id, void *meta) __ksym;
extern void bpf_obj_drop_impl(void *kptr, void *meta) __ksym;
extern int bpf_rbtree_add_impl(struct bpf_rb_root *root, struct bpf_rb_node *node,
			       bool (*less)(struct bpf_rb_node *a, const struct bpf_rb_node *b),
			       void *meta, __u64 off) __ksym;
extern struct bpf_rb_node *bpf_rbtree_remove(struct bpf_rb_root *root,
					     struct bpf_rb_node *node) __ksym;
extern struct bpf_rb_node *bpf_rbtree_first(struct bpf_rb_root *root) __ksym;
extern struct bpf_rb_node *bpf_rbtree_root(struct bpf_rb_root *root) __ksym;
extern struct bpf_rb_node *bpf_rbtree_left(struct bpf_rb_root *root,
					   struct bpf_rb_node *node) __ksym;
extern struct bpf_rb_node *bpf_rbtree_right(struct bpf_rb_root *root,
					    struct bpf_rb_node *node) __ksym;

struct kev_tnode {
	struct bpf_rb_node rb;
	__u64 pos_ns; /* its place in the tree: its due time, or later for a short period */
	__u64 due_ns; /* CLOCK_MONOTONIC time of the next expiry of `gen` not yet counted */
	__u64 period_ns;
	__u32 slot;
	__u32 gen; /* the arming it serves; another one in the kev_tslot: restarted since */
	__u32 queue;
};

struct kev_tq {
	struct bpf_spin_lock lock;
	struct bpf_rb_root root __contains(kev_tnode, rb);
	struct bpf_timer timer;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kev_tq);
} kev_tq SEC(".maps");

/* Arming requests, written by the library through mmap (no system call per timer). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, KEV_TIMER_BATCH);
	__type(key, __u32);
	__type(value, struct kev_timer_req);
} kev_timer_reqs SEC(".maps");

/* The armings, one per slot, mmapped by the library: `bpftool map dump name kev_tslots`. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, KEV_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct kev_tslot);
} kev_tslots SEC(".maps");

/* Nodes in the tree: one per armed timer (kevent_stats().kernel_timers). */
__u64 kev_tnodes;

/* Is (pos, slot) before node n? Slots make places unique: one node per slot. */
static __always_inline bool kev_before(__u64 pos, __u32 slot, const struct kev_tnode *n)
{
	return pos < n->pos_ns || (pos == n->pos_ns && slot < n->slot);
}

static bool kev_tnode_less(struct bpf_rb_node *a, const struct bpf_rb_node *b)
{
	struct kev_tnode *n = container_of(a, struct kev_tnode, rb);

	return kev_before(n->pos_ns, n->slot, container_of(b, struct kev_tnode, rb));
}

static __always_inline void kev_tnode_drop(struct kev_tnode *n)
{
	__sync_fetch_and_add(&kev_tnodes, -1);
	bpf_obj_drop_impl(n, NULL);
}

/* Put a node in the tree at n->pos_ns and record the place in its kev_tslot. Lock held. */
static __always_inline void kev_tq_put(struct kev_tq *tq, struct kev_tslot *ts, struct kev_tnode *n)
{
	ts->pos_ns = n->pos_ns;
	bpf_rbtree_add_impl(&tq->root, &n->rb, kev_tnode_less, NULL, 0);
}

/* The slot's node, found by its place. Lock held. */
static __always_inline struct bpf_rb_node *kev_tq_find(struct kev_tq *tq, __u64 pos, __u32 slot)
{
	struct bpf_rb_node *r = bpf_rbtree_root(&tq->root);
	struct kev_tnode *n;

	for (int i = 0; i < KEV_TREE_DEPTH && r; i++) {
		n = container_of(r, struct kev_tnode, rb);
		if (n->pos_ns == pos && n->slot == slot)
			return r;
		if (kev_before(pos, slot, n))
			r = bpf_rbtree_left(&tq->root, r);
		else
			r = bpf_rbtree_right(&tq->root, r);
	}
	return NULL;
}

/* When the tree next wants the callback, 0 if it is empty. */
static __always_inline __u64 kev_tq_first_due(struct kev_tq *tq)
{
	struct bpf_rb_node *r;
	__u64 due = 0;

	bpf_spin_lock(&tq->lock);
	r = bpf_rbtree_first(&tq->root);
	if (r)
		due = container_of(r, struct kev_tnode, rb)->pos_ns;
	bpf_spin_unlock(&tq->lock);
	return due;
}

/*
 * Point the hrtimer at the earliest due time. The callback and an arming run may race;
 * each checks the tree again after starting the timer, so whoever starts it last has seen
 * the tree after everyone else's change.
 */
static __always_inline void kev_tq_rearm(struct kev_tq *tq)
{
	__u64 due = kev_tq_first_due(tq), again;

	for (int i = 0; i < 4 && due; i++) {
		bpf_timer_start(&tq->timer, due, BPF_F_TIMER_ABS);
		again = kev_tq_first_due(tq);
		if (again == due)
			break;
		due = again;
	}
}

/*
 * The arming word, read before what it publishes (the library writes due_ns first): an
 * atomic read is a full barrier, which plain BPF loads are not on every architecture.
 */
static __always_inline __u64 kev_tarm_read(struct kev_tslot *ts)
{
	return __sync_fetch_and_add(&ts->arm, 0);
}

/* The arming word once its node goes: a ONESHOT that fired says so (no new node for it). */
static __always_inline __u64 kev_tarm_gone(__u64 a)
{
	a &= ~(__u64)KEV_TARM_NODE;
	return a & KEV_TARM_ARMED ? a | KEV_TARM_FIRED : a;
}

/*
 * Bring a node that came due up to its slot's arming and count what expired: returns the
 * expirations to deliver for arming n->gen, and sets n->pos_ns to where the node goes back
 * (0: it goes). *arm: the arming word this was decided on.
 */
static __always_inline __u64 kev_tnode_serve(struct kev_tnode *n, struct kev_tslot *ts, __u64 now,
					     __u64 *arm)
{
	__u64 a = kev_tarm_read(ts), count;

	*arm = a;
	n->pos_ns = 0;
	if (!(a & KEV_TARM_ARMED))
		return 0;
	if (KEV_TARM_GEN(a) != n->gen && !(a & KEV_TARM_RESTART)) {
		/*
		 * A new timer on the slot, whose period and queue this node (a removed
		 * timer's) does not know yet: its arming request is on its way. Wait for it.
		 */
		n->pos_ns = now + KEV_TIMER_MIN_GAP_NS;
		return 0;
	}
	if (KEV_TARM_GEN(a) != n->gen) {
		/* Restarted: it counts from its new start. */
		n->gen = KEV_TARM_GEN(a);
		n->due_ns = *(volatile __u64 *)&ts->due_ns;
	}
	if (n->due_ns > now) {
		n->pos_ns = n->due_ns;
		return 0;
	}
	if (a & KEV_TARM_ONESHOT)
		return 1; /* however late: it expires once */
	/* Late by whole periods (a busy machine): those expirations merge into this one. */
	count = 1 + (now - n->due_ns) / n->period_ns;
	n->due_ns += count * n->period_ns; /* absolute: no drift (K19) */
	n->pos_ns = n->due_ns;
	if (n->period_ns < KEV_TIMER_MIN_GAP_NS && n->pos_ns < now + KEV_TIMER_MIN_GAP_NS)
		n->pos_ns = now + KEV_TIMER_MIN_GAP_NS;
	return count;
}

struct kev_pop_ctx {
	struct kev_tq *tq;
	__u64 now;
};

/* Take the first timer if it is due, serve it, deliver what expired. 1: stop. */
static long kev_tq_pop(__u32 i, struct kev_pop_ctx *c)
{
	struct kev_tnode *n, *gone = NULL;
	struct kev_tq *tq = c->tq;
	struct kev_target t = {};
	struct bpf_rb_node *r;
	struct kev_tslot *ts;
	__u64 pos = 0, count, a;
	__u32 slot = 0;

	/* Which slot comes first: its kev_tslot is looked up outside the lock (no calls). */
	bpf_spin_lock(&tq->lock);
	r = bpf_rbtree_first(&tq->root);
	if (r) {
		n = container_of(r, struct kev_tnode, rb);
		pos = n->pos_ns;
		slot = n->slot;
	}
	bpf_spin_unlock(&tq->lock);
	if (!r || pos > c->now)
		return 1;
	ts = bpf_map_lookup_elem(&kev_tslots, &slot);
	if (!ts)
		return 1;

	bpf_spin_lock(&tq->lock);
	r = bpf_rbtree_first(&tq->root);
	if (!r || container_of(r, struct kev_tnode, rb)->slot != slot ||
	    container_of(r, struct kev_tnode, rb)->pos_ns != pos) {
		bpf_spin_unlock(&tq->lock);
		return 0; /* the tree changed meanwhile: look again */
	}
	r = bpf_rbtree_remove(&tq->root, r);
	if (!r) {
		bpf_spin_unlock(&tq->lock);
		return 1;
	}
	n = container_of(r, struct kev_tnode, rb);
	count = kev_tnode_serve(n, ts, c->now, &a);
	t.slot = slot;
	t.gen = n->gen;
	t.queue = n->queue;
	if (!n->pos_ns && __sync_val_compare_and_swap(&ts->arm, a, kev_tarm_gone(a)) == a) {
		gone = n;
	} else {
		/* Kept, or re-armed by the library meanwhile: then the next turn serves that. */
		if (!n->pos_ns)
			n->pos_ns = c->now;
		kev_tq_put(tq, ts, n);
	}
	bpf_spin_unlock(&tq->lock);
	if (gone)
		kev_tnode_drop(gone);
	if (count)
		kev_notify(&t, KEVENT_TIMER, count < U32_MAX ? count : U32_MAX, true,
			   (__u32)(c->now / NSEC_PER_MSEC));
	return 0;
}

static int kev_tq_expired(void *map, __u32 *key, struct kev_tq *tq)
{
	struct kev_pop_ctx c = { .tq = tq, .now = bpf_ktime_get_ns() };

	bpf_loop(KEV_POP_MAX, kev_tq_pop, &c, 0);
	kev_tq_rearm(tq);
	return 0;
}

/* Make a node serve arming r from its first expiry on. */
static __always_inline void kev_tnode_fit(struct kev_tnode *n, struct kev_tslot *ts,
					  const struct kev_timer_req *r)
{
	n->due_ns = ts->due_ns;
	n->period_ns = r->period_ns;
	n->slot = r->slot;
	n->gen = r->gen;
	n->queue = r->queue;
}

/*
 * Give arming r->gen a node due no later than its first expiry: a new one, or the node the
 * slot has (a removed timer's whose removal has not run yet), fitted and moved if need be.
 */
static __always_inline int kev_tslot_ensure(struct kev_tq *tq, struct kev_tslot *ts,
					    const struct kev_timer_req *r)
{
	struct kev_tnode *n = NULL, *spare;
	struct bpf_rb_node *rb;
	int err = 0;
	__u64 a;

	if (!r->period_ns)
		return -EINVAL;
	/* Allocated before the lock (no calls under it); most requests need it. */
	spare = bpf_obj_new_impl(bpf_core_type_id_local(struct kev_tnode), NULL);
	bpf_spin_lock(&tq->lock);
	a = *(volatile __u64 *)&ts->arm;
	if (KEV_TARM_GEN(a) != r->gen || !(a & KEV_TARM_ARMED) || (a & KEV_TARM_FIRED)) {
		/* Removed or restarted since, or a ONESHOT that fired already: nothing to do. */
	} else if (a & KEV_TARM_NODE) {
		rb = kev_tq_find(tq, ts->pos_ns, r->slot);
		if (rb) {
			kev_tnode_fit(container_of(rb, struct kev_tnode, rb), ts, r);
			if (ts->pos_ns > ts->due_ns) /* due earlier than it is: move it */
				rb = bpf_rbtree_remove(&tq->root, rb);
			else
				rb = NULL;
			if (rb)
				n = container_of(rb, struct kev_tnode, rb);
		} else {
			err = -EFAULT;
		}
	} else if (spare) {
		kev_tnode_fit(spare, ts, r);
		__sync_fetch_and_or(&ts->arm, KEV_TARM_NODE);
		__sync_fetch_and_add(&kev_tnodes, 1);
		n = spare;
		spare = NULL;
	} else {
		err = -ENOMEM;
	}
	if (n) {
		n->pos_ns = n->due_ns;
		kev_tq_put(tq, ts, n);
	}
	bpf_spin_unlock(&tq->lock);
	if (spare)
		bpf_obj_drop_impl(spare, NULL);
	return err;
}

/* Timer r->gen was removed: its node leaves the tree now, not at its due time. */
static __always_inline int kev_tslot_cancel(struct kev_tq *tq, struct kev_tslot *ts,
					    const struct kev_timer_req *r)
{
	struct bpf_rb_node *rb = NULL;
	__u64 a;

	bpf_spin_lock(&tq->lock);
	a = *(volatile __u64 *)&ts->arm;
	/* Unless a new timer took the slot meanwhile: the node then serves that one. */
	if (KEV_TARM_GEN(a) == r->gen && !(a & KEV_TARM_ARMED) && (a & KEV_TARM_NODE) &&
	    __sync_val_compare_and_swap(&ts->arm, a, a & ~(__u64)KEV_TARM_NODE) == a) {
		rb = kev_tq_find(tq, ts->pos_ns, r->slot);
		if (rb)
			rb = bpf_rbtree_remove(&tq->root, rb);
	}
	bpf_spin_unlock(&tq->lock);
	if (rb)
		kev_tnode_drop(container_of(rb, struct kev_tnode, rb));
	return 0;
}

struct kev_arm_ctx {
	struct kev_tq *tq;
};

static long kev_timer_arm_one(__u32 i, struct kev_arm_ctx *c)
{
	struct kev_timer_req *r = bpf_map_lookup_elem(&kev_timer_reqs, &i);
	struct kev_tslot *ts;
	__u32 slot;

	if (!r)
		return 1;
	slot = r->slot;
	ts = bpf_map_lookup_elem(&kev_tslots, &slot);
	if (!ts)
		r->err = -EINVAL;
	else if (r->flags & KEV_TIMER_CANCEL)
		r->err = kev_tslot_cancel(c->tq, ts, r);
	else
		r->err = kev_tslot_ensure(c->tq, ts, r);
	return 0;
}

SEC("syscall")
int kev_timer_arm(struct kev_timer_arm_ctx *ctx)
{
	struct kev_arm_ctx c;
	__u32 nr = ctx->nr, key = 0;

	c.tq = bpf_map_lookup_elem(&kev_tq, &key);
	if (!c.tq || nr > KEV_TIMER_BATCH)
		return -EINVAL;
	/* The first run makes the hrtimer; later ones get -EBUSY, which is fine. */
	bpf_timer_init(&c.tq->timer, &kev_tq, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&c.tq->timer, kev_tq_expired);
	bpf_loop(nr, kev_timer_arm_one, &c, 0);
	kev_tq_rearm(c.tq);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
