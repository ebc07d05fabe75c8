// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The one definition of the maps every program shares (see kevent.bpf.h), and the one way
 * an event leaves the kernel: kev_notify().
 */
#define KEV_MAPS_DEFINE
#include "kevent.bpf.h"

static __always_inline void kev_count_overflow(__u32 queue)
{
	struct kev_qstat *st = bpf_map_lookup_elem(&kev_qstats, &queue);

	if (st)
		__sync_fetch_and_add(&st->overflows, 1);
}

static __always_inline void kev_push(const struct kev_target *t, __u32 type, __u32 bits,
				     __u32 data)
{
	__u32 q = t->queue, slot = t->slot;
	void *ring = bpf_map_lookup_elem(&kev_rings, &q);
	struct ukevent *e;

	if (!ring)
		return;
	e = bpf_ringbuf_reserve(ring, sizeof(*e), 0);
	if (!e) {
		/*
		 * The bits stay pending in the slot, and the library rescans the slots when it sees
		 * the count move (K24). It may have drained the ring and gone to sleep between the
		 * failed reserve and the count: a marker record, naming no slot, then wakes it. No
		 * room for that either: it has not drained yet, and sees the count when it does
		 * (the add is a full barrier before this reserve reads consumer_pos).
		 */
		kev_count_overflow(q);
		e = bpf_ringbuf_reserve(ring, sizeof(*e), 0);
		if (!e)
			return;
		slot = KEV_SLOT_NONE;
	}
	e->id.raw[0] = slot;
	e->id.raw[1] = t->gen;
	e->type = type;
	e->event = bits;
	e->req_flags = 0;
	e->ret_flags = 0;
	e->ret_data[0] = data;
	e->ret_data[1] = t->epoch;
	e->user_u64 = bpf_get_smp_processor_id(); /* where it was pushed (kev_yield()) */
	/*
	 * The kernel wakes the queue only if this record is the first the library has not
	 * consumed: while the library holds a record back, nothing is raised (ringbuf.c).
	 */
	bpf_ringbuf_submit(e, 0);
}

/*
 * Mark an event pending on the target's slot: OR in bits, or (count) add to the counter
 * of merged expirations. A record goes out only when nothing was pending (K12), so a
 * queue never has more records in flight than interests. The exchange fails closed when
 * the slot has moved on to another generation: a program racing a removal never leaves
 * anything behind for the slot's next owner (K10).
 */
__noinline int kev_notify(const struct kev_target *t, __u32 type, __u32 bits, bool count,
			  __u32 data)
{
	struct kev_slot *s;
	__u64 old, new, prev;
	__u32 idx;
	int i;

	if (!t)
		return 0;
	idx = t->slot;
	s = bpf_map_lookup_elem(&kev_slots, &idx);
	if (!s)
		return 0;
	old = *(volatile __u64 *)&s->word;
	for (i = 0; i < KEV_CAS_TRIES; i++) {
		if (KEV_SLOT_GEN(old) != t->gen)
			return 0;
		/* A count saturates: a carry would change the generation and mute the slot. */
		if (count)
			new = old + (bits < ~KEV_SLOT_PENDING(old) ? bits : ~KEV_SLOT_PENDING(old));
		else if (bits & KEV_PEND_ERR_MASK) /* the latest error replaces the older one */
			new = (old & ~(__u64)KEV_PEND_ERR_MASK) | bits;
		else
			new = old | bits;
		if (new == old)
			return 0;
		prev = __sync_val_compare_and_swap(&s->word, old, new);
		if (prev == old)
			break;
		old = prev;
	}
	if (i == KEV_CAS_TRIES) {
		kev_count_overflow(t->queue); /* the library rescans every slot */
		return 0;
	}
	if (!(KEV_SLOT_PENDING(old) & ~(count ? 0 : KEV_PEND_LEVEL)))
		kev_push(t, type, count ? KEVENT_TIMER_FIRED : bits, data);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
