/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * libkevent: the kevent API on a stock Linux kernel.
 *
 * Every call returns a negative errno value on failure and also sets errno.
 * See libkevent(7) and the pages of each call in man/ for the full semantics.
 */
#ifndef KEVENT_H
#define KEVENT_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "ukevent.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KEVENT_VERSION_MAJOR 0
#define KEVENT_VERSION_MINOR 1

/* Largest num / max_nr any call accepts; larger is -EINVAL. */
#define KEVENT_MAX_BATCH 1000000

/*
 * kevent_init() flags. KEVENT_INIT_BPF: the queue requires the BPF path. Without it, a
 * source whose BPF side cannot load (no CAP_BPF and CAP_PERFMON, a kernel without what it
 * needs, KEVENT_BACKEND=syscall in the environment) runs on plain system calls (epoll,
 * inotify, timerfd) with the same semantics; with it, kevent_init() fails with -EPERM when
 * the process may not use BPF at all, and the first interest of a source whose programs
 * cannot load fails with -EPERM or -EOPNOTSUPP, each with one line on stderr saying why.
 */
#define KEVENT_INIT_BPF 0x1

/*
 * Make a queue. With ring == NULL and ring_size == 0 the queue has no ring; otherwise
 * ring must hold ring_size >= 2 events. flags: 0 or KEVENT_INIT_BPF.
 * Returns a pollable descriptor (POLLIN while events are ready) or -errno:
 * -EINVAL bad ring arguments or flags, -EPERM (KEVENT_INIT_BPF) no privilege to use BPF,
 * -EMFILE too many queues or descriptors, -ENOMEM.
 */
int kevent_init(struct kevent_ring *ring, unsigned int ring_size, unsigned int flags);

/*
 * Which path serves a type (KEVENT_SOCKET, ...) on this queue: KEVENT_BACKEND_BPF, the
 * kernel-side programs, or KEVENT_BACKEND_SYSCALL, ordinary system calls (epoll, inotify,
 * timerfd, signalfd; UNOTIFY needs none). The first call for a BPF source loads its
 * programs if no interest has yet: the answer is the path its interests take. The choice
 * is made once per process and source. -EINVAL unknown type, -EBADF / -EINVAL fd closed /
 * not a queue; on a KEVENT_INIT_BPF queue, -EPERM / -EOPNOTSUPP as kevent_ctl() would fail.
 */
#define KEVENT_BACKEND_SYSCALL 1
#define KEVENT_BACKEND_BPF     2
int kevent_backend(int fd, unsigned int type);

/*
 * Apply cmd (KEVENT_CTL_*) to num entries of arg, in place. Returns the number processed;
 * each entry's ret_flags says its fate (0 registered, DONE ready already or done,
 * BROKEN|DONE failed with -errno in ret_data[1]). -EINVAL unknown cmd or num too large,
 * -EFAULT arg NULL with num > 0, -EBADF / -EINVAL fd closed / not a queue.
 * KEVENT_CTL_READY with num == 0 wakes every thread waiting on the queue.
 */
int kevent_ctl(int fd, unsigned int cmd, unsigned int num, struct ukevent *arg);

/*
 * Wait until min_nr events are ready or the timeout passes (tv_sec == -1: forever,
 * {0, 0}: do not block, KEVENT_FLAGS_ABSTIME: absolute CLOCK_REALTIME), then copy up to
 * max_nr into buf, and into the ring when the queue has one (events that find the ring
 * full carry KEVENT_RET_COPY_FAILED in buf). Returns the number copied, or -EINTR when a
 * signal arrived before anything was copied.
 */
int kevent_get_events(int ctl_fd, unsigned int min_nr, unsigned int max_nr,
		      struct timespec timeout, struct ukevent *buf, unsigned int flags);

/*
 * Wait for ready events and ring space, then copy at most num events into the ring at
 * ring_kidx. Returns at once when old_uidx is not the committed index. Returns the number
 * copied. -EINVAL when the queue has no ring.
 */
int kevent_wait(int ctl_fd, unsigned int num, unsigned int old_uidx, struct timespec timeout,
		unsigned int flags);

