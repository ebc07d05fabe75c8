/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * The library's private structures. Names shared between files start with kev_; the
 * public ones (kevent_*) are in include/kevent.h.
 *
 * One queue = one epoll descriptor (the fd the caller holds) watching its BPF ring buffer,
 * an eventfd the library raises while events wait in userspace, and the descriptors of the
 * sources the kernel has no hook for. Every interest lives in the queue's identity table;
 * it is on at most one of: the ready list, the list of one call that has just delivered it,
 * or (level mode) the list of those the next call looks at again.
 */
#ifndef KEV_INTERNAL_H
#define KEV_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#include "kevent.h"
#include "kev_shared.h"
#include "htab.h"
#include "list.h"

#define KEV_API	    __attribute__((visibility("default")))
#define KEV_NO_SLOT UINT32_MAX

/*
 * epoll data of the queue's own descriptors; anything else tags a kev_fdnode (fdwatch.c),
 * whose generation (never 0) is in the high half.
 */
#define KEV_EP_RING	0
#define KEV_EP_KICK	1
#define KEV_EP_TIMER	2 /* timer_fd.c: the timerfd of the queue's fallback timers */
#define KEV_EP_INOTIFY	3 /* the queue's inotify instance (inode_inotify.c) */

static inline __u64 kev_clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

static inline __u64 kev_now_ns(void)
{
	return kev_clock_ns(CLOCK_MONOTONIC);
}

/* Every call fails with a negative errno and sets errno too. */
static inline int kev_err(int err)
{
	errno = -err;
	return err;
}

struct kev_queue;
struct kev_interest;
struct kev_fdnode;

/*
 * What a type (KEVENT_SOCKET, KEVENT_UNOTIFY, ...) provides to the core. Level state is
 * re-read through poll(): a source with a pollmask can be checked at ADD (K9), after a
 * level delivery (K13) and for LAST_CHECK (K14) with one poll() for many interests.
 */
struct kev_source {
	__u32 events; /* the event bits the type knows; others are -EINVAL */
	int (*add)(struct kev_queue *q, struct kev_interest *it);
	void (*del)(struct kev_queue *q, struct kev_interest *it);
	/* it->uk.event / req_flags were replaced (K8): update the kernel side. */
	int (*modify)(struct kev_queue *q, struct kev_interest *it);
	/* poll() events that tell whether the object is ready now; NULL: no level state. */
	short (*pollmask)(const struct kev_interest *it);
	/* Turn poll() results into event bits; may mark the interest broken. */
	__u32 (*classify)(struct kev_interest *it, short revents);
	/*
	 * Does the registered descriptor still name the watched object? NULL: always. No side
	 * effects: asked at delivery, by ADD and MODIFY, and by the sweep (fdwatch.c).
	 */
	bool (*named)(const struct kev_interest *it);
	/* named() of n interests at once, into ok[] (optional: cheaper for many). */
	void (*named_many)(struct kev_interest *const *its, unsigned int n, bool *ok);
	/*
	 * The kernel side checks the descriptor at each event and says when it cannot
	 * (KEV_PEND_VERIFY): named() is asked at delivery only then, and before a probe.
	 */
	bool kernel_checks_fd;
	/* The last word before an event is copied out (fills ret_data, may mark it broken). */
	void (*complete)(struct kev_interest *it);
	/*
	 * Is the object ready now (the K9 check of an ADD, K13's second look)? true, with *bits,
	 * when the source knows without a system call (sockets: what the ADD's probe saw, then
	 * the kernel side's level state); false: the core asks poll().
	 */
	bool (*level)(struct kev_interest *it, __u32 *bits);
	/* The slot counts merged firings, collected at delivery into ret_data[1] (K19). */
	bool counts;
	/* counts without a slot: take the count merged since the last delivery (0: none). */
	__u32 (*take)(struct kev_interest *it);
	/* End of a kevent_ctl() call: push what the source batched to the kernel. */
	void (*flush)(struct kev_queue *q);
	/* The queue is going away: free what the source keeps per queue. */
	void (*release)(struct kev_queue *q);
};

