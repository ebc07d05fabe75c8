// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Delivery: merging (K12), level / ET / ONESHOT (K13), LAST_CHECK (K14), single or
 * broadcast delivery across queues and threads (K15), timeouts, min_nr and signals (K16).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(delivery, .timeout = KT_TEST_TIMEOUT);

Test(delivery, k12_udp_burst_merges,
     .description = "K12: 100 datagrams before delivery give one event")
{
	struct ukevent ev[16];
	int q, rx, tx, i, n;

	q = kt_udp_watched(&rx, &tx, 0);
	for (i = 0; i < 100; i++)
		kt_send(tx, 32);
	/* Ask for 2: a second copy of the interest would come out of the same call. */
	n = kt_get(q, 2, 16, ev, KT_QUIET_MS * 2);
	cr_assert_eq(n, 1, "%d events for one socket", n);
	cr_assert_eq(kt_only(ev, n, KEVENT_SOCKET, (__u32)rx).event, KEVENT_SOCKET_RECV);
	kt_close_pair(q, rx, tx);
}

Test(delivery, k12_stream_burst_merges_et,
     .description = "K12: 100 writes before delivery give one event (ET: and no more)")
{
	struct ukevent ev[16];
	int q, sv[2], i, n;

	q = kt_queue();
	kt_unix_pair(SOCK_STREAM, sv);
	kt_add(q, kt_sock_ev(sv[0], KEVENT_SOCKET_RECV, KEVENT_REQ_ET));
	for (i = 0; i < 100; i++)
		kt_send(sv[1], 1);
	n = kt_get(q, 2, 16, ev, KT_QUIET_MS * 2);
	cr_assert_eq(n, 1, "%d events for one socket", n);
	kt_only(ev, n, KEVENT_SOCKET, (__u32)sv[0]);
	kt_expect_none(q);
	kt_close_pair(q, sv[0], sv[1]);
}

Test(delivery, k12_unotify_ready_merges,
     .description = "K12: 10 READYs before delivery give one event")
{
	struct ukevent ev[16];
	int q, i, n;

	q = kt_queue();
	kt_unotify_add(q, 42, 0);
	for (i = 0; i < 10; i++)
		kt_unotify_ready(q, 42);
	n = kt_get(q, 2, 16, ev, KT_QUIET_MS * 2);
	cr_assert_eq(n, 1, "%d events", n);
	kt_only(ev, n, KEVENT_UNOTIFY, 42);
	kt_expect_none(q);
	kt_close(q);
}

Test(delivery, k13_level_redelivers_until_drained,
     .description = "K13: level mode delivers again while readable")
{
	int q, rx, tx, i;

	q = kt_udp_watched(&rx, &tx, 0);
	kt_send(tx, 8);
	for (i = 0; i < 3; i++)
		cr_assert_eq(kt_next(q, KEVENT_SOCKET, (__u32)rx).event, KEVENT_SOCKET_RECV,
			     "delivery %d", i);
	kt_drain(rx);
	kt_expect_none(q);
	/* Still registered: new data is delivered. */
	kt_send(tx, 8);
	kt_next(q, KEVENT_SOCKET, (__u32)rx);
	kt_close_pair(q, rx, tx);
}

Test(delivery, k13_et_only_on_new_activity,
     .description = "K13: ET delivers again only on new data")
{
	int q, rx, tx, i;

	q = kt_udp_watched(&rx, &tx, KEVENT_REQ_ET);
	for (i = 0; i < 3; i++) {
		kt_send(tx, 8); /* never read: the socket stays readable */
		cr_assert_eq(kt_next(q, KEVENT_SOCKET, (__u32)rx).req_flags, KEVENT_REQ_ET);
		kt_expect_none(q);
	}
	kt_close_pair(q, rx, tx);
}

