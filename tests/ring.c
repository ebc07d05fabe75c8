// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The caller's kevent_ring: copies and commits (K3), a full ring (K4), kevent_wait (K5).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(ring, .timeout = KT_TEST_TIMEOUT);

/* Add UNOTIFY interests first..first+n-1, ready at once (queued by ALWAYS_QUEUE). */
static void ready_n(int q, __u64 first, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		kt_unotify_queued(q, first + i);
}

/* A queue with a ring of `size` slots into which n UNOTIFY events (ids 0..n-1) were taken. */
static int kt_ring_taken(struct kevent_ring **ring, unsigned int size, unsigned int n)
{
	struct ukevent ev[8];
	int q = kt_queue_ring(ring, size);

	ready_n(q, 0, n);
	cr_assert_eq(kt_get(q, n, 8, ev, KT_WAIT_MS), (int)n);
	return q;
}

/* Bit mask of the UNOTIFY ids (< 64) found in ev[0..n). */
static __u64 id_set(const struct ukevent *ev, unsigned int n)
{
	__u64 set = 0;
	unsigned int i;

	for (i = 0; i < n; i++) {
		cr_assert_eq(ev[i].type, KEVENT_UNOTIFY, "event %u: type %u", i, ev[i].type);
		cr_assert_lt(ev[i].id.raw_u64, 64);
		cr_assert_not(set & (1ULL << ev[i].id.raw_u64), "id %llu twice",
			      (unsigned long long)ev[i].id.raw_u64);
		set |= 1ULL << ev[i].id.raw_u64;
	}
	return set;
}

Test(ring, k3_get_events_copies_to_ring,
     .description = "K3: get_events copies each event to the ring too")
{
	struct kevent_ring *ring;
	struct ukevent ev[8];
	int q, n, i;

	q = kt_queue_ring(&ring, 8);
	ready_n(q, 10, 3);
	n = kt_get(q, 3, 8, ev, KT_WAIT_MS);
	cr_assert_eq(n, 3);
	cr_assert_eq(ring->ring_kidx, 3, "ring_kidx %u after 3 events", ring->ring_kidx);
	for (i = 0; i < n; i++) {
		cr_assert_eq(ev[i].ret_flags, 0, "event %d ret_flags %#x", i, ev[i].ret_flags);
		cr_assert_eq(memcmp(&ring->event[i], &ev[i], sizeof(ev[i])), 0,
			     "ring slot %d differs from the returned event", i);
	}
	cr_assert_eq(id_set(ev, 3), 7ULL << 10);
	kt_close_ring(q, ring);
}

Test(ring, k3_commit_frees_and_wraps,
     .description = "K3: commit frees slots; ring_over counts wraps")
{
	struct kevent_ring *ring;
	struct ukevent ev[8];
	int q, i;

	q = kt_ring_taken(&ring, 4, 3);
	cr_assert_eq(ring->ring_kidx, 3);
	cr_assert_eq(kevent_commit(q, 3, 0), 3, "commit of 3 slots");
	cr_assert_eq(kevent_commit(q, 3, 0), 0, "the same commit again frees nothing");
	cr_assert_eq(ring->ring_over, 0);

	/* The same interests again: slots 3, 0, 1. */
	for (i = 0; i < 3; i++)
		kt_unotify_ready(q, i);
	cr_assert_eq(kt_get(q, 3, 8, ev, KT_WAIT_MS), 3);
	cr_assert_eq(ring->ring_kidx, 2, "ring_kidx %u, want 2 after wrapping", ring->ring_kidx);
	cr_assert_eq(memcmp(&ring->event[3], &ev[0], sizeof(ev[0])), 0);
	cr_assert_eq(memcmp(&ring->event[0], &ev[1], sizeof(ev[0])), 0);
	cr_assert_eq(memcmp(&ring->event[1], &ev[2], sizeof(ev[0])), 0);

	cr_assert_eq(kevent_commit(q, 2, 0), 3, "commit across the end of the ring");
	cr_assert_eq(ring->ring_over, 1, "ring_over %u after the wrap", ring->ring_over);
	cr_assert_eq(kevent_commit(q, 2, 0), 0, "a stale commit (ring_over - 1) frees nothing");
	cr_assert_eq(kevent_commit(q, 2, 1), 0, "nothing left to free");
	cr_assert_eq(ring->ring_over, 1);
	kt_close_ring(q, ring);
}