enum kev_where {
	KEV_NOWHERE,
	KEV_READY,   /* q->ready: to be delivered */
	KEV_TAKEN,   /* on the list of the call that delivered it */
	KEV_RECHECK, /* q->recheck: delivered in level mode, to be looked at again (K13) */
};

struct kev_interest {
	struct kev_hnode hnode; /* q->ids, keyed by (type, id, user) */
	struct kev_list link;
	struct ukevent uk; /* as registered: id, type, event, req_flags, user */
	const struct kev_source *src;
	enum kev_where where;
	__u32 fired;	     /* event bits seen and not yet delivered */
	__u32 ret_flags;     /* KEVENT_RET_BROKEN once the object broke */
	__u32 ret_data[2];
	int fd;		     /* the watched descriptor, or -1 */
	__u32 slot, gen;     /* the kernel slot (KEV_NO_SLOT: none) */
	int batched; /* index in the source's pending kernel batch, or -1 */
	__u32 seq;   /* kevent_ctl() call stamp (ctl.c) */
	__u32 fired_call; /* q->calls when it went on the ready list (ready.c) */
	/* KEVENT_SOCKET */
	int domain;
	bool listening;
	__u32 sock_err; /* the socket's error (positive), as the kernel side last saw it */
	__u64 sock_ino; /* the socket's inode number: who the descriptor must still name */
	__u8 probed;	/* KEV_PROBE_* | KEV_PROBED: the ADD probe's readiness, until asked */
	__u8 wflags;	/* the watch as last written to the kernel: KEV_WATCH_* ... */
	__u8 wevents;	/* ... and its event bits */
	bool level_unsure; /* level mode since a MODIFY: the level state is not known yet */
	bool hup_kept;	/* a hang-up found data to read: look again after the call (K17) */
	/* interests sharing one epoll registration (kev_fdnode) */
	struct kev_fdnode *fdn;
	struct kev_interest *fd_next;
	__u32 fd_events;  /* EPOLL* this interest needs, edge-triggered */
	/* poll.c, pipe.c: the queue (named); aio.c: the transfer; signal.c: arrivals before ADD */
	union {
		void *priv;
		__u64 priv_u64;
	};
};

/* A BPF ring buffer mapped for consumption (libbpf's ring_buffer, minus callbacks). */
struct kev_rb {
	int map_fd;
	unsigned long *consumer_pos;
	unsigned long *producer_pos;
	void *data;
	size_t mask;
	size_t page;
	unsigned long cons; /* processed up to here */
	unsigned long held; /* the last record processed starts here */
	bool hold;	    /* a drain publishes `held`, not `cons` (ringbuf.c) */
	unsigned long none; /* both positions, when there is no ring (kev_rb_none()) */
};

struct kev_queue {
	pthread_mutex_t lock;
	int fd;	     /* the epoll descriptor the caller holds */
	int kick_fd; /* eventfd, readable while userspace holds ready work */
	int qidx;    /* index in kev_rings / kev_qstats */
	unsigned int refs;
	unsigned int gen; /* kev_fork_gen() when made: a fork() child's copy is dead (K6) */
	bool closed;
	bool need_bpf; /* KEVENT_INIT_BPF: no syscall fallback (K26) */
	struct kev_queue *orphan_next; /* fork() child: inherited, out of the table (queue.c) */

