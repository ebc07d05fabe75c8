// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * KEVENT_SOCKET on real sockets (K17): TCP, UDP, AF_UNIX stream and datagram.
 */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(socket, .timeout = KT_TEST_TIMEOUT);

/* Wait for the one event of socket fd; checks the fields copied from the registration. */
static struct ukevent sock_event(int q, int fd, __u32 req_flags, void *ptr)
{
	struct ukevent got = kt_next(q, KEVENT_SOCKET, (__u32)fd);

	cr_assert_eq(got.req_flags, req_flags, "req_flags %#x", got.req_flags);
	cr_assert_eq(got.ptr, ptr, "user data not copied back");
	return got;
}

static void watch(int q, int fd, __u32 event, __u32 req_flags, void *ptr)
{
	struct ukevent uk = kt_sock_ev(fd, event, req_flags);

	uk.ptr = ptr;
	kt_add(q, uk);
}

/* The connection of a (watched for RECV, level) broke: BROKEN once, then the interest is gone. */
static void kt_expect_broken_once(int q, int a, void *ptr)
{
	struct ukevent got = sock_event(q, a, 0, ptr);

	cr_assert(got.ret_flags & KEVENT_RET_BROKEN, "ret_flags %#x, want BROKEN", got.ret_flags);
	cr_assert_lt((int)got.ret_data[1], 0, "ret_data[1] = %d, want a negative errno",
		     (int)got.ret_data[1]);
	kt_expect_none(q);
	kt_assert_gone(q, kt_sock_ev(a, KEVENT_SOCKET_RECV, 0));
}

Test(socket, k17_tcp_recv, .description = "K17: TCP data gives RECV")
{
	struct ukevent got;
	int q, a, b;

	q = kt_queue();
	kt_tcp_pair(&a, &b);
	watch(q, a, KEVENT_SOCKET_RECV | KEVENT_SOCKET_ACCEPT, 0, &a);
	kt_expect_none(q);
	kt_send(b, 100);
	got = sock_event(q, a, 0, &a);
	cr_assert_eq(got.event, KEVENT_SOCKET_RECV, "event %#x", got.event);
	cr_assert_eq(got.ret_flags, 0);
	kt_close_pair(q, a, b);
}

Test(socket, k17_tcp_accept, .description = "K17: a connection on a listening socket gives ACCEPT")
{
	struct ukevent got;
	int q, l, c, s;

	q = kt_queue();
	l = kt_tcp_listener();
	watch(q, l, KEVENT_SOCKET_ACCEPT, KEVENT_REQ_ET, &l);
	kt_expect_none(q);
	c = kt_tcp_connect(l);
	got = sock_event(q, l, KEVENT_REQ_ET, &l);
	cr_assert_eq(got.event, KEVENT_SOCKET_ACCEPT, "event %#x", got.event);
	s = accept4(l, NULL, NULL, SOCK_NONBLOCK);
	cr_assert_geq(s, 0, "ACCEPT reported but accept failed: %m");
	close(s);
	close(c);
	close(l);
	kt_close(q);
}

