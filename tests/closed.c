// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Descriptors closed without REMOVE (K17, K18, K21, K25): servers close sockets, pipes and
 * files without telling the queue. What their interests held (slots, kernel watches,
 * epoll registrations, memory) must be released within a bounded time, and nothing may
 * be delivered for them.
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "src_helpers.h"

TestSuite(closed, .timeout = KT_TEST_TIMEOUT);

static unsigned long long kt_interests(int q)
{
	struct kevent_stats st;

	cr_assert_eq(kevent_stats(q, &st), 0);
	return st.interests;
}

/*
 * The queue's interests come back to `want` while it keeps being used (short waits), within
 * KT_WAIT_MS (a hang guard). Nothing may be delivered meanwhile.
 */
static void kt_interests_return_to(int q, unsigned long long want)
{
	struct ukevent ev[8];
	int i, n;

	for (i = 0; i < KT_WAIT_MS / 20 && kt_interests(q) != want; i++) {
		n = kt_get(q, 1, 8, ev, 20);
		cr_assert_leq(n, 0, "an event for a closed descriptor: type %u id %llu", ev[0].type,
			      (unsigned long long)ev[0].id.raw_u64);
	}
	cr_assert_eq(kt_interests(q), want, "%llu interests of closed descriptors stayed",
		     kt_interests(q) - want);
}

#define KT_CYCLES 50

Test(closed, k17_k21_closed_without_remove_released,
     .description = "K17/K21: 50 cycles each of AF_UNIX, UDP and TCP sockets and of polled "
		    "pipes, added then closed without REMOVE: the interests go")
{
	int q = kt_queue(), sv[2], a, b, p[2];
	unsigned long long base;

	kt_unotify_add(q, 1, 0); /* something that stays */
	base = kt_interests(q);
	for (int i = 0; i < KT_CYCLES; i++) {
		kt_unix_pair(SOCK_STREAM, sv);
		kt_add(q, kt_sock_ev(sv[0], KEVENT_SOCKET_RECV, 0));
		close(sv[0]);
		close(sv[1]);
		kt_udp_pair(&a, &b);
		kt_add(q, kt_sock_ev(a, KEVENT_SOCKET_RECV, KEVENT_REQ_ET));
		close(a);
		close(b);
		kt_tcp_pair(&a, &b);
		kt_add(q, kt_sock_ev(a, KEVENT_SOCKET_RECV | KEVENT_SOCKET_SEND,
				     KEVENT_REQ_ALWAYS_QUEUE));
		close(a);
		close(b);
		kt_pipe(p);
		kt_add(q, kt_poll_ev(p[0], POLLIN, 0));
		close(p[0]);
		close(p[1]);
	}
	kt_interests_return_to(q, base);
	kt_close(q);
}

Test(closed, k17_closed_numbers_not_reused,
     .description = "K17: sockets closed without REMOVE whose numbers stay free are released "
		    "too (the sweep)")
{
	int q = kt_queue(), fds[16][2];
	unsigned long long base = kt_interests(q);

	for (int i = 0; i < 16; i++) {
		kt_unix_pair(SOCK_DGRAM, fds[i]);
		kt_add(q, kt_sock_ev(fds[i][0], KEVENT_SOCKET_RECV, 0));
	}
	/* Closed last, all at once: nothing reuses the numbers before the sweep sees them. */
	for (int i = 0; i < 16; i++) {
		close(fds[i][0]);
		close(fds[i][1]);
	}
	kt_interests_return_to(q, base);
	kt_close(q);
}

Test(closed, k18_inode_closed_released,
     .description = "K18/K25: an inode interest whose descriptor is closed without REMOVE goes")
{
	struct ukevent uk = kt_fd_ev(KEVENT_INODE, -1, KEVENT_INODE_CREATE, 0);
	int q = kt_queue(), dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	unsigned long long base = kt_interests(q);

	cr_assert_geq(dir, 0);
	uk.id.raw[0] = (__u32)dir;
	kt_add(q, uk);
	close(dir);
	kt_interests_return_to(q, base);
	kt_close(q);
}

Test(closed, k21_readd_after_dup_close_remove,
     .description = "K21/K8: d = dup(p), POLL ADD on d, close(d), REMOVE on d, dup2(p, d): "
		    "ADD on d registers again (no EEXIST), MODIFY finds it, and it fires")
{
	int p[2], d;
	int q = kt_queue();
	struct ukevent uk;

	kt_pipe(p);
	d = dup(p[0]);
	cr_assert_geq(d, 0);
	uk = kt_poll_ev(d, POLLIN, 0);
	kt_add(q, uk);
	close(d);
	kt_ctl1(q, KEVENT_CTL_REMOVE, &uk);
	cr_assert_eq(dup2(p[0], d), d);
	kt_add(q, uk);
	kt_done(q, KEVENT_CTL_MODIFY, uk);
	cr_assert_eq(write(p[1], "x", 1), 1);
	cr_assert_eq(kt_next(q, KEVENT_POLL, (__u32)d).ret_data[0] & POLLIN, POLLIN);
	close(d);
	kt_close_pair(q, p[0], p[1]);
}
