// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Queues and rings: kevent_init arguments (K1), the pollable queue descriptor and
 * kevent_close (K2), and the missing-privilege path (K26).
 */
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(queue, .timeout = KT_TEST_TIMEOUT);

Test(queue, k1_init_without_ring, .description = "K1: kevent_init(NULL, 0, 0) makes a queue")
{
	struct ukevent ev[4];
	int q;

	q = kevent_init(NULL, 0, 0);
	cr_assert_geq(q, 0, "kevent_init = %d", q);
	cr_assert_neq(fcntl(q, F_GETFD), -1, "the queue is a real descriptor");
	kt_unotify_queued(q, 1);
	cr_assert_eq(kt_get_some(q, ev, 4), 1);
	kt_close(q);
}

Test(queue, k1_init_ring_sizes, .description = "K1: rings of run-time sizes; indexes start at 0")
{
	static const unsigned int sizes[] = { 2, 3, 1000 };
	unsigned int i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct kevent_ring *ring;
		struct ukevent ev[8];
		unsigned int n = sizes[i], j;
		int q = kt_queue_ring(&ring, n);

		cr_assert_eq(ring->ring_kidx, 0, "ring of %u: ring_kidx %u", n, ring->ring_kidx);
		cr_assert_eq(ring->ring_over, 0, "ring of %u: ring_over %u", n, ring->ring_over);
		/* Two events into the ring: ring_kidx moves mod n (a ring of 2 wraps to 0). */
		for (j = 0; j < 2; j++)
			kt_unotify_queued(q, j);
		cr_assert_eq(kt_get(q, 2, 8, ev, KT_WAIT_MS), 2);
		cr_assert_eq(ring->ring_kidx, 2 % n, "ring of %u: ring_kidx %u after 2 events", n,
			     ring->ring_kidx);
		kt_close_ring(q, ring);
	}
}

Test(queue, k1_init_bad_arguments, .description = "K1: bad ring arguments and flags are -EINVAL")
{
	struct kevent_ring *ring = malloc(sizeof(*ring) + 4 * sizeof(struct ukevent));
	struct {
		struct kevent_ring *ring;
		unsigned int n, flags;
	} bad[] = {
		{ NULL, 4, 0 },	   /* a size without a ring */
		{ ring, 0, 0 },	   /* a ring without a size */
		{ ring, 1, 0 },	   /* a ring of one */
		{ ring, KEVENT_MAX_BATCH + 1, 0 },
		{ NULL, 0, 2 },	   /* unknown flags */
		{ NULL, 0, 0x80000000u },
		{ ring, 4, 2 | KEVENT_INIT_BPF },
	};
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r;

		errno = 0;
		r = kevent_init(bad[i].ring, bad[i].n, bad[i].flags);
		cr_assert_eq(r, -EINVAL, "case %u: kevent_init = %d, want -EINVAL", i, r);
		cr_assert_eq(errno, EINVAL, "case %u: errno %d", i, errno);
	}
	free(ring);
}

Test(queue, k2_poll_reports_ready, .description = "K2: the queue fd polls POLLIN only when ready")
{
	struct pollfd p;
	struct ukevent ev[4];
	int q = -1;

	q = kt_queue();
	p = (struct pollfd){ .fd = q, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, 0), 0, "fresh queue: poll reports %#x", p.revents);

	kt_unotify_add(q, 7, 0);
	kt_unotify_ready(q, 7);
	cr_assert_eq(poll(&p, 1, KT_WAIT_MS), 1, "ready queue: no POLLIN");
	cr_assert(p.revents & POLLIN, "revents %#x", p.revents);

	cr_assert_eq(kt_get(q, 1, 4, ev, 0), 1);
	p.revents = 0;
	cr_assert_eq(poll(&p, 1, 0), 0, "drained queue: poll still reports %#x", p.revents);
	kt_close(q);
}

Test(queue, k2_poll_socket_data,
     .description = "K2: data on a watched socket makes the queue fd readable")
{
	struct pollfd p;
	struct ukevent ev[4];
	int q, rx, tx;

	q = kt_udp_watched(&rx, &tx, 0);
	p = (struct pollfd){ .fd = q, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, 0), 0, "nothing ready yet, poll reports %#x", p.revents);

	kt_send(tx, 10);
	cr_assert_eq(poll(&p, 1, KT_WAIT_MS), 1, "no POLLIN after a datagram arrived");
	cr_assert(p.revents & POLLIN);
	cr_assert_eq(kt_get(q, 1, 4, ev, 0), 1, "POLLIN but get_events has nothing");
	cr_assert_eq(ev[0].id.raw[0], (__u32)rx);
	kt_close_pair(q, rx, tx);
}

