// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * KEVENT_TIMER (K19), with K2, K8, K9, K10, K12, K13 and K25, on whichever path serves it:
 * bpf_timer, or the fallback's timerfd and heap (KEVENT_BACKEND=syscall, K26). Tests named
 * `bpf` look at what only the BPF path has (kernel timer nodes, its slot map) and skip on the
 * fallback. Real kernel timers; no assertion on how late a timer is. Expiration counts are
 * checked against the clock: a drift-free periodic timer has fired floor(elapsed / period)
 * times whatever the load.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(timer, .timeout = KT_TEST_TIMEOUT);

#define MS 1000000u

static struct ukevent kt_timer_ev(__u32 sec, __u32 nsec, __u32 req_flags, __u64 user)
{
	struct ukevent uk = { .type = KEVENT_TIMER, .event = KEVENT_TIMER_FIRED };

	uk.id.raw[0] = sec;
	uk.id.raw[1] = nsec;
	uk.req_flags = req_flags;
	uk.user_u64 = user;
	return uk;
}

static long kt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Expirations delivered for the timer with this user value over ms milliseconds; *last gets
 * the CLOCK_MONOTONIC millisecond (ret_data[0]) of its last event.
 */
static unsigned long kt_collect(int q, __u64 user, long ms, __u32 *last)
{
	long end = kt_now_ms() + ms;
	unsigned long total = 0;
	struct ukevent ev[16];

	for (long left = ms; left > 0; left = end - kt_now_ms()) {
		int n = kt_get(q, 1, 16, ev, left);

		for (int i = 0; i < n; i++) {
			if (ev[i].type != KEVENT_TIMER || ev[i].user_u64 != user)
				continue;
			total += ev[i].ret_data[1];
			*last = ev[i].ret_data[0];
		}
	}
	return total;
}

/* Milliseconds from `from` (kt_now_ms()) to an event's ret_data[0] (its low 32 bits). */
static long kt_ms_since(long from, __u32 ms)
{
	return (int32_t)(ms - (__u32)from);
}

/* The next event is one expiry of timer `user`, at least ms after `from` (kt_now_ms()). */
static void kt_expect_expiry(int q, __u64 user, long from, long ms)
{
	struct ukevent ev[4];

	cr_assert_eq(kt_get_some(q, ev, 4), 1);
	cr_assert_eq(ev[0].user_u64, user);
	cr_assert_eq(ev[0].ret_data[1], 1, "one expiration, got %u", ev[0].ret_data[1]);
	cr_assert_geq(kt_ms_since(from, ev[0].ret_data[0]), ms, "expired %ld ms after, want %ld",
		      kt_ms_since(from, ev[0].ret_data[0]), ms);
}

static unsigned long kt_kernel_timers(int q)
{
	struct kevent_stats st;

	cr_assert_eq(kevent_stats(q, &st), 0);
	return st.kernel_timers;
}

/* The tests named `bpf`: what they check exists only where BPF programs serve the timers. */
static void kt_need_bpf_timers(int q)
{
	if (kevent_backend(q, KEVENT_TIMER) != KEVENT_BACKEND_BPF)
		cr_skip_test("timers run on the syscall fallback: no kernel timer nodes or slots");
}

/* MODIFY (restart) uk n times; each must succeed. */
static void kt_restart(int q, struct ukevent *uk, int n)
{
	for (int i = 0; i < n; i++)
		cr_assert_eq(kt_ctl1(q, KEVENT_CTL_MODIFY, uk), KEVENT_RET_DONE);
}

Test(timer, k19_oneshot_fires_once, .description = "K19/K13: a ONESHOT timer fires once, then is gone")
{
	int q = kt_queue();
	struct ukevent uk = kt_timer_ev(0, 20 * MS, KEVENT_REQ_ONESHOT, 7), ev[4];
	long before = kt_now_ms();
	int n;

	kt_add(q, uk);
	n = kt_get_some(q, ev, 4);
	cr_assert_eq(n, 1);
	cr_assert_eq(ev[0].type, KEVENT_TIMER);
	cr_assert_eq(ev[0].event, KEVENT_TIMER_FIRED);
	cr_assert_eq(ev[0].user_u64, 7);
	cr_assert_eq(ev[0].ret_data[1], 1, "one expiration, got %u", ev[0].ret_data[1]);
	/* ret_data[0]: CLOCK_MONOTONIC milliseconds at expiry. */
	cr_assert(ev[0].ret_data[0] >= (__u32)before && ev[0].ret_data[0] <= (__u32)kt_now_ms());
	kt_expect_none(q);
	kt_assert_gone(q, uk);
	kt_close(q);
}