Test(delivery, k13_oneshot_delivered_once,
     .description = "K13: ONESHOT is delivered once, then removed")
{
	int q, rx, tx;

	q = kt_udp_watched(&rx, &tx, KEVENT_REQ_ONESHOT);
	kt_send(tx, 8);
	kt_next(q, KEVENT_SOCKET, (__u32)rx);
	kt_expect_none(q);
	kt_send(tx, 8);
	kt_expect_none(q);
	kt_assert_gone(q, kt_sock_ev(rx, KEVENT_SOCKET_RECV, 0));
	kt_close_pair(q, rx, tx);
}

Test(delivery, k14_last_check_drops_stale_event,
     .description = "K14: LAST_CHECK drops an event whose object is no longer ready")
{
	int q, rx, tx;

	q = kt_udp_watched(&rx, &tx, KEVENT_REQ_LAST_CHECK);
	kt_send(tx, 8);
	kt_wait_readable(rx);
	kt_drain(rx);
	kt_expect_none(q);

	/* It stayed registered: new data is delivered. */
	kt_send(tx, 8);
	cr_assert_eq(kt_next(q, KEVENT_SOCKET, (__u32)rx).event, KEVENT_SOCKET_RECV);
	kt_drain(rx);
	kt_done(q, KEVENT_CTL_REMOVE, kt_sock_ev(rx, KEVENT_SOCKET_RECV, 0));
	kt_close_pair(q, rx, tx);
}

/* Take what each of the nq queues has for socket fd now; *got gets a bit per queue. */
static int take_all(const int *q, int nq, int fd, unsigned int *got)
{
	struct ukevent ev[8];
	int i, n, total = 0;

	for (i = 0; i < nq; i++) {
		n = kt_get(q[i], 0, 8, ev, 0);
		cr_assert_geq(n, 0, "get_events = %d", n);
		cr_assert_eq(kt_count(ev, n, KEVENT_SOCKET, (__u32)fd), n, "a foreign event");
		if (n)
			*got |= 1u << i;
		total += n;
	}
	return total;
}

/*
 * K15 across queues: after one activity on socket fd, collect what the queues deliver for
 * it until something shows up, then once more after a quiet spell. Returns the number of
 * events in all; *got has a bit per queue that delivered one.
 */
static int collect_across(const int *q, int nq, int fd, unsigned int *got)
{
	int t, total = 0;

	*got = 0;
	for (t = 0; !total && t < KT_WAIT_MS / 10; t++) {
		total = take_all(q, nq, fd, got);
		if (!total)
			kt_sleep_ms(10);
	}
	kt_sleep_ms(KT_QUIET_MS);
	return total + take_all(q, nq, fd, got);
}

/*
 * On the BPF path one queue gets each event whether or not it sleeps; on the syscall path
 * only queues asleep share an event (EPOLLEXCLUSIVE), as k15_sleeping_queues_one_gets_it
 * checks on both.
 */
Test(delivery, k15_bpf_one_queue_gets_it_spread,
     .description = "K15: without WAKEUP_ALL one queue gets each event, spread across queues, "
		    "none of them asleep")
{
	unsigned int seen = 0, got;
	int q[2], rx, tx, i, n;

	kt_udp_pair(&rx, &tx);
	for (i = 0; i < 2; i++) {
		q[i] = kt_queue();
		kt_require_path(q[i], KEVENT_SOCKET, KEVENT_BACKEND_BPF);
		kt_add(q[i], kt_sock_ev(rx, KEVENT_SOCKET_RECV, KEVENT_REQ_ET));
	}
	for (i = 0; i < 20; i++) {
		kt_send(tx, 8);
		n = collect_across(q, 2, rx, &got);
		cr_assert_eq(n, 1, "round %d: %d events for one datagram (queues %#x)", i, n, got);
		seen |= got;
		kt_drain(rx);
	}
	cr_assert_eq(seen, 3, "20 datagrams all went to the same queue (%#x)", seen);
	for (i = 0; i < 2; i++)
		kt_close(q[i]);
	close(rx);
	close(tx);
}

