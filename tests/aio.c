// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * aio_sendfile() and KEVENT_AIO completions (K22): real files sent to real TCP and AF_UNIX
 * peers that check every byte, 1,000 transfers in flight, cancellation by REMOVE (K10) and
 * by closing the queue (K2), errors as BROKEN, and bad input (K25).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "src_helpers.h"

TestSuite(aio, .timeout = 120);

#define MiB (1ULL << 20)

/* The completion of one transfer: asserts it is the only event and carries the cookie. */
static struct ukevent aio_event(int q, long cookie)
{
	struct ukevent ev[8];
	int n = kt_get(q, 1, 8, ev, KT_AIO_WAIT_MS);

	cr_assert_eq(n, 1, "kevent_get_events = %d, want the completion", n);
	cr_assert_eq(ev[0].type, KEVENT_AIO);
	cr_assert_eq(ev[0].event, KEVENT_AIO_BIO);
	cr_assert_eq(ev[0].ptr, (void *)cookie, "ptr %p, cookie %ld", ev[0].ptr, cookie);
	return ev[0];
}

static unsigned long long aio_bytes(const struct ukevent *ev)
{
	cr_assert_eq(ev->ret_flags, 0, "ret_flags %#x error %d", ev->ret_flags,
		     (int)ev->ret_data[1]);
	return ev->ret_data[0] | (unsigned long long)ev->ret_data[1] << 32;
}

static long start(int q, int sock, int file, off_t off, size_t count)
{
	long c = aio_sendfile(q, sock, file, off, count);

	cr_assert_gt(c, 0, "aio_sendfile = %ld (%s)", c, strerror(errno));
	return c;
}

/* A connected stream pair: TCP on loopback (AF_INET) or AF_UNIX. */
static void kt_stream_pair(int domain, int sv[2])
{
	if (domain == AF_INET)
		kt_tcp_pair(&sv[0], &sv[1]);
	else
		kt_unix_pair(SOCK_STREAM, sv);
}

/* What a transfer needs: a queue, a stream pair of `domain` and a pattern file of `size`. */
static int kt_aio_parts(int domain, int sv[2], int *f, size_t size)
{
	int q = kt_queue();

	kt_stream_pair(domain, sv);
	*f = kt_pattern_file(size);
	return q;
}

/*
 * Send [off, off + count) of a pattern file of `size` bytes over a fresh stream pair of
 * `domain` to a peer that checks every byte; the completion and the peer must say `want`.
 */
static void send_and_check(int domain, size_t size, off_t off, size_t count, size_t want)
{
	struct kt_sink sink;
	struct ukevent ev;
	int q, f, sv[2];
	long c;

	q = kt_aio_parts(domain, sv, &f, size);
	kt_sink_start(&sink, sv[1], (unsigned long long)off, want);
	c = start(q, sv[0], f, off, count);
	ev = aio_event(q, c);
	cr_assert_eq(aio_bytes(&ev), want, "sent %llu, want %zu", aio_bytes(&ev), want);
	cr_assert_eq(ev.id.raw_u64, (__u64)c);
	kt_sink_join(&sink);
	cr_assert_eq(sink.got, want, "peer got %llu", sink.got);
	cr_assert_eq(sink.bad_at, -1, "wrong byte at %lld", sink.bad_at);
	kt_expect_none(q);
	close(f);
	kt_close(q);
	close(sv[0]);
	close(sv[1]);
}

Test(aio, k22_small_tcp, .description = "K22: a 100 kB file over TCP: positive cookie, completion with ptr = cookie and the byte count")
{
	send_and_check(AF_INET, 100000, 0, 100000, 100000);
}

Test(aio, k22_64mib_tcp_every_byte, .description = "K22: 64 MiB to a TCP peer that checks every byte")
{
	send_and_check(AF_INET, 64 * MiB, 0, 64 * MiB, 64 * MiB);
}