Test(timer, k19_oneshot_counts_one, .description = "K19: a ONESHOT expires once: however late its expiry is served, ret_data[1] is 1")
{
	int q = kt_queue();
	struct ukevent ev[4];

	/* 1 ns: the kernel serves it microseconds late, thousands of periods. */
	kt_add(q, kt_timer_ev(0, 1, KEVENT_REQ_ONESHOT, 12));
	cr_assert_eq(kt_get_some(q, ev, 4), 1);
	cr_assert_eq(ev[0].ret_data[1], 1, "one expiration, got %u", ev[0].ret_data[1]);
	kt_expect_none(q);
	kt_close(q);
}

Test(timer, k19_periodic_no_drift, .description = "K19: the n-th expiry is due at start + n * period: the count keeps up with the clock, never behind, never ahead")
{
	int q = kt_queue();
	long before, after, end, lower;
	unsigned long total;
	__u32 last = 0;

	before = kt_now_ms();
	kt_add(q, kt_timer_ev(0, 1 * MS, 0, 1));
	after = kt_now_ms();
	total = kt_collect(q, 1, 1000, &last);
	end = kt_now_ms();
	/*
	 * The kernel counted the last event's expiry (ret_data[0]) with every one due before it:
	 * floor((last - start) / 1 ms), the start before `after` (give a millisecond of
	 * rounding). A re-arm relative to the callback loses its latency at every period, about
	 * 30 us here: some 30 expirations short after a second, and more under load.
	 */
	cr_assert_gt(total, 0, "the timer fired");
	lower = kt_ms_since(after, last) - 1;
	cr_assert_geq((long)total, lower - 1, "%lu expirations, %ld were due by the last one",
		      total, lower);
	/* Nothing counted that was not due when the last event was taken. */
	cr_assert_leq((long)total, end - before + 1, "%lu expirations in %ld ms", total,
		      end - before);
	kt_close(q);
}

Test(timer, k12_expirations_merge, .description = "K12/K19: expirations slept through merge into one event with their count")
{
	int q = kt_queue();
	struct ukevent ev[8];
	int n;

	kt_add(q, kt_timer_ev(0, 5 * MS, 0, 1));
	kt_sleep_ms(100);
	n = kt_get(q, 1, 8, ev, KT_WAIT_MS);
	cr_assert_eq(n, 1, "one event for one timer, got %d", n);
	cr_assert_geq(ev[0].ret_data[1], 2, "merged expirations counted: %u", ev[0].ret_data[1]);
	kt_close(q);
}

Test(timer, k19_count_saturates, .description = "K19/K12: a 1 ns timer left unconsumed past 2^32 expirations delivers a saturated count, then keeps firing")
{
	int q = kt_queue();
	struct ukevent ev[4];
	int n;

	kt_add(q, kt_timer_ev(0, 1, 0, 6));
	/* Over 2^32 ns: more expirations than ret_data[1] holds. */
	kt_sleep_ms(4500);
	n = kt_get(q, 1, 4, ev, KT_WAIT_MS);
	cr_assert_eq(n, 1, "one event for the timer, got %d", n);
	cr_assert_eq(ev[0].ret_data[1], UINT32_MAX, "the count saturates, got %u",
		     ev[0].ret_data[1]);
	n = kt_get(q, 1, 4, ev, KT_WAIT_MS);
	cr_assert_eq(n, 1, "the timer keeps firing, got %d events", n);
	cr_assert(ev[0].ret_data[1] >= 1 && ev[0].ret_data[1] < UINT32_MAX, "count %u",
		  ev[0].ret_data[1]);
	kt_close(q);
}

Test(timer, k10_remove_stops_at_once, .description = "K10: after REMOVE returns no expiry is delivered, not even one already queued")
{
	int q = kt_queue();
	struct ukevent uk = kt_timer_ev(0, 2 * MS, 0, 3), ev[8];

	kt_add(q, uk);
	kt_get_some(q, ev, 8);
	kt_sleep_ms(20); /* more expiries wait in the ring and in the slot */
	kt_done(q, KEVENT_CTL_REMOVE, uk);
	kt_expect_none(q);
	kt_close(q);
}

