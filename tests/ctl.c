// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * kevent_ctl: per-entry results (K7), identities and MODIFY (K8), ready at ADD (K9),
 * removal of ready interests (K10).
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(ctl, .timeout = KT_TEST_TIMEOUT);

Test(ctl, k7_bad_entry_does_not_stop_batch,
     .description = "K7: one bad entry in a batch of 3 never stops the others")
{
	struct ukevent uk[3] = { kt_unotify_ev(1, 0), kt_unotify_ev(2, 0), kt_unotify_ev(3, 0) };
	struct ukevent ev[8];
	int q, n;

	q = kt_queue();
	uk[1].type = KEVENT_MAX + 32;
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_ADD, 3, uk), 3, "entries processed");
	cr_assert_eq(uk[0].ret_flags, 0, "first entry: %#x", uk[0].ret_flags);
	kt_assert_failed(&uk[1], ENOSYS);
	cr_assert_eq(uk[2].ret_flags, 0, "last entry: %#x", uk[2].ret_flags);

	/* Both good entries are registered: READY them in one batch, again with a bad middle. */
	uk[0] = kt_unotify_ev(1, 0);
	uk[1] = kt_unotify_ev(2, 0); /* never added */
	uk[2] = kt_unotify_ev(3, 0);
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_READY, 3, uk), 3);
	cr_assert_eq(uk[0].ret_flags, KEVENT_RET_DONE);
	kt_assert_failed(&uk[1], ENOENT);
	cr_assert_eq(uk[2].ret_flags, KEVENT_RET_DONE);
	n = kt_get(q, 2, 8, ev, KT_WAIT_MS);
	cr_assert_eq(n, 2);
	cr_assert_eq(kt_count(ev, n, KEVENT_UNOTIFY, 1), 1);
	cr_assert_eq(kt_count(ev, n, KEVENT_UNOTIFY, 3), 1);
	kt_close(q);
}

Test(ctl, k7_unknown_types_enosys, .description = "K7: unknown and reserved types are -ENOSYS")
{
	/* Beyond KEVENT_MAX, and the two types the ABI only reserves. */
	static const __u32 types[] = {
		KEVENT_MAX, KEVENT_MAX + 1, 1000, 0xffffffffu, KEVENT_NAIO, KEVENT_POSIX_TIMER,
	};
	enum { N = sizeof(types) / sizeof(types[0]) };
	struct ukevent uk[N];
	int q, file, i;

	q = kt_queue();
	file = kt_regular_file();
	for (i = 0; i < N; i++) {
		uk[i] = kt_unotify_ev(0, 0);
		uk[i].type = types[i];
		uk[i].id.raw[0] = file; /* a valid descriptor, should the type want one */
		uk[i].id.raw[1] = 1;
	}
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_ADD, N, uk), N);
	for (i = 0; i < N; i++) {
		cr_assert_eq(uk[i].ret_flags, KEVENT_RET_BROKEN | KEVENT_RET_DONE, "type %u: %#x",
			     types[i], uk[i].ret_flags);
		cr_assert_eq((int)uk[i].ret_data[1], -ENOSYS, "type %u: error %d", types[i],
			     (int)uk[i].ret_data[1]);
	}
	close(file);
	kt_close(q);
}

Test(ctl, k7_socket_entry_errors, .description = "K7: EBADF, ENOTSOCK and EINVAL socket entries")
{
	struct ukevent uk[6];
	int q, rx, tx, file;

	q = kt_queue();
	kt_udp_pair(&rx, &tx);
	file = kt_regular_file();
	uk[0] = kt_sock_ev(kt_closed_fd(), KEVENT_SOCKET_RECV, 0);
	uk[1] = kt_sock_ev(file, KEVENT_SOCKET_RECV, 0);
	uk[2] = kt_sock_ev(rx, 0, 0);			       /* no event */
	uk[3] = kt_sock_ev(rx, 0x8, 0);			       /* unknown bit */
	uk[4] = kt_sock_ev(rx, KEVENT_SOCKET_RECV | 0x100, 0); /* a known and an unknown bit */
	uk[5] = kt_sock_ev(rx, KEVENT_SOCKET_RECV, 0);	       /* the only good one */
	uk[5].user[0] = 1;
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_ADD, 6, uk), 6);
	kt_assert_failed(&uk[0], EBADF);
	kt_assert_failed(&uk[1], ENOTSOCK);
	kt_assert_failed(&uk[2], EINVAL);
	kt_assert_failed(&uk[3], EINVAL);
	kt_assert_failed(&uk[4], EINVAL);
	cr_assert_eq(uk[5].ret_flags, 0, "the good entry: %#x", uk[5].ret_flags);
	close(file);
	kt_close_pair(q, rx, tx);
}

