/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * Types and limits shared by the BPF programs and the library: the layout of the maps.
 * Keys and values are named structs so that `bpftool map dump name kev_sockets` prints
 * readable fields.
 */
#ifndef KEV_SHARED_H
#define KEV_SHARED_H

#include "ukevent.h"
#ifndef __VMLINUX_H__
#include <linux/bpf.h> /* struct bpf_spin_lock */
#endif


#define KEV_MAX_QUEUES	  64	    /* queues one process can have open at once */
#define KEV_MAX_SLOTS	  (1 << 18) /* interests the kernel side can track, all queues */
#define KEV_SOCK_WATCHES  8	    /* interests (all queues) on one socket; more: -ENOSPC */
#define KEV_RINGBUF_BYTES (256 * 1024)

/*
 * Each kernel-fed interest owns one slot: a 64-bit word, generation in the high half,
 * pending event bits in the low half. The BPF side ORs bits in and pushes a record only
 * when the word had none pending, so a burst on one object costs one record (K12) and a
 * queue can never have more records in flight than interests. The library clears the
 * bits when it takes the record, and bumps the generation when the slot is freed, so a
 * program still holding an old copy of a watch cannot touch the slot's next owner.
 */
#define KEV_SLOT_GEN(w)	    ((__u32)((w) >> 32))
#define KEV_SLOT_PENDING(w) ((__u32)(w))
#define KEV_PEND_HUP	    0x80000000u /* error, reset or close seen: classify in userspace */
#define KEV_PEND_DEAD	    0x20000000u /* the descriptor no longer names it: drop the interest */
/* Its close can go unseen (not TCP): check the descriptor still names it before delivery. */
#define KEV_PEND_VERIFY	    0x10000000u
/*
 * Sockets: a state, not an event: set with RECV, cleared by the kernel side when a read
 * leaves the socket with nothing to read. Level mode (K13) delivers RECV again while it is
 * set, with no system call. It never counts as pending: it pushes no record.
 */
#define KEV_PEND_LEVEL	    0x00008000u
/*
 * Sockets: the socket's own error (sk_err) when the kernel side saw one, so that the
 * library never has to read SO_ERROR, which clears it. The last one seen replaces the others.
 */
#define KEV_PEND_ERR_SHIFT  16
#define KEV_PEND_ERR_MASK   0x0fff0000u
#define KEV_PEND_ERR(e)	    (((__u32)(e) << KEV_PEND_ERR_SHIFT) & KEV_PEND_ERR_MASK)
#define KEV_PEND_ERRNO(p)   (((p) & KEV_PEND_ERR_MASK) >> KEV_PEND_ERR_SHIFT)

struct kev_slot {
	__u64 word;
};

/* Per-queue counters the BPF side writes and the library reads without a system call. */
struct kev_qstat {
	__u64 overflows; /* records the ring buffer had no room for */
};

/* A record naming no slot: an overflow marker, there only to wake the queue (K24). */
#define KEV_SLOT_NONE 0xffffffffu

/*
 * KEVENT_TIMERs live in the kernel, in one red-black tree ordered by due time and served by
 * one bpf_timer (timer.bpf.c): one node per armed timer, whatever is done to it.
 *
 * A timer's arming is in its slot's entry of kev_tslots, an mmapped array the library writes
 * without a system call: the generation it was armed under, ONESHOT, and its first expiry.
 * A restart (MODIFY) writes a new arming there and nothing else: the timer's node is due no
 * later than the new first expiry (same period, later start), and when it comes due the
 * kernel sees the new arming and moves the node to it. Only what needs the tree goes through kev_timer_arm, a
 * SEC("syscall") program run once for a batch of requests the library writes into the
 * mmapped array kev_timer_reqs (arming 100,000 timers costs about a hundred system calls):
 * a node for a new timer, or for one whose node went (a ONESHOT that fired), and the removal
 * of a removed timer's node.
 */
#define KEV_TIMER_BATCH 1024

/*
 * How often at most the kernel looks at one timer. A shorter period is not re-armed at every
 * expiry (a 1 ns timer would keep a CPU in softirq): its expirations are counted at this pace
 * and merge into one event (K12), the count exact (K19). Longer periods are not affected.
 */
#define KEV_TIMER_MIN_GAP_NS 100000ULL

