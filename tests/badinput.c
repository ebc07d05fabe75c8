// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Bad input (K25): every bad call gets its documented error, and the queue keeps working.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(badinput, .timeout = KT_TEST_TIMEOUT);

/* The queue still works: an UNOTIFY ADD + READY + get_events round. */
static void assert_usable(int q)
{
	static __u64 id = 1000;
	struct ukevent ev[4];
	int n;

	id++;
	kt_unotify_add(q, id, 0);
	kt_unotify_ready(q, id);
	n = kt_get_some(q, ev, 4);
	kt_only(ev, n, KEVENT_UNOTIFY, id);
	kt_done(q, KEVENT_CTL_REMOVE, kt_unotify_ev(id, 0));
}

/* r must be -err, with errno = err. */
#define assert_err(r, err)                                                                  \
	do {                                                                               \
		int r_ = (r);                                                              \
		cr_assert_eq(r_, -(err), "%s = %d, want %d", #r, r_, -(err));              \
		cr_assert_eq(errno, (err), "%s: errno %d, want %d", #r, errno, (err));     \
	} while (0)

Test(badinput, k25_init_bad_ring, .description = "K25: NULL ring with a size, ring of 1")
{
	struct kevent_ring *ring = malloc(sizeof(*ring) + 2 * sizeof(struct ukevent));
	int q;

	assert_err(kevent_init(NULL, 8, 0), EINVAL);
	assert_err(kevent_init(ring, 1, 0), EINVAL);
	q = kt_queue();
	assert_usable(q);
	kt_close(q);
	free(ring);
}

Test(badinput, k25_ctl_bad_arguments,
     .description = "K25: kevent_ctl with NULL, huge num, unknown cmd")
{
	struct ukevent uk = kt_unotify_ev(1, 0);
	int q;

	q = kt_queue();
	assert_err(kevent_ctl(q, KEVENT_CTL_ADD, 1, NULL), EFAULT);
	assert_err(kevent_ctl(q, KEVENT_CTL_REMOVE, 3, NULL), EFAULT);
	assert_err(kevent_ctl(q, KEVENT_CTL_ADD, KEVENT_MAX_BATCH + 1, &uk), EINVAL);
	assert_err(kevent_ctl(q, KEVENT_CTL_ADD, 0xffffffffu, &uk), EINVAL);
	assert_err(kevent_ctl(q, KEVENT_CTL_READY + 1, 1, &uk), EINVAL);
	assert_err(kevent_ctl(q, 0xffffffffu, 1, &uk), EINVAL);
	cr_assert_eq(uk.ret_flags, 0, "a rejected call touched the entry");
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_ADD, 0, NULL), 0, "an empty batch processes 0");
	assert_usable(q);
	kt_close(q);
}

Test(badinput, k25_get_events_bad_arguments,
     .description = "K25: get_events with NULL buf, huge max_nr, unknown flags")
{
	struct ukevent ev[4];
	int q;

	q = kt_queue();
	kt_unotify_queued(q, 1);
	assert_err(kevent_get_events(q, 0, 4, kt_ts(0), NULL, 0), EFAULT);
	assert_err(kevent_get_events(q, 0, KEVENT_MAX_BATCH + 1, kt_ts(0), ev, 0), EINVAL);
	assert_err(kevent_get_events(q, 0, 4, kt_ts(0), ev, 0x2), EINVAL);
	assert_err(kevent_get_events(q, 0, 4, kt_ts(0), ev, 0x80000000u), EINVAL);
	/* The event readied before the bad calls is still there. */
	cr_assert_eq(kt_get(q, 1, 4, ev, KT_WAIT_MS), 1, "the ready event was lost");
	assert_usable(q);
	kt_close(q);
}

Test(badinput, k25_wait_bad_arguments,
     .description = "K25: kevent_wait with a huge num or unknown flags")
{
	struct kevent_ring *ring;
	int q;

	q = kt_queue_ring(&ring, 4);
	kt_unotify_queued(q, 1);
	assert_err(kevent_wait(q, KEVENT_MAX_BATCH + 1, 0, kt_ts(0), 0), EINVAL);
	assert_err(kevent_wait(q, 1, 0, kt_ts(0), 0x4), EINVAL);
	cr_assert_eq(ring->ring_kidx, 0, "a rejected call copied an event");
	cr_assert_eq(kevent_wait(q, 4, 0, kt_ts(KT_WAIT_MS), 0), 1, "the ready event was lost");
	cr_assert_eq(kevent_commit(q, 1, 0), 1);
	assert_usable(q);
	kt_close_ring(q, ring);
}