Test(ctl, k7_duplicate_add_eexist, .description = "K7/K8: ADD of an existing identity is -EEXIST")
{
	int q, rx, tx;

	q = kt_udp_watched(&rx, &tx, 0);
	kt_ctl_fails(q, KEVENT_CTL_ADD, kt_sock_ev(rx, KEVENT_SOCKET_RECV, 0), EEXIST);
	/* The event mask is not part of the identity. */
	kt_ctl_fails(q, KEVENT_CTL_ADD, kt_sock_ev(rx, KEVENT_SOCKET_SEND, KEVENT_REQ_ET), EEXIST);

	kt_unotify_add(q, 9, 0);
	kt_ctl_fails(q, KEVENT_CTL_ADD, kt_unotify_ev(9, 0), EEXIST);
	kt_close_pair(q, rx, tx);
}

Test(ctl, k7_unknown_identity_enoent,
     .description = "K7/K8: MODIFY, REMOVE, READY of a never added identity")
{
	static const unsigned int cmds[] = {
		KEVENT_CTL_MODIFY,
		KEVENT_CTL_REMOVE,
		KEVENT_CTL_READY,
	};
	unsigned int i;
	int q, rx, tx;

	q = kt_queue();
	kt_udp_pair(&rx, &tx);
	for (i = 0; i < 3; i++) {
		kt_ctl_fails(q, cmds[i], kt_sock_ev(rx, KEVENT_SOCKET_RECV, 0), ENOENT);
		kt_ctl_fails(q, cmds[i], kt_unotify_ev(77, 0), ENOENT);
	}
	kt_close_pair(q, rx, tx);
}

Test(ctl, k8_identity_includes_user,
     .description = "K8: the same object with another user value is another interest")
{
	struct ukevent a = kt_unotify_ev(5, 0), b = kt_unotify_ev(5, 0), got;
	int q;

	q = kt_queue();
	a.ptr = &a;
	b.ptr = &b;
	kt_add(q, a);
	kt_add(q, b);
	kt_done(q, KEVENT_CTL_READY, a);
	got = kt_next(q, KEVENT_UNOTIFY, 5);
	cr_assert_eq(got.ptr, (void *)&a, "the event belongs to the readied user value");
	kt_expect_none(q);

	kt_done(q, KEVENT_CTL_REMOVE, b);
	kt_assert_gone(q, b);
	kt_done(q, KEVENT_CTL_REMOVE, a);
	kt_close(q);
}

Test(ctl, k8_same_socket_two_users, .description = "K8: one socket, two user values: two interests")
{
	struct ukevent a, b;
	int q, rx, tx;

	q = kt_queue();
	kt_udp_pair(&rx, &tx);
	a = kt_sock_ev(rx, KEVENT_SOCKET_RECV, 0);
	a.user[0] = 1;
	b = a;
	b.user[0] = 2;
	kt_add(q, a);
	kt_add(q, b);
	kt_ctl_fails(q, KEVENT_CTL_ADD, a, EEXIST);
	kt_done(q, KEVENT_CTL_REMOVE, a);
	kt_assert_gone(q, a);
	kt_done(q, KEVENT_CTL_REMOVE, b);
	kt_close_pair(q, rx, tx);
}

Test(ctl, k8_identity_includes_type,
     .description = "K8: the same id under two types is two interests")
{
	int q, rx, tx;

	q = kt_udp_watched(&rx, &tx, 0);
	kt_unotify_add(q, (__u32)rx, 0);
	kt_done(q, KEVENT_CTL_REMOVE, kt_unotify_ev((__u32)rx, 0));
	kt_done(q, KEVENT_CTL_REMOVE, kt_sock_ev(rx, KEVENT_SOCKET_RECV, 0));
	kt_close_pair(q, rx, tx);
}

Test(ctl, k8_modify_replaces_event_and_rechecks,
     .description = "K8: MODIFY replaces the event mask and re-checks readiness")
{
	struct ukevent uk, got;
	int q, rx, tx;

	q = kt_queue();
	kt_udp_pair(&rx, &tx);
	uk = kt_sock_ev(rx, KEVENT_SOCKET_RECV, 0);
	uk.ptr = &uk;
	kt_add(q, uk);
	kt_expect_none(q);

	/* A UDP socket is always writable: after MODIFY to SEND it is ready. */
	uk.event = KEVENT_SOCKET_SEND;
	uk.req_flags = KEVENT_REQ_ET;
	kt_done(q, KEVENT_CTL_MODIFY, uk);
	got = kt_next(q, KEVENT_SOCKET, (__u32)rx);
	cr_assert_eq(got.event, KEVENT_SOCKET_SEND, "event %#x", got.event);
	cr_assert_eq(got.req_flags, KEVENT_REQ_ET, "req_flags %#x", got.req_flags);
	cr_assert_eq(got.ptr, (void *)&uk);
	cr_assert_eq(got.ret_flags, 0);
	kt_close_pair(q, rx, tx);
}