/* kev_tslot.arm: the generation in the high half, these bits in the low half. */
#define KEV_TARM_GEN(w)	 ((__u32)((w) >> 32))
#define KEV_TARM_ARMED	 0x1 /* library: the slot's interest is an armed timer */
#define KEV_TARM_ONESHOT 0x2 /* library */
#define KEV_TARM_RESTART 0x4 /* library: a restart of the timer the slot's node was made for */
#define KEV_TARM_NODE	 0x8 /* kernel: a node of the tree serves the slot */
#define KEV_TARM_FIRED	 0x10 /* kernel: this ONESHOT arming fired; its node went */

struct kev_tslot {
	/*
	 * Both sides change it atomically: the library publishes a new arming and learns in
	 * the same compare-and-swap whether a node still serves the slot; the kernel drops a
	 * node only if the arming it served is still the one published.
	 */
	__u64 arm;
	__u64 due_ns; /* library: the arming's first expiry (CLOCK_MONOTONIC), set before arm */
	__u64 pos_ns; /* kernel: where the slot's node is in the tree, while NODE is set */
};

#define KEV_TIMER_CANCEL 0x1 /* kev_timer_req: take the slot's node out of the tree */

struct kev_timer_req {
	__u32 slot;
	__u32 gen; /* the arming (slot generation) this request is about */
	__u64 period_ns;
	__u16 queue;
	__u16 flags; /* KEV_TIMER_CANCEL, or 0: give the arming a node */
	__s32 err;   /* written back: 0 done (or nothing to do), or -errno */
};

struct kev_timer_arm_ctx {
	__u32 nr; /* requests in kev_timer_reqs[0..nr) */
};

#define KEV_WATCH_WAKEUP_ALL 0x1
#define KEV_WATCH_LEVEL	     0x2 /* level mode: the kernel keeps KEV_PEND_LEVEL for it */

struct kev_watch {
	__u32 slot;   /* index in kev_slots */
	__u32 gen;    /* the slot's generation when this watch was made */
	__s32 fd;     /* the descriptor the process registered: it must still name the object */
	__u16 queue;  /* index in kev_rings */
	__u8 events;  /* KEVENT_SOCKET_* bits this interest wants from the kernel side */
	__u8 flags;   /* KEV_WATCH_* */
};

/*
 * kev_socks: the interests on one socket, in the socket's own BPF storage
 * (BPF_MAP_TYPE_SK_STORAGE): it dies with the socket, and the library writes it by
 * descriptor. A watch whose slot moved to another generation is inert (kev_notify()).
 */
struct kev_sock_val {
	__u32 tgid;   /* the process that registered it */
	__u16 nr;     /* watches in use */
	__u16 rr;     /* round-robin cursor: which queue gets the next event (K15) */
	struct kev_watch w[KEV_SOCK_WATCHES];
};

/*
 * kev_sockets, for operators only (socket storage cannot be dumped by bpftool): an entry per
 * slot a socket interest holds, written by the library with each kevent_ctl(). A removed
 * interest's entry stays, with fd -1, for the slot's next owner to write in place (an
 * update under the lock, no allocation): slots are reused last-freed first, so the view
 * holds about as many entries as the process ever watched sockets at once.
 */
struct kev_sock_key {
	__u32 slot;
};

struct kev_sock_view {
	struct bpf_spin_lock lock; /* in-place updates (BPF_F_LOCK) */
	__u32 tgid;   /* the process */
	__s32 fd;     /* the descriptor it registered; -1: a free slot */
	__u16 queue;  /* its queue's index */
	__u8 events;  /* KEVENT_SOCKET_* bits the kernel side delivers */
	__u8 flags;   /* KEV_WATCH_* */
};

/*
 * kev_sock_probe (a SEC("syscall") program) reads what the library must know of a socket
 * and cannot ask without side effects or one system call per question: its family, type,
 * protocol and state, and its pending error, which SO_ERROR would clear. For up to
 * KEV_PROBE_BATCH descriptors of the calling process per run, passed through the mmapped
 * array kev_probes like timer requests.
 */
#define KEV_PROBE_BATCH 64

struct kev_probe {
	__s32 fd;	/* in */
	__s32 err;	/* out: -ENOTSOCK, -EBADF, or 0 */
	__u16 family;	/* out: AF_* */
	__u16 type;	/* out: SOCK_* */
	__u16 protocol; /* out: IPPROTO_* */
	__u8 state;	/* out: TCP_* (TCP_LISTEN 10 for a listener of any family) */
	__u8 ready;	/* out: KEV_PROBE_* */
	__u32 sk_err;	/* out: the pending error, positive */
	__u32 pad2;
	__u64 ino;	/* out: the socket's inode number, as fstat() gives it */
};