Test(aio, k22_offset_and_end_of_file, .description = "K22: an unaligned offset, and a count past the end of the file stops at the end (as sendfile)")
{
	send_and_check(AF_UNIX, 3 * MiB + 7, 12345, 10 * MiB, 3 * MiB + 7 - 12345);
}

Test(aio, k22_at_end_of_file, .description = "K22: an offset at the end of the file completes at once with 0 bytes")
{
	struct ukevent ev;
	int q, f, sv[2];
	long c;

	q = kt_aio_parts(AF_UNIX, sv, &f, 4096);
	c = start(q, sv[0], f, 4096, 100);
	ev = aio_event(q, c);
	cr_assert_eq(aio_bytes(&ev), 0);
	close(f);
	kt_close_pair(q, sv[0], sv[1]);
}

Test(aio, k22_caller_closes_its_fds, .description = "K22: the caller may close the socket and the file right after the call")
{
	struct kt_sink sink;
	struct ukevent ev;
	int q, f, sv[2], mine;
	long c;

	q = kt_aio_parts(AF_UNIX, sv, &f, 8 * MiB);
	mine = dup(sv[0]);
	c = start(q, mine, f, 0, 8 * MiB);
	close(mine);
	close(f);
	close(sv[0]);
	kt_sink_start(&sink, sv[1], 0, 8 * MiB);
	ev = aio_event(q, c);
	cr_assert_eq(aio_bytes(&ev), 8 * MiB);
	kt_sink_join(&sink);
	cr_assert_eq(sink.got, 8 * MiB);
	cr_assert_eq(sink.bad_at, -1);
	close(sv[1]);
	kt_close(q);
}

/* 1,000 transfers, each larger than what its socket buffers hold: all in flight at once. */
#define NT	 1000
#define NT_BYTES (512 * 1024)

struct fleet {
	int tx[NT], rx[NT];
	long cookie[NT];
	unsigned long long got[NT];
	off_t off[NT];
	int bad;
};

static void *fleet_reader(void *arg)
{
	struct fleet *fl = arg;
	struct epoll_event ev[64];
	static __thread unsigned char buf[65536];
	int ep = epoll_create1(EPOLL_CLOEXEC), left = NT;

	for (int i = 0; i < NT; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.u32 = (__u32)i };

		epoll_ctl(ep, EPOLL_CTL_ADD, fl->rx[i], &e);
	}
	while (left > 0) {
		int n = epoll_wait(ep, ev, 64, KT_AIO_WAIT_MS);

		if (n <= 0)
			break;
		for (int k = 0; k < n; k++) {
			int i = (int)ev[k].data.u32;
			unsigned long long at = (unsigned long long)fl->off[i] + fl->got[i];
			ssize_t r = read(fl->rx[i], buf, sizeof(buf));

			for (ssize_t j = 0; j < r; j++)
				fl->bad += buf[j] != kt_pattern(at + (size_t)j);
			fl->got[i] += r > 0 ? (size_t)r : 0;
			if (r > 0 && fl->got[i] == NT_BYTES) {
				epoll_ctl(ep, EPOLL_CTL_DEL, fl->rx[i], NULL);
				left--;
			}
		}
	}
	close(ep);
	return NULL;
}

static void check_fleet_events(int q, struct fleet *fl)
{
	static struct ukevent ev[NT];
	int n = 0, r;

	while (n < NT && (r = kt_get(q, 1, NT - n, ev + n, KT_AIO_WAIT_MS)) > 0)
		n += r;
	cr_assert_eq(n, NT, "%d completions of %d", n, NT);
	for (int i = 0; i < NT; i++) {
		cr_assert_eq(aio_bytes(&ev[i]), NT_BYTES);
		cr_assert_eq(ev[i].type, KEVENT_AIO);
	}
	for (int i = 0; i < NT; i++)
		cr_assert_eq(kt_count(ev, n, KEVENT_AIO, (__u64)fl->cookie[i]), 1, "transfer %d",
			     i);
}