Test(timer, k8_modify_restarts_with_new_flags, .description = "K8/K19: MODIFY restarts the timer: a periodic timer made ONESHOT fires once more, then is gone")
{
	int q = kt_queue();
	struct ukevent uk = kt_timer_ev(0, 10 * MS, 0, 4), ev[4];

	/* The period is the timer's id, part of its identity: MODIFY keeps it. */
	kt_add(q, uk);
	cr_assert_geq(kt_get_some(q, ev, 4), 1);
	uk.req_flags = KEVENT_REQ_ONESHOT;
	kt_done(q, KEVENT_CTL_MODIFY, uk);
	cr_assert_eq(kt_get_some(q, ev, 4), 1);
	cr_assert_eq(ev[0].req_flags, KEVENT_REQ_ONESHOT);
	kt_expect_none(q);
	kt_assert_gone(q, uk);
	kt_close(q);
}

Test(timer, k10_restart_forgets_the_old_arming, .description = "K10/K8: after MODIFY returns nothing of the old arming is delivered; the timer is due a full period after the restart")
{
	int q = kt_queue();
	struct ukevent uk = kt_timer_ev(0, 50 * MS, 0, 8);
	long t;

	kt_add(q, uk);
	kt_sleep_ms(60); /* an expiry waits to be delivered, the next one is 40 ms away */
	t = kt_now_ms();
	kt_done(q, KEVENT_CTL_MODIFY, uk);
	kt_expect_expiry(q, 8, t, 50);
	kt_close(q);
}

Test(timer, k8_modify_rearms_a_fired_oneshot, .description = "K8/K19: MODIFY of a ONESHOT that fired and was not delivered arms it again: it fires once more")
{
	int q = kt_queue();
	struct ukevent uk = kt_timer_ev(0, 20 * MS, KEVENT_REQ_ONESHOT, 10);
	long t;

	kt_add(q, uk);
	kt_sleep_ms(50); /* fired, its event waits */
	t = kt_now_ms();
	kt_done(q, KEVENT_CTL_MODIFY, uk);
	kt_expect_expiry(q, 10, t, 20);
	kt_expect_none(q);
	kt_assert_gone(q, uk);
	kt_close(q);
}

Test(timer, k8_restarts_then_fires_once, .description = "K8/K19: a ONESHOT restarted (MODIFY) 100,000 times fires once, a full period after the last restart")
{
	int q = kt_queue();
	struct ukevent uk = kt_timer_ev(0, 20 * MS, KEVENT_REQ_ONESHOT, 11);
	long t;

	kt_add(q, uk);
	kt_restart(q, &uk, 99999);
	t = kt_now_ms();
	kt_restart(q, &uk, 1);
	kt_expect_expiry(q, 11, t, 20);
	kt_expect_none(q);
	kt_close(q);
}

Test(timer, k8_bpf_restarts_hold_one_kernel_timer, .description = "K8 (BPF path): restarting a timer (MODIFY) 100,000 times leaves the kernel holding one timer node")
{
	int q = kt_queue();
	struct ukevent uk = kt_timer_ev(0, 20 * MS, KEVENT_REQ_ONESHOT, 11);

	kt_need_bpf_timers(q);
	kt_add(q, uk);
	kt_restart(q, &uk, 100000);
	cr_assert_eq(kt_kernel_timers(q), 1);
	kt_close(q);
}

Test(timer, k10_bpf_remove_releases_the_kernel_timer, .description = "K10 (BPF path): REMOVE takes the timer out of the kernel at once: 1,000 ADD/REMOVE cycles of 60 s timers leave none held")
{
	int q = kt_queue();
	struct ukevent uk;

	kt_need_bpf_timers(q);
	for (int i = 0; i < 1000; i++) {
		uk = kt_timer_ev(60, 0, 0, (__u64)i);
		kt_add(q, uk);
		kt_done(q, KEVENT_CTL_REMOVE, uk);
	}
	cr_assert_eq(kt_kernel_timers(q), 0);
	kt_close(q);
}