Test(ring, k3_commit_wrong_over,
     .description = "K3: over other than ring_over or ring_over - 1 is -EOVERFLOW")
{
	struct kevent_ring *ring;
	int q;

	q = kt_ring_taken(&ring, 8, 2);
	errno = 0;
	cr_assert_eq(kevent_commit(q, 2, 5), -EOVERFLOW);
	cr_assert_eq(errno, EOVERFLOW);
	cr_assert_eq(kevent_commit(q, 2, 1), -EOVERFLOW, "over = ring_over + 1");
	cr_assert_eq(kevent_commit(q, 2, (unsigned int)-2), -EOVERFLOW);
	cr_assert_eq(kevent_commit(q, 2, 0), 2, "the right over still frees both slots");
	kt_close_ring(q, ring);
}

Test(ring, k3_commit_past_kernel_index,
     .description = "K3: commit past the last copied event is -EINVAL")
{
	struct kevent_ring *ring;
	int q;

	q = kt_ring_taken(&ring, 8, 3);
	errno = 0;
	cr_assert_eq(kevent_commit(q, 5, 0), -EINVAL, "commit past ring_kidx");
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(kevent_commit(q, 8, 0), -EINVAL, "index = ring size");
	cr_assert_eq(kevent_commit(q, 1000, 0), -EINVAL, "index beyond the ring");
	cr_assert_eq(kevent_commit(q, 2, 0), 2, "a valid commit still works");
	cr_assert_eq(kevent_commit(q, 1, 0), -EINVAL, "a wrap past ring_kidx");
	cr_assert_eq(kevent_commit(q, 3, 0), 1);
	kt_close_ring(q, ring);
}

struct committer {
	pthread_t th;
	pthread_barrier_t *bar;
	int q;
	unsigned int idx, over;
	int ret;
};

static void *commit_main(void *arg)
{
	struct committer *c = arg;

	pthread_barrier_wait(c->bar);
	c->ret = kevent_commit(c->q, c->idx, c->over);
	return NULL;
}

Test(ring, k3_concurrent_commit_frees_once,
     .description = "K3: two threads committing the same slots free them once")
{
	struct kevent_ring *ring;
	struct ukevent ev[8];
	pthread_barrier_t bar;
	int q, round, i;

	q = kt_queue_ring(&ring, 8);
	ready_n(q, 0, 4);
	cr_assert_eq(pthread_barrier_init(&bar, NULL, 2), 0);
	for (round = 0; round < 40; round++) {
		struct committer c[2];
		unsigned int over = ring->ring_over;

		if (round)
			for (i = 0; i < 4; i++)
				kt_unotify_ready(q, i);
		cr_assert_eq(kt_get(q, 4, 8, ev, KT_WAIT_MS), 4, "round %d", round);
		for (i = 0; i < 2; i++) {
			c[i] = (struct committer){ .bar = &bar, .q = q, .over = over };
			c[i].idx = ring->ring_kidx;
			kt_thread_start(&c[i].th, commit_main, &c[i]);
		}
		for (i = 0; i < 2; i++)
			pthread_join(c[i].th, NULL);
		cr_assert(c[0].ret >= 0 && c[1].ret >= 0, "round %d: commit returned %d and %d",
			  round, c[0].ret, c[1].ret);
		cr_assert_eq(c[0].ret + c[1].ret, 4, "round %d: freed %d + %d slots, want 4 in all",
			     round, c[0].ret, c[1].ret);
		cr_assert(c[0].ret == 0 || c[1].ret == 0, "round %d: both freed slots", round);
		cr_assert_eq(ring->ring_over, (unsigned int)(round + 1) / 2,
			     "round %d: ring_over %u", round, ring->ring_over);
	}
	pthread_barrier_destroy(&bar);
	kt_close_ring(q, ring);
}

