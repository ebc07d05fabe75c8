// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * One queue, one wait, every kind of source (K21, K22, K23 with K12 and K17, K19, K20):
 * a socket, a timer, a KEVENT_POLL eventfd, a KEVENT_PIPE pipe, an aio_sendfile()
 * completion, a signal and a KEVENT_UNOTIFY come back from a single kevent_get_events()
 * call, into the caller's buffer and the queue's ring alike.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "src_helpers.h"

TestSuite(mixed, .timeout = KT_TEST_TIMEOUT);

enum { M_SOCK, M_TIMER, M_POLL, M_PIPE, M_AIO, M_SIGNAL, M_UNOTIFY, M_N };

static struct ukevent tagged(struct ukevent uk, int tag)
{
	uk.user[0] = (__u32)tag;
	uk.user[1] = 0xc0ffee;
	return uk;
}

static void add_tagged(int q, struct ukevent uk, int tag)
{
	kt_add(q, tagged(uk, tag));
}

static struct ukevent timer_ev(void)
{
	struct ukevent uk = { .type = KEVENT_TIMER, .event = KEVENT_TIMER_FIRED };

	uk.id.raw[1] = 1000000; /* 1 ms */
	uk.req_flags = KEVENT_REQ_ONESHOT;
	return uk;
}

Test(mixed, k21_k22_k23_one_batch, .description = "K21/K22/K23: socket, timer, poll, pipe, aio, signal and UNOTIFY events in one kevent_get_events call")
{
	struct ukevent ev[16];
	struct kevent_ring *ring;
	int q, rx, tx, efd, p[2], sv[2], f, n, seen[M_N] = { 0 };
	long cookie;

	q = kt_queue_ring(&ring, 16);
	kt_udp_pair(&rx, &tx);
	efd = kt_eventfd();
	cr_assert_eq(pipe(p), 0);
	kt_unix_pair(SOCK_STREAM, sv);
	f = kt_pattern_file(64 * 1024);

	add_tagged(q, kt_sock_ev(rx, KEVENT_SOCKET_RECV, 0), M_SOCK);
	add_tagged(q, timer_ev(), M_TIMER);
	add_tagged(q, kt_poll_ev(efd, POLLIN, 0), M_POLL);
	add_tagged(q, kt_pipe_ev(p[0], KEVENT_SOCKET_RECV, 0), M_PIPE);
	add_tagged(q, kt_signal_ev(SIGUSR1, true, 0), M_SIGNAL);
	add_tagged(q, kt_unotify_ev(42, 0), M_UNOTIFY);

	kt_send(tx, 10);
	kt_eventfd_write(efd);
	cr_assert_eq(write(p[1], "x", 1), 1);
	cookie = aio_sendfile(q, sv[0], f, 0, 64 * 1024);
	cr_assert_gt(cookie, 0, "aio_sendfile: %ld", cookie);
	cr_assert_eq(raise(SIGUSR1), 0);
	kt_done(q, KEVENT_CTL_READY, tagged(kt_unotify_ev(42, 0), M_UNOTIFY));

	n = kt_get(q, M_N, 16, ev, KT_WAIT_MS);
	cr_assert_eq(n, M_N, "one call returned %d events, want %d", n, M_N);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(ev[i].ret_flags, 0, "type %u ret_flags %#x", ev[i].type,
			     ev[i].ret_flags);
		cr_assert_eq(ring->event[i].type, ev[i].type, "ring slot %d", i);
		if (ev[i].type == KEVENT_AIO) {
			cr_assert_eq(ev[i].ptr, (void *)cookie);
			cr_assert_eq(ev[i].ret_data[0], 64 * 1024);
			seen[M_AIO]++;
			continue;
		}
		cr_assert_eq(ev[i].user[1], 0xc0ffee, "user data of type %u", ev[i].type);
		cr_assert_lt(ev[i].user[0], M_N);
		seen[ev[i].user[0]]++;
	}
	for (int t = 0; t < M_N; t++)
		cr_assert_eq(seen[t], 1, "source %d delivered %d times", t, seen[t]);
	cr_assert_eq(ring->ring_kidx, (unsigned int)M_N);

	close(rx);
	close(tx);
	close(efd);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
	close(f);
	kt_close_ring(q, ring);
}