struct kt_churn {
	int q;
	bool stop; /* atomic */
	unsigned long foreign; /* events of the other queue's timers seen here */
};

/* Add and remove 200 us timers (their nodes come due all the time) until told to stop. */
static void *kt_churn_main(void *arg)
{
	struct kt_churn *c = arg;
	struct ukevent uk, ev[8];

	for (__u64 user = 1; !__atomic_load_n(&c->stop, __ATOMIC_RELAXED); user++) {
		uk = kt_timer_ev(0, 200000, 0, user);
		if (kevent_ctl(c->q, KEVENT_CTL_ADD, 1, &uk) != 1 || uk.ret_flags)
			continue; /* the one slot is the other queue's now */
		for (int i = kevent_get_events(c->q, 0, 8, kt_ts(0), ev, 0); i > 0; i--)
			c->foreign += ev[i - 1].user_u64 != user;
		kevent_ctl(c->q, KEVENT_CTL_REMOVE, 1, &uk);
	}
	return NULL;
}

Test(timer, k10_slot_passed_between_queues, .description = "K10/K19: two queues churn timers side by side (on the BPF path, taking turns on one kernel slot): a removed timer never delivers to the next timer's queue, nor early, nor twice")
{
	struct kt_churn c = { 0 };
	struct ukevent uk, ev[4];
	unsigned long fired = 0;
	pthread_t th;
	long end, t;
	int q;

	/* One slot: a timer often gets it while the removed one's node is still in the tree. */
	setenv("KEVENT_MAX_INTERESTS", "1", 1);
	q = kt_queue();
	c.q = kt_queue();
	kt_thread_start(&th, kt_churn_main, &c);
	end = kt_now_ms() + 1000;
	for (__u64 user = 1; kt_now_ms() < end; user++) {
		uk = kt_timer_ev(0, 2 * MS, KEVENT_REQ_ONESHOT, user);
		t = kt_now_ms();
		if (kevent_ctl(q, KEVENT_CTL_ADD, 1, &uk) != 1 || uk.ret_flags)
			continue;
		cr_assert_eq(kt_get(q, 1, 4, ev, KT_WAIT_MS), 1, "timer %llu fired once",
			     (unsigned long long)user);
		cr_assert_eq(ev[0].user_u64, user);
		cr_assert_eq(ev[0].ret_data[1], 1);
		cr_assert_geq(kt_ms_since(t, ev[0].ret_data[0]), 2);
		fired++;
	}
	__atomic_store_n(&c.stop, true, __ATOMIC_RELAXED);
	cr_assert(kt_join_within(th, KT_WAIT_MS));
	cr_assert_gt(fired, 0);
	cr_assert_eq(c.foreign, 0, "%lu events crossed over", c.foreign);
	cr_assert_eq(kt_kernel_timers(q), 0);
	kt_close(q);
	kt_close(c.q);
}

Test(timer, k19_stays_in_its_queue, .description = "K19: a timer of one queue never shows up in another")
{
	int a = kt_queue(), b = kt_queue();
	struct ukevent ev[4];

	kt_add(a, kt_timer_ev(0, 5 * MS, 0, 5));
	cr_assert_geq(kt_get_some(a, ev, 4), 1);
	kt_expect_none(b);
	kt_close(a);
	kt_close(b);
}

Test(timer, k2_bpf_close_cancels_timers, .description = "K2/K19 (BPF path): kevent_close cancels the queue's timers: the kernel lets go of them at once")
{
	int a = kt_queue(), b = kt_queue();

	kt_need_bpf_timers(b);
	kt_add(b, kt_timer_ev(100, 0, 0, 9));
	for (int i = 0; i < 5; i++)
		kt_add(a, kt_timer_ev(100, 0, 0, (__u64)i));
	cr_assert_eq(kt_kernel_timers(b), 6);
	kt_close(a);
	/* Not one left waiting for its due time; the other queue's stays. */
	cr_assert_eq(kt_kernel_timers(b), 1);
	kt_close(b);
}

Test(timer, k25_bad_periods, .description = "K25: zero period, nanoseconds >= 1e9, unknown event bits are EINVAL")
{
	int q = kt_queue();
	struct ukevent bad[3] = { kt_timer_ev(0, 0, 0, 1), kt_timer_ev(1, 1000000000u, 0, 2),
				  kt_timer_ev(1, 0, 0, 3) };

	bad[2].event = 0x2;
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_ADD, 3, bad), 3);
	for (int i = 0; i < 3; i++)
		kt_assert_failed(&bad[i], EINVAL);
	kt_close(q);
}

