/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * Shared helpers of the Criterion suite: queues, ukevent builders, real sockets and
 * threads. Everything asserts through Criterion, so a helper that fails fails the test.
 * Assertions are only made from the test's main thread; helper threads record results.
 */
#ifndef KT_HELPERS_H
#define KT_HELPERS_H

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include <kevent.h>

/* Upper bound to wait for an event that must come (a hang guard, not a measurement). */
#define KT_WAIT_MS  2000
/* How long we watch to show that nothing arrives. */
#define KT_QUIET_MS 100
/* The event mask used for KEVENT_UNOTIFY interests. */
#define KT_UNOTIFY_EV 0x1
/* Criterion hang guard for whole tests, in seconds. */
#define KT_TEST_TIMEOUT 30

/*
 * Paths (K26). The suite runs once per path (make test): BPF, KEVENT_BACKEND=syscall, and
 * as an unprivileged user. A test that only makes sense on one path says so in its name
 * (`bpf` or `syscall`), and make test leaves it out of the other runs; run there anyway,
 * it skips (a failure under CI=true, where nothing may skip). kt_require_bpf() is for a
 * suite's init: the queue it tries leaves nothing loaded.
 */
void kt_require_path(int q, unsigned int type, int path);
void kt_require_bpf(void);
/* Skip unless source name ("socket", "inode", "timer") can take the BPF path here: asked of
 * a child (examples/paths), so that this process loads nothing. */
void kt_require_bpf_source(const char *name);

/* Queues. kt_queue() asserts success; kt_queue_ring() allocates the ring (free it). */

int kt_queue(void);
int kt_queue_ring(struct kevent_ring **ring, unsigned int n);
void kt_close(int q);
/* kt_close(), then free the ring the queue wrote to. */
void kt_close_ring(int q, struct kevent_ring *ring);
/* Close both descriptors of a pair, then the queue that watched them. */
void kt_close_pair(int q, int a, int b);

/* A relative timeout; ms < 0 means wait forever ({-1, 0}). */
struct timespec kt_ts(long ms);
/* The absolute CLOCK_REALTIME time ms from now (pthread and KEVENT_FLAGS_ABSTIME deadlines). */
struct timespec kt_deadline(long ms);

/* ukevent builders. kt_fd_ev(): the id every descriptor-watching type uses (raw[0] = fd). */
struct ukevent kt_fd_ev(__u32 type, int fd, __u32 event, __u32 req_flags);
struct ukevent kt_sock_ev(int fd, __u32 event, __u32 req_flags);
struct ukevent kt_unotify_ev(__u64 id, __u32 req_flags);

/* kevent_ctl() on one entry: asserts it processed 1 and returns the entry's ret_flags. */
__u32 kt_ctl1(int q, unsigned int cmd, struct ukevent *uk);
/* ADD that must register (ret_flags 0). */
void kt_add(int q, struct ukevent uk);
/* MODIFY / REMOVE / READY that must succeed (ret_flags exactly DONE). */
void kt_done(int q, unsigned int cmd, struct ukevent uk);
/* The entry must have failed with -err (BROKEN|DONE, ret_data[1] = -err). */
void kt_assert_failed(const struct ukevent *uk, int err);
/* kevent_ctl() of one entry that must fail with -err. */
void kt_ctl_fails(int q, unsigned int cmd, struct ukevent uk, int err);
/* REMOVE must fail with -ENOENT: the interest is not registered. */
void kt_assert_gone(int q, struct ukevent uk);
/* Register an UNOTIFY interest (user 0); must register. */
void kt_unotify_add(int q, __u64 id, __u32 req_flags);
/* Register an UNOTIFY interest ready at ADD and queued all the same (READY|ALWAYS_QUEUE). */
void kt_unotify_queued(int q, __u64 id);
/* KEVENT_CTL_READY on the UNOTIFY interest id (user 0); must succeed. */
void kt_unotify_ready(int q, __u64 id);

/* kevent_get_events() with a relative timeout in ms (< 0: forever). Returns its result. */
int kt_get(int q, unsigned int min_nr, unsigned int max_nr, struct ukevent *buf, long ms);
/* Wait (up to KT_WAIT_MS) for at least one event; returns how many (asserts >= 1). */
int kt_get_some(int q, struct ukevent *buf, unsigned int max_nr);
/* Nothing must be delivered within KT_QUIET_MS. */
void kt_expect_none(int q);
/* Number of events in ev[0..n) with this type and id.raw_u64. */
int kt_count(const struct ukevent *ev, int n, __u32 type, __u64 id);
/* The event of (type, id) in ev[0..n): asserts there is exactly one and returns it. */
struct ukevent kt_only(const struct ukevent *ev, int n, __u32 type, __u64 id);
/* kt_get_some() (up to 8 events), then kt_only() of (type, id) among them. */
struct ukevent kt_next(int q, __u32 type, __u64 id);

/* Sockets on 127.0.0.1 (port 0) and socketpairs; all assert success. */
struct sockaddr_in;
int kt_udp_socket(struct sockaddr_in *addr);
void kt_udp_pair(int *rx, int *tx);
void kt_tcp_pair(int *a, int *b);
int kt_tcp_listener(void);
int kt_tcp_connect(int listener);
void kt_unix_pair(int type, int sv[2]);
/* A queue watching RECV (with req_flags) on the receiving end of a fresh UDP pair. */
int kt_udp_watched(int *rx, int *tx, __u32 req_flags);
void kt_send(int fd, size_t len);
void kt_drain(int fd);
/* Wait (up to KT_WAIT_MS) until fd polls readable. */
void kt_wait_readable(int fd);
/* A regular file (unlinked) for the -ENOTSOCK cases. */
int kt_regular_file(void);
/* A descriptor number that is certainly closed. */
int kt_closed_fd(void);
/* Open descriptors of this process. */
int kt_fd_count(void);

/* Threads. */
void kt_thread_start(pthread_t *th, void *(*fn)(void *), void *arg);
/* Join, waiting at most ms; false if the thread is still running. */
bool kt_join_within(pthread_t th, long ms);
void kt_sleep_ms(long ms);

/* A thread blocked in kevent_get_events(); results are read after the join. */
struct kt_getter {
	pthread_t th;
	volatile pid_t tid;
	int q;
	unsigned int min_nr, max_nr, flags;
	struct timespec ts;
	int ret, err;
	struct ukevent buf[16];
};

void kt_getter_start(struct kt_getter *g, int q, unsigned int min_nr, long ms);
/* Wait (up to KT_WAIT_MS) until the getter thread sleeps in the kernel. */
void kt_getter_parked(struct kt_getter *g);
/* Start n getters with the same arguments, then wait until every one sleeps. */
void kt_getters_parked(struct kt_getter *g, int n, int q, unsigned int min_nr, long ms);
/* A getter waiting forever (min_nr 1) that must not return within KT_QUIET_MS. */
void kt_getter_blocked(struct kt_getter *g, int q);

#endif /* KT_HELPERS_H */