Test(delivery, k15_bpf_eight_queues_share_a_listener,
     .description = "K15/K8: eight queues watch one listening socket; a connection goes to one, "
		    "none of them asleep")
{
	struct ukevent uk;
	unsigned int got;
	int q[8], l, c[4], i, r, n;

	l = kt_tcp_listener();
	for (i = 0; i < 8; i++) {
		q[i] = kt_queue();
		kt_require_path(q[i], KEVENT_SOCKET, KEVENT_BACKEND_BPF);
		uk = kt_sock_ev(l, KEVENT_SOCKET_ACCEPT, KEVENT_REQ_ET);
		kt_ctl1(q[i], KEVENT_CTL_ADD, &uk);
		cr_assert_eq(uk.ret_flags, 0, "queue %d: ret_flags %#x error %d", i, uk.ret_flags,
			     (int)uk.ret_data[1]);
	}
	for (r = 0; r < 4; r++) {
		c[r] = kt_tcp_connect(l);
		n = collect_across(q, 8, l, &got);
		cr_assert_eq(n, 1, "connection %d: %d ACCEPT events (queues %#x)", r, n, got);
		close(accept4(l, NULL, NULL, SOCK_CLOEXEC));
	}
	for (i = 0; i < 8; i++)
		kt_close(q[i]);
	for (r = 0; r < 4; r++)
		close(c[r]);
	close(l);
}

Test(delivery, k15_sleeping_queues_one_gets_it,
     .description = "K15: four queues asleep on one listening socket: a connection wakes one "
		    "and goes to it alone")
{
	struct kt_getter g[4];
	int q[4], l, c, i, woken = 0, events = 0;

	l = kt_tcp_listener();
	for (i = 0; i < 4; i++) {
		q[i] = kt_queue();
		kt_add(q[i], kt_sock_ev(l, KEVENT_SOCKET_ACCEPT, 0));
		kt_getter_start(&g[i], q[i], 1, KT_WAIT_MS);
	}
	for (i = 0; i < 4; i++)
		kt_getter_parked(&g[i]);
	c = kt_tcp_connect(l);
	for (i = 0; i < 4; i++) {
		cr_assert(kt_join_within(g[i].th, 2 * KT_WAIT_MS), "getter %d never returned", i);
		cr_assert_geq(g[i].ret, 0, "getter %d: %d", i, g[i].ret);
		woken += g[i].ret > 0;
		events += g[i].ret;
	}
	cr_assert_eq(woken, 1, "%d queues got the connection", woken);
	cr_assert_eq(events, 1, "%d events for one connection", events);
	for (i = 0; i < 4; i++)
		kt_close(q[i]);
	close(c);
	close(l);
}

Test(delivery, k15_wakeup_all_every_queue,
     .description = "K15: with WAKEUP_ALL every interested queue gets the event")
{
	unsigned int got;
	int q[2], rx, tx, i, n;

	kt_udp_pair(&rx, &tx);
	for (i = 0; i < 2; i++) {
		q[i] = kt_queue();
		kt_add(q[i], kt_sock_ev(rx, KEVENT_SOCKET_RECV,
					KEVENT_REQ_ET | KEVENT_REQ_WAKEUP_ALL));
	}
	for (i = 0; i < 5; i++) {
		kt_send(tx, 8);
		n = collect_across(q, 2, rx, &got);
		cr_assert_eq(got, 3, "round %d: not both queues (%#x)", i, got);
		cr_assert_eq(n, 2);
		kt_drain(rx);
	}
	for (i = 0; i < 2; i++)
		kt_close(q[i]);
	close(rx);
	close(tx);
}