Test(ring, k3_no_ring_commit_wait_einval,
     .description = "K3/K5: commit and wait on a queue without ring are -EINVAL")
{
	int q;

	q = kt_queue();
	errno = 0;
	cr_assert_eq(kevent_commit(q, 0, 0), -EINVAL);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(kevent_wait(q, 1, 0, kt_ts(0), 0), -EINVAL);
	cr_assert_eq(errno, EINVAL);
	kt_close(q);
}

Test(ring, k4_full_ring_copy_failed,
     .description = "K4: events that find the ring full carry COPY_FAILED")
{
	struct kevent_ring *ring;
	struct kevent_stats st;
	struct ukevent ev[8];
	int q, i;

	q = kt_queue_ring(&ring, 4);
	ready_n(q, 0, 6);
	cr_assert_eq(kt_get(q, 6, 8, ev, KT_WAIT_MS), 6, "get_events still returns all 6 in buf");
	for (i = 0; i < 4; i++) {
		cr_assert_not(ev[i].ret_flags & KEVENT_RET_COPY_FAILED, "event %d not marked", i);
		cr_assert_eq(memcmp(&ring->event[i], &ev[i], sizeof(ev[i])), 0, "ring slot %d", i);
	}
	for (i = 4; i < 6; i++)
		cr_assert(ev[i].ret_flags & KEVENT_RET_COPY_FAILED, "event %d: ret_flags %#x", i,
			  ev[i].ret_flags);
	cr_assert_eq(id_set(ev, 6), 0x3f);
	cr_assert_eq(ring->ring_kidx, 0, "ring_kidx %u", ring->ring_kidx);
	cr_assert_eq(kevent_stats(q, &st), 0);
	cr_assert_eq(st.copy_failed, 2, "copy_failed %llu", (unsigned long long)st.copy_failed);
	cr_assert_eq(st.delivered, 6, "stats delivered %llu", (unsigned long long)st.delivered);
	kt_close_ring(q, ring);
}

struct waiter {
	pthread_t th;
	int q;
	unsigned int num, old_uidx;
	long ms;
	int ret;
};

static void *wait_main(void *arg)
{
	struct waiter *w = arg;

	w->ret = kevent_wait(w->q, w->num, w->old_uidx, kt_ts(w->ms), 0);
	return NULL;
}

Test(ring, k4_wait_full_ring_waits_for_space, .description = "K4: kevent_wait waits for ring space")
{
	struct waiter w = { .num = 4, .old_uidx = 0, .ms = 10000 };
	struct kevent_ring *ring;
	struct ukevent ev[8];
	__u64 first;
	int q, r;

	q = kt_queue_ring(&ring, 4);
	ready_n(q, 0, 6);
	cr_assert_eq(kt_get(q, 4, 4, ev, KT_WAIT_MS), 4);
	first = id_set(ev, 4);
	cr_assert_eq(ring->ring_kidx, 0, "the ring is full");

	/* Two events are ready but there is no room: nothing can be copied. */
	cr_assert_eq(kevent_wait(q, 4, 0, kt_ts(KT_QUIET_MS), 0), 0, "wait on a full ring");

	w.q = q;
	kt_thread_start(&w.th, wait_main, &w);
	cr_assert_not(kt_join_within(w.th, KT_QUIET_MS), "kevent_wait returned (%d) on a full ring",
		      w.ret);
	cr_assert_eq(kevent_commit(q, 2, 0), 2, "free two slots");
	cr_assert(kt_join_within(w.th, KT_WAIT_MS), "kevent_wait still blocked after a commit");
	cr_assert_geq(w.ret, 0, "kevent_wait = %d", w.ret);
	r = w.ret;
	if (r < 2)
		r += kevent_wait(q, 4, 2, kt_ts(0), 0);
	cr_assert_eq(r, 2, "the two waiting events were copied (%d)", r);
	cr_assert_eq(ring->ring_kidx, 2);
	cr_assert_eq(id_set(ring->event, 2) | first, 0x3f, "the ring holds the two other events");
	kt_close_ring(q, ring);
}

