// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * KEVENT_POLL (K21) on real pipes, eventfds, timerfds, inotify descriptors, ptys and
 * queues, with the delivery modes (K13), LAST_CHECK (K14), ready at ADD (K9), MODIFY (K8)
 * and bad input (K25).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "src_helpers.h"

TestSuite(poll, .timeout = KT_TEST_TIMEOUT);

/* The one event of fd: POLL* bits in event, and ret_data[0] = the bits seen. */
static struct ukevent poll_event(int q, int fd)
{
	return kt_next(q, KEVENT_POLL, (__u32)fd);
}

/*
 * The K14 sequence: an eventfd interest with req_flags fires behind a ready UNOTIFY, and a
 * get_events() of one event takes only the UNOTIFY, so the eventfd's event stays queued.
 */
static int kt_queued_behind_unotify(int *efd, __u32 req_flags)
{
	struct ukevent ev[8];
	int q = kt_queue(), n;

	*efd = kt_eventfd();
	kt_unotify_add(q, 1, 0);
	kt_add(q, kt_poll_ev(*efd, POLLIN, req_flags));
	kt_unotify_ready(q, 1);
	kt_eventfd_write(*efd);
	n = kt_get(q, 1, 1, ev, KT_WAIT_MS);
	cr_assert_eq(n, 1);
	cr_assert_eq(ev[0].type, KEVENT_UNOTIFY);
	return q;
}

Test(poll, k21_k13_pipe_level, .description = "K21/K13: POLLIN on a pipe is level: delivered again until read")
{
	struct ukevent got;

	got = kt_pipe_level(KEVENT_POLL, POLLIN);
	cr_assert_eq(got.ret_data[0], POLLIN, "ret_data[0] %#x", got.ret_data[0]);
}

Test(poll, k21_k13_eventfd_et, .description = "K21/K13: ET on an eventfd: once per write, not while it stays readable")
{
	struct ukevent got;
	int q, efd, round;

	q = kt_queue();
	efd = kt_eventfd();
	kt_add(q, kt_poll_ev(efd, POLLIN, KEVENT_REQ_ET));
	for (round = 0; round < 3; round++) {
		kt_eventfd_write(efd);
		got = poll_event(q, efd);
		cr_assert_eq(got.event, POLLIN);
		cr_assert_eq(got.req_flags, KEVENT_REQ_ET);
		kt_expect_none(q); /* the counter is still non-zero: no new edge */
	}
	close(efd);
	kt_close(q);
}

Test(poll, k21_k13_timerfd_oneshot, .description = "K21/K13: ONESHOT on a timerfd: delivered once, then removed")
{
	struct itimerspec its = { .it_value.tv_nsec = 1000000, .it_interval.tv_nsec = 1000000 };
	struct ukevent got;
	int q, tfd;

	q = kt_queue();
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	cr_assert_geq(tfd, 0, "timerfd_create: %m");
	kt_add(q, kt_poll_ev(tfd, POLLIN, KEVENT_REQ_ONESHOT));
	cr_assert_eq(timerfd_settime(tfd, 0, &its, NULL), 0, "timerfd_settime: %m");
	got = poll_event(q, tfd);
	cr_assert_eq(got.event, POLLIN);
	kt_expect_none(q); /* the periodic timer keeps firing, the interest is gone */
	kt_assert_gone(q, kt_poll_ev(tfd, POLLIN, 0));
	close(tfd);
	kt_close(q);
}

Test(poll, k14_last_check_drops_stale, .description = "K14: LAST_CHECK: an eventfd read empty after it fired is not delivered and stays registered")
{
	int q, efd;

	q = kt_queued_behind_unotify(&efd, KEVENT_REQ_LAST_CHECK);
	kt_eventfd_read(efd); /* no longer ready */
	kt_expect_none(q);
	kt_eventfd_write(efd); /* still registered: new activity is delivered */
	cr_assert_eq(poll_event(q, efd).event, POLLIN);
	close(efd);
	kt_close(q);
}

Test(poll, k14_without_last_check_delivers_stale, .description = "K14: the same sequence without LAST_CHECK delivers the event that fired")
{
	int q, efd;

	q = kt_queued_behind_unotify(&efd, KEVENT_REQ_ET);
	kt_eventfd_read(efd);
	cr_assert_eq(poll_event(q, efd).event, POLLIN);
	close(efd);
	kt_close(q);
}