Test(queue, k2_at_most_one_spurious_pollin,
     .description = "K2: after a call that returned events, the queue fd may poll POLLIN once "
		    "with nothing to deliver; once a call returned nothing, it does not")
{
	struct pollfd p;
	struct ukevent ev[4];
	int q, rx, tx;

	q = kt_udp_watched(&rx, &tx, 0);
	kt_send(tx, 10);
	cr_assert_eq(kt_get_some(q, ev, 4), 1);
	kt_drain(rx);
	p = (struct pollfd){ .fd = q, .events = POLLIN };
	if (poll(&p, 1, 0) == 1)
		cr_assert_eq(kt_get(q, 0, 4, ev, 0), 0, "a spurious POLLIN, and an event after all");
	cr_assert_eq(poll(&p, 1, 0), 0, "POLLIN again with nothing ready: an outer loop would spin");
	kt_close_pair(q, rx, tx);
}

/*
 * rounds times: an event arrives while no thread is in a call, right after a call that
 * returned events (the ring is held back then); an outer epoll set (flags: EPOLLET or 0)
 * must report the queue every time. A report with nothing to deliver may come, but not
 * twice in a row.
 */
static void kt_outer_poller_rounds(int q, uint32_t flags, int rounds)
{
	struct epoll_event ee = { .events = EPOLLIN | flags }, out;
	int ep = epoll_create1(EPOLL_CLOEXEC), rx, tx, r, empty = 0;
	struct ukevent ev[4];

	cr_assert_geq(ep, 0);
	kt_udp_pair(&rx, &tx);
	kt_add(q, kt_sock_ev(rx, KEVENT_SOCKET_RECV, KEVENT_REQ_ET));
	cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, q, &ee), 0);
	kt_send(tx, 1);
	for (r = 0; r < rounds; r++) {
		cr_assert_eq(epoll_wait(ep, &out, 1, KT_WAIT_MS), 1, "round %d: the outer poller "
			     "slept through an event", r);
		if (kt_get(q, 0, 4, ev, 0) == 0) {
			cr_assert_lt(++empty, 2, "round %d: two empty reports in a row", r);
			continue;
		}
		empty = 0;
		kt_drain(rx);
		kt_send(tx, 1); /* between calls, right after one that returned events */
	}
	close(ep);
	close(rx);
	close(tx);
}

Test(queue, k2_outside_poller_never_misses,
     .description = "K2: a level-triggered outer epoll sees every event that arrives between "
		    "calls, while the queue holds its ring back")
{
	int q = kt_queue();

	kt_outer_poller_rounds(q, 0, 200);
	kt_close(q);
}

Test(queue, k2_edge_poller_with_defer_off,
     .description = "K2: an edge-triggered outer epoll sees every event once "
		    "kevent_set_defer_wakeup(fd, 0) asks for an edge at every record")
{
	int q = kt_queue();

	cr_assert_eq(kevent_set_defer_wakeup(q, 0), 0);
	kt_outer_poller_rounds(q, EPOLLET, 200);
	kt_close(q);
}

Test(queue, k2_queue_in_epoll_set, .description = "K2: a queue sits inside an epoll set")
{
	struct epoll_event ee = { .events = EPOLLIN, .data.u64 = 0x1234 }, out[2];
	int q, ep;

	q = kt_queue();
	ep = epoll_create1(EPOLL_CLOEXEC);
	cr_assert_geq(ep, 0);
	cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, q, &ee), 0, "epoll_ctl(queue fd): %m");
	cr_assert_eq(epoll_wait(ep, out, 2, 0), 0, "epoll reports an empty queue as ready");

	kt_unotify_add(q, 3, 0);
	kt_unotify_ready(q, 3);
	cr_assert_eq(epoll_wait(ep, out, 2, KT_WAIT_MS), 1, "epoll: queue not reported ready");
	cr_assert(out[0].events & EPOLLIN);
	cr_assert_eq(out[0].data.u64, 0x1234);
	close(ep);
	kt_close(q);
}

