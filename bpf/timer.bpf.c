// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * KEVENT_TIMER in the kernel (K19): every armed timer of the process is a node of one
 * red-black tree ordered by due time, and one bpf_timer (an hrtimer) fires at the earliest.
 * Its callback pops what is due, pushes the events, and puts periodic timers back at their
 * next absolute due time: the n-th expiry is due at start + n * period, whatever the
 * callback's own latency. No timerfd, no userspace thread, and one hrtimer however many
 * timers are armed (a bpf_timer per timer would cost an allocation each, and this
 * kernel's kmalloc_nolock() runs dry after a few hundred).
 */
#include "kevent.bpf.h"

#define CLOCK_MONOTONIC	 1
#define NSEC_PER_MSEC	 1000000ULL
#define KEV_POP_MAX	 65536 /* per callback; the rest is due now: the callback comes back */
#define EINVAL		 22
#define ENOMEM		 12
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

struct kev_tnode {
	struct bpf_rb_node rb;
	__u64 pos_ns; /* its place in the tree: due_ns, or later for a short period */
	__u64 due_ns; /* CLOCK_MONOTONIC time of the next expiry not yet counted */
	__u64 period_ns;
	__u32 slot;
	__u32 gen;
	__u16 queue;
	__u16 flags; /* KEV_TIMER_* */
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

/* Timers in the tree, removed ones included until they come due (kevent_stats). */
__u64 kev_tnodes;

static bool kev_tnode_less(struct bpf_rb_node *a, const struct bpf_rb_node *b)
{
	return container_of(a, struct kev_tnode, rb)->pos_ns <
	       container_of(b, struct kev_tnode, rb)->pos_ns;
}

static __always_inline void kev_tnode_drop(struct kev_tnode *n)
{
	__sync_fetch_and_add(&kev_tnodes, -1);
	bpf_obj_drop_impl(n, NULL);
}

/* Removed (or modified, which takes a new slot) since it was armed? */
static __always_inline bool kev_tnode_live(const struct kev_tnode *n)
{
	__u32 idx = n->slot;
	struct kev_slot *s = bpf_map_lookup_elem(&kev_slots, &idx);

	return s && KEV_SLOT_GEN(*(volatile __u64 *)&s->word) == n->gen;
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

struct kev_pop_ctx {
	struct kev_tq *tq;
	__u64 now;
};

/* Take one due timer off the tree, deliver it, put a periodic one back. 1: stop. */
static long kev_tq_pop(__u32 i, struct kev_pop_ctx *c)
{
	struct kev_tq *tq = c->tq;
	struct kev_target t;
	struct bpf_rb_node *r;
	struct kev_tnode *n;
	__u64 count;

	bpf_spin_lock(&tq->lock);
	r = bpf_rbtree_first(&tq->root);
	if (!r || container_of(r, struct kev_tnode, rb)->pos_ns > c->now) {
		bpf_spin_unlock(&tq->lock);
		return 1;
	}
	r = bpf_rbtree_remove(&tq->root, r);
	bpf_spin_unlock(&tq->lock);
	if (!r)
		return 1;
	n = container_of(r, struct kev_tnode, rb);
	if (!kev_tnode_live(n)) {
		kev_tnode_drop(n);
		return 0;
	}
	/* Late by whole periods (a busy machine): those expirations merge into this one. */
	count = n->flags & KEV_TIMER_ONESHOT ? 1 : 1 + (c->now - n->due_ns) / n->period_ns;
	t.slot = n->slot;
	t.gen = n->gen;
	t.queue = n->queue;
	kev_notify(&t, KEVENT_TIMER, count < U32_MAX ? count : U32_MAX, true,
		   (__u32)(c->now / NSEC_PER_MSEC));
	if (n->flags & KEV_TIMER_ONESHOT) {
		kev_tnode_drop(n);
		return 0;
	}
	n->due_ns += count * n->period_ns; /* absolute: no drift (K19) */
	n->pos_ns = n->due_ns;
	if (n->period_ns < KEV_TIMER_MIN_GAP_NS && n->pos_ns < c->now + KEV_TIMER_MIN_GAP_NS)
		n->pos_ns = c->now + KEV_TIMER_MIN_GAP_NS;
	bpf_spin_lock(&tq->lock);
	bpf_rbtree_add_impl(&tq->root, &n->rb, kev_tnode_less, NULL, 0);
	bpf_spin_unlock(&tq->lock);
	return 0;
}

static int kev_tq_expired(void *map, __u32 *key, struct kev_tq *tq)
{
	struct kev_pop_ctx c = { .tq = tq, .now = bpf_ktime_get_ns() };

	bpf_loop(KEV_POP_MAX, kev_tq_pop, &c, 0);
	kev_tq_rearm(tq);
	return 0;
}

struct kev_arm_ctx {
	struct kev_tq *tq;
	__u64 now;
};

static long kev_timer_arm_one(__u32 i, struct kev_arm_ctx *c)
{
	struct kev_timer_req *r = bpf_map_lookup_elem(&kev_timer_reqs, &i);
	struct kev_tq *tq = c->tq;
	struct kev_tnode *n;

	if (!r)
		return 1;
	if (!r->period_ns) {
		r->err = -EINVAL;
		return 0;
	}
	n = bpf_obj_new_impl(bpf_core_type_id_local(struct kev_tnode), NULL);
	if (!n) {
		r->err = -ENOMEM;
		return 0;
	}
	n->due_ns = c->now + r->period_ns;
	n->pos_ns = n->due_ns;
	n->period_ns = r->period_ns;
	n->slot = r->slot;
	n->gen = r->gen;
	n->queue = r->queue;
	n->flags = r->flags;
	__sync_fetch_and_add(&kev_tnodes, 1);
	bpf_spin_lock(&tq->lock);
	bpf_rbtree_add_impl(&tq->root, &n->rb, kev_tnode_less, NULL, 0);
	bpf_spin_unlock(&tq->lock);
	r->err = 0;
	return 0;
}

SEC("syscall")
int kev_timer_arm(struct kev_timer_arm_ctx *ctx)
{
	struct kev_arm_ctx c = { .now = bpf_ktime_get_ns() };
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