Test(ring, k3_full_ring_duplicate_commit_frees_nothing,
     .description = "K3: on a full ring a commit to the committed index frees nothing (a stale "
		    "duplicate never frees unprocessed events); a full ring commits in two steps")
{
	struct kevent_ring *ring;
	struct ukevent ev[8];
	int q = kt_ring_taken(&ring, 4, 4);

	cr_assert_eq(ring->ring_kidx, 0, "the ring is full");
	cr_assert_eq(kevent_commit(q, 0, 0), 0, "a commit to the committed index frees nothing");
	ready_n(q, 10, 1);
	cr_assert_eq(kt_get(q, 1, 8, ev, KT_WAIT_MS), 1);
	cr_assert(ev[0].ret_flags & KEVENT_RET_COPY_FAILED, "the ring was freed: %#x",
		  ev[0].ret_flags);
	/* All but one, then the last one. */
	cr_assert_eq(kevent_commit(q, 3, 0), 3);
	cr_assert_eq(kevent_commit(q, 0, 0), 1);
	cr_assert_eq(ring->ring_over, 1, "ring_over %u", ring->ring_over);
	cr_assert_eq(kevent_commit(q, 0, 1), 0, "nothing left to commit");
	kt_close_ring(q, ring);
}

static void kt_on_usr1(int sig)
{
	(void)sig;
}

Test(ring, k4_k11_wait_for_space_woken_by_ready_zero,
     .description = "K4/K11: kevent_wait waiting for ring space returns on READY(0)")
{
	struct waiter w = { .num = 4, .old_uidx = 0, .ms = -1 };
	struct kevent_ring *ring;
	int q = kt_ring_taken(&ring, 4, 4);

	ready_n(q, 10, 1); /* ready, and no room for it */
	w.q = q;
	kt_thread_start(&w.th, wait_main, &w);
	cr_assert_not(kt_join_within(w.th, KT_QUIET_MS), "kevent_wait returned (%d)", w.ret);
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_READY, 0, NULL), 0);
	cr_assert(kt_join_within(w.th, KT_WAIT_MS), "kevent_wait still waits after READY(0)");
	cr_assert_eq(w.ret, 0, "kevent_wait = %d", w.ret);
	kt_close_ring(q, ring);
}

Test(ring, k4_k16_wait_for_space_ends_on_signal,
     .description = "K4/K16: kevent_wait waiting for ring space ends with -EINTR on a signal")
{
	struct sigaction sa = { .sa_handler = kt_on_usr1 }, old;
	struct waiter w = { .num = 4, .old_uidx = 0, .ms = -1 };
	struct kevent_ring *ring;
	int q = kt_ring_taken(&ring, 4, 4);

	cr_assert_eq(sigaction(SIGUSR1, &sa, &old), 0);
	ready_n(q, 10, 1);
	w.q = q;
	kt_thread_start(&w.th, wait_main, &w);
	cr_assert_not(kt_join_within(w.th, KT_QUIET_MS), "kevent_wait returned (%d)", w.ret);
	pthread_kill(w.th, SIGUSR1);
	cr_assert(kt_join_within(w.th, KT_WAIT_MS), "kevent_wait still waits after a signal");
	cr_assert_eq(w.ret, -EINTR, "kevent_wait = %d", w.ret);
	sigaction(SIGUSR1, &old, NULL);
	kt_close_ring(q, ring);
}