Test(delivery, k15_one_thread_woken,
     .description = "K15: without WAKEUP_ALL an event wakes one waiting thread")
{
	struct kt_getter g[2];
	int q, first, other, i, j;

	q = kt_queue();
	kt_unotify_add(q, 1, 0);
	kt_getters_parked(g, 2, q, 1, 10000);
	kt_unotify_ready(q, 1);

	/* Exactly one returns with the event; find which. */
	for (first = -1, i = 0; first < 0 && i < KT_WAIT_MS / 50; i++)
		for (j = 0; j < 2 && first < 0; j++)
			if (kt_join_within(g[j].th, 25))
				first = j;
	cr_assert_geq(first, 0, "no thread woken by the event");
	other = !first;
	cr_assert_eq(g[first].ret, 1, "woken thread returned %d", g[first].ret);
	cr_assert_eq(g[first].buf[0].id.raw_u64, 1);
	cr_assert_not(kt_join_within(g[other].th, KT_QUIET_MS * 2),
		      "the other thread returned too (%d): a thundering herd", g[other].ret);
	/* Release it. */
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_READY, 0, NULL), 0);
	cr_assert(kt_join_within(g[other].th, KT_WAIT_MS), "READY(0) did not wake the other one");
	cr_assert_eq(g[other].ret, 0);
	kt_close(q);
}

Test(delivery, k15_wakeup_all_wakes_every_thread,
     .description = "K15: with WAKEUP_ALL an event wakes every waiting thread")
{
	struct kt_getter g[2];
	int q, i;

	q = kt_queue();
	kt_unotify_add(q, 1, KEVENT_REQ_WAKEUP_ALL);
	kt_getters_parked(g, 2, q, 1, 10000);
	kt_unotify_ready(q, 1);
	for (i = 0; i < 2; i++)
		cr_assert(kt_join_within(g[i].th, KT_WAIT_MS), "thread %d not woken", i);
	cr_assert(g[0].ret >= 0 && g[1].ret >= 0, "returns %d %d", g[0].ret, g[1].ret);
	cr_assert_eq(g[0].ret + g[1].ret, 1, "the event was delivered %d times",
		     g[0].ret + g[1].ret);
	kt_close(q);
}

Test(delivery, k16_zero_timeout_does_not_block, .description = "K16: timeout {0, 0} does not block")
{
	struct kt_getter g;
	int q;

	q = kt_queue();
	kt_unotify_add(q, 1, 0);
	kt_getter_start(&g, q, 1, 0);
	cr_assert(kt_join_within(g.th, KT_WAIT_MS), "get_events with {0, 0} blocked");
	cr_assert_eq(g.ret, 0);
	kt_close(q);
}

Test(delivery, k16_wait_forever, .description = "K16: tv_sec == -1 waits until an event comes")
{
	struct kt_getter g;
	int q;

	q = kt_queue();
	kt_unotify_add(q, 1, 0);
	kt_getter_blocked(&g, q);
	kt_unotify_ready(q, 1);
	cr_assert(kt_join_within(g.th, KT_WAIT_MS), "get_events(-1) missed the event");
	cr_assert_eq(g.ret, 1);
	cr_assert_eq(g.buf[0].id.raw_u64, 1);
	kt_close(q);
}

Test(delivery, k16_abstime,
     .description = "K16: KEVENT_FLAGS_ABSTIME is an absolute CLOCK_REALTIME time")
{
	struct timespec dl, now;
	struct ukevent ev[4];
	int q, r;

	q = kt_queue();
	kt_unotify_add(q, 1, 0);
	dl = kt_deadline(200);
	r = kevent_get_events(q, 1, 4, dl, ev, KEVENT_FLAGS_ABSTIME);
	clock_gettime(CLOCK_REALTIME, &now);
	cr_assert_eq(r, 0, "get_events(ABSTIME) = %d", r);
	/* Returned after the deadline (10 ms of slack for clock rounding), not at once. */
	cr_assert(now.tv_sec > dl.tv_sec ||
			  (now.tv_sec == dl.tv_sec && now.tv_nsec + 10000000L >= dl.tv_nsec) ||
			  (now.tv_sec + 1 == dl.tv_sec &&
			   now.tv_nsec + 10000000L >= dl.tv_nsec + 1000000000L),
		  "returned before the absolute deadline");

	/* A deadline in the past does not block. */
	r = kevent_get_events(q, 1, 4, now, ev, KEVENT_FLAGS_ABSTIME);
	cr_assert_eq(r, 0);
	kt_close(q);
}