Test(timer, k25_bpf_full_map_is_enospc, .description = "K25 (BPF path): more timers than the kernel side holds: ENOSPC on those, the others armed")
{
	struct ukevent uk[12], ev[16];
	int q, got = 0;

	/* Before the first kevent_init of this process: the kernel side holds 8 interests. */
	setenv("KEVENT_MAX_INTERESTS", "8", 1);
	q = kt_queue();
	kt_need_bpf_timers(q);
	for (int i = 0; i < 12; i++)
		uk[i] = kt_timer_ev(0, 5 * MS, KEVENT_REQ_ONESHOT, (__u64)i);
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_ADD, 12, uk), 12);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(uk[i].ret_flags, 0, "timer %d armed", i);
	for (int i = 8; i < 12; i++)
		kt_assert_failed(&uk[i], ENOSPC);
	while (got < 8) {
		int n = kt_get(q, 1, 16, ev, KT_WAIT_MS);

		cr_assert_gt(n, 0, "the 8 armed timers fire (%d so far)", got);
		got += n;
	}
	cr_assert_eq(got, 8);
	kt_close(q);
}

/* n ONESHOT timers, timer j due `first` + j * `step` ns after its ADD; users j, added shuffled. */
static struct ukevent *kt_spread(unsigned int n, __u64 first, __u64 step)
{
	struct ukevent *uk = calloc(n, sizeof(*uk));

	cr_assert_not_null(uk);
	for (unsigned int i = 0; i < n; i++) {
		unsigned int j = (unsigned int)(((__u64)i * 7919) % n); /* n is not a multiple */
		__u64 ns = first + j * step;

		uk[i] = kt_timer_ev((__u32)(ns / 1000000000u), (__u32)(ns % 1000000000u),
				    KEVENT_REQ_ONESHOT, j);
	}
	return uk;
}

/* ADD uk[0..n) in one call; every entry must register. Returns how long the call took (ms). */
static long kt_add_all(int q, struct ukevent *uk, unsigned int n)
{
	long t = kt_now_ms();

	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_ADD, n, uk), (int)n);
	for (unsigned int i = 0; i < n; i++)
		cr_assert_eq(uk[i].ret_flags, 0, "timer %u armed", i);
	return kt_now_ms() - t;
}

Test(timer, k19_many_fire_once_in_due_order, .description = "K19/K12: 150 ONESHOT timers added in shuffled order each fire once, in the order they are due, with non-decreasing expiry times")
{
	int q = kt_queue();
	struct ukevent *uk = kt_spread(150, 20 * MS, 2 * MS), ev[64];
	unsigned int next = 0;
	__u32 last_ms = 0;
	long took;

	took = kt_add_all(q, uk, 150);
	while (next < 150) {
		int n = kt_get(q, 1, 64, ev, KT_WAIT_MS);

		cr_assert_gt(n, 0, "%u of 150 timers fired", next);
		for (int i = 0; i < n; i++, next++) {
			cr_assert_eq(ev[i].ret_data[1], 1);
			cr_assert_lt(ev[i].user_u64, 150);
			/* A call slower than the 2 ms between due times may reorder neighbours. */
			if (took < 2)
				cr_assert_eq(ev[i].user_u64, next, "timer %llu came %uth",
					     (unsigned long long)ev[i].user_u64, next);
			cr_assert_geq(kt_ms_since(last_ms, ev[i].ret_data[0]), 0);
			last_ms = ev[i].ret_data[0];
		}
	}
	kt_expect_none(q);
	kt_close(q);
	free(uk);
}

