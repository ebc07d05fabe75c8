// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * KEVENT_TIMER (K19): id.raw[0] = seconds, id.raw[1] = nanoseconds, periodic unless
 * ONESHOT. The timers live in the kernel (bpf/timer.bpf.c); within one kevent_ctl() call
 * the arming is batched per queue, one program run per KEV_TIMER_BATCH timers.
 *
 * Nothing is sent to the kernel to cancel a timer: freeing the interest's slot moves its
 * generation, so no expiry is delivered from then on (K10), and the kernel drops the timer
 * when it next comes due. MODIFY takes a new slot for the same reason and arms afresh.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

#define NSEC_PER_SEC 1000000000ULL

struct kev_timer_batch {
	struct kev_timer_req req[KEV_TIMER_BATCH];
	struct kev_interest *it[KEV_TIMER_BATCH]; /* NULL: removed before the flush */
	struct ukevent *entry[KEV_TIMER_BATCH];	  /* where to report a failure */
	unsigned int nr;
};

static void kev_timer_flush(struct kev_queue *q)
{
	struct kev_timer_batch *b = q->timers;
	unsigned int i, n = 0;
	int err;

	if (!b || !b->nr)
		return;
	for (i = 0; i < b->nr; i++) {
		if (!b->it[i])
			continue;
		b->req[n] = b->req[i];
		b->it[n] = b->it[i];
		b->entry[n++] = b->entry[i];
	}
	b->nr = 0;
	err = n ? kev_kernel_arm_timers(b->req, n) : 0;
	for (i = 0; i < n; i++) {
		int e = err ? err : b->req[i].err;

		b->it[i]->batched = -1;
		if (e) {
			kev_fail(b->entry[i], e);
			kev_interest_free(q, b->it[i]);
		}
	}
}

static int kev_timer_request(struct kev_queue *q, struct kev_interest *it)
{
	__u64 period = it->uk.id.raw[0] * NSEC_PER_SEC + it->uk.id.raw[1];
	struct kev_timer_batch *b;

	/* Seconds are 32 bits: the longest period (136 years) fits 64-bit nanoseconds. */
	if (it->uk.id.raw[1] >= NSEC_PER_SEC || !period)
		return -EINVAL;
	if (!q->timers && !(q->timers = calloc(1, sizeof(*q->timers))))
		return -ENOMEM;
	b = q->timers;
	if (b->nr == KEV_TIMER_BATCH)
		kev_timer_flush(q);
	it->batched = (int)b->nr;
	b->req[b->nr] = (struct kev_timer_req){
		.slot = it->slot,
		.gen = it->gen,
		.period_ns = period,
		.queue = (__u16)q->qidx,
		.flags = it->uk.req_flags & KEVENT_REQ_ONESHOT ? KEV_TIMER_ONESHOT : 0,
	};
	b->it[b->nr] = it;
	b->entry[b->nr++] = q->ctl_entry;
	return 0;
}

static int kev_timer_add(struct kev_queue *q, struct kev_interest *it)
{
	int err = kev_slot_alloc(it);

	return err ? err : kev_timer_request(q, it); /* on error the caller frees the slot */
}

static void kev_timer_del(struct kev_queue *q, struct kev_interest *it)
{
	if (it->batched >= 0)
		q->timers->it[it->batched] = NULL;
	it->batched = -1;
}

/* A new period or new flags: a new slot, so the old timer can never deliver again. */
static int kev_timer_modify(struct kev_queue *q, struct kev_interest *it)
{
	kev_timer_del(q, it);
	kev_unqueue(it);
	it->fired = 0;
	kev_slot_free(it);
	return kev_timer_add(q, it);
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
