// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Helpers of the KEVENT_POLL, KEVENT_PIPE, KEVENT_SIGNAL and aio_sendfile tests (see
 * src_helpers.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "src_helpers.h"

struct ukevent kt_poll_ev(int fd, __u32 event, __u32 req_flags)
{
	return kt_fd_ev(KEVENT_POLL, fd, event, req_flags);
}

struct ukevent kt_pipe_ev(int fd, __u32 event, __u32 req_flags)
{
	return kt_fd_ev(KEVENT_PIPE, fd, event, req_flags);
}

struct ukevent kt_signal_ev(int sig, bool nomask, __u32 req_flags)
{
	struct ukevent uk = kt_fd_ev(KEVENT_SIGNAL, sig, KEVENT_SIGNAL_DELIVERY, req_flags);

	if (nomask)
		uk.id.raw_u64 |= KEVENT_SIGNAL_NOMASK;
	return uk;
}

int kt_get_nointr(int q, unsigned int min_nr, unsigned int max_nr, struct ukevent *buf,
		  long ms)
{
	int n;

	while ((n = kt_get(q, min_nr, max_nr, buf, ms)) == -EINTR)
		;
	return n;
}

void kt_pipe(int p[2])
{
	cr_assert_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0, "pipe2: %m");
}

int kt_pipe_watched(int p[2], __u32 type, __u32 event, __u32 req_flags)
{
	int q = kt_queue();

	kt_pipe(p);
	kt_add(q, kt_fd_ev(type, p[0], event, req_flags));
	return q;
}

struct ukevent kt_pipe_level(__u32 type, __u32 event)
{
	struct ukevent got;
	int q, p[2];

	q = kt_pipe_watched(p, type, event, 0);
	kt_expect_none(q);
	cr_assert_eq(write(p[1], "x", 1), 1);
	got = kt_next(q, type, (__u32)p[0]);
	cr_assert_eq(got.event, event, "event %#x", got.event);
	cr_assert_eq(got.ret_flags, 0);
	/* Not read: still ready. */
	cr_assert_eq(kt_next(q, type, (__u32)p[0]).event, event);
	kt_read_dry(p[0]);
	kt_expect_none(q);
	kt_close_pair(q, p[0], p[1]);
	return got;
}

struct ukevent kt_pipe_hangup(__u32 type, __u32 event)
{
	struct ukevent got;
	int q, p[2];

	q = kt_pipe_watched(p, type, event, 0);
	close(p[1]);
	got = kt_next(q, type, (__u32)p[0]);
	cr_assert_eq(got.ret_flags, KEVENT_RET_BROKEN, "ret_flags %#x", got.ret_flags);
	cr_assert_eq((int)got.ret_data[1], -EPIPE);
	kt_expect_none(q);
	kt_assert_gone(q, kt_fd_ev(type, p[0], event, 0));
	close(p[0]);
	kt_close(q);
	return got;
}

int kt_eventfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	cr_assert_geq(fd, 0, "eventfd: %m");
	return fd;
}

void kt_eventfd_write(int fd)
{
	uint64_t one = 1;

	cr_assert_eq(write(fd, &one, sizeof(one)), (ssize_t)sizeof(one), "eventfd write: %m");
}

void kt_eventfd_read(int fd)
{
	uint64_t v;

	cr_assert_eq(read(fd, &v, sizeof(v)), (ssize_t)sizeof(v), "eventfd read: %m");
}

void kt_read_dry(int fd)
{
	char buf[4096];
	ssize_t r;

	while ((r = read(fd, buf, sizeof(buf))) > 0)
		;
	cr_assert(r == 0 || errno == EAGAIN, "read(%d): %m, want it dry", fd);
}

int kt_pattern_file(size_t size)
{
	char path[] = "/tmp/kevent-aio-XXXXXX";
	size_t chunk = 1 << 20, done, i;
	unsigned char *buf = malloc(chunk);
	int fd = mkostemp(path, O_CLOEXEC);

	cr_assert_not_null(buf);
	cr_assert_geq(fd, 0, "mkostemp: %m");
	unlink(path);
	for (done = 0; done < size; done += chunk) {
		size_t len = size - done < chunk ? size - done : chunk;

		for (i = 0; i < len; i++)
			buf[i] = kt_pattern(done + i);
		cr_assert_eq(write(fd, buf, len), (ssize_t)len, "write: %m");
	}
	free(buf);
	return fd;
}

void kt_want_fds(unsigned long n)
{
	struct rlimit rl;

	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur >= n)
		return;
	rl.rlim_cur = n;
	if (rl.rlim_max < n)
		rl.rlim_max = n; /* root may raise the hard limit too */
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0, "setrlimit(%lu): %m", n);
}

static void *kt_sink_main(void *arg)
{
	struct kt_sink *s = arg;
	static __thread unsigned char buf[1 << 16];
	ssize_t r;

	while (s->got < s->want && (r = read(s->fd, buf, sizeof(buf))) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (ssize_t i = 0; i < r && s->bad_at < 0; i++)
			if (buf[i] != kt_pattern(s->from + s->got + (size_t)i))
				s->bad_at = (long long)(s->got + (size_t)i);
		s->got += (size_t)r;
	}
	return NULL;
}

void kt_sink_start(struct kt_sink *s, int fd, unsigned long long from, unsigned long long want)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->from = from;
	s->want = want;
	s->bad_at = -1;
	kt_thread_start(&s->th, kt_sink_main, s);
}

void kt_sink_join(struct kt_sink *s)
{
	cr_assert(kt_join_within(s->th, KT_AIO_WAIT_MS), "reader still running");
}