Test(aio, k22_1000_concurrent, .description = "K22: 1,000 transfers in flight on one queue, every byte checked")
{
	static struct fleet fl;
	struct kevent_stats st;
	pthread_t th;
	int q, f;

	kt_want_fds(8 * NT);
	q = kt_queue();
	f = kt_pattern_file(4 * MiB);
	for (int i = 0; i < NT; i++) {
		int sv[2];

		kt_unix_pair(SOCK_STREAM, sv);
		fl.tx[i] = sv[0];
		fl.rx[i] = sv[1];
		fl.off[i] = (off_t)i * 3001 % (3 * MiB);
		fl.cookie[i] = start(q, sv[0], f, fl.off[i], NT_BYTES);
	}
	cr_assert_eq(kevent_stats(q, &st), 0);
	cr_assert_eq(st.interests, NT, "%llu transfers registered",
		     (unsigned long long)st.interests);
	kt_expect_none(q); /* nobody reads yet: none can finish */
	kt_thread_start(&th, fleet_reader, &fl);
	check_fleet_events(q, &fl);
	cr_assert(kt_join_within(th, KT_AIO_WAIT_MS));
	cr_assert_eq(fl.bad, 0, "%d wrong bytes", fl.bad);
	for (int i = 0; i < NT; i++) {
		cr_assert_eq(fl.got[i], NT_BYTES, "peer %d got %llu", i, fl.got[i]);
		close(fl.tx[i]);
		close(fl.rx[i]);
	}
	close(f);
	kt_close(q);
}

Test(aio, k2_close_cancels_in_flight, .description = "K22/K2: closing the queue with transfers stuck on a peer that never reads releases every descriptor")
{
	int q, f, sv[2], before;

	kt_unix_pair(SOCK_STREAM, sv);
	f = kt_pattern_file(8 * MiB);
	before = kt_fd_count();
	q = kt_queue();
	for (int i = 0; i < 16; i++)
		start(q, sv[0], f, 0, 8 * MiB);
	kt_expect_none(q);
	kt_close(q);
	cr_assert_eq(kt_fd_count(), before, "descriptors left after kevent_close");
	close(f);
	close(sv[0]);
	close(sv[1]);
}

Test(aio, k10_remove_cancels, .description = "K22/K10: REMOVE of the transfer's interest (id = user = cookie) cancels it: no event, descriptors released")
{
	struct ukevent uk = { .type = KEVENT_AIO, .event = KEVENT_AIO_BIO };
	int q, f, sv[2], before;
	long c;

	q = kt_aio_parts(AF_UNIX, sv, &f, 8 * MiB);
	/* A first transfer starts the queue's engine, whose descriptors stay with the queue. */
	aio_event(q, start(q, sv[0], f, 0, 1));
	before = kt_fd_count();
	c = start(q, sv[0], f, 0, 8 * MiB);
	uk.id.raw_u64 = (__u64)c;
	uk.user_u64 = (__u64)c;
	kt_done(q, KEVENT_CTL_REMOVE, uk);
	kt_expect_none(q);
	for (int i = 0; i < 100 && kt_fd_count() != before; i++)
		kt_sleep_ms(10); /* the engine closes its duplicate when it sees the cancel */
	cr_assert_eq(kt_fd_count(), before);
	close(f);
	kt_close_pair(q, sv[0], sv[1]);
}