Test(queue, k2_close_releases_everything,
     .description = "K2: kevent_close releases the fd and all it holds")
{
	struct kevent_ring *ring;
	int q, base, i, rx[4], tx[4];

	/* A first queue loads what the process shares; count descriptors after that. */
	kt_close(kt_queue());
	for (i = 0; i < 4; i++)
		kt_udp_pair(&rx[i], &tx[i]);
	base = kt_fd_count();

	q = kt_queue_ring(&ring, 16);
	for (i = 0; i < 8; i++) {
		struct ukevent uk = kt_sock_ev(rx[i / 2], KEVENT_SOCKET_RECV, 0);

		uk.user[0] = i; /* two interests per socket */
		kt_add(q, uk);
	}
	kt_unotify_queued(q, 1);
	kt_close(q);
	cr_assert_eq(fcntl(q, F_GETFD), -1, "the queue fd is still open after kevent_close");
	cr_assert_eq(kt_fd_count(), base, "descriptors leaked by a closed queue");
	free(ring);
	for (i = 0; i < 4; i++) {
		close(rx[i]);
		close(tx[i]);
	}
}

Test(queue, k2_close_wakes_waiters,
     .description = "K2/K25: kevent_close ends a wait on the queue with -EBADF")
{
	struct kt_getter g;
	int q;

	q = kt_queue();
	kt_unotify_add(q, 1, 0);
	kt_getter_blocked(&g, q);
	kt_close(q);
	cr_assert(kt_join_within(g.th, KT_WAIT_MS), "a thread still waits on a closed queue");
	cr_assert_eq(g.ret, -EBADF, "get_events on a queue closed meanwhile = %d", g.ret);
}

/*
 * K26 without privilege, in a child that drops every capability: what flags gets from
 * kevent_init (a queue, or -errno), whether a UDP datagram then comes through a socket
 * interest, which path kevent_backend() names, and what went to stderr.
 */
struct k26_result {
	int init, backend, delivered;
	char msg[2048];
};

static void k26_child(unsigned int flags, int out)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	struct k26_result r = { .backend = -1 };
	struct ukevent ev[2], uk = { .type = KEVENT_SOCKET, .event = KEVENT_SOCKET_RECV };
	int q, sv[2];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data))
		_exit(2);
	unsetenv("KEVENT_BACKEND"); /* the privilege decides here, whatever the run forces */
	q = kevent_init(NULL, 0, flags);
	r.init = q < 0 ? q : 0;
	if (q >= 0) {
		r.backend = kevent_backend(q, KEVENT_SOCKET);
		if (!socketpair(AF_UNIX, SOCK_DGRAM, 0, sv)) {
			uk.id.raw[0] = (__u32)sv[0];
			if (kevent_ctl(q, KEVENT_CTL_ADD, 1, &uk) == 1 && !uk.ret_flags &&
			    send(sv[1], "k26", 3, 0) == 3)
				r.delivered = kevent_get_events(q, 1, 2, (struct timespec){ 2, 0 },
								ev, 0);
		}
	}
	if (write(out, &r, sizeof(r)) != sizeof(r))
		_exit(3);
	_exit(0);
}

