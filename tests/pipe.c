// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * KEVENT_PIPE (K21) on real pipes and FIFOs: RECV, SEND, end of file as BROKEN, the
 * delivery modes (K13) and bad input (K25).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src_helpers.h"

TestSuite(pipe, .timeout = KT_TEST_TIMEOUT);

static struct ukevent pipe_event(int q, int fd)
{
	return kt_next(q, KEVENT_PIPE, (__u32)fd);
}

/* Write until the pipe is full. */
static void fill(int fd)
{
	char buf[4096] = { 0 };

	while (write(fd, buf, sizeof(buf)) > 0)
		;
	cr_assert_eq(errno, EAGAIN);
}

/* A queue watching SEND on the write end of a fresh pipe, filled first: not writable. */
static int kt_full_pipe_watched(int p[2], __u32 req_flags)
{
	int q = kt_queue();

	kt_pipe(p);
	fill(p[1]);
	kt_add(q, kt_pipe_ev(p[1], KEVENT_SOCKET_SEND, req_flags));
	return q;
}

Test(pipe, k21_k13_recv_level, .description = "K21/K13: RECV on a pipe, level until read dry")
{
	kt_pipe_level(KEVENT_PIPE, KEVENT_SOCKET_RECV);
}

Test(pipe, k21_k13_send_et, .description = "K21/K13: SEND on a full pipe comes (once, ET) when the reader makes room")
{
	char buf[65536];
	int q, p[2];

	q = kt_full_pipe_watched(p, KEVENT_REQ_ET);
	kt_expect_none(q);
	cr_assert_gt(read(p[0], buf, sizeof(buf)), 0);
	cr_assert_eq(pipe_event(q, p[1]).event, KEVENT_SOCKET_SEND);
	kt_expect_none(q);
	kt_close_pair(q, p[0], p[1]);
}

Test(pipe, k21_eof_broken, .description = "K21: the write end closing on an empty pipe is RECV with BROKEN (-EPIPE), once")
{
	cr_assert_eq(kt_pipe_hangup(KEVENT_PIPE, KEVENT_SOCKET_RECV).event, KEVENT_SOCKET_RECV);
}

Test(pipe, k21_eof_after_data, .description = "K21: data left when the writer closes is RECV first; BROKEN once it is read")
{
	struct ukevent got;
	int q, p[2];

	q = kt_pipe_watched(p, KEVENT_PIPE, KEVENT_SOCKET_RECV, 0);
	cr_assert_eq(write(p[1], "abc", 3), 3);
	close(p[1]);
	got = pipe_event(q, p[0]);
	cr_assert_eq(got.ret_flags, 0);
	cr_assert_eq(got.event, KEVENT_SOCKET_RECV);
	kt_read_dry(p[0]);
	got = pipe_event(q, p[0]);
	cr_assert_eq(got.ret_flags, KEVENT_RET_BROKEN);
	kt_expect_none(q);
	close(p[0]);
	kt_close(q);
}

Test(pipe, k21_eof_et, .description = "K21/K13: end of file reaches an ET interest too")
{
	struct ukevent got;
	int q, p[2];

	q = kt_pipe_watched(p, KEVENT_PIPE, KEVENT_SOCKET_RECV, KEVENT_REQ_ET);
	cr_assert_eq(write(p[1], "a", 1), 1);
	cr_assert_eq(pipe_event(q, p[0]).ret_flags, 0);
	kt_read_dry(p[0]);
	close(p[1]);
	got = pipe_event(q, p[0]);
	cr_assert_eq(got.ret_flags, KEVENT_RET_BROKEN);
	close(p[0]);
	kt_close(q);
}

Test(pipe, k21_reader_gone, .description = "K21: SEND with the read end closed is BROKEN (-EPIPE)")
{
	struct ukevent got;
	int q, p[2];

	q = kt_full_pipe_watched(p, 0);
	close(p[0]);
	got = pipe_event(q, p[1]);
	cr_assert_eq(got.event, KEVENT_SOCKET_SEND);
	cr_assert_eq(got.ret_flags, KEVENT_RET_BROKEN);
	cr_assert_eq((int)got.ret_data[1], -EPIPE);
	close(p[1]);
	kt_close(q);
}

Test(pipe, k21_fifo, .description = "K21: a FIFO works like a pipe")
{
	char dir[] = "/tmp/kevent-fifo-XXXXXX", path[64];
	int q, r, w;

	q = kt_queue();
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fifo", dir);
	cr_assert_eq(mkfifo(path, 0600), 0, "mkfifo: %m");
	r = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	w = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	cr_assert_geq(r, 0);
	cr_assert_geq(w, 0);
	kt_add(q, kt_pipe_ev(r, KEVENT_SOCKET_RECV, KEVENT_REQ_ONESHOT));
	kt_add(q, kt_pipe_ev(w, KEVENT_SOCKET_SEND, KEVENT_REQ_ALWAYS_QUEUE | KEVENT_REQ_ONESHOT));
	cr_assert_eq(pipe_event(q, w).event, KEVENT_SOCKET_SEND);
	cr_assert_eq(write(w, "x", 1), 1);
	cr_assert_eq(pipe_event(q, r).event, KEVENT_SOCKET_RECV);
	close(r);
	close(w);
	unlink(path);
	rmdir(dir);
	kt_close(q);
}

Test(pipe, k13_oneshot, .description = "K13: ONESHOT on a pipe: one event, then the interest is gone")
{
	int q, p[2];

	q = kt_pipe_watched(p, KEVENT_PIPE, KEVENT_SOCKET_RECV, KEVENT_REQ_ONESHOT);
	cr_assert_eq(write(p[1], "a", 1), 1);
	cr_assert_eq(pipe_event(q, p[0]).event, KEVENT_SOCKET_RECV);
	kt_expect_none(q);
	kt_assert_gone(q, kt_pipe_ev(p[0], KEVENT_SOCKET_RECV, 0));
	kt_close_pair(q, p[0], p[1]);
}

Test(pipe, k25_not_a_pipe, .description = "K25/K7: sockets, eventfds, files are EINVAL; a closed fd EBADF; the wrong end EINVAL")
{
	struct ukevent uk[7];
	int q, p[2], sv[2], f, efd;

	q = kt_queue();
	kt_pipe(p);
	kt_unix_pair(SOCK_STREAM, sv);
	f = kt_regular_file();
	efd = kt_eventfd();
	uk[0] = kt_pipe_ev(sv[0], KEVENT_SOCKET_RECV, 0);
	uk[1] = kt_pipe_ev(efd, KEVENT_SOCKET_RECV, 0);
	uk[2] = kt_pipe_ev(f, KEVENT_SOCKET_RECV, 0);
	uk[3] = kt_pipe_ev(p[1], KEVENT_SOCKET_RECV, 0);
	uk[4] = kt_pipe_ev(p[0], KEVENT_SOCKET_SEND, 0);
	uk[5] = kt_pipe_ev(p[0], KEVENT_SOCKET_ACCEPT, 0);
	uk[6] = kt_pipe_ev(kt_closed_fd(), KEVENT_SOCKET_RECV, 0);
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_ADD, 7, uk), 7);
	for (int i = 0; i < 6; i++)
		kt_assert_failed(&uk[i], EINVAL);
	kt_assert_failed(&uk[6], EBADF);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
	close(f);
	close(efd);
	kt_close(q);
}