Test(aio, k22_peer_reset_broken, .description = "K22: a peer that resets the connection mid-transfer gives BROKEN with the errno")
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct ukevent ev;
	int q, f, sv[2], err;
	long c;

	q = kt_aio_parts(AF_INET, sv, &f, 32 * MiB);
	c = start(q, sv[0], f, 0, 32 * MiB);
	kt_expect_none(q); /* stuck: sv[1] does not read */
	cr_assert_eq(setsockopt(sv[1], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(sv[1]); /* unread data + linger 0: RST */
	ev = aio_event(q, c);
	err = (int)ev.ret_data[1];
	cr_assert_eq(ev.ret_flags, KEVENT_RET_BROKEN, "ret_flags %#x", ev.ret_flags);
	cr_assert(err == -ECONNRESET || err == -EPIPE, "error %d", err);
	close(f);
	close(sv[0]);
	kt_close(q);
}

Test(aio, k25_bad_input, .description = "K25/K22: bad queue, closed or non-socket destination, bad source, offsets and count: immediate -errno")
{
	int q, f, sv[2], p[2], udp, udp2, wr, closed;

	q = kt_aio_parts(AF_UNIX, sv, &f, 4096);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	kt_udp_pair(&udp, &udp2);
	wr = open("/dev/null", O_WRONLY | O_CLOEXEC);
	closed = kt_closed_fd(); /* last: no descriptor opened after it reuses the number */
	cr_assert_eq(aio_sendfile(closed, sv[0], f, 0, 1), -EBADF);
	cr_assert_eq(errno, EBADF);
	cr_assert_eq(aio_sendfile(f, sv[0], f, 0, 1), -EINVAL, "not a queue");
	cr_assert_eq(aio_sendfile(q, closed, f, 0, 1), -EBADF);
	cr_assert_eq(aio_sendfile(q, f, f, 0, 1), -ENOTSOCK);
	cr_assert_eq(aio_sendfile(q, p[1], f, 0, 1), -ENOTSOCK);
	cr_assert_eq(aio_sendfile(q, udp2, f, 0, 1), -EINVAL, "not a stream socket");
	cr_assert_eq(aio_sendfile(q, sv[0], closed, 0, 1), -EBADF);
	cr_assert_eq(aio_sendfile(q, sv[0], wr, 0, 1), -EBADF, "source not open for reading");
	cr_assert_eq(aio_sendfile(q, sv[0], p[0], 0, 1), -EINVAL, "source not a regular file");
	cr_assert_eq(aio_sendfile(q, sv[0], f, 4097, 1), -EINVAL, "offset past the end");
	cr_assert_eq(aio_sendfile(q, sv[0], f, -1, 1), -EINVAL, "negative offset");
	cr_assert_eq(aio_sendfile(q, sv[0], f, 0, 0), -EINVAL, "count 0");
	kt_expect_none(q);
	close(wr);
	close(udp);
	close(udp2);
	close(p[0]);
	close(p[1]);
	close(f);
	kt_close_pair(q, sv[0], sv[1]);
}

Test(aio, k7_add_by_hand_refused, .description = "K7/K22: a KEVENT_AIO interest comes only from aio_sendfile: ADD by hand is EINVAL")
{
	struct ukevent uk = { .type = KEVENT_AIO, .event = KEVENT_AIO_BIO };
	int q;

	q = kt_queue();
	uk.id.raw_u64 = 1;
	kt_ctl1(q, KEVENT_CTL_ADD, &uk);
	kt_assert_failed(&uk, EINVAL);
	kt_close(q);
}

Test(aio, k3_completion_in_ring, .description = "K22/K3: completions are copied into the queue's ring like every event")
{
	struct kevent_ring *ring;
	struct ukevent ev;
	int q, f, sv[2];
	long c;

	q = kt_queue_ring(&ring, 8);
	kt_unix_pair(SOCK_STREAM, sv);
	f = kt_pattern_file(1000);
	c = start(q, sv[0], f, 0, 1000);
	ev = aio_event(q, c);
	cr_assert_eq(aio_bytes(&ev), 1000);
	cr_assert_eq(ring->ring_kidx, 1);
	cr_assert_eq(ring->event[0].ptr, (void *)c);
	close(f);
	close(sv[0]);
	close(sv[1]);
	kt_close_ring(q, ring);
}
