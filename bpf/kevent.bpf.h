/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * What every source program shares: the maps and the one way an event leaves the kernel,
 * kev_notify(). maps.bpf.c defines the maps (KEV_MAPS_DEFINE); the others see them extern
 * and the static linker (bpftool gen object) joins them into one object.
 */
#ifndef KEVENT_BPF_H
#define KEVENT_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "kev_shared.h"

#ifdef KEV_MAPS_DEFINE
#define KEV_MAP
#else
#define KEV_MAP extern
#endif

struct kev_ring_tmpl {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, KEV_RINGBUF_BYTES);
};

/* Pending bits of every kernel-fed interest; mmapped by the library (no syscall to read). */
KEV_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, KEV_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct kev_slot);
} kev_slots SEC(".maps");

KEV_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, KEV_MAX_QUEUES);
	__type(key, __u32);
	__type(value, struct kev_qstat);
} kev_qstats SEC(".maps");

/* One ring buffer per queue; the library creates it and stores it at the queue's index. */
KEV_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, KEV_MAX_QUEUES);
	__type(key, __u32);
	__array(values, struct kev_ring_tmpl);
} kev_rings SEC(".maps");

/* The watched sockets: `bpftool map dump name kev_sockets`. */
KEV_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, KEV_MAX_SLOTS);
	__type(key, struct kev_sock_key);
	__type(value, struct kev_sock_val);
} kev_sockets SEC(".maps");

/* Arming requests, written by the library through mmap (no system call per timer). */
KEV_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, KEV_TIMER_BATCH);
	__type(key, __u32);
	__type(value, struct kev_timer_req);
} kev_timer_reqs SEC(".maps");

/* The watched files and directories (inode.bpf.c): `bpftool map dump name kev_inodes`. */
KEV_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, KEV_MAX_SLOTS);
	__type(key, struct kev_inode_key);
	__type(value, struct kev_inode_val);
} kev_inodes SEC(".maps");

/* Bounded: only another CPU or the library's clear can make the exchange fail. */
#define KEV_CAS_TRIES 16

/* Where an event goes: the interest's slot and generation, and its queue's ring. */
struct kev_target {
	__u32 slot;
	__u32 gen;
	__u32 queue;
};

static __always_inline void kev_count_overflow(__u32 queue)
{
	struct kev_qstat *st = bpf_map_lookup_elem(&kev_qstats, &queue);

	if (st)
		__sync_fetch_and_add(&st->overflows, 1);
}

static __always_inline void kev_push(const struct kev_target *t, __u32 type, __u32 bits,
				     __u32 data)
{
	__u32 q = t->queue;
	void *ring = bpf_map_lookup_elem(&kev_rings, &q);
	struct kev_qstat *st = bpf_map_lookup_elem(&kev_qstats, &q);
	struct ukevent *e;

	if (!ring || !st)
		return;
	e = bpf_ringbuf_reserve(ring, sizeof(*e), 0);
	if (!e) {
		/* The bits stay pending in the slot: the library rescans slots on overflow. */
		kev_count_overflow(q);
		return;
	}
	e->id.raw[0] = t->slot;
	e->id.raw[1] = t->gen;
	e->type = type;
	e->event = bits;
	e->req_flags = 0;
	e->ret_flags = 0;
	e->ret_data[0] = data;
	e->ret_data[1] = 0;
	e->user_u64 = bpf_get_smp_processor_id(); /* where it was pushed (kev_yield()) */
	/*
	 * The reserve moved producer_pos; this fully ordered read of `awake` comes after it.
	 * Pairs with the library's decrement before it checks the ring and sleeps
	 * (kev_sleep()): either it sees this record, or this sees it asleep and wakes it.
	 */
	bpf_ringbuf_submit(e, __sync_fetch_and_add(&st->awake, 0) ? BPF_RB_NO_WAKEUP : 0);
}

/*
 * Mark an event pending on the target's slot: OR in bits, or (count) add to the counter
 * of merged expirations. A record goes out only when nothing was pending (K12), so a
 * queue never has more records in flight than interests. The exchange fails closed when
 * the slot has moved on to another generation: a program racing a removal never leaves
 * anything behind for the slot's next owner (K10).
 */
static __always_inline void kev_notify(const struct kev_target *t, __u32 type, __u32 bits,
				       bool count, __u32 data)
{
	__u32 idx = t->slot;
	struct kev_slot *s = bpf_map_lookup_elem(&kev_slots, &idx);
	__u64 old, new, prev;
	int i;

	if (!s)
		return;
	old = *(volatile __u64 *)&s->word;
	for (i = 0; i < KEV_CAS_TRIES; i++) {
		if (KEV_SLOT_GEN(old) != t->gen)
			return;
		/* A count saturates: a carry would change the generation and mute the slot. */
		if (count)
			new = old + (bits < ~KEV_SLOT_PENDING(old) ? bits : ~KEV_SLOT_PENDING(old));
		else
			new = old | bits;
		if (new == old)
			return;
		prev = __sync_val_compare_and_swap(&s->word, old, new);
		if (prev == old)
			break;
		old = prev;
	}
	if (i == KEV_CAS_TRIES) {
		kev_count_overflow(t->queue); /* the library rescans every slot */
		return;
	}
	if (!KEV_SLOT_PENDING(old))
		kev_push(t, type, count ? KEVENT_TIMER_FIRED : bits, data);
}

#endif /* KEVENT_BPF_H */