Test(ring, k15_wait_for_space_does_not_hold_events_back,
     .description = "K15/K4: while one thread waits for ring space, another thread asleep in "
		    "kevent_get_events is woken by a new event")
{
	struct waiter w = { .num = 4, .old_uidx = 0, .ms = -1 };
	struct kevent_ring *ring;
	struct kt_getter g;
	int q = kt_ring_taken(&ring, 4, 4), rx, tx;

	kt_udp_pair(&rx, &tx);
	kt_add(q, kt_sock_ev(rx, KEVENT_SOCKET_RECV, KEVENT_REQ_ET));
	ready_n(q, 10, 1);
	w.q = q;
	kt_thread_start(&w.th, wait_main, &w);
	cr_assert_not(kt_join_within(w.th, KT_QUIET_MS), "kevent_wait returned (%d)", w.ret);
	/* It takes the ready event (COPY_FAILED: no room) and sleeps for a second one. */
	kt_getter_start(&g, q, 2, -1);
	kt_getter_parked(&g);
	kt_send(tx, 1);
	cr_assert(kt_join_within(g.th, KT_WAIT_MS), "the sleeping getter was not woken");
	cr_assert_eq(g.ret, 2, "kevent_get_events = %d", g.ret);
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_READY, 0, NULL), 0);
	cr_assert(kt_join_within(w.th, KT_WAIT_MS));
	close(rx);
	close(tx);
	kt_close_ring(q, ring);
}

Test(ring, k5_wait_copies_at_most_num,
     .description = "K5: kevent_wait copies at most num events into the ring")
{
	struct kevent_ring *ring;
	int q;

	q = kt_queue_ring(&ring, 8);
	ready_n(q, 0, 5);
	cr_assert_eq(kevent_wait(q, 3, 0, kt_ts(KT_WAIT_MS), 0), 3);
	cr_assert_eq(ring->ring_kidx, 3);
	cr_assert_eq(kevent_wait(q, 8, 0, kt_ts(KT_WAIT_MS), 0), 2);
	cr_assert_eq(ring->ring_kidx, 5);
	cr_assert_eq(id_set(ring->event, 5), 0x1f, "each event once in the ring");
	cr_assert_eq(kevent_wait(q, 8, 0, kt_ts(KT_QUIET_MS), 0), 0, "nothing more to copy");
	cr_assert_eq(ring->ring_kidx, 5);
	cr_assert_eq(kevent_commit(q, 5, 0), 5);
	kt_close_ring(q, ring);
}

Test(ring, k5_wait_stale_uidx_returns_at_once,
     .description = "K5: kevent_wait returns at once when old_uidx is stale")
{
	struct waiter w = { .num = 8, .old_uidx = 0, .ms = 10000 };
	struct kevent_ring *ring;
	int q;

	q = kt_queue_ring(&ring, 8);
	ready_n(q, 0, 2);
	cr_assert_eq(kevent_wait(q, 8, 0, kt_ts(KT_WAIT_MS), 0), 2);
	cr_assert_eq(kevent_commit(q, 2, 0), 2);

	/* Nothing is ready; the committed index is 2, the caller believes 0. */
	w.q = q;
	kt_thread_start(&w.th, wait_main, &w);
	cr_assert(kt_join_within(w.th, KT_WAIT_MS), "kevent_wait blocked despite a stale old_uidx");
	cr_assert_eq(w.ret, 0, "kevent_wait = %d", w.ret);

	/* With the right index it blocks (until the events come). */
	w.old_uidx = 2;
	kt_thread_start(&w.th, wait_main, &w);
	cr_assert_not(kt_join_within(w.th, KT_QUIET_MS), "kevent_wait did not block");
	kt_unotify_ready(q, 1);
	cr_assert(kt_join_within(w.th, KT_WAIT_MS));
	cr_assert_eq(w.ret, 1);
	cr_assert_eq(ring->event[2].id.raw_u64, 1);
	kt_close_ring(q, ring);
}
