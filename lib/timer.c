// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * KEVENT_TIMER (K19): id.raw[0] = seconds, id.raw[1] = nanoseconds, periodic unless
 * ONESHOT. The timers live in the kernel (bpf/timer.bpf.c). Within one kevent_ctl() call
 * the arming and the cancelling are batched per queue: arms go through kev_timer_arm, a
 * BPF program run once per KEV_TIMER_BATCH timers, and cancels through one
 * bpf_map_delete_batch(). A removed timer never delivers (K10): freeing its slot bumps the
 * generation before anything else happens.
 */
#include <errno.h>
#include <stdlib.h>

#include <bpf/bpf.h>

#include "internal.h"

#define NSEC_PER_SEC 1000000000ULL

struct kev_timer_batch {
	struct kev_timer_req req[KEV_TIMER_BATCH];
	struct kev_interest *it[KEV_TIMER_BATCH]; /* NULL: removed before the flush */
	struct ukevent *entry[KEV_TIMER_BATCH];	  /* where to report a failure */
	unsigned int nr;
	struct kev_timer_key *dels; /* armed timers to cancel */
	unsigned int ndel, cap;
};

static struct kev_timer_batch *kev_timer_batch(struct kev_queue *q)
{
	if (!q->timers)
		q->timers = calloc(1, sizeof(*q->timers));
	return q->timers;
}

static void kev_timer_cancel_all(struct kev_timer_batch *b)
{
	int map = kev_kernel_map_fd(KEV_MAP_TIMERS);
	__u32 n = b->ndel;

	/* The batch stops at the first key that fails: finish one by one from there. */
	if (bpf_map_delete_batch(map, b->dels, &n, NULL))
		for (; n < b->ndel; n++)
			bpf_map_delete_elem(map, &b->dels[n]);
	b->ndel = 0;
}

static void kev_timer_arm_all(struct kev_queue *q, struct kev_timer_batch *b)
{
	unsigned int i, n = 0;
	int err;

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
		struct kev_interest *it = b->it[i];
		int e = err ? err : b->req[i].err;

		it->batched = -1;
		if (!e) {
			it->armed = true;
			continue;
		}
		/* A full map is ENOSPC for the entries that did not fit; the rest stay armed. */
		kev_fail(b->entry[i], e == -E2BIG ? -ENOSPC : e);
		kev_interest_free(q, it);
	}
}

static void kev_timer_flush(struct kev_queue *q)
{
	struct kev_timer_batch *b = q->timers;

	if (!b)
		return;
	/* Cancels first: a slot freed and reused within the batch is armed afresh after. */
	if (b->ndel)
		kev_timer_cancel_all(b);
	if (b->nr)
		kev_timer_arm_all(q, b);
}

static int kev_timer_request(struct kev_queue *q, struct kev_interest *it)
{
	__u64 period = it->uk.id.raw[0] * NSEC_PER_SEC + it->uk.id.raw[1];
	struct kev_timer_batch *b;

	/* Seconds are 32 bits: the longest period (136 years) fits 64-bit nanoseconds. */
	if (it->uk.id.raw[1] >= NSEC_PER_SEC || !period)
		return -EINVAL;
	b = kev_timer_batch(q);
	if (!b)
		return -ENOMEM;
	if (b->nr == KEV_TIMER_BATCH)
		kev_timer_flush(q);
	if (it->batched >= 0)
		b->it[it->batched] = NULL; /* MODIFY before the flush: the last request wins */
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

	if (!err)
		err = kev_timer_request(q, it);
	return err; /* on error the caller frees the slot */
}

static void kev_timer_del(struct kev_queue *q, struct kev_interest *it)
{
	struct kev_timer_batch *b = q->timers;

	if (it->batched >= 0) {
		b->it[it->batched] = NULL;
		it->batched = -1;
	}
	if (!it->armed)
		return;
	if (b->ndel == b->cap) {
		unsigned int cap = b->cap ? 2 * b->cap : 256;
		struct kev_timer_key *d = realloc(b->dels, cap * sizeof(*d));

		if (!d) {
			/* No room to batch it: cancel it now. */
			bpf_map_delete_elem(kev_kernel_map_fd(KEV_MAP_TIMERS), &it->slot);
			it->armed = false;
			return;
		}
		b->dels = d;
		b->cap = cap;
	}
	b->dels[b->ndel++].slot = it->slot;
	it->armed = false;
}

static void kev_timer_release(struct kev_queue *q)
{
	if (!q->timers)
		return;
	free(q->timers->dels);
	free(q->timers);
	q->timers = NULL;
}

const struct kev_source kev_timer_source = {
	.events = KEVENT_TIMER_FIRED,
	.add = kev_timer_add,
	.del = kev_timer_del,
	.modify = kev_timer_request, /* re-arming replaces the timer: a new period from now */
	.counts = true,
	.flush = kev_timer_flush,
	.release = kev_timer_release,
};