Test(timer, k10_removed_among_many_never_fire, .description = "K10/K19: of 2,001 timers, the 1,000 removed (in shuffled order) never fire; each of the others fires once")
{
	int q = kt_queue();
	struct ukevent *uk = kt_spread(2001, 30 * MS, 50000), *gone, ev[64];
	unsigned char seen[2001] = { 0 };
	unsigned int ngone = 0, got = 0;

	gone = calloc(1000, sizeof(*gone));
	cr_assert_not_null(gone);
	kt_add_all(q, uk, 2001);
	for (unsigned int i = 0; i < 2001; i++)
		if (uk[i].user_u64 & 1)
			gone[ngone++] = uk[i];
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_REMOVE, ngone, gone), (int)ngone);
	for (unsigned int i = 0; i < ngone; i++)
		cr_assert_eq(gone[i].ret_flags, KEVENT_RET_DONE);
	while (got < 1001) {
		int n = kt_get(q, 1, 64, ev, KT_WAIT_MS);

		cr_assert_gt(n, 0, "%u of 1,001 timers fired", got);
		for (int i = 0; i < n; i++, got++) {
			__u64 u = ev[i].user_u64;

			cr_assert(u < 2001 && !(u & 1), "removed timer %llu fired", (unsigned long long)u);
			cr_assert_eq(seen[u]++, 0, "timer %llu fired twice", (unsigned long long)u);
		}
	}
	kt_expect_none(q);
	kt_close(q);
	free(gone);
	free(uk);
}

/* Does the queue's descriptor poll readable within ms? */
static bool kt_readable_within(int q, int ms)
{
	struct pollfd p = { .fd = q, .events = POLLIN };

	return poll(&p, 1, ms) > 0;
}

Test(timer, k2_removed_earliest_leaves_the_queue_quiet, .description = "K2/K10: once the earliest timer is removed the queue's descriptor stays unreadable past its due time; the next timer fires when due")
{
	int q = kt_queue();
	struct ukevent a = kt_timer_ev(0, 30 * MS, KEVENT_REQ_ONESHOT, 1);
	struct ukevent b = kt_timer_ev(0, 90 * MS, KEVENT_REQ_ONESHOT, 2);
	long t = kt_now_ms();

	kt_add(q, a);
	kt_add(q, b);
	kt_done(q, KEVENT_CTL_REMOVE, a);
	cr_assert_not(kt_readable_within(q, 50), "readable with nothing due");
	kt_expect_expiry(q, 2, t, 90);
	kt_expect_none(q);
	kt_close(q);
}

Test(timer, k2_restart_leaves_the_queue_quiet, .description = "K2/K10: a restarted timer leaves the queue's descriptor unreadable at its old due time; it fires a period after the restart")
{
	int q = kt_queue();
	struct ukevent uk = kt_timer_ev(0, 60 * MS, 0, 3);
	long t;

	kt_add(q, uk);
	kt_sleep_ms(30);
	t = kt_now_ms();
	kt_done(q, KEVENT_CTL_MODIFY, uk); /* the old arming was due in 30 ms, the new in 60 */
	cr_assert_not(kt_readable_within(q, 45), "readable at the old due time");
	kt_expect_expiry(q, 3, t, 60);
	kt_close(q);
}

Test(timer, k2_removed_after_expiry_leaves_the_queue_quiet, .description = "K2/K10: a timer removed after it expired, its expiry not yet taken, leaves the queue's descriptor unreadable")
{
	int q = kt_queue();
	struct ukevent uk = kt_timer_ev(0, 10 * MS, KEVENT_REQ_ONESHOT, 5);

	kt_add(q, uk);
	cr_assert(kt_readable_within(q, KT_WAIT_MS), "the expiry never made the queue readable");
	kt_done(q, KEVENT_CTL_REMOVE, uk); /* its expiry waits in the kernel ring, or the timerfd */
	cr_assert_not(kt_readable_within(q, 0), "readable with nothing to deliver");
	kt_expect_none(q);
	kt_close(q);
}

Test(timer, k11_k19_ready_on_expired_periodic_keeps_it_firing, .description = "K11/K19: KEVENT_CTL_READY on a periodic timer whose expirations wait undelivered: the event carries them, and the timer goes on firing")
{
	int q = kt_queue();
	struct ukevent uk = kt_timer_ev(0, 20 * MS, 0, 6), ev[4];
	int n;

	kt_add(q, uk);
	kt_sleep_ms(70); /* a few expirations, not taken */
	kt_done(q, KEVENT_CTL_READY, uk);
	n = kt_get(q, 1, 4, ev, KT_WAIT_MS);
	cr_assert_eq(n, 1, "got %d events", n);
	cr_assert_geq(ev[0].ret_data[1], 1, "the READY did not carry the expirations");
	n = kt_get(q, 1, 4, ev, KT_WAIT_MS);
	cr_assert_eq(n, 1, "the timer stopped firing after the READY (%d)", n);
	cr_assert_eq(ev[0].user_u64, 6);
	cr_assert_geq(ev[0].ret_data[1], 1);
	kt_close(q);
}