Test(ctl, k8_modify_rechecks_data_already_there,
     .description = "K8: MODIFY of an ET interest whose socket still holds data queues it")
{
	int q, rx, tx;

	q = kt_udp_watched(&rx, &tx, KEVENT_REQ_ET);
	kt_send(tx, 8);
	kt_next(q, KEVENT_SOCKET, (__u32)rx);
	kt_expect_none(q); /* ET: the edge was consumed, the datagram is still there */

	kt_done(q, KEVENT_CTL_MODIFY, kt_sock_ev(rx, KEVENT_SOCKET_RECV, 0));
	cr_assert_eq(kt_next(q, KEVENT_SOCKET, (__u32)rx).req_flags, 0);
	kt_close_pair(q, rx, tx);
}

Test(ctl, k8_modify_replaces_req_flags,
     .description = "K8: MODIFY replaces req_flags (level to ONESHOT)")
{
	struct ukevent uk;
	int q, rx, tx;

	q = kt_udp_watched(&rx, &tx, 0);
	uk = kt_sock_ev(rx, KEVENT_SOCKET_RECV, KEVENT_REQ_ONESHOT);
	kt_done(q, KEVENT_CTL_MODIFY, uk);

	kt_send(tx, 8);
	cr_assert_eq(kt_next(q, KEVENT_SOCKET, (__u32)rx).req_flags, KEVENT_REQ_ONESHOT);
	/* Still readable, but ONESHOT removed it. */
	kt_expect_none(q);
	kt_assert_gone(q, uk);
	kt_close_pair(q, rx, tx);
}

/* Check a K9 ADD of a ready object: DONE, event bits, not registered. */
static void assert_done_not_registered(int q, struct ukevent uk, __u32 bits)
{
	__u32 rf = kt_ctl1(q, KEVENT_CTL_ADD, &uk);

	cr_assert_eq(rf, KEVENT_RET_DONE, "ready at ADD: ret_flags %#x, want DONE (error %d)", rf,
		     (int)uk.ret_data[1]);
	cr_assert_eq(uk.event, bits, "ready at ADD: event %#x, want %#x", uk.event, bits);
	kt_expect_none(q);
	uk.ret_flags = 0;
	kt_assert_gone(q, uk);
}

/* Check a K9 ADD of a ready object with ALWAYS_QUEUE: registered and delivered. */
static void assert_queued(int q, struct ukevent uk, __u32 bits)
{
	uk.req_flags |= KEVENT_REQ_ALWAYS_QUEUE;
	kt_add(q, uk);
	cr_assert_eq(kt_next(q, uk.type, uk.id.raw_u64).event, bits);
	kt_done(q, KEVENT_CTL_REMOVE, uk);
}

/* K9 both ways for the same ready object: DONE when added alone, queued with ALWAYS_QUEUE. */
static void kt_ready_at_add(int q, struct ukevent uk, __u32 bits)
{
	assert_done_not_registered(q, uk, bits);
	assert_queued(q, uk, bits);
}

Test(ctl, k9_socket_data_at_add,
     .description = "K9: ADD of a socket with data queued: DONE, or queued with ALWAYS_QUEUE")
{
	int q, rx, tx;

	q = kt_queue();
	kt_udp_pair(&rx, &tx);
	kt_send(tx, 16);
	kt_wait_readable(rx);
	kt_ready_at_add(q, kt_sock_ev(rx, KEVENT_SOCKET_RECV, 0), KEVENT_SOCKET_RECV);
	kt_close_pair(q, rx, tx);
}

Test(ctl, k9_unotify_ready_at_add,
     .description = "K9: UNOTIFY with REQ_READY at ADD: DONE, or queued with ALWAYS_QUEUE")
{
	int q;

	q = kt_queue();
	kt_ready_at_add(q, kt_unotify_ev(4, KEVENT_REQ_READY), KT_UNOTIFY_EV);
	kt_close(q);
}

Test(ctl, k9_pending_connection_at_add,
     .description = "K9: ADD of ACCEPT with a pending connection")
{
	int q, l, c;

	q = kt_queue();
	l = kt_tcp_listener();
	c = kt_tcp_connect(l);
	kt_wait_readable(l);
	kt_ready_at_add(q, kt_sock_ev(l, KEVENT_SOCKET_ACCEPT, 0), KEVENT_SOCKET_ACCEPT);
	kt_close_pair(q, c, l);
}