/* Run k26_child() with flags; its stderr lands in r->msg. */
static void k26_run(unsigned int flags, struct k26_result *r)
{
	int res[2], err[2], status;
	ssize_t len = 0, n;
	pid_t pid;

	cr_assert_eq(pipe2(res, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(err, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %m");
	if (pid == 0) {
		dup2(err[1], STDERR_FILENO);
		k26_child(flags, res[1]);
	}
	close(res[1]);
	close(err[1]);
	memset(r, 0, sizeof(*r));
	cr_assert_eq(read(res[0], r, sizeof(*r)), (ssize_t)sizeof(*r), "no result from the child");
	while ((n = read(err[0], r->msg + len, sizeof(r->msg) - 1 - len)) > 0)
		len += n;
	r->msg[len] = 0;
	close(res[0]);
	close(err[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && !WEXITSTATUS(status), "child failed (status %#x)", status);
}

Test(queue, k26_no_privilege_falls_back,
     .description = "K26: without CAP_BPF kevent_init succeeds silently, and a socket runs on "
		    "the syscall path and delivers")
{
	struct k26_result r;

	k26_run(0, &r);
	cr_assert_eq(r.init, 0, "kevent_init without privilege = %d", r.init);
	cr_assert_eq(r.backend, KEVENT_BACKEND_SYSCALL, "kevent_backend = %d", r.backend);
	cr_assert_eq(r.delivered, 1, "the message was not delivered (%d)", r.delivered);
	cr_assert_str_empty(r.msg, "the fallback is not silent: \"%s\"", r.msg);
}

Test(queue, k26_required_bpf_without_privilege_eperm,
     .description = "K26: KEVENT_INIT_BPF without CAP_BPF is -EPERM with one line")
{
	struct k26_result r;
	size_t len;

	k26_run(KEVENT_INIT_BPF, &r);
	cr_assert_eq(r.init, -EPERM, "kevent_init(KEVENT_INIT_BPF) without privilege = %d", r.init);
	len = strlen(r.msg);
	cr_assert(len > 1 && strchr(r.msg, '\n') == r.msg + len - 1,
		  "want exactly one line on stderr, got \"%s\"", r.msg);
	cr_assert(strstr(r.msg, "CAP_BPF"), "the message does not say what is missing: \"%s\"",
		  r.msg);
}

/*
 * Issue 10 item 17: event-loop suites run under RLIMIT_NOFILE 20 (libevent's test-fdleak).
 * There a queue and a socket interest work: what the BPF side would need does not fit, so
 * sockets take their fallback, which needs no descriptor of its own (K26).
 */
Test(queue, k26_low_descriptor_limit_takes_fallback,
     .description = "K26/K2: under RLIMIT_NOFILE 20 kevent_init succeeds and a socket interest "
		    "works, on the syscall path")
{
	struct k26_result r;
	int res[2], status;
	pid_t pid;

	cr_assert_eq(pipe2(res, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct rlimit rl = { 20, 20 };
		struct ukevent ev[2], uk = { .type = KEVENT_SOCKET, .event = KEVENT_SOCKET_RECV };
		int q, sv[2];

		memset(&r, 0, sizeof(r));
		for (int fd = 3; fd < 1024; fd++)
			if (fd != res[1])
				close(fd);
		if (dup2(res[1], 3) != 3 || setrlimit(RLIMIT_NOFILE, &rl))
			_exit(2);
		unsetenv("KEVENT_BACKEND"); /* the limit decides here, whatever the run forces */
		q = kevent_init(NULL, 0, 0);
		r.init = q < 0 ? q : 0;
		if (q >= 0 && !socketpair(AF_UNIX, SOCK_DGRAM, 0, sv)) {
			uk.id.raw[0] = (__u32)sv[0];
			if (kevent_ctl(q, KEVENT_CTL_ADD, 1, &uk) == 1 && !uk.ret_flags &&
			    send(sv[1], "k26", 3, 0) == 3)
				r.delivered = kevent_get_events(q, 1, 2, (struct timespec){ 2, 0 },
								ev, 0);
			r.backend = kevent_backend(q, KEVENT_SOCKET);
		}
		_exit(write(3, &r, sizeof(r)) == sizeof(r) ? 0 : 3);
	}
	close(res[1]);
	cr_assert_eq(read(res[0], &r, sizeof(r)), (ssize_t)sizeof(r), "no result from the child");
	close(res[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && !WEXITSTATUS(status), "child failed (status %#x)", status);
	cr_assert_eq(r.init, 0, "kevent_init under a limit of 20 = %d", r.init);
	cr_assert_eq(r.delivered, 1, "the message was not delivered (%d)", r.delivered);
	cr_assert_eq(r.backend, KEVENT_BACKEND_SYSCALL, "kevent_backend = %d", r.backend);
}

Test(queue, k25_queue_closed_with_close,
     .description = "K25: a queue descriptor closed with close() and its number reused: a wait "
		    "on the number is -EINVAL (not a queue), and a new queue on it is a new queue")
{
	struct ukevent ev[4];
	int q = kt_queue(), s, q2;

	kt_unotify_add(q, 1, 0);
	close(q);
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(s, q, "the number was not reused (%d)", s);
	cr_assert_eq(kt_get(q, 1, 4, ev, 50), -EINVAL, "a wait on a socket acted on the dead queue");
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_READY, 0, NULL), -EINVAL, "the dead queue is still there");
	close(s);
	q = kt_queue();
	close(q);
	q2 = kt_queue();
	cr_assert_eq(q2, q);
	kt_ctl_fails(q2, KEVENT_CTL_REMOVE, kt_unotify_ev(1, 0), ENOENT);
	kt_close(q2);
}