Test(delivery, k16_min_nr_honoured, .description = "K16: get_events waits for min_nr events")
{
	struct kt_getter g;
	int q, i;

	q = kt_queue();
	for (i = 0; i < 3; i++)
		kt_unotify_add(q, i, 0);
	kt_getter_start(&g, q, 3, 10000);
	for (i = 0; i < 3; i++) {
		kt_sleep_ms(30);
		cr_assert_not(kt_join_within(g.th, 20), "returned %d with %d of 3 ready", g.ret, i);
		kt_unotify_ready(q, i);
	}
	cr_assert(kt_join_within(g.th, KT_WAIT_MS), "get_events(min_nr = 3) still waiting");
	cr_assert_eq(g.ret, 3, "get_events = %d", g.ret);
	for (i = 0; i < 3; i++)
		cr_assert_eq(kt_count(g.buf, 3, KEVENT_UNOTIFY, i), 1);
	kt_close(q);
}

Test(delivery, k16_min_nr_above_max_nr, .description = "K16: min_nr > max_nr is -EINVAL")
{
	struct ukevent ev[4];
	int q;

	q = kt_queue();
	errno = 0;
	cr_assert_eq(kt_get(q, 5, 4, ev, 0), -EINVAL);
	cr_assert_eq(errno, EINVAL);
	kt_close(q);
}

static void on_usr1(int sig)
{
	(void)sig;
}

Test(delivery, k16_signal_eintr, .description = "K16: a signal ends the wait with -EINTR")
{
	struct sigaction sa = { .sa_handler = on_usr1 }; /* no SA_RESTART */
	struct kt_getter g;
	int q, i;

	q = kt_queue();
	cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	kt_unotify_add(q, 1, 0);
	kt_getter_start(&g, q, 1, 10000);
	/* Signal until it returns: a signal that lands before it blocks is not a wake-up. */
	for (i = 0; i < KT_WAIT_MS / 50; i++) {
		pthread_kill(g.th, SIGUSR1);
		if (kt_join_within(g.th, 50))
			break;
	}
	cr_assert_lt(i, KT_WAIT_MS / 50, "the signal did not end the wait");
	cr_assert_eq(g.ret, -EINTR, "get_events = %d", g.ret);
	cr_assert_eq(g.err, EINTR);
	kt_close(q);
}

Test(delivery, k13_level_many_still_ready, .description = "K13: level mode with more objects still ready than one look takes: every call returns")
{
	enum { N = 300 };
	struct ukevent uk[N], ev[N];
	int sv[N][2], q, n;

	q = kt_queue();
	for (int i = 0; i < N; i++) {
		kt_unix_pair(SOCK_STREAM, sv[i]);
		uk[i] = kt_sock_ev(sv[i][0], KEVENT_SOCKET_RECV, 0);
	}
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_ADD, N, uk), N);
	for (int i = 0; i < N; i++)
		kt_send(sv[i][1], 1);
	/* Nothing read: every round must report ready sockets again, and return. */
	for (int round = 0; round < 3; round++) {
		n = kt_get(q, 1, N, ev, KT_WAIT_MS);
		cr_assert_gt(n, 0, "round %d returned %d", round, n);
	}
	for (int i = 0; i < N; i++) {
		close(sv[i][0]);
		close(sv[i][1]);
	}
	kt_close(q);
}