Test(badinput, k25_bad_entries,
     .description = "K25: unknown type, closed fd, regular file, duplicate, unknown identity")
{
	struct ukevent uk[6];
	int q, file, rx, tx;

	q = kt_udp_watched(&rx, &tx, 0);
	file = kt_regular_file();
	uk[0] = kt_unotify_ev(1, 0);
	uk[0].type = 12345;
	uk[1] = kt_sock_ev(kt_closed_fd(), KEVENT_SOCKET_RECV, 0);
	uk[2] = kt_sock_ev(file, KEVENT_SOCKET_RECV, 0);
	uk[3] = kt_sock_ev(rx, KEVENT_SOCKET_RECV, 0);
	uk[4] = kt_sock_ev(-1, KEVENT_SOCKET_RECV, 0);
	uk[5] = kt_sock_ev(0x7fffffff, KEVENT_SOCKET_RECV, 0);
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_ADD, 6, uk), 6);
	kt_assert_failed(&uk[0], ENOSYS);
	kt_assert_failed(&uk[1], EBADF);
	kt_assert_failed(&uk[2], ENOTSOCK);
	kt_assert_failed(&uk[3], EEXIST);
	kt_assert_failed(&uk[4], EBADF);
	kt_assert_failed(&uk[5], EBADF);

	uk[0] = kt_unotify_ev(99, 0);
	uk[1] = kt_unotify_ev(99, 0);
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_MODIFY, 1, &uk[0]), 1);
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_REMOVE, 1, &uk[1]), 1);
	kt_assert_failed(&uk[0], ENOENT);
	kt_assert_failed(&uk[1], ENOENT);
	assert_usable(q);
	close(file);
	kt_close_pair(q, rx, tx);
}

Test(badinput, k25_commit_bad_arguments,
     .description = "K25: commit with a wrong over or past the kernel index")
{
	struct kevent_ring *ring;
	struct ukevent ev[4];
	int q;

	q = kt_queue_ring(&ring, 4);
	kt_unotify_queued(q, 1);
	cr_assert_eq(kt_get(q, 1, 4, ev, KT_WAIT_MS), 1);
	assert_err(kevent_commit(q, 1, 9), EOVERFLOW);
	assert_err(kevent_commit(q, 3, 0), EINVAL);
	assert_err(kevent_commit(q, 4, 0), EINVAL);
	assert_err(kevent_commit(q, 0xffffffffu, 0), EINVAL);
	cr_assert_eq(kevent_commit(q, 1, 0), 1);
	assert_usable(q);
	cr_assert_eq(ring->ring_kidx, 2, "the usable round went through the ring");
	kt_close_ring(q, ring);
}

Test(badinput, k25_huge_relative_timeout,
     .description = "K25/K16: a relative timeout too far for the clock waits forever: no "
		    "overflow (UBSan aborts on one), and a ready event still returns at once")
{
	struct timespec far = { .tv_sec = LONG_MAX, .tv_nsec = 999999999L };
	struct ukevent ev[4];
	int q = kt_queue();

	kt_unotify_queued(q, 1);
	cr_assert_eq(kevent_get_events(q, 1, 4, far, ev, 0), 1);
	kt_unotify_queued(q, 2);
	far.tv_sec = LONG_MAX - 1;
	cr_assert_eq(kevent_get_events(q, 1, 4, far, ev, 0), 1);
	kt_close(q);
}