Test(poll, k9_ready_at_add, .description = "K9: a readable eventfd at ADD comes back DONE with its bits; ALWAYS_QUEUE queues it")
{
	struct ukevent uk;
	int q, efd;

	q = kt_queue();
	efd = kt_eventfd();
	kt_eventfd_write(efd);
	uk = kt_poll_ev(efd, POLLIN | POLLOUT, 0);
	cr_assert_eq(kt_ctl1(q, KEVENT_CTL_ADD, &uk), KEVENT_RET_DONE);
	cr_assert_eq(uk.event, POLLIN | POLLOUT, "event %#x", uk.event);
	cr_assert_eq(uk.ret_data[0], POLLIN | POLLOUT, "ret_data[0] %#x", uk.ret_data[0]);
	kt_assert_gone(q, kt_poll_ev(efd, POLLIN | POLLOUT, 0));
	kt_add(q, kt_poll_ev(efd, POLLIN, KEVENT_REQ_ALWAYS_QUEUE | KEVENT_REQ_ONESHOT));
	cr_assert_eq(poll_event(q, efd).event, POLLIN);
	close(efd);
	kt_close(q);
}

Test(poll, k21_hangup_broken_once, .description = "K21: a pipe whose writer closed (POLLHUP, not asked for) is BROKEN once, then gone")
{
	struct ukevent got;

	got = kt_pipe_hangup(KEVENT_POLL, POLLIN);
	cr_assert(got.ret_data[0] & POLLHUP, "ret_data[0] %#x", got.ret_data[0]);
}

Test(poll, k21_hangup_asked_for, .description = "K21: POLLHUP in the mask is an ordinary event with the bits in ret_data[0]")
{
	struct ukevent got;
	int q, p[2];

	q = kt_pipe_watched(p, KEVENT_POLL, POLLIN | POLLHUP, KEVENT_REQ_ONESHOT);
	close(p[1]);
	got = poll_event(q, p[0]);
	cr_assert_eq(got.ret_flags, 0);
	cr_assert_eq(got.event, POLLHUP, "event %#x", got.event);
	cr_assert_eq(got.ret_data[0], POLLHUP);
	close(p[0]);
	kt_close(q);
}

Test(poll, k21_close_removes_silently, .description = "K21: closing a watched eventfd drops its interest silently, even when the number is reused")
{
	struct ukevent uk;
	int q, efd, efd2;

	q = kt_queue();
	efd = kt_eventfd();
	uk = kt_poll_ev(efd, POLLIN, 0);
	uk.user[0] = 1;
	kt_add(q, uk);
	kt_eventfd_write(efd);
	cr_assert_eq(poll_event(q, efd).user[0], 1);
	close(efd);
	efd2 = kt_eventfd(); /* same number, same anonymous inode, another file */
	cr_assert_eq(efd2, efd);
	kt_eventfd_write(efd2);
	kt_expect_none(q);
	/* Another identity on the reused number is watched for real. */
	kt_eventfd_read(efd2);
	uk.user[0] = 2;
	kt_add(q, uk);
	kt_eventfd_write(efd2);
	cr_assert_eq(poll_event(q, efd2).user[0], 2);
	close(efd2);
	kt_close(q);
}

Test(poll, k21_same_identity_after_close, .description = "K21: the same identity can be added again on a reused descriptor (no EEXIST)")
{
	int q, efd, efd2;

	q = kt_queue();
	efd = kt_eventfd();
	kt_add(q, kt_poll_ev(efd, POLLIN, 0));
	close(efd);
	efd2 = kt_eventfd();
	cr_assert_eq(efd2, efd);
	kt_add(q, kt_poll_ev(efd2, POLLIN, KEVENT_REQ_ET));
	kt_eventfd_write(efd2);
	cr_assert_eq(poll_event(q, efd2).req_flags, KEVENT_REQ_ET);
	close(efd2);
	kt_close(q);
}

Test(poll, k21_inotify, .description = "K21: an inotify descriptor reports POLLIN when the watched directory changes")
{
	char dir[] = "/tmp/kevent-poll-XXXXXX", path[64];
	int q, in, fd;

	q = kt_queue();
	cr_assert_not_null(mkdtemp(dir));
	in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	cr_assert_geq(in, 0);
	cr_assert_geq(inotify_add_watch(in, dir, IN_CREATE), 0);
	kt_add(q, kt_poll_ev(in, POLLIN, KEVENT_REQ_ET));
	kt_expect_none(q);
	snprintf(path, sizeof(path), "%s/f", dir);
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(poll_event(q, in).event, POLLIN);
	close(fd);
	unlink(path);
	rmdir(dir);
	close(in);
	kt_close(q);
}