	struct kev_rb rb;
	__u64 seen_overflows;
	struct kev_htab ids;	 /* kev_interest by identity */
	struct kev_htab fdnodes; /* kev_fdnode by descriptor */
	unsigned int fdregs;	 /* of those, nodes with an epoll registration */
	__u64 sweep_at;		 /* fdwatch.c: when to look for closed descriptors next */
	unsigned int epoll_skips; /* ready.c: harvests since the epoll set was last asked */
	uint32_t sweep_cursor;
	__u32 fdnode_gen;	 /* tells a node from an older one on the same descriptor */
	unsigned int calls; /* calls that took the lock: tells an event from an earlier call */
	__u32 epoch_now;    /* the harvesting call's kev_kernel_epoch(), 0 in kevent_ctl() */
	struct kev_list ready;
	struct kev_list recheck; /* delivered in level mode: looked at again by the next call */

	/* The caller's kevent_ring (K3): [uidx, kidx) holds `used` uncommitted events. */
	struct kevent_ring *ring;
	unsigned int ring_size, kidx, uidx, used, over;
	__u32 space_seq;	  /* futex: bumped when a commit frees slots (K4), or a wake-all */
	unsigned int space_waiters; /* threads of kevent_wait() asleep on space_seq */

	/* Waiters (K11, K15). */
	unsigned int parked;	/* threads asleep in epoll_wait on fd */
	unsigned int wake_left; /* of those, how many a wake-all has not reached yet */
	unsigned int wake_gen;	/* bumped by every wake-all */
	bool kicked;		/* kick_fd holds a count */
	__u64 spin_ns;		/* kevent_set_spin(): poll the ring this long before sleeping */
	bool defer;		/* kevent_set_defer_wakeup(): hold the ring back between calls */

	struct kevent_stats st;
	struct kev_timer_batch *timers; /* timer.c: arming batched within one kevent_ctl() */
	struct kev_tfd *tfd;		/* timer_fd.c: the fallback timers' heap and timerfd */
	struct kev_sock_batch *sockb;	/* socket.c: sockets to probe at the end of kevent_ctl() */
	struct ukevent *ctl_entry;	/* the kevent_ctl() entry being applied */
	__u32 ctl_seq;
	struct kev_aio *aio;		/* aio.c: the queue's aio_sendfile engine, or NULL */
	struct kev_inotify *inotify;	/* inode_inotify.c: KEVENT_INODE on inotify, or NULL */
};

/* fork.c: what a fork() child does with the parent's state (K6). */
void kev_fork_init(void);
unsigned int kev_fork_gen(void);
void *kev_mmap(int fd, size_t len, int prot, off_t off);
void kev_queue_forget(void);
void kev_kernel_forget(void);
void kev_socket_forget(void);
void kev_inode_forget_all(void);
void kev_signal_forget(void);
struct kev_aio;
void kev_aio_forget(struct kev_aio *a);

/* queue.c */
struct kev_queue *kev_queue_get(int fd, int *err);
void kev_queue_lost(struct kev_queue *q, int fd);
void kev_queue_put(struct kev_queue *q);
void kev_interest_free(struct kev_queue *q, struct kev_interest *it);

/* filter.c: the reference counts behind a kernel-side filter (kev_shared.h). */
struct kev_filter {
	struct kev_filter_bits *bits; /* the kernel's, mapped */
	__u32 *refs;		      /* watched objects per bit */
};
int kev_filter_init(struct kev_filter *f, struct kev_filter_bits *bits);
void kev_filter_fini(struct kev_filter *f);
void kev_filter_ref(struct kev_filter *f, __u32 h, int delta);

