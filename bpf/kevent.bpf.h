/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * What every source program shares: the maps every queue needs and the one way an event
 * leaves the kernel, kev_notify(). maps.bpf.c defines them (KEV_MAPS_DEFINE); each source
 * family (socket, inode, timer) sees them extern and is linked with maps.bpf.o into an
 * object of its own (bpftool gen object), loaded with the family's first interest. The
 * library creates these maps once, from maps.bpf.o alone, and hands them to each family's
 * object before it loads (bpf_map__reuse_fd()). A map only one family uses is that family's.
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

/* Bounded: only another CPU or the library's clear can make the exchange fail. */
#define KEV_CAS_TRIES 16

/*
 * Where an event goes: the interest's slot and generation, and its queue's ring. epoch: the
 * owner's call the descriptor check followed (socket.bpf.c), carried in the record.
 */
struct kev_target {
	__u32 slot;
	__u32 gen;
	__u32 queue;
	__u32 epoch;
};

/*
 * Mark an event pending on the target's slot (maps.bpf.c). A global function, verified once
 * on its own rather than at every call site: the callers loop over watches.
 */
int kev_notify(const struct kev_target *t, __u32 type, __u32 bits, bool count, __u32 data);

#endif /* KEVENT_BPF_H */