/* Elements of an mmapped array are 8-byte aligned: the library indexes them as a C array. */
_Static_assert(sizeof(struct kev_probe) % 8 == 0, "kev_probe fills its array element");
_Static_assert(sizeof(struct kev_timer_req) % 8 == 0, "kev_timer_req fills its element");

#define KEV_PROBE_READABLE 0x1 /* data, an end of file, or (a listener) a connection waits */
#define KEV_PROBE_HANGUP   0x2 /* an error, or shut down both ways: to be classified */

struct kev_probe_ctx {
	__u32 nr;    /* requests in kev_probes[0..nr) */
	__u32 names; /* 1: only which socket each descriptor names (err, ino), nothing of it */
};

/*
 * kev_inodes: one entry per watched file or directory (KEVENT_INODE, K18), keyed by the
 * kernel's (s_dev, i_ino). s_dev is the kernel encoding, major << 20 | minor, not st_dev.
 */
#define KEV_INODE_WATCHES 4 /* interests (all queues) on one inode */

struct kev_inode_key {
	__u64 ino;
	__u32 dev;
	__u32 pad;
};

struct kev_inode_val {
	__u32 tgid;   /* the process that registered it */
	__u16 nr;     /* watches in use */
	__u16 rr;     /* round-robin cursor: which queue gets the next event (K15) */
	struct kev_watch w[KEV_INODE_WATCHES];
};

/*
 * Programs that run for every object, watched or not (every socket's data_ready, every inode
 * whose ctime changes), put a filter in front of their hash map: one bit per hash of the key,
 * set by the library while any interest watches an object with that hash (lib/filter.c).
 * "Certainly not watched" then costs one load from an array the verifier inlines, not a
 * hash lookup.
 */
#define KEV_FILTER_BITS 16

struct kev_filter_bits {
	__u64 w[(1 << KEV_FILTER_BITS) / 64];
};

static inline __u32 kev_filter_hash(__u64 key)
{
	return (__u32)((key * 0x9e3779b97f4a7c15ULL) >> (64 - KEV_FILTER_BITS));
}

static inline int kev_filter_test(const struct kev_filter_bits *f, __u32 h)
{
	return !!(f->w[(h / 64) % (sizeof(f->w) / 8)] & (1ULL << (h % 64)));
}

struct kev_inode_ctl {
	struct kev_filter_bits filter; /* keyed by kev_inode_hash() */
	__u64 watched;	/* inodes watched (kev_inodes elements): 0, and nothing is looked at */
	__u64 log_lost; /* entries kev_inode_log had no room for */
	__u64 renames;	/* renames waiting for their moved inode (inode.bpf.c)... */
	__u64 rename_until; /* ...until this jiffy at most */
};

static inline __u32 kev_inode_hash(__u32 dev, __u64 ino)
{
	return kev_filter_hash(ino ^ ((__u64)dev << 40));
}

/*
 * kev_inode_calls: what the system call a task is in does to the inodes it timestamps,
 * indexed by its number. The numbers are the architecture's, so the BPF code holds none:
 * the library writes the table (lib/inode_calls.c) before the inode programs attach.
 * Above the highest number any architecture has (469 in Linux 6.18): later calls, like
 * numbers the library does not list, are KEV_OP_OTHER.
 */
#define KEV_INODE_CALLS 512

enum kev_op {
	KEV_OP_OTHER, /* io_uring, page faults, kernel threads: treated as a write */
	KEV_OP_WRITE,
	KEV_OP_ATTR,
	KEV_OP_CREATE,
	KEV_OP_LINK,
	KEV_OP_REMOVE,
	KEV_OP_RENAME,
};

/* Which arguments hold the (new) path and its directory descriptor; -1: none, AT_FDCWD. */
struct kev_call {
	__s8 op; /* enum kev_op */
	__s8 path, dfd, opath, odfd;
	__s8 pad[3];
};

/*
 * The entries of watched directories (which child was created, removed, written or
 * changed, and its name) do not fit in a slot, whose bits merge: they go to the log, a
 * process-wide ring buffer the library drains when it delivers (kevent_inode_entries()).
 */
#define KEV_INODE_NAME_MAX  255
#define KEV_INODE_LOG_BYTES (256 * 1024)

struct kev_inode_rec {
	__u32 slot;  /* the interest, as in a ukevent record */
	__u32 gen;
	__u64 ino;   /* the entry's inode number, 0: not known */
	__u32 event; /* one KEVENT_INODE_* bit */
	__u32 len;   /* bytes of name, 0: not known */
	char name[KEV_INODE_NAME_MAX + 1];
};

#endif /* KEV_SHARED_H */
