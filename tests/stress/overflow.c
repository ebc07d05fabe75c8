// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Stress (a), K24: millions of events through a deliberately small kernel ring buffer, every
 * one accounted for.
 *
 * S AF_UNIX datagram sockets, bound to abstract names, are watched (RECV, edge-triggered)
 * by one queue whose kernel ring buffer holds far fewer records than S (KEVENT_RINGBUF_KB,
 * 4 KiB: 85 records). A round sends one datagram to each socket with sendmmsg() while
 * nobody consumes, so most pushes find the ring full; then it collects events until every
 * socket of the round was delivered once.
 *
 * Why the books must balance exactly: an AF_UNIX datagram is never dropped (a full receiver
 * fails the send instead), so each datagram is one sk_data_ready; nothing is pending on the
 * socket's slot then (the previous round delivered it), so each is one push attempt, which
 * lands in the ring (a record the library reads) or is counted as an overflow (recovered
 * from the slot). Hence: every socket delivered exactly once per round, delivered == sent,
 * and bpf_records + ring_overflows == sent.
 *
 * usage: overflow [-n events] [-s sockets] [-k ring_kb]      (defaults 10M, 1024, 4)
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "stress.h"

/* A receiver queues at most net.unix.max_dgram_qlen (10 by default) datagrams: drain first. */
#define OV_DRAIN_ROUNDS 8
/* A wait that ends with nothing while events are due is counted as late (a missed wake-up). */
#define OV_WAIT_MS	1000
/* A round still incomplete after this long has lost events: stop. */
#define OV_GIVE_UP_S	60
#define OV_BATCH	1024 /* sendmmsg() takes at most UIO_MAXIOV messages */

struct ov {
	unsigned int nsock;
	int q, tx;
	int *fds;
	struct sockaddr_un *addr;
	socklen_t *alen;
	struct mmsghdr *msgs;
	struct iovec iov;
	unsigned int *seen; /* round + 1 in which each socket was last delivered */
	struct ukevent *ev;
	char byte, sink[OV_DRAIN_ROUNDS + 2];
	/* tallies */
	uint64_t sent, delivered, late;
};

static void ov_bind(struct ov *o, unsigned int i)
{
	struct sockaddr_un *a = &o->addr[i];
	int n, fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		st_setup_fail("socket(AF_UNIX): %s", strerror(errno));
	a->sun_family = AF_UNIX;
	/* Abstract: no file to clean up, and the pid keeps concurrent runs apart. */
	n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "kev-stress-%d-%u", getpid(), i);
	o->alen[i] = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	if (bind(fd, (struct sockaddr *)a, o->alen[i]))
		st_setup_fail("bind(AF_UNIX abstract): %s", strerror(errno));
	o->fds[i] = fd;
}