/* kernel.c: the process-wide BPF objects, shared by every queue. */
int kev_kernel_get(bool need_bpf);
void kev_kernel_put(void);
int kev_kernel_queue_open(struct kev_queue *q);
void kev_kernel_queue_close(struct kev_queue *q);
int kev_kernel_map_fd(int which);
#define KEV_PROGS_SOCKET 0
#define KEV_PROGS_INODE	 1
#define KEV_PROGS_TIMER	 2
#define KEV_PROGS_NR	 3
/* Load and attach a source family on its first use; fd: see kernel.c. */
int kev_kernel_attach(int group);
int kev_kernel_attach_fd(int group, int fd);
int kev_kernel_backend(int group, int fd, bool need_bpf);
int kev_kernel_level_reads(void);
#define KEV_MAP_SOCKETS	   0 /* the operators' view (socket.c) */
#define KEV_MAP_INODES	   1
#define KEV_MAP_SOCKS	   2 /* the sockets' own storage */
#define KEV_MAP_INODE_CTL  3
#define KEV_MAP_INODE_LOG  4
int kev_kernel_arm_timers(struct kev_timer_req *reqs, unsigned int nr);
/* Run kev_sock_probe on p[0..nr); names: only which socket each descriptor names. */
int kev_kernel_probe(struct kev_probe *p, unsigned int nr, bool names);
struct kev_tslot *kev_kernel_tslot(__u32 slot);
__u64 kev_kernel_timers(void);
int kev_slot_alloc(struct kev_interest *it);
void kev_slot_free(struct kev_interest *it);
void kev_slot_renew(struct kev_interest *it);
struct kev_interest *kev_slot_owner(__u32 slot, __u32 gen);
__u32 kev_slot_clear(const struct kev_interest *it);
void kev_slot_set(const struct kev_interest *it, __u32 bits);
__u32 kev_slot_pending(const struct kev_interest *it);
__u64 kev_kernel_overflows(const struct kev_queue *q);
__u32 kev_kernel_epoch(const struct kev_queue *q);

/* ringbuf.c */
int kev_rb_open(struct kev_rb *rb, int map_fd, size_t size, bool hold);
void kev_rb_none(struct kev_rb *rb);
void kev_rb_close(struct kev_rb *rb);
void kev_rb_drop_fd(struct kev_rb *rb);
typedef void (*kev_rb_fn)(void *ctx, const void *rec, size_t len);
unsigned int kev_rb_drain(struct kev_rb *rb, kev_rb_fn fn, void *ctx);
bool kev_rb_publish(struct kev_rb *rb);
void kev_rb_release(struct kev_rb *rb);
bool kev_rb_pending(const struct kev_rb *rb);
bool kev_rb_holding(const struct kev_rb *rb);
bool kev_rb_ready(const struct kev_rb *rb);
const void *kev_rb_sole(const struct kev_rb *rb);

/* ready.c: readiness, the ready list and delivery. */
struct epoll_event;
void kev_fire(struct kev_queue *q, struct kev_interest *it, __u32 bits);
void kev_fire_user(struct kev_queue *q, struct kev_interest *it);
void kev_harvest(struct kev_queue *q, unsigned int want, bool fresh);
void kev_harvest_ring(struct kev_queue *q);
void kev_dispatch(struct kev_queue *q, const struct epoll_event *ev, int n);
unsigned int kev_deliver(struct kev_queue *q, struct ukevent *out, unsigned int max,
			 struct kev_list *taken);
void kev_settle(struct kev_queue *q, struct kev_list *taken);
void kev_unqueue(struct kev_interest *it);
void kev_check(struct kev_interest **its, unsigned int n, __u32 *bits);
void kev_ready_now(struct kev_interest **its, unsigned int n, __u32 *bits);

/* wait.c */
void kev_wake_all(struct kev_queue *q);
void kev_kick_update(struct kev_queue *q);
void kev_space_wake(struct kev_queue *q);

/* ring.c: the caller's kevent_ring. */
bool kev_ring_put(struct kev_queue *q, const struct ukevent *ev);
bool kev_ring_full(const struct kev_queue *q);

/* fdwatch.c: epoll registrations for what the kernel has no hook for. */
int kev_fdwatch_add(struct kev_queue *q, struct kev_interest *it, __u32 epoll_events);
void kev_fdwatch_del(struct kev_queue *q, struct kev_interest *it);
int kev_fdwatch_set(struct kev_queue *q, struct kev_interest *it, __u32 epoll_events);
void kev_fdwatch_dispatch(struct kev_queue *q, __u64 tag, __u32 revents);
void kev_fdwatch_free_all(struct kev_queue *q);
unsigned int kev_fdwatch_others(struct kev_queue *q, const struct kev_interest *it,
				const struct kev_source *src, struct kev_interest **out,
				unsigned int max);