Test(ctl, k10_removed_ready_unotify_not_delivered,
     .description = "K10: a ready UNOTIFY removed before delivery is never delivered")
{
	struct kevent_ring *ring;
	int q;

	q = kt_queue_ring(&ring, 8);
	kt_unotify_add(q, 1, 0);
	kt_unotify_queued(q, 2);
	kt_unotify_ready(q, 1);
	kt_done(q, KEVENT_CTL_REMOVE, kt_unotify_ev(1, 0));
	kt_done(q, KEVENT_CTL_REMOVE, kt_unotify_ev(2, 0));
	kt_expect_none(q);
	cr_assert_eq(ring->ring_kidx, 0, "a removed interest was copied to the ring");
	kt_close_ring(q, ring);
}

struct churn {
	pthread_t th;
	int q, fd, rounds, odd;
	int removed; /* the last round whose REMOVE has returned */
};

/*
 * ADD and REMOVE the same socket interest over and over, with the round in its user value;
 * count unexpected results.
 */
static void *churn_main(void *arg)
{
	struct churn *c = arg;
	int i;

	for (i = 1; i <= c->rounds; i++) {
		/* Queued at once when data is there (K9): ready when its REMOVE comes. */
		struct ukevent uk = kt_sock_ev(c->fd, KEVENT_SOCKET_RECV, KEVENT_REQ_ALWAYS_QUEUE);

		uk.user[0] = (__u32)i;
		if (kevent_ctl(c->q, KEVENT_CTL_ADD, 1, &uk) != 1 || uk.ret_flags != 0)
			c->odd++;
		uk = kt_sock_ev(c->fd, KEVENT_SOCKET_RECV, 0);
		uk.user[0] = (__u32)i;
		if (kevent_ctl(c->q, KEVENT_CTL_REMOVE, 1, &uk) != 1 ||
		    !(uk.ret_flags & KEVENT_RET_DONE))
			c->odd++;
		__atomic_store_n(&c->removed, i, __ATOMIC_RELEASE);
	}
	return NULL;
}

Test(ctl, k10_remove_races_delivery,
     .description = "K10/K25: ADD/REMOVE racing deliveries: no interest is delivered by a call "
		    "that began after its REMOVE returned")
{
	struct churn c = { .rounds = 2000 };
	struct ukevent ev[8];
	int rx, tx, i, n, removed, bad = 0, late = 0, seen = 0;

	c.q = kt_queue();
	kt_udp_pair(&rx, &tx);
	c.fd = rx;
	kt_thread_start(&c.th, churn_main, &c);
	for (i = 0; i < 2000 && __atomic_load_n(&c.removed, __ATOMIC_ACQUIRE) < c.rounds; i++) {
		kt_send(tx, 4);
		removed = __atomic_load_n(&c.removed, __ATOMIC_ACQUIRE);
		n = kt_get(c.q, 0, 8, ev, 0);
		bad += n < 0 || (n > 0 && kt_count(ev, n, KEVENT_SOCKET, (__u32)rx) != n);
		for (int k = 0; k < n; k++) {
			late += (int)ev[k].user[0] <= removed;
			seen++;
		}
		if (!(i % 8))
			kt_drain(rx); /* mostly readable: ADDs often find it ready (queued, K9) */
	}
	cr_assert(kt_join_within(c.th, 20000), "the ADD/REMOVE thread hangs");
	cr_assert_eq(c.odd, 0, "%d unexpected kevent_ctl results", c.odd);
	cr_assert_eq(bad, 0, "%d bad get_events results", bad);
	cr_assert_eq(late, 0, "%d of %d events delivered after their REMOVE returned", late, seen);
	/* Removed for good: new data brings nothing. */
	kt_send(tx, 4);
	kt_expect_none(c.q);
	kt_close(c.q);
	close(rx);
	close(tx);
}

Test(ctl, k10_removed_ready_socket_not_delivered,
     .description = "K10: a socket removed while ready is never delivered")
{
	struct kevent_ring *ring;
	int q, rx, tx;

	q = kt_queue_ring(&ring, 8);
	kt_udp_pair(&rx, &tx);
	kt_add(q, kt_sock_ev(rx, KEVENT_SOCKET_RECV, 0));
	kt_send(tx, 8);
	kt_wait_readable(rx);
	kt_done(q, KEVENT_CTL_REMOVE, kt_sock_ev(rx, KEVENT_SOCKET_RECV, 0));
	kt_expect_none(q);
	kt_send(tx, 8);
	kt_expect_none(q);
	cr_assert_eq(ring->ring_kidx, 0, "a removed interest was copied to the ring");
	close(rx);
	close(tx);
	kt_close_ring(q, ring);
}