/* Sockets, their messages, and one ET RECV interest each (user = the socket's index). */
static void ov_setup(struct ov *o)
{
	struct ukevent *uk = calloc(o->nsock, sizeof(*uk));
	int big = 64 << 20;

	o->fds = calloc(o->nsock, sizeof(*o->fds));
	o->addr = calloc(o->nsock, sizeof(*o->addr));
	o->alen = calloc(o->nsock, sizeof(*o->alen));
	o->msgs = calloc(o->nsock, sizeof(*o->msgs));
	o->seen = calloc(o->nsock, sizeof(*o->seen));
	o->ev = calloc(o->nsock, sizeof(*o->ev));
	if (!uk || !o->fds || !o->addr || !o->alen || !o->msgs || !o->seen || !o->ev)
		st_setup_fail("out of memory");
	st_nofile(o->nsock + 64);
	o->tx = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* Unread datagrams are charged to the sender until drained: room for all of them. */
	if (o->tx < 0 || setsockopt(o->tx, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)))
		st_setup_fail("sender socket: %s", strerror(errno));
	o->iov = (struct iovec){ .iov_base = &o->byte, .iov_len = 1 };
	for (unsigned int i = 0; i < o->nsock; i++) {
		ov_bind(o, i);
		o->msgs[i].msg_hdr = (struct msghdr){ .msg_name = &o->addr[i],
						      .msg_namelen = o->alen[i],
						      .msg_iov = &o->iov,
						      .msg_iovlen = 1 };
		uk[i] = (struct ukevent){ .id.raw[0] = (__u32)o->fds[i], .type = KEVENT_SOCKET,
					  .event = KEVENT_SOCKET_RECV, .req_flags = KEVENT_REQ_ET,
					  .user_u64 = i };
	}
	o->q = kevent_init(NULL, 0, 0);
	if (o->q < 0)
		st_setup_fail("kevent_init = %d", o->q);
	if (kevent_ctl(o->q, KEVENT_CTL_ADD, o->nsock, uk) != (int)o->nsock)
		st_setup_fail("kevent_ctl(ADD, %u sockets) failed", o->nsock);
	for (unsigned int i = 0; i < o->nsock; i++)
		if (uk[i].ret_flags)
			st_setup_fail("socket %u not registered: ret_flags %#x, error %d", i,
				      uk[i].ret_flags, (int)uk[i].ret_data[1]);
	free(uk);
}

/* Read every socket dry: one recvmmsg() each. */
static void ov_drain(struct ov *o)
{
	struct mmsghdr m[OV_DRAIN_ROUNDS + 2];
	struct iovec iov[OV_DRAIN_ROUNDS + 2];

	for (unsigned int k = 0; k < OV_DRAIN_ROUNDS + 2; k++) {
		iov[k] = (struct iovec){ .iov_base = &o->sink[k], .iov_len = 1 };
		m[k].msg_hdr = (struct msghdr){ .msg_iov = &iov[k], .msg_iovlen = 1 };
	}
	for (unsigned int i = 0; i < o->nsock; i++)
		while (recvmmsg(o->fds[i], m, OV_DRAIN_ROUNDS + 2, MSG_DONTWAIT, NULL) > 0)
			;
}

/* One datagram to each of the first k sockets, nobody consuming meanwhile. */
static void ov_send(struct ov *o, unsigned int k)
{
	unsigned int off = 0;

	while (off < k) {
		unsigned int n = k - off < OV_BATCH ? k - off : OV_BATCH;
		int r = sendmmsg(o->tx, o->msgs + off, n, MSG_DONTWAIT);

		if (r < 0 && errno != EAGAIN)
			st_setup_fail("sendmmsg: %s", strerror(errno));
		if (r <= 0)
			ov_drain(o); /* a receiver or the sender is full: make room, send again */
		else
			off += (unsigned int)r;
	}
	o->sent += k;
}

/* An event of this round must name one of its sockets, once. */
static bool ov_take(struct ov *o, const struct ukevent *e, unsigned int round, unsigned int k)
{
	unsigned int i = (unsigned int)e->user_u64;

	if (e->type != KEVENT_SOCKET || e->event != KEVENT_SOCKET_RECV || e->ret_flags ||
	    e->user_u64 >= k || e->id.raw[0] != (__u32)o->fds[i]) {
		st_finding("round %u: unexpected event type %u event %#x ret_flags %#x fd %u "
			   "user %llu", round, e->type, e->event, e->ret_flags, e->id.raw[0],
			   (unsigned long long)e->user_u64);
		return false;
	}
	if (o->seen[i] == round + 1) {
		st_finding("round %u: socket %u delivered twice (K12)", round, i);
		return false;
	}
	o->seen[i] = round + 1;
	return true;
}