Test(delivery, k16_spin_then_sleep,
     .description = "K16: with kevent_set_spin a waiter still gets events, honours timeouts and sleeps")
{
	struct kt_getter g;
	struct ukevent ev[4];
	int q, rx, tx;

	q = kt_udp_watched(&rx, &tx, KEVENT_REQ_ET);
	cr_assert_eq(kevent_set_spin(q, KEVENT_MAX_SPIN_US + 1), -EINVAL);
	cr_assert_eq(kevent_set_spin(kt_closed_fd(), 10), -EBADF);
	cr_assert_eq(kevent_set_spin(q, 20000), 0);
	/* A timeout shorter than the spin ends the wait. */
	cr_assert_eq(kt_get(q, 1, 4, ev, 5), 0);
	/* An event that comes while the waiter spins, or after it fell asleep, is delivered. */
	kt_getter_start(&g, q, 1, KT_WAIT_MS);
	kt_sleep_ms(5);
	kt_send(tx, 4);
	cr_assert(kt_join_within(g.th, KT_WAIT_MS + 1000), "the spinning waiter never returned");
	cr_assert_eq(g.ret, 1);
	cr_assert_eq(g.buf[0].id.raw[0], (__u32)rx);
	kt_drain(rx);
	kt_getter_start(&g, q, 1, KT_WAIT_MS);
	kt_sleep_ms(100); /* past the spin: asleep in epoll_wait */
	kt_send(tx, 4);
	cr_assert(kt_join_within(g.th, KT_WAIT_MS + 1000), "the sleeping waiter never woke");
	cr_assert_eq(g.ret, 1);
	kt_close_pair(q, rx, tx);
}

/* A watched UDP pair on a queue with deferred wake-ups; this thread holds the lease. */
Test(delivery, k11_spinning_waiter_woken_by_ready_zero,
     .description = "K11/K16: a waiter spinning before it sleeps (kevent_set_spin) sees a "
		    "READY(0) during the spin and returns")
{
	struct kt_getter g;
	int q = kt_queue();

	cr_assert_eq(kevent_set_spin(q, KEVENT_MAX_SPIN_US), 0);
	kt_getter_start(&g, q, 1, -1);
	kt_sleep_ms(10); /* inside its spin (100 ms) */
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_READY, 0, NULL), 0);
	/* A hang guard: without the fix it would wait forever once the spin is over. */
	cr_assert(kt_join_within(g.th, KT_WAIT_MS), "the spinning waiter missed READY(0)");
	cr_assert_eq(g.ret, 0, "kevent_get_events = %d", g.ret);
	kt_close(q);
}

Test(delivery, k25_defer_wakeup_bad_input, .description = "K25: kevent_set_defer_wakeup() "
								"takes 0 or 1, on a queue")
{
	int q = kt_queue();

	cr_assert_eq(kevent_set_defer_wakeup(q, 2), -EINVAL);
	cr_assert_eq(kevent_set_defer_wakeup(kt_closed_fd(), 1), -EBADF);
	cr_assert_eq(kevent_set_defer_wakeup(q, 0), 0);
	cr_assert_eq(kevent_set_defer_wakeup(q, 1), 0);
	kt_close(q);
}

Test(delivery, k15_sleeper_woken_after_another_thread_returned,
     .description = "K15/K2: a thread asleep in the queue is woken by an event that arrives "
		    "after another thread's call returned events (and held the ring back)")
{
	struct ukevent ev[4];
	struct kt_getter g;
	int rx, tx, q = kt_udp_watched(&rx, &tx, KEVENT_REQ_ET);

	kt_send(tx, 4);
	cr_assert_eq(kt_get(q, 1, 4, ev, KT_WAIT_MS), 1);
	kt_drain(rx);
	kt_getter_start(&g, q, 1, -1);
	kt_getter_parked(&g);
	kt_send(tx, 4);
	cr_assert(kt_join_within(g.th, KT_WAIT_MS), "the sleeping thread was not woken");
	cr_assert_eq(g.ret, 1);
	cr_assert_eq(g.buf[0].id.raw[0], (__u32)rx);
	kt_close_pair(q, rx, tx);
}

