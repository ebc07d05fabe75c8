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

/* The interests on each watched socket, in the socket's own storage (socket.bpf.c). */
KEV_MAP struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct kev_sock_val);
} kev_socks SEC(".maps");

/* The same, readable by operators: `bpftool map dump name kev_sockets`. */
KEV_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, KEV_MAX_SLOTS);
	__type(key, struct kev_sock_key);
	__type(value, struct kev_sock_view);
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

/*
 * Mark an event pending on the target's slot (maps.bpf.c). A global function, verified once
 * on its own rather than at every call site: the callers loop over watches.
 */
int kev_notify(const struct kev_target *t, __u32 type, __u32 bits, bool count, __u32 data);

#endif /* KEVENT_BPF_H */