/* Collect until each of the first k sockets was delivered in this round. */
static bool ov_collect(struct ov *o, unsigned int round, unsigned int k)
{
	double start = st_now();
	unsigned int got = 0;

	while (got < k) {
		int n = kevent_get_events(o->q, 1, k, st_ms(OV_WAIT_MS), o->ev, 0);

		if (n < 0) {
			st_finding("round %u: kevent_get_events = %d", round, n);
			return false;
		}
		if (!n && st_now() - start > OV_GIVE_UP_S) {
			st_finding("round %u: %u of %u sockets never delivered (lost, K24)", round,
				   k - got, k);
			return false;
		}
		o->late += !n;
		for (int j = 0; j < n; j++)
			got += ov_take(o, &o->ev[j], round, k);
		o->delivered += (unsigned int)n;
	}
	return true;
}

/* Nothing may come after the last round; then the books must balance. */
static void ov_balance(struct ov *o, unsigned int ring_kb)
{
	int extra = kevent_get_events(o->q, 0, o->nsock, st_ms(0), o->ev, 0);
	struct kevent_stats st = st_stats(o->q);

	if (extra)
		st_finding("%d events after every datagram was delivered (K12)", extra);
	if (st.delivered != o->delivered + (extra > 0 ? extra : 0))
		st_finding("kevent_stats().delivered %llu, events returned %llu",
			   (unsigned long long)st.delivered, (unsigned long long)o->delivered);
	if (st.bpf_records + st.ring_overflows != o->sent)
		st_finding("bpf_records %llu + ring_overflows %llu != datagrams sent %llu: pushes "
			   "unaccounted for (K24)", (unsigned long long)st.bpf_records,
			   (unsigned long long)st.ring_overflows, (unsigned long long)o->sent);
	if (!st.ring_overflows)
		st_setup_fail("the %u KiB ring never overflowed: is KEVENT_RINGBUF_KB honoured?",
			      ring_kb);
	printf("  delivered %llu of %llu sent; bpf_records %llu + ring_overflows %llu = %llu\n",
	       (unsigned long long)o->delivered, (unsigned long long)o->sent,
	       (unsigned long long)st.bpf_records, (unsigned long long)st.ring_overflows,
	       (unsigned long long)(st.bpf_records + st.ring_overflows));
}

int main(int argc, char **argv)
{
	unsigned long events = 10000000, ring_kb = 4;
	struct ov o = { .nsock = 1024 };
	unsigned int round;
	char kb[32];
	double t0, dt;
	int c;

	while ((c = getopt(argc, argv, "n:s:k:")) != -1) {
		if (c == 'n')
			events = st_number(optarg, "event count");
		else if (c == 's')
			o.nsock = (unsigned int)st_number(optarg, "socket count");
		else if (c == 'k')
			ring_kb = st_number(optarg, "ring size");
		else
			st_setup_fail("usage: %s [-n events] [-s sockets] [-k ring_kb]", argv[0]);
	}
	if (!o.nsock || !events)
		st_setup_fail("need at least one socket and one event");
	st_require_root(argv[0]);
	snprintf(kb, sizeof(kb), "%lu", ring_kb);
	setenv("KEVENT_RINGBUF_KB", kb, 1);
	ov_setup(&o);

	t0 = st_now();
	for (round = 0; o.sent < events; round++) {
		unsigned int k = events - o.sent < o.nsock ? (unsigned int)(events - o.sent)
							   : o.nsock;

		ov_send(&o, k);
		if (!ov_collect(&o, round, k))
			break;
		if (!((round + 1) % OV_DRAIN_ROUNDS))
			ov_drain(&o);
	}
	dt = st_now() - t0;
	printf("stress overflow: %llu events through a %lu KiB kernel ring, %u sockets, %u rounds "
	       "in %.1f s (%.0f events/s)\n", (unsigned long long)o.sent, ring_kb, o.nsock, round,
	       dt, (double)o.delivered / dt);
	ov_balance(&o, (unsigned int)ring_kb);
	printf("  late waits (%d ms passed with events due: a missed wake-up): %llu\n", OV_WAIT_MS,
	       (unsigned long long)o.late);
	printf("  findings: %llu\n", (unsigned long long)st_findings());
	return st_findings() ? ST_EXIT_FINDING : ST_EXIT_OK;
}