Test(delivery, k13_level_survives_modify,
     .description = "K13/K8: level mode stays level after MODIFY to RECV|SEND and back to RECV: "
		    "unread data is delivered at every wait")
{
	struct ukevent uk, ev[4];
	int q = kt_queue(), a, b;

	kt_tcp_pair(&a, &b);
	uk = kt_sock_ev(a, KEVENT_SOCKET_RECV, 0);
	kt_add(q, uk);
	kt_send(b, 1);
	kt_next(q, KEVENT_SOCKET, (__u32)a);
	kt_drain(a);
	kt_expect_none(q);
	uk.event = KEVENT_SOCKET_RECV | KEVENT_SOCKET_SEND;
	kt_done(q, KEVENT_CTL_MODIFY, uk);
	uk.event = KEVENT_SOCKET_RECV;
	kt_done(q, KEVENT_CTL_MODIFY, uk);
	/* Whatever MODIFY queued (the socket was writable), then new data, left unread. */
	kt_get(q, 0, 4, ev, 0);
	kt_send(b, 1);
	for (int round = 0; round < 3; round++)
		cr_assert_eq(kt_next(q, KEVENT_SOCKET, (__u32)a).event, KEVENT_SOCKET_RECV,
			     "round %d: unread data not delivered again", round);
	kt_close_pair(q, a, b);
}

/* CPU time this thread has used, in ms. */
static long kt_thread_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

Test(delivery, k13_send_only_peer_shutdown_no_busy_loop,
     .description = "K13/K16: a SEND interest on a full socket whose peer shut its write side: "
		    "the wait sleeps (no event, no busy loop)")
{
	int q = kt_queue(), a, b, small = 4096, n;
	char buf[4096] = { 0 };
	struct ukevent ev[4];
	long cpu;

	kt_tcp_pair(&a, &b);
	setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(b, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	kt_add(q, kt_sock_ev(a, KEVENT_SOCKET_SEND, KEVENT_REQ_ALWAYS_QUEUE));
	kt_next(q, KEVENT_SOCKET, (__u32)a); /* delivered once, in level mode */
	fcntl(a, F_SETFL, O_NONBLOCK);
	/* Full until the peer reads, which it never does: its receive buffer fills too. */
	for (int quiet = 0; quiet < 3;) {
		quiet = send(a, buf, sizeof(buf), MSG_NOSIGNAL) > 0 ? 0 : quiet + 1;
		if (quiet)
			kt_sleep_ms(10);
	}
	kt_get(q, 0, 4, ev, 0);
	shutdown(b, SHUT_WR);
	kt_sleep_ms(20);
	cpu = kt_thread_cpu_ms();
	n = kt_get(q, 1, 4, ev, 300);
	cpu = kt_thread_cpu_ms() - cpu;
	cr_assert_eq(n, 0, "an event for a socket that cannot take data: %#x", ev[0].event);
	/* A generous bound, not a timing: a loop around a ready epoll set burns all 300 ms. */
	cr_assert_lt(cpu, 100, "the wait used %ld ms of CPU in 300 ms", cpu);
	kt_close_pair(q, a, b);
}

Test(delivery, k13_level_data_before_add,
     .description = "K13/K9: data queued before the ADD (ALWAYS_QUEUE, level) is delivered, and "
		    "again at every wait while unread")
{
	int q = kt_queue(), rx, tx;

	kt_udp_pair(&rx, &tx);
	kt_send(tx, 8);
	kt_wait_readable(rx);
	kt_add(q, kt_sock_ev(rx, KEVENT_SOCKET_RECV, KEVENT_REQ_ALWAYS_QUEUE));
	for (int i = 0; i < 3; i++)
		cr_assert_eq(kt_next(q, KEVENT_SOCKET, (__u32)rx).event, KEVENT_SOCKET_RECV,
			     "delivery %d", i);
	kt_drain(rx);
	kt_expect_none(q);
	kt_close_pair(q, rx, tx);
}
