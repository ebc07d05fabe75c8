// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * KEVENT_TIMER (K19): id.raw[0] = seconds, id.raw[1] = nanoseconds, periodic unless
 * ONESHOT. The timers live in the kernel (bpf/timer.bpf.c), one node each; what a timer is
 * armed for is in its slot's kev_tslot, which this file writes (kev_shared.h).
 *
 * ADD publishes the arming and asks the kernel for a node; REMOVE withdraws the arming and
 * asks the kernel to take the node out. The requests are batched per queue within one
 * kevent_ctl() call, one program run per KEV_TIMER_BATCH of them.
 *
 * MODIFY restarts the timer where it is: a new generation for its slot, so that nothing of
 * the old arming is delivered from then on (K10), and a new first expiry. The node in the
 * tree is due no later than that (it was armed before, with the same period) and moves when
 * it comes due: a restart is a few stores, no system call and no kernel memory. Only a
 * ONESHOT that fired, whose node went, asks the kernel for a new one.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"

#define NSEC_PER_SEC 1000000000ULL

struct kev_timer_batch {
	struct kev_timer_req req[KEV_TIMER_BATCH];
	/* The interest a node is for (NULL once removed before the flush); NULL for a removal. */
	struct kev_interest *it[KEV_TIMER_BATCH];
	struct ukevent *entry[KEV_TIMER_BATCH]; /* where to report a failure */
	unsigned int nr;
};

static bool kev_timer_req_void(const struct kev_timer_batch *b, unsigned int i)
{
	return !(b->req[i].flags & KEV_TIMER_CANCEL) && !b->it[i];
}

static void kev_timer_flush(struct kev_queue *q)
{
	struct kev_timer_batch *b = q->timers;
	unsigned int i, n = 0;
	int err;

	if (!b || !b->nr)
		return;
	for (i = 0; i < b->nr; i++) {
		if (kev_timer_req_void(b, i))
			continue;
		b->req[n] = b->req[i];
		b->it[n] = b->it[i];
		b->entry[n++] = b->entry[i];
	}
	b->nr = 0;
	err = n ? kev_kernel_arm_timers(b->req, n) : 0;
	for (i = 0; i < n; i++) {
		struct kev_interest *it = b->it[i];
		int e = err ? err : b->req[i].err;

		if (!it)
			continue; /* a removal: its interest is gone already */
		it->batched = -1;
		/*
		 * Freeing a failed interest may queue its removal, at index b->nr, which is
		 * at most i: the entries still to be read here are not overwritten.
		 */
		if (e) {
			kev_fail(b->entry[i], e);
			kev_interest_free(q, it);
		}
	}
}

/* Queue a request; it: the interest a node is for, NULL for a removal. */
static void kev_timer_queue(struct kev_queue *q, struct kev_interest *it, struct kev_timer_req r)
{
	struct kev_timer_batch *b = q->timers;

	if (b->nr == KEV_TIMER_BATCH)
		kev_timer_flush(q);
	if (it)
		it->batched = (int)b->nr;
	b->req[b->nr] = r;
	b->it[b->nr] = it;
	b->entry[b->nr++] = q->ctl_entry;
}

static __u64 kev_timer_period(const struct kev_interest *it)
{
	return it->uk.id.raw[0] * NSEC_PER_SEC + it->uk.id.raw[1];
}

/* Ask the kernel for a node serving the interest's arming (or to fit the slot's node to it). */
static void kev_timer_want_node(struct kev_queue *q, struct kev_interest *it)
{
	struct kev_timer_req r = {
		.slot = it->slot,
		.gen = it->gen,
		.period_ns = kev_timer_period(it),
		.queue = (__u16)q->qidx,
	};

	if (it->batched >= 0)
		q->timers->req[it->batched] = r; /* restarted before the flush: the newest arming */
	else
		kev_timer_queue(q, it, r);
}

/*
 * Publish an arming word, the kernel's NODE bit kept as it is, and return that bit: if it
 * was set, the node there sees this arming. The compare-and-swap orders the stores before
 * it (due_ns) before the word, which the kernel reads first.
 */
static bool kev_tslot_publish(struct kev_tslot *ts, __u64 arm)
{
	__u64 old = __atomic_load_n(&ts->arm, __ATOMIC_RELAXED);

	while (!__atomic_compare_exchange_n(&ts->arm, &old, arm | (old & KEV_TARM_NODE), false,
					    __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
		;
	return old & KEV_TARM_NODE;
}

static __u64 kev_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * NSEC_PER_SEC + (__u64)ts.tv_nsec;
}

/*
 * Arm from now, the first expiry a period ahead. Returns whether a node serves the slot.
 * restart: the slot's node, if any, was made for this interest (its period and queue).
 */
static bool kev_timer_start(const struct kev_interest *it, bool restart)
{
	struct kev_tslot *ts = kev_kernel_tslot(it->slot);
	__u64 arm = (__u64)it->gen << 32 | KEV_TARM_ARMED;

	if (it->uk.req_flags & KEVENT_REQ_ONESHOT)
		arm |= KEV_TARM_ONESHOT;
	if (restart)
		arm |= KEV_TARM_RESTART;
	__atomic_store_n(&ts->due_ns, kev_mono_ns() + kev_timer_period(it), __ATOMIC_RELAXED);
	return kev_tslot_publish(ts, arm);
}

static int kev_timer_add(struct kev_queue *q, struct kev_interest *it)
{
	int err;

	/* Seconds are 32 bits: the longest period (136 years) fits 64-bit nanoseconds. */
	if (it->uk.id.raw[1] >= NSEC_PER_SEC || !kev_timer_period(it))
		return -EINVAL;
	if (!q->timers && !(q->timers = calloc(1, sizeof(*q->timers))))
		return -ENOMEM;
	err = kev_slot_alloc(it);
	if (err)
		return err;
	kev_timer_start(it, false);
	/* Even with a node on the slot: a removed timer's, with another period and queue. */
	kev_timer_want_node(q, it);
	return 0;
}

static void kev_timer_del(struct kev_queue *q, struct kev_interest *it)
{
	struct kev_timer_req r = { .slot = it->slot, .gen = it->gen, .flags = KEV_TIMER_CANCEL };

	if (it->batched >= 0)
		q->timers->it[it->batched] = NULL; /* no node wanted any more */
	it->batched = -1;
	if (it->slot == KEV_NO_SLOT)
		return;
	/* Withdrawn: its node leaves the tree at the flush, or at its due time at the latest. */
	if (kev_tslot_publish(kev_kernel_tslot(it->slot), (__u64)it->gen << 32))
		kev_timer_queue(q, NULL, r);
}

/* A restart, with new flags maybe: same slot, new generation, new first expiry. */
static int kev_timer_modify(struct kev_queue *q, struct kev_interest *it)
{
	kev_unqueue(it);
	it->fired = 0;
	kev_slot_renew(it); /* nothing of the old arming is delivered from here on (K10) */
	/* Still waiting for its first request to run: the kernel has not met it yet. */
	if (it->batched >= 0)
		kev_timer_start(it, false);
	else if (kev_timer_start(it, true))
		return 0;
	kev_timer_want_node(q, it);
	return 0;
}

static void kev_timer_release(struct kev_queue *q)
{
	free(q->timers);
	q->timers = NULL;
}

const struct kev_source kev_timer_source = {
	.events = KEVENT_TIMER_FIRED,
	.add = kev_timer_add,
	.del = kev_timer_del,
	.modify = kev_timer_modify,
	.counts = true,
	.flush = kev_timer_flush,
	.release = kev_timer_release,
};