Test(poll, k21_tty, .description = "K21: a pseudo-terminal master reports POLLIN when the slave writes")
{
	int q, m, s;

	q = kt_queue();
	m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	cr_assert_geq(m, 0, "posix_openpt: %m");
	cr_assert_eq(grantpt(m), 0);
	cr_assert_eq(unlockpt(m), 0);
	s = open(ptsname(m), O_RDWR | O_NOCTTY | O_CLOEXEC);
	cr_assert_geq(s, 0, "open slave: %m");
	kt_add(q, kt_poll_ev(m, POLLIN, KEVENT_REQ_ONESHOT));
	kt_expect_none(q);
	cr_assert_eq(write(s, "hi\n", 3), 3);
	cr_assert_eq(poll_event(q, m).event, POLLIN);
	close(s);
	close(m);
	kt_close(q);
}

Test(poll, k21_another_queue, .description = "K21/K2: a queue inside another: POLLIN when the inner one has events")
{
	struct ukevent ev[8];
	int outer, inner;

	outer = kt_queue();
	inner = kt_queue();
	kt_add(outer, kt_poll_ev(inner, POLLIN, 0));
	kt_unotify_add(inner, 5, 0);
	kt_expect_none(outer);
	kt_unotify_ready(inner, 5);
	cr_assert_eq(poll_event(outer, inner).event, POLLIN);
	cr_assert_eq(kt_get_some(inner, ev, 8), 1);
	kt_expect_none(outer); /* level: the inner queue is empty again */
	kt_close(inner);
	kt_close(outer);
}

Test(poll, k8_modify_mask, .description = "K8: MODIFY from POLLIN to POLLOUT re-checks at once")
{
	int q, sv[2];

	q = kt_queue();
	kt_unix_pair(SOCK_STREAM, sv);
	kt_add(q, kt_poll_ev(sv[0], POLLIN, 0));
	kt_expect_none(q);
	kt_done(q, KEVENT_CTL_MODIFY, kt_poll_ev(sv[0], POLLOUT, KEVENT_REQ_ONESHOT));
	cr_assert_eq(poll_event(q, sv[0]).event, POLLOUT);
	kt_close_pair(q, sv[0], sv[1]);
}

Test(poll, k13_several_interests_one_fd, .description = "K13: two interests on one pipe (ET and level) each get their event")
{
	struct ukevent a = kt_poll_ev(0, POLLIN, KEVENT_REQ_ET), b, ev[8];
	int q, p[2], n;

	q = kt_queue();
	kt_pipe(p);
	a.id.raw[0] = (__u32)p[0];
	a.user[0] = 1;
	b = a;
	b.user[0] = 2;
	b.req_flags = 0;
	kt_add(q, a);
	kt_add(q, b);
	cr_assert_eq(write(p[1], "x", 1), 1);
	n = kt_get(q, 2, 8, ev, KT_WAIT_MS);
	cr_assert_eq(n, 2);
	n = kt_get_some(q, ev, 8); /* only the level one again */
	cr_assert_eq(n, 1);
	cr_assert_eq(ev[0].user[0], 2);
	kt_close_pair(q, p[0], p[1]);
}

Test(poll, k25_bad_input, .description = "K25/K7: closed fd EBADF; regular file, the queue itself, bad masks EINVAL")
{
	struct ukevent uk[6];
	int q, f, efd;

	q = kt_queue();
	f = kt_regular_file();
	efd = kt_eventfd();
	uk[0] = kt_poll_ev(kt_closed_fd(), POLLIN, 0);
	uk[1] = kt_poll_ev(f, POLLIN, 0);
	uk[2] = kt_poll_ev(q, POLLIN, 0);
	uk[3] = kt_poll_ev(efd, POLLNVAL, 0);
	uk[4] = kt_poll_ev(efd, 0x10000, 0);
	uk[5] = kt_poll_ev(efd, 0, 0);
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_ADD, 6, uk), 6);
	kt_assert_failed(&uk[0], EBADF);
	for (int i = 1; i < 6; i++)
		kt_assert_failed(&uk[i], EINVAL);
	kt_expect_none(q);
	close(f);
	close(efd);
	kt_close(q);
}