Test(badinput, k25_bad_timespecs,
     .description = "K25: garbage timespecs are -EINVAL for get_events and wait")
{
	static const struct timespec bad[] = {
		{ .tv_sec = 0, .tv_nsec = -1 },
		{ .tv_sec = 0, .tv_nsec = 1000000000L },
		{ .tv_sec = 1, .tv_nsec = 0x7fffffffL },
		{ .tv_sec = -2, .tv_nsec = 0 },
		{ .tv_sec = -1000, .tv_nsec = 5 },
	};
	struct kevent_ring *ring;
	struct ukevent ev[4];
	unsigned int i;
	int q;

	q = kt_queue_ring(&ring, 8);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		cr_assert_eq(kevent_get_events(q, 1, 4, bad[i], ev, 0), -EINVAL,
			     "get_events, timespec %u", i);
		cr_assert_eq(errno, EINVAL);
		errno = 0;
		cr_assert_eq(kevent_wait(q, 1, 0, bad[i], 0), -EINVAL, "wait, timespec %u", i);
		cr_assert_eq(errno, EINVAL);
		errno = 0;
		cr_assert_eq(kevent_get_events(q, 1, 4, bad[i], ev, KEVENT_FLAGS_ABSTIME), -EINVAL,
			     "get_events ABSTIME, timespec %u", i);
	}
	assert_usable(q);
	kt_close_ring(q, ring);
}

Test(badinput, k25_foreign_fds,
     .description = "K25: a pipe or /dev/null as queue is -EINVAL, a closed fd -EBADF")
{
	struct kevent_stats st;
	struct ukevent uk = kt_unotify_ev(1, 0), ev[4];
	int p[2], devnull, closed, fds[3], i, q;

	q = kt_queue();
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	cr_assert_geq(devnull, 0);
	closed = kt_closed_fd();
	fds[0] = p[0];
	fds[1] = devnull;
	fds[2] = -1;
	for (i = 0; i < 3; i++) {
		int want = fds[i] < 0 ? EBADF : EINVAL;

		assert_err(kevent_ctl(fds[i], KEVENT_CTL_ADD, 1, &uk), want);
		assert_err(kevent_get_events(fds[i], 0, 4, kt_ts(0), ev, 0), want);
		assert_err(kevent_wait(fds[i], 1, 0, kt_ts(0), 0), want);
		assert_err(kevent_commit(fds[i], 0, 0), want);
		assert_err(kevent_stats(fds[i], &st), want);
		assert_err(kevent_close(fds[i]), want);
	}
	assert_err(kevent_ctl(closed, KEVENT_CTL_ADD, 1, &uk), EBADF);
	assert_err(kevent_get_events(closed, 0, 4, kt_ts(0), ev, 0), EBADF);
	assert_err(kevent_wait(closed, 1, 0, kt_ts(0), 0), EBADF);
	assert_err(kevent_commit(closed, 0, 0), EBADF);
	assert_err(kevent_close(closed), EBADF);
	/* kevent_close on a foreign descriptor leaves it open. */
	cr_assert_neq(fcntl(devnull, F_GETFD), -1, "kevent_close closed /dev/null");
	cr_assert_neq(fcntl(p[0], F_GETFD), -1, "kevent_close closed the pipe");
	assert_usable(q);
	close(p[0]);
	close(p[1]);
	close(devnull);
	kt_close(q);
}

Test(badinput, k25_calls_after_close,
     .description = "K25: every call after kevent_close is -EBADF, close twice too")
{
	struct kevent_ring *ring;
	struct kevent_stats st;
	struct ukevent uk = kt_unotify_ev(1, 0), ev[4];
	int q, q2;

	q = kt_queue_ring(&ring, 4);
	kt_unotify_add(q, 1, 0);
	kt_close(q);
	assert_err(kevent_ctl(q, KEVENT_CTL_ADD, 1, &uk), EBADF);
	assert_err(kevent_ctl(q, KEVENT_CTL_READY, 0, NULL), EBADF);
	assert_err(kevent_get_events(q, 0, 4, kt_ts(0), ev, 0), EBADF);
	assert_err(kevent_wait(q, 1, 0, kt_ts(0), 0), EBADF);
	assert_err(kevent_commit(q, 0, 0), EBADF);
	assert_err(kevent_stats(q, &st), EBADF);
	assert_err(kevent_close(q), EBADF);
	free(ring);

	/* A new queue works (and may reuse the number). */
	q2 = kt_queue();
	assert_usable(q2);
	kt_close(q2);
}