Test(timer, k13_timers_have_no_level_state, .description = "K13/K19: once delivered, a periodic timer in level mode, like one in ET mode, is delivered again only at its next expiry")
{
	int q = kt_queue();
	struct ukevent ev[4];
	int got = 0;

	kt_add(q, kt_timer_ev(0, 400 * MS, 0, 1));
	kt_add(q, kt_timer_ev(0, 400 * MS, KEVENT_REQ_ET, 2));
	while (got < 2) {
		int n = kt_get(q, 1, 4, ev, KT_WAIT_MS);

		cr_assert_gt(n, 0);
		for (int i = 0; i < n; i++)
			cr_assert_eq(ev[i].user_u64, (__u64)++got);
	}
	kt_expect_none(q); /* the next expiries are some 300 ms away */
	kt_close(q);
}

Test(timer, k9_ready_at_add, .description = "K9/K19: a timer added READY comes back DONE, unregistered; with ALWAYS_QUEUE it is delivered at once and then expires a period after its ADD")
{
	int q = kt_queue();
	struct ukevent uk = kt_timer_ev(0, 40 * MS, KEVENT_REQ_READY, 1), ev[4];
	long t;

	cr_assert_eq(kt_ctl1(q, KEVENT_CTL_ADD, &uk), KEVENT_RET_DONE);
	kt_assert_gone(q, uk);
	uk = kt_timer_ev(0, 40 * MS, KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE, 1);
	t = kt_now_ms();
	kt_add(q, uk);
	cr_assert_eq(kt_get(q, 1, 4, ev, 0), 1, "queued at ADD");
	cr_assert_eq(ev[0].event, KEVENT_TIMER_FIRED);
	cr_assert_eq(kt_get_some(q, ev, 4), 1);
	cr_assert_geq(ev[0].ret_data[1], 1);
	cr_assert_geq(kt_ms_since(t, ev[0].ret_data[0]), 40);
	kt_close(q);
}

Test(timer, k19_expiry_time_is_not_the_harvest_time, .description = "K19: ret_data[0] is the millisecond the timer expired, not when the queue was next asked")
{
	int q = kt_queue();
	struct ukevent ev[4];
	long before = kt_now_ms(), after;

	kt_add(q, kt_timer_ev(0, 20 * MS, KEVENT_REQ_ONESHOT, 1)); /* may load the programs */
	after = kt_now_ms();
	kt_sleep_ms(200);
	cr_assert_eq(kt_get(q, 1, 4, ev, KT_WAIT_MS), 1);
	cr_assert_geq(kt_ms_since(before, ev[0].ret_data[0]), 20);
	cr_assert_lt(kt_ms_since(after, ev[0].ret_data[0]), 150, "expired %ld ms after the ADD",
		     kt_ms_since(after, ev[0].ret_data[0]));
	kt_close(q);
}

Test(timer, k19_burst_beyond_one_pass, .description = "K19/K12: 70,000 ONESHOT timers due at once, more than one expiry pass serves, each fire once")
{
	int q = kt_queue();
	struct ukevent *uk = kt_spread(70000, 1, 0), *ev = calloc(4096, sizeof(*ev));
	unsigned char *seen = calloc(70000, 1);
	unsigned int got = 0;

	cr_assert(ev && seen);
	kt_add_all(q, uk, 70000);
	while (got < 70000) {
		int n = kt_get(q, 1, 4096, ev, KT_WAIT_MS);

		cr_assert_gt(n, 0, "%u of 70,000 timers fired", got);
		for (int i = 0; i < n; i++, got++) {
			cr_assert_lt(ev[i].user_u64, 70000);
			cr_assert_eq(ev[i].ret_data[1], 1);
			cr_assert_eq(seen[ev[i].user_u64]++, 0, "timer %llu fired twice",
				     (unsigned long long)ev[i].user_u64);
		}
	}
	kt_expect_none(q);
	kt_close(q);
	free(seen);
	free(ev);
	free(uk);
}
