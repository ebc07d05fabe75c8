// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * KEVENT_UNOTIFY (K20) and KEVENT_CTL_READY (K11).
 */
#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(unotify, .timeout = KT_TEST_TIMEOUT);

Test(unotify, k20_any_id, .description = "K20: UNOTIFY takes any id")
{
	static const __u64 ids[] = { 0, 1, 0xffffffffULL, 0x8000000000000000ULL, UINT64_MAX };
	enum { N = sizeof(ids) / sizeof(ids[0]) };
	struct ukevent ev[8];
	int q, i, n;

	q = kt_queue();
	for (i = 0; i < N; i++)
		kt_unotify_add(q, ids[i], 0);
	for (i = 0; i < N; i++)
		kt_unotify_ready(q, ids[i]);
	n = kt_get(q, N, 8, ev, KT_WAIT_MS);
	cr_assert_eq(n, N);
	for (i = 0; i < N; i++)
		cr_assert_eq(kt_count(ev, n, KEVENT_UNOTIFY, ids[i]), 1, "id %llu",
			     (unsigned long long)ids[i]);
	kt_close(q);
}

Test(unotify, k20_each_ready_delivered_once,
     .description = "K20: each READY is delivered once, no level redelivery")
{
	int q, round;

	q = kt_queue();
	kt_unotify_add(q, 8, 0);
	kt_expect_none(q);
	for (round = 0; round < 3; round++) {
		kt_unotify_ready(q, 8);
		kt_next(q, KEVENT_UNOTIFY, 8);
		kt_expect_none(q);
	}
	/* Still registered after its deliveries. */
	kt_done(q, KEVENT_CTL_REMOVE, kt_unotify_ev(8, 0));
	kt_close(q);
}

Test(unotify, k20_readies_before_delivery_merge,
     .description = "K20/K12: READYs before delivery merge into one event")
{
	struct ukevent uk[3] = { kt_unotify_ev(1, 0), kt_unotify_ev(1, 0), kt_unotify_ev(1, 0) };
	struct ukevent ev[8];
	int q, n;

	q = kt_queue();
	kt_unotify_add(q, 1, 0);
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_READY, 3, uk), 3, "three READYs in one batch");
	kt_unotify_ready(q, 1);
	n = kt_get(q, 2, 8, ev, KT_QUIET_MS * 2);
	cr_assert_eq(n, 1, "%d events", n);
	kt_expect_none(q);
	kt_close(q);
}

Test(unotify, k20_req_ready_at_add, .description = "K20: REQ_READY at ADD fires it")
{
	int q;

	q = kt_queue();
	kt_unotify_queued(q, 2);
	kt_next(q, KEVENT_UNOTIFY, 2);
	kt_expect_none(q);
	kt_close(q);
}

Test(unotify, k11_ready_delivers_registered_mask,
     .description = "K11: READY delivers the interest with its registered event mask")
{
	struct ukevent uk = kt_unotify_ev(3, KEVENT_REQ_ET), got;
	int q;

	q = kt_queue();
	uk.event = 0xa5;
	uk.ptr = &uk;
	kt_add(q, uk);
	uk.event = 0; /* READY names the identity only */
	kt_done(q, KEVENT_CTL_READY, uk);
	got = kt_next(q, KEVENT_UNOTIFY, 3);
	cr_assert_eq(got.event, 0xa5, "event %#x", got.event);
	cr_assert_eq(got.req_flags, KEVENT_REQ_ET);
	cr_assert_eq(got.ret_flags, 0);
	cr_assert_eq(got.ptr, (void *)&uk);
	kt_close(q);
}

Test(unotify, k20_empty_mask_still_fires,
     .description = "K20: an UNOTIFY with event mask 0 fires through READY and REQ_READY alike")
{
	struct ukevent uk = kt_unotify_ev(4, 0), got;
	int q;

	q = kt_queue();
	uk.event = 0;
	kt_add(q, uk);
	kt_done(q, KEVENT_CTL_READY, uk);
	got = kt_next(q, KEVENT_UNOTIFY, 4);
	cr_assert_eq(got.event, 0, "event %#x", got.event);
	/* Ready at once without ALWAYS_QUEUE: returned in place, with the same mask. */
	uk.id.raw_u64 = 5;
	uk.req_flags = KEVENT_REQ_READY;
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_ADD, 1, &uk), 1);
	cr_assert_eq(uk.ret_flags, KEVENT_RET_DONE);
	cr_assert_eq(uk.event, 0, "event %#x", uk.event);
	/* With it: registered and queued. */
	uk = kt_unotify_ev(6, KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE);
	uk.event = 0;
	kt_add(q, uk);
	got = kt_next(q, KEVENT_UNOTIFY, 6);
	cr_assert_eq(got.event, 0, "event %#x", got.event);
	kt_expect_none(q);
	kt_close(q);
}