bool kev_fdwatch_named(struct kev_queue *q, const struct kev_interest *it);
void kev_fdwatch_sweep(struct kev_queue *q);

/* Sources. */
extern const struct kev_source kev_socket_source;
extern const struct kev_source kev_unotify_source;
extern const struct kev_source kev_timer_source;
extern const struct kev_source kev_poll_source;
extern const struct kev_source kev_pipe_source;
extern const struct kev_source kev_signal_source;
extern const struct kev_source kev_aio_source;
extern const struct kev_source kev_inode_source;

extern const struct kev_source kev_socket_sys_source;
extern const struct kev_source kev_timer_sys_source;
extern const struct kev_source kev_inode_sys_source;

/* timer_fd.c: the queue's timerfd expired (KEV_EP_TIMER); queue lock held */
void kev_timer_sys_expire(struct kev_queue *q);
void kev_timer_sys_poll(struct kev_queue *q);
void kev_timer_sys_forget(struct kev_queue *q);

/* socket.c: what K17 says of a socket, on either path (socket_epoll.c) */
short kev_sock_pollmask(const struct kev_interest *it);
__u32 kev_sock_classify(struct kev_interest *it, short revents);

/*
 * inode.c: what a KEVENT_INODE interest keeps on either path (K18, K26), the BPF side's or
 * inotify's (inode_inotify.c): the watched inode, the log of its changed entries that
 * kevent_inode_entries() reads, and the child its next event names. A path's own state
 * (it->priv) begins with it.
 */
#define KEV_INODE_EVENTS                                                                           \
	(KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE | KEVENT_INODE_MODIFY | KEVENT_INODE_ATTRIB)

struct kev_inode_ent;
struct kev_inode_base {
	struct kev_hnode by_ident; /* kevent_inode_entries() finds it by (queue, id, user) */
	const struct kev_queue *q;
	struct kev_interest *it;
	/* Bring what the path has not logged yet into the log: ino.lock and q->lock held. */
	void (*catch_up)(struct kev_queue *q);
	dev_t dev;
	ino_t ino;
	bool dir;
	__u64 child;		   /* since the last delivery: the child concerned ... */
	unsigned int nchild;	   /* ... and how many (2: several, or unknown ones) */
	struct kev_inode_ent *ent; /* entries not read yet: a ring of up to 1,024 */
	unsigned int head, count, cap;
	bool gap; /* entries were lost before the oldest one kept */
};

void *kev_inode_base_new(size_t size, struct kev_queue *q, struct kev_interest *it,
			 void (*catch_up)(struct kev_queue *q), int *err);
void kev_inode_base_free(struct kev_interest *it);
const char *kev_inode_log(struct kev_inode_base *b, __u32 event, __u64 ino, const char *name,
			  size_t len);
void kev_inode_log_lost(struct kev_inode_base *b);
bool kev_inode_named(const struct kev_interest *it);
void kev_inode_settle(struct kev_interest *it, bool maybe_gone);

/* inode_inotify.c: the queue's inotify instance is readable (ready.c). */
void kev_inotify_dispatch(struct kev_queue *q);
void kev_inotify_forget(struct kev_queue *q);

/* poll.c: descriptor watches shared by KEVENT_POLL and KEVENT_PIPE */
int kev_pollfd_add(struct kev_queue *q, struct kev_interest *it, __u32 epoll_events);
void kev_pollfd_del(struct kev_queue *q, struct kev_interest *it);
bool kev_pollfd_named(const struct kev_interest *it);

/* ctl.c */
void kev_sources_flush(struct kev_queue *q);
void kev_sources_release(struct kev_queue *q);
void kev_fail(struct ukevent *e, int err);

#endif /* KEV_INTERNAL_H */