/*
 * Free ring slots up to (not including) new_uidx. over must be ring_over, or
 * ring_over - 1 for a commit that predates the last wrap (it frees nothing more). A commit
 * to the committed index frees nothing, even on a full ring (a stale duplicate): a full
 * ring is committed in two steps. Returns the number of slots this call freed; -EOVERFLOW
 * for a wrong over, -EINVAL for an index past the last copied event.
 */
int kevent_commit(int ctl_fd, unsigned int new_uidx, unsigned int over);

/*
 * Asynchronous sendfile: send count bytes of the regular file in_fd from offset to the
 * connected stream socket sock_fd, without blocking the caller (whatever O_NONBLOCK says).
 * Returns a positive cookie at once; the caller may close sock_fd and in_fd meanwhile.
 * Completion is a KEVENT_AIO event (event KEVENT_AIO_BIO) with id and ptr = the cookie and
 * ret_data[0] / ret_data[1] = the low / high 32 bits of the bytes sent (fewer than count
 * when the file ends first); a failed transfer (peer reset, ...) has KEVENT_RET_BROKEN and
 * the negative errno in ret_data[1]. KEVENT_CTL_REMOVE of id = user = cookie cancels it;
 * kevent_close() cancels every transfer of the queue.
 * Errors, at once: -EBADF / -EINVAL kevent_fd closed / not a queue; -EBADF sock_fd or in_fd
 * closed, or in_fd not open for reading; -ENOTSOCK sock_fd not a socket; -EINVAL not a
 * stream socket, in_fd not a regular file, offset < 0 or past the end of the file, count 0;
 * -EMFILE, -ENOMEM.
 */
long aio_sendfile(int kevent_fd, int sock_fd, int in_fd, off_t offset, size_t count);

/*
 * Bounded spin (off by default): before sleeping, a waiter of this queue watches the
 * kernel ring buffer for up to usec microseconds, in mapped memory and without a system
 * call; an event that arrives meanwhile is taken without a wake-up. Lower latency for a
 * CPU burnt while idle. usec = 0 turns it off; at most KEVENT_MAX_SPIN_US.
 */
#define KEVENT_HAVE_SPIN   1
#define KEVENT_MAX_SPIN_US 100000
int kevent_set_spin(int fd, unsigned int usec);

/*
 * Deferred wake-ups (on by default; on = 1 keeps them, 0 turns them off). A queue holds the
 * last kernel record it processed back while a thread is in a call and after a call that
 * returned events, so that what arrives meanwhile costs no kernel wake-up (an irq_work,
 * dear on virtual machines); the next call takes it. The descriptor still polls readable
 * for it (poll, select, level-triggered epoll), spuriously at most once after a call that
 * returned events (K2). An edge-triggered (EPOLLET) poller of the descriptor needs an edge
 * for each event: it turns this off, and every call then catches up as it leaves.
 */
#define KEVENT_HAVE_DEFER_WAKEUP 1
int kevent_set_defer_wakeup(int fd, unsigned int on);

/*
 * Release the queue and everything it holds (its interests, its ring, its descriptor).
 * In a fork() child, on a queue inherited from the parent, it closes the child's copy of the
 * descriptor and releases nothing of the parent's (every other call there is -EBADF).
 */
int kevent_close(int fd);

/* Counters of one queue. */
struct kevent_stats {
	uint64_t delivered;	/* events copied out by get_events / wait */
	uint64_t bpf_records;	/* records read from the kernel ring buffer */
	uint64_t ring_overflows; /* kernel ring buffer full: records the kernel could not push */
	uint64_t copy_failed;	/* events that did not fit in the caller's kevent_ring */
	uint64_t interests;	/* interests registered now */
	uint64_t kernel_timers;	/* timers the kernel holds for the process, all queues: one per
				 * armed timer, however often restarted; a ONESHOT's goes when
				 * it fires, a removed one's when kevent_ctl() returns. BPF
				 * timers only: 0 while timers run on the syscall fallback */
};

/* Fill *st with the queue's counters (K24: overflows are counted, never silent). */
int kevent_stats(int fd, struct kevent_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* KEVENT_H */