Test(unotify, k11_ready_socket_interest, .description = "K11: READY marks a socket interest ready")
{
	int q, rx, tx;

	q = kt_udp_watched(&rx, &tx, KEVENT_REQ_ET);
	kt_expect_none(q);
	kt_done(q, KEVENT_CTL_READY, kt_sock_ev(rx, KEVENT_SOCKET_RECV, 0));
	cr_assert_eq(kt_next(q, KEVENT_SOCKET, (__u32)rx).event, KEVENT_SOCKET_RECV);
	kt_close_pair(q, rx, tx);
}

Test(unotify, k11_ready_zero_wakes_every_thread,
     .description = "K11: READY with num = 0 wakes every waiting thread")
{
	struct kt_getter g[3];
	int q, i;

	q = kt_queue();
	kt_unotify_add(q, 1, 0);
	kt_getters_parked(g, 3, q, 1, 5000);
	for (i = 0; i < 3; i++)
		cr_assert_not(kt_join_within(g[i].th, 0), "thread %d did not wait (%d)", i,
			      g[i].ret);
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_READY, 0, NULL), 0);
	for (i = 0; i < 3; i++) {
		cr_assert(kt_join_within(g[i].th, 3000), "thread %d still waiting after READY(0)",
			  i);
		cr_assert_eq(g[i].ret, 0, "thread %d: get_events = %d", i, g[i].ret);
	}
	kt_close(q);
}

/* K20 under concurrency: threads add, ready and harvest on one queue at once. */
#define CC_THREADS 4
#define CC_IDS	   200

struct cc_arg {
	pthread_t th;
	int q, self, errors;
	int *count; /* deliveries per id, all threads */
	pthread_mutex_t *lock;
};

static void *cc_main(void *p)
{
	struct cc_arg *a = p;
	struct ukevent uk, ev[16];
	int i, j, n;

	for (i = 0; i < CC_IDS; i++) {
		uk = kt_unotify_ev((__u64)a->self * CC_IDS + i, 0);
		if (kevent_ctl(a->q, KEVENT_CTL_ADD, 1, &uk) != 1 || uk.ret_flags)
			a->errors++;
		uk.ret_flags = 0;
		if (kevent_ctl(a->q, KEVENT_CTL_READY, 1, &uk) != 1 ||
		    uk.ret_flags != KEVENT_RET_DONE)
			a->errors++;
		n = kevent_get_events(a->q, 0, 16, kt_ts(0), ev, 0);
		if (n < 0)
			a->errors++;
		pthread_mutex_lock(a->lock);
		for (j = 0; j < n; j++)
			if (ev[j].id.raw_u64 < CC_THREADS * CC_IDS)
				a->count[ev[j].id.raw_u64]++;
			else
				a->errors++;
		pthread_mutex_unlock(a->lock);
	}
	return NULL;
}

Test(unotify, k20_concurrent_each_ready_once,
     .description = "K20/K25: concurrent add, READY and harvest: each READY delivered once")
{
	static int count[CC_THREADS * CC_IDS];
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct cc_arg a[CC_THREADS];
	struct ukevent ev[64];
	int q, i, n, wrong = 0;

	q = kt_queue();
	for (i = 0; i < CC_THREADS; i++) {
		a[i] = (struct cc_arg){ .q = q, .self = i, .count = count, .lock = &lock };
		kt_thread_start(&a[i].th, cc_main, &a[i]);
	}
	for (i = 0; i < CC_THREADS; i++) {
		cr_assert(kt_join_within(a[i].th, 10000), "thread %d hangs", i);
		cr_assert_eq(a[i].errors, 0, "thread %d saw %d errors", i, a[i].errors);
	}
	while ((n = kt_get(q, 0, 64, ev, 0)) > 0)
		for (i = 0; i < n; i++)
			count[ev[i].id.raw_u64 % (CC_THREADS * CC_IDS)]++;
	cr_assert_eq(n, 0);
	for (i = 0; i < CC_THREADS * CC_IDS; i++)
		wrong += count[i] != 1;
	cr_assert_eq(wrong, 0, "%d ids not delivered exactly once", wrong);
	kt_close(q);
}
