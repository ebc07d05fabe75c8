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

/* Bounded: only another CPU or the library's clear can make the exchange fail. */
#define KEV_CAS_TRIES 16

static __always_inline void kev_push(const struct kev_watch *w, __u32 type, __u32 bits)
{
	__u32 q = w->queue;
	struct kev_qstat *st = bpf_map_lookup_elem(&kev_qstats, &q);
	void *ring = bpf_map_lookup_elem(&kev_rings, &q);
	struct ukevent *e;

	if (!ring || !st)
		return;
	e = bpf_ringbuf_reserve(ring, sizeof(*e), 0);
	if (!e) {
		/* The bits stay pending in the slot: the library rescans slots on overflow. */
		__sync_fetch_and_add(&st->overflows, 1);
		return;
	}
	e->id.raw[0] = w->slot;
	e->id.raw[1] = w->gen;
	e->type = type;
	e->event = bits;
	e->req_flags = 0;
	e->ret_flags = 0;
	e->ret_data[0] = 0;
	e->ret_data[1] = 0;
	e->user_u64 = 0;
	bpf_ringbuf_submit(e, 0);
	__sync_fetch_and_add(&st->pushed, 1);
}

/*
 * Mark bits pending on the watch's slot; push a record only if none was pending (K12).
 * The exchange fails closed when the slot has moved on to another generation, so a
 * program racing a removal never leaves bits behind for the slot's next owner (K10).
 */
static __always_inline void kev_notify(const struct kev_watch *w, __u32 type, __u32 bits)
{
	__u32 idx = w->slot;
	struct kev_slot *s = bpf_map_lookup_elem(&kev_slots, &idx);
	__u64 old, prev;
	int i;

	if (!s)
		return;
	old = *(volatile __u64 *)&s->word;
	for (i = 0; i < KEV_CAS_TRIES; i++) {
		if (KEV_SLOT_GEN(old) != w->gen || (KEV_SLOT_PENDING(old) | bits) == KEV_SLOT_PENDING(old))
			return;
		prev = __sync_val_compare_and_swap(&s->word, old, old | bits);
		if (prev == old)
			break;
		old = prev;
	}
	if (i == KEV_CAS_TRIES) {
		__u32 q = w->queue;
		struct kev_qstat *st = bpf_map_lookup_elem(&kev_qstats, &q);

		if (st)
			__sync_fetch_and_add(&st->overflows, 1);
		return;
	}
	if (!KEV_SLOT_PENDING(old))
		kev_push(w, type, bits);
}

#endif /* KEVENT_BPF_H */
