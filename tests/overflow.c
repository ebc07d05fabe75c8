// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * No event is lost silently (K24): more events than the kernel-side ring buffer holds. On
 * the syscall path (K26) the same burst goes through epoll, and must lose nothing either.
 */
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(overflow, .timeout = 60);

#define NSOCK 8000 /* the BPF ring buffer of a queue holds about 5000 records */

/*
 * NSOCK UDP sockets watched by one queue with req_flags, one datagram each sent while
 * nobody consumes, then harvested: every socket must be reported and the overflow counted.
 * Assertions stay out of the per-event loops (Criterion reports every assertion).
 */
static void overflow_round(__u32 req_flags)
{
	struct rlimit rl = { .rlim_cur = 20000, .rlim_max = 20000 };
	struct sockaddr_in *addr = calloc(NSOCK, sizeof(*addr));
	struct pollfd *pfd = calloc(NSOCK, sizeof(*pfd));
	struct ukevent *uk = calloc(NSOCK, sizeof(*uk));
	struct ukevent *ev = calloc(8192, sizeof(*ev));
	int *fds = calloc(NSOCK, sizeof(*fds));
	int tx, q, i, n, round, bad = 0, maxfd = 0, got = 0;
	struct kevent_stats st;
	unsigned char *seen;

	cr_assert(addr && pfd && uk && ev && fds);
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0, "setrlimit: %m");
	q = kt_queue();
	tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(tx, 0);
	for (i = 0; i < NSOCK; i++) {
		fds[i] = kt_udp_socket(&addr[i]);
		if (fds[i] > maxfd)
			maxfd = fds[i];
		uk[i] = kt_sock_ev(fds[i], KEVENT_SOCKET_RECV, req_flags);
	}
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_ADD, NSOCK, uk), NSOCK);
	for (i = 0; i < NSOCK; i++)
		bad += uk[i].ret_flags != 0;
	cr_assert_eq(bad, 0, "%d sockets not registered (first error %d)", bad,
		     (int)uk[0].ret_data[1]);

	/* One datagram each, nobody consuming: the kernel ring buffer overflows. */
	for (i = 0; i < NSOCK; i++)
		bad += sendto(tx, "x", 1, 0, (struct sockaddr *)&addr[i], sizeof(addr[i])) != 1;
	cr_assert_eq(bad, 0, "%d sendto failed", bad);
	/* Loopback may drop under load (backlog): make sure every socket holds its datagram. */
	for (i = 0; i < NSOCK; i++)
		pfd[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	for (round = 0; round < 20; round++) {
		int missing = 0;

		cr_assert_geq(poll(pfd, NSOCK, 0), 0);
		for (i = 0; i < NSOCK; i++)
			if (!(pfd[i].revents & POLLIN)) {
				missing++;
				sendto(tx, "x", 1, 0, (struct sockaddr *)&addr[i], sizeof(addr[i]));
			}
		if (!missing)
			break;
		kt_sleep_ms(50);
	}
	cr_assert_lt(round, 20, "datagrams keep getting lost on loopback");

	seen = calloc(maxfd + 1, 1);
	cr_assert_not_null(seen);
	/* Level mode redelivers what was seen: bound the rounds, not only the wait. */
	for (round = 0; got < NSOCK && round < 50; round++) {
		n = kt_get(q, 1, 8192, ev, KT_WAIT_MS);
		cr_assert_geq(n, 0, "get_events = %d", n);
		if (!n)
			break;
		for (i = 0; i < n; i++) {
			int fd = (int)ev[i].id.raw[0];

			if (ev[i].type != KEVENT_SOCKET || ev[i].event != KEVENT_SOCKET_RECV ||
			    ev[i].ret_flags || fd < 0 || fd > maxfd) {
				bad++;
			} else if (!seen[fd]) {
				seen[fd] = 1;
				got++;
			}
		}
	}
	cr_assert_eq(bad, 0, "%d malformed events", bad);
	cr_assert_eq(got, NSOCK, "only %d of %d sockets were reported", got, NSOCK);
	cr_assert_eq(kevent_stats(q, &st), 0);
	if (kevent_backend(q, KEVENT_SOCKET) == KEVENT_BACKEND_BPF)
		cr_assert_gt(st.ring_overflows, 0, "the overflow was not counted (bpf_records %llu)",
			     (unsigned long long)st.bpf_records);
	cr_assert_eq(st.interests, NSOCK, "interests %llu", (unsigned long long)st.interests);

	kt_close(q);
	for (i = 0; i < NSOCK; i++)
		close(fds[i]);
	close(tx);
	free(seen);
	free(ev);
	free(uk);
	free(pfd);
	free(addr);
	free(fds);
}

Test(overflow, k24_overflow_level_loses_nothing,
     .description = "K24: a kernel ring buffer overflow is counted and loses no level event "
		    "(syscall path: the burst loses none)")
{
	overflow_round(0);
}

Test(overflow, k24_overflow_et_loses_nothing,
     .description = "K24: a kernel ring buffer overflow loses no edge-triggered event "
		    "(syscall path: the burst loses none)")
{
	overflow_round(KEVENT_REQ_ET);
}