Test(socket, k17_tcp_send_when_space_frees,
     .description = "K17: SEND fires when a full TCP socket becomes writable")
{
	int q, a, b, small = 4096, i, n = 0;
	struct ukevent ev[8];
	char buf[4096] = { 0 };

	q = kt_queue();
	kt_tcp_pair(&a, &b);
	setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(b, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	fcntl(a, F_SETFL, O_NONBLOCK);
	while (send(a, buf, sizeof(buf), MSG_NOSIGNAL) > 0)
		;
	cr_assert_eq(errno, EAGAIN, "filling the socket: %m");

	/* Not writable now: registered, nothing delivered. */
	watch(q, a, KEVENT_SOCKET_SEND, KEVENT_REQ_ET, &a);
	kt_expect_none(q);

	/* The peer reads: room comes back. */
	for (i = 0; i < KT_WAIT_MS / 20 && n == 0; i++) {
		kt_drain(b);
		n = kt_get(q, 1, 8, ev, 20);
	}
	cr_assert_eq(n, 1, "no SEND event after the peer drained the socket");
	cr_assert_eq(kt_only(ev, n, KEVENT_SOCKET, (__u32)a).event, KEVENT_SOCKET_SEND);
	kt_close_pair(q, a, b);
}

Test(socket, k17_tcp_send_ready, .description = "K17: a writable TCP socket is SEND-ready")
{
	struct ukevent uk;
	int q, a, b;

	q = kt_queue();
	kt_tcp_pair(&a, &b);
	uk = kt_sock_ev(a, KEVENT_SOCKET_SEND | KEVENT_SOCKET_RECV, 0);
	cr_assert_eq(kt_ctl1(q, KEVENT_CTL_ADD, &uk), KEVENT_RET_DONE, "writable at ADD");
	cr_assert_eq(uk.event, KEVENT_SOCKET_SEND, "ready bits %#x", uk.event);
	watch(q, a, KEVENT_SOCKET_SEND, KEVENT_REQ_ALWAYS_QUEUE, &b);
	cr_assert_eq(sock_event(q, a, KEVENT_REQ_ALWAYS_QUEUE, &b).event, KEVENT_SOCKET_SEND);
	kt_close_pair(q, a, b);
}

Test(socket, k17_tcp_peer_fin_recv,
     .description = "K17: the peer closing (FIN) makes the socket readable: RECV")
{
	struct ukevent got;
	char c;
	int q, a, b;

	q = kt_queue();
	kt_tcp_pair(&a, &b);
	watch(q, a, KEVENT_SOCKET_RECV, KEVENT_REQ_ET, NULL);
	close(b);
	got = sock_event(q, a, KEVENT_REQ_ET, NULL);
	cr_assert(got.event & KEVENT_SOCKET_RECV, "event %#x", got.event);
	cr_assert_not(got.ret_flags & KEVENT_RET_BROKEN, "a FIN is not a breakage (%#x, %d)",
		      got.ret_flags, (int)got.ret_data[1]);
	cr_assert_eq(recv(a, &c, 1, MSG_DONTWAIT), 0, "end of file");
	close(a);
	kt_close(q);
}

Test(socket, k17_tcp_reset_broken_once,
     .description = "K17: a reset delivers BROKEN once, then the interest is gone")
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int q, a, b;

	q = kt_queue();
	kt_tcp_pair(&a, &b);
	watch(q, a, KEVENT_SOCKET_RECV, 0, &q);
	cr_assert_eq(setsockopt(b, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(b); /* RST */
	kt_expect_broken_once(q, a, &q);
	close(a);
	kt_close(q);
}

Test(socket, k17_tcp_hangup_both_ways_broken,
     .description = "K17: a hang-up in both directions with nothing to read is BROKEN once")
{
	int q, a, b;

	q = kt_queue();
	kt_tcp_pair(&a, &b);
	watch(q, a, KEVENT_SOCKET_RECV, 0, &b);
	shutdown(a, SHUT_WR);
	close(b);
	kt_expect_broken_once(q, a, &b);
	close(a);
	kt_close(q);
}

Test(socket, k17_udp_recv, .description = "K17: a UDP datagram gives RECV")
{
	struct ukevent got;
	int q, rx, tx;

	q = kt_queue();
	kt_udp_pair(&rx, &tx);
	watch(q, rx, KEVENT_SOCKET_RECV, KEVENT_REQ_ET, &rx);
	kt_expect_none(q);
	kt_send(tx, 1);
	got = sock_event(q, rx, KEVENT_REQ_ET, &rx);
	cr_assert_eq(got.event, KEVENT_SOCKET_RECV);
	cr_assert_eq(got.ret_flags, 0);
	kt_close_pair(q, rx, tx);
}

static void unix_recv(int type)
{
	struct ukevent got;
	int q, sv[2];

	q = kt_queue();
	kt_unix_pair(type, sv);
	watch(q, sv[0], KEVENT_SOCKET_RECV, 0, sv);
	kt_expect_none(q);
	kt_send(sv[1], 5);
	got = sock_event(q, sv[0], 0, sv);
	cr_assert_eq(got.event, KEVENT_SOCKET_RECV);
	cr_assert_eq(got.ret_flags, 0);
	kt_close_pair(q, sv[0], sv[1]);
}

Test(socket, k17_unix_stream_recv, .description = "K17: AF_UNIX stream data gives RECV")
{
	unix_recv(SOCK_STREAM);
}

Test(socket, k17_unix_dgram_recv, .description = "K17: AF_UNIX datagram gives RECV")
{
	unix_recv(SOCK_DGRAM);
}

Test(socket, k17_unix_stream_peer_close,
     .description = "K17: an AF_UNIX stream peer closing with nothing left to read is BROKEN "
		    "(-EPIPE) once")
{
	struct ukevent got;
	int q, sv[2];

	q = kt_queue();
	kt_unix_pair(SOCK_STREAM, sv);
	watch(q, sv[0], KEVENT_SOCKET_RECV, KEVENT_REQ_ET, NULL);
	kt_expect_none(q);
	close(sv[1]);
	got = sock_event(q, sv[0], KEVENT_REQ_ET, NULL);
	cr_assert_eq(got.ret_flags, KEVENT_RET_BROKEN, "ret_flags %#x, want BROKEN", got.ret_flags);
	cr_assert_eq((int)got.ret_data[1], -EPIPE, "ret_data[1] %d", (int)got.ret_data[1]);
	cr_assert_eq(got.event, KEVENT_SOCKET_RECV, "which interest broke: %#x", got.event);
	kt_expect_none(q);
	close(sv[0]);
	kt_close(q);
}

/*
 * The errno a BROKEN socket event carries: the socket's own error on the BPF path; on the
 * syscall path, which cannot read it without taking it from SO_ERROR, -EIO (K17, K26).
 */
static int kt_broken_errno(int q, int err)
{
	return kevent_backend(q, KEVENT_SOCKET) == KEVENT_BACKEND_BPF ? -err : -EIO;
}

/* A connection whose peer sends len bytes, then resets it (SO_LINGER 0). */
static void kt_send_then_reset(int b, size_t len)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	kt_send(b, len);
	cr_assert_eq(setsockopt(b, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(b);
}

/* K17: the data first, as RECV (mode: 0 or ET), then BROKEN with the reset's errno. */
static void kt_data_then_broken(__u32 mode)
{
	struct ukevent got;
	char buf[16];
	int q, a, b;

	q = kt_queue();
	kt_tcp_pair(&a, &b);
	watch(q, a, KEVENT_SOCKET_RECV, mode, &a);
	kt_send_then_reset(b, 5);
	got = sock_event(q, a, mode, &a);
	cr_assert_eq(got.ret_flags, 0, "with 5 bytes unread: ret_flags %#x (%d), want RECV",
		     got.ret_flags, (int)got.ret_data[1]);
	cr_assert_eq(got.event, KEVENT_SOCKET_RECV);
	cr_assert_eq(recv(a, buf, sizeof(buf), MSG_DONTWAIT), 5, "the 5 bytes: %m");
	got = sock_event(q, a, mode, &a);
	cr_assert_eq(got.ret_flags, KEVENT_RET_BROKEN, "read dry: ret_flags %#x", got.ret_flags);
	cr_assert_eq((int)got.ret_data[1], kt_broken_errno(q, ECONNRESET), "ret_data[1] %d",
		     (int)got.ret_data[1]);
	kt_expect_none(q);
	close(a);
	kt_close(q);
}

Test(socket, k17_data_then_broken_level,
     .description = "K17: data, then a reset: RECV while data remains, BROKEN once it is read")
{
	kt_data_then_broken(0);
}

Test(socket, k17_data_then_broken_et,
     .description = "K17: the same with ET: the pending reset is looked at again after the call")
{
	kt_data_then_broken(KEVENT_REQ_ET);
}

/* A TCP port bound on 127.0.0.1 that nobody listens on; *holder keeps it. */
static struct sockaddr_in kt_closed_port(int *holder)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);

	*holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(*holder, 0);
	cr_assert_eq(bind(*holder, (struct sockaddr *)&sa, len), 0, "bind: %m");
	cr_assert_eq(getsockname(*holder, (struct sockaddr *)&sa, &len), 0);
	return sa;
}

Test(socket, k17_refused_connect_leaves_so_error,
     .description = "K17: a refused nonblocking connect is BROKEN with -ECONNREFUSED (-EIO on "
		    "the syscall path), and SO_ERROR still says ECONNREFUSED for the application")
{
	int q = kt_queue(), holder, c, soerr = 0;
	struct sockaddr_in sa = kt_closed_port(&holder);
	socklen_t len = sizeof(soerr);
	struct ukevent got;

	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	cr_assert_geq(c, 0);
	cr_assert(connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EINPROGRESS ||
		  errno == ECONNREFUSED, "connect: %m");
	watch(q, c, KEVENT_SOCKET_SEND, KEVENT_REQ_ALWAYS_QUEUE, &c);
	got = sock_event(q, c, KEVENT_REQ_ALWAYS_QUEUE, &c);
	cr_assert(got.ret_flags & KEVENT_RET_BROKEN, "ret_flags %#x", got.ret_flags);
	cr_assert_eq((int)got.ret_data[1], kt_broken_errno(q, ECONNREFUSED), "ret_data[1] %d",
		     (int)got.ret_data[1]);
	cr_assert_eq(getsockopt(c, SOL_SOCKET, SO_ERROR, &soerr, &len), 0);
	cr_assert_eq(soerr, ECONNREFUSED, "the library consumed SO_ERROR: it reads %d", soerr);
	close(c);
	close(holder);
	kt_close(q);
}

Test(socket, k17_recv_on_listener_is_accept,
     .description = "K17: on a listening socket RECV is the readiness ACCEPT is, at ADD and later")
{
	struct ukevent uk, got;
	int q = kt_queue(), l = kt_tcp_listener(), c, c2;

	watch(q, l, KEVENT_SOCKET_RECV, KEVENT_REQ_ET, &l);
	c = kt_tcp_connect(l);
	got = sock_event(q, l, KEVENT_REQ_ET, &l);
	cr_assert_eq(got.event, KEVENT_SOCKET_RECV, "event %#x", got.event);
	/* A connection already waiting is ready at ADD (K9). */
	uk = kt_sock_ev(l, KEVENT_SOCKET_RECV, 0);
	uk.user[0] = 1;
	cr_assert_eq(kt_ctl1(q, KEVENT_CTL_ADD, &uk), KEVENT_RET_DONE);
	cr_assert_eq(uk.event, KEVENT_SOCKET_RECV);
	c2 = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(c2, 0);
	close(c2);
	close(c);
	close(l);
	kt_close(q);
}

/* Put fd on number `to` (closing what was there), and return `to`. */
static int kt_move_to(int fd, int to)
{
	cr_assert_eq(dup2(fd, to), to, "dup2: %m");
	close(fd);
	return to;
}

Test(socket, k17_number_reused_after_dup_close,
     .description = "K17/K25: dup, close, and a new connection on the number: the old "
		    "connection's data is never delivered under it, and the interest goes")
{
	struct kevent_stats st;
	int q = kt_queue(), a, b, d, c, e, n;

	kt_tcp_pair(&a, &b);
	watch(q, a, KEVENT_SOCKET_RECV, 0, &a);
	d = dup(a);
	cr_assert_geq(d, 0);
	close(a);
	kt_tcp_pair(&c, &e);
	c = kt_move_to(c, a); /* a new connection lands on a's number */
	kt_send(b, 3);	      /* to the old connection, still open through d */
	kt_wait_readable(d);
	kt_expect_none(q);
	kt_send(e, 3); /* and the new one is not watched at all */
	kt_wait_readable(c);
	kt_expect_none(q);
	for (n = 0; n < KT_WAIT_MS / 20; n++) {
		cr_assert_eq(kevent_stats(q, &st), 0);
		if (!st.interests)
			break;
		kt_get(q, 1, 1, &(struct ukevent){ 0 }, 20);
	}
	cr_assert_eq(st.interests, 0, "the interest on the closed number stayed");
	close(d);
	close(e);
	kt_close_pair(q, b, c);
}

/*
 * Data queued for a (watched) before it is closed through one descriptor of two, then a
 * number reused by a socket nobody watches: nothing may be delivered under the number,
 * however the event was held: in the kernel's ring (the socket programs' record), or on
 * the ready list (across_calls: a call with room for one event left it there). tcp: over
 * TCP, else an AF_UNIX stream pair.
 */
static void kt_queued_then_reused(bool tcp, bool across_calls)
{
	struct ukevent ev[4];
	int q = kt_queue(), a, b, c, d, x, y, n;
	void *victim = &a; /* the ptr of the interest on the number closed */

	if (tcp) {
		kt_tcp_pair(&a, &b);
		kt_tcp_pair(&c, &d);
	} else {
		int sv[2];

		kt_unix_pair(SOCK_STREAM, sv);
		a = sv[0], b = sv[1];
		kt_unix_pair(SOCK_STREAM, sv);
		c = sv[0], d = sv[1];
	}
	watch(q, a, KEVENT_SOCKET_RECV, KEVENT_REQ_ET, &a);
	watch(q, c, KEVENT_SOCKET_RECV, KEVENT_REQ_ET, &c);
	/* A call now: the queue's sweep of closed descriptors does not run again for 100 ms. */
	cr_assert_eq(kt_get(q, 1, 4, ev, 0), 0);
	kt_send(b, 1);
	kt_send(d, 1);
	kt_wait_readable(a);
	kt_wait_readable(c);
	if (across_calls) {
		/* One of the two now, the other waits on the ready list for the next call. */
		n = kt_get(q, 1, 1, ev, KT_WAIT_MS);
		cr_assert_eq(n, 1);
		if (ev[0].ptr == &a) {
			x = a, a = c, c = x;
			x = b, b = d, d = x;
			victim = &c;
		}
	}
	x = dup(a);
	cr_assert_geq(x, 0);
	y = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(y, 0);
	y = kt_move_to(y, a); /* closes a: the socket lives on through x */
	n = kt_get(q, 1, 4, ev, KT_QUIET_MS);
	for (int i = 0; i < n; i++)
		cr_assert_neq(ev[i].ptr, victim, "an event queued before the close came under "
						 "the reused number %d", a);
	/* The check is about the number, not the queue: the other socket's event still comes. */
	if (!across_calls)
		cr_assert(n == 1 && ev[0].ptr == &c, "the untouched socket's event was lost (%d)", n);
	close(x);
	close(y);
	close(b);
	kt_close_pair(q, c, d);
}

Test(socket, k17_queued_before_dup_close_not_delivered_tcp_bpf,
     .description = "K17/K25: TCP data queued in the kernel, then its number closed (a dup "
		    "keeps the socket) and reused: the next call delivers nothing under it")
{
	kt_require_bpf_source("socket");
	kt_queued_then_reused(true, false);
}

Test(socket, k17_queued_before_dup_close_not_delivered_unix_bpf,
     .description = "K17/K25: the same for an AF_UNIX stream socket")
{
	kt_require_bpf_source("socket");
	kt_queued_then_reused(false, false);
}

Test(socket, k17_waiting_across_calls_not_delivered_after_reuse,
     .description = "K17/K25: an event left on the ready list by a call that was full is "
		    "not delivered by the next call once its number was closed and reused")
{
	kt_queued_then_reused(true, true);
}

Test(socket, k17_readd_after_dup_close_remove,
     .description = "K17/K8: d = dup(s), ADD on d, close(d), REMOVE on d, dup2(s, d): ADD on "
		    "d registers again (no EEXIST) and MODIFY finds it")
{
	int q = kt_queue(), a, b, d;
	struct ukevent uk;

	kt_tcp_pair(&a, &b);
	d = dup(a);
	cr_assert_geq(d, 0);
	uk = kt_sock_ev(d, KEVENT_SOCKET_RECV | KEVENT_SOCKET_SEND, KEVENT_REQ_ALWAYS_QUEUE);
	kt_add(q, uk);
	close(d);
	kt_ctl1(q, KEVENT_CTL_REMOVE, &uk);
	cr_assert_eq(dup2(a, d), d);
	kt_add(q, uk);
	uk.event = KEVENT_SOCKET_RECV;
	kt_done(q, KEVENT_CTL_MODIFY, uk);
	kt_send(b, 1);
	cr_assert_eq(kt_next(q, KEVENT_SOCKET, (__u32)d).event & KEVENT_SOCKET_RECV,
		     KEVENT_SOCKET_RECV);
	close(d);
	kt_close_pair(q, a, b);
}

Test(socket, k17_close_removes_silently,
     .description = "K17: closing the watched socket removes its interests silently")
{
	struct ukevent uk;
	int q, a, b, rx, tx;

	q = kt_queue();
	kt_tcp_pair(&a, &b);
	uk = kt_sock_ev(a, KEVENT_SOCKET_RECV, 0);
	uk.user[0] = 3;
	kt_add(q, uk);
	close(a);
	kt_send(b, 10); /* to a closed socket: the peer answers with a reset */
	close(b);
	kt_expect_none(q);

	/* A new socket on the same descriptor number, same identity: a fresh interest. */
	kt_udp_pair(&rx, &tx);
	if (tx == a) {
		int t = dup(tx); /* make way for rx */

		cr_assert_geq(t, 0);
		close(tx);
		tx = t;
	}
	if (rx != a) {
		cr_assert_eq(dup2(rx, a), a);
		close(rx);
		rx = a;
	}
	kt_add(q, uk);
	kt_send(tx, 4);
	cr_assert_eq(kt_next(q, KEVENT_SOCKET, (__u32)rx).user[0], 3);
	kt_close_pair(q, rx, tx);
}

Test(socket, k17_close_drops_pending_event,
     .description = "K17: an event pending when the socket is closed is not delivered")
{
	int q, rx, tx;

	q = kt_udp_watched(&rx, &tx, 0);
	kt_send(tx, 4);
	kt_wait_readable(rx);
	close(rx);
	kt_expect_none(q);
	close(tx);
	kt_close(q);
}

Test(socket, k17_tcp_close_reported_by_kernel,
     .description = "K17: a TCP socket closed with an event pending: nothing delivered, the interest gone")
{
	struct kevent_stats st;
	int q = kt_queue(), a, b;

	kt_tcp_pair(&a, &b);
	kt_add(q, kt_sock_ev(a, KEVENT_SOCKET_RECV, KEVENT_REQ_ET));
	kt_send(b, 4);
	kt_wait_readable(a);
	/* TCP interests are not re-checked at delivery: the kernel side reports the close. */
	close(a);
	kt_expect_none(q);
	cr_assert_eq(kevent_stats(q, &st), 0);
	cr_assert_eq(st.interests, 0, "the closed socket's interest is still registered");
	close(b);
	kt_close(q);
}
