// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * KEVENT_TIMER on plain system calls (K26): the fallback when the timer family's BPF
 * programs cannot load. The semantics are timer.c's and bpf/timer.bpf.c's (K19): the same
 * periods, counts, restarts and removals, observable the same way.
 *
 * Each queue has one timerfd (CLOCK_MONOTONIC, absolute) in its epoll set, armed at the
 * earliest due time of a binary min-heap of the queue's timers; a timer knows its place in
 * the heap, so that REMOVE and MODIFY cost O(log n) and a million timers cost a million heap
 * entries, not a million descriptors. When the timerfd expires, the harvest (ready.c, under
 * the queue lock) takes every timer that is due, counts its expirations against start +
 * n * period (no drift, late ones counted), fires it, puts periodic ones back at their next
 * due time and re-arms the timerfd at the new earliest.
 *
 * Otherwise the timerfd is set at the end of each kevent_ctl() and wait call (the flush), and
 * only if the earliest due time changed: one timerfd_settime() per kevent_ctl() at most,
 * however many timers it touched. It is never left armed earlier than the earliest timer: an
 * expiry with nothing due would make the queue's descriptor poll readable with nothing to
 * deliver (K2).
 *
 * A timer's state is its heap entry (due time) and it->priv_u64: its heap index in the low
 * half, in the high half the expirations merged since its last delivery (K12), taken at
 * delivery through the `take` hook into ret_data[1].
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "internal.h"

#define NSEC_PER_SEC  1000000000ULL
#define NSEC_PER_MSEC 1000000ULL
#define KEV_TFD_NONE  UINT32_MAX /* not in the heap: a ONESHOT that fired */
#define KEV_TFD_MIN   64	 /* heap entries kept however few timers are left */
/*
 * Timers served per expiry, as on the kernel side: the queue lock is not held through a
 * million at once. The rest are due: the timerfd, set in the past or still expired, brings
 * the harvest back at once.
 */
#define KEV_TFD_POP_MAX 65536

struct kev_tent {
	__u64 pos_ns; /* its place in the heap: its due time, or later for a short period */
	__u64 due_ns; /* CLOCK_MONOTONIC time of the next expiry not yet counted */
	struct kev_interest *it;
};

struct kev_tfd {
	int fd;		/* the timerfd, in q->fd's epoll set as KEV_EP_TIMER */
	__u64 armed_ns; /* what it is set to; 0: disarmed */
	struct kev_tent *heap;
	__u32 n, cap;
};

/* it->priv_u64: heap index (low half) and merged expirations (high half). */
static __u32 kev_tfd_idx(const struct kev_interest *it)
{
	return (__u32)it->priv_u64;
}

static void kev_tfd_set_idx(struct kev_interest *it, __u32 i)
{
	it->priv_u64 = (it->priv_u64 & ~0xffffffffULL) | i;
}

static __u32 kev_tfd_count(const struct kev_interest *it)
{
	return (__u32)(it->priv_u64 >> 32);
}

static void kev_tfd_set_count(struct kev_interest *it, __u32 n)
{
	it->priv_u64 = (__u64)n << 32 | kev_tfd_idx(it);
}

static __u64 kev_tfd_period(const struct kev_interest *it)
{
	return it->uk.id.raw[0] * NSEC_PER_SEC + it->uk.id.raw[1];
}

/* The heap, ordered by pos_ns. Every move writes the entry's index back into its timer. */
static void kev_tfd_put(struct kev_tfd *t, __u32 i, struct kev_tent e)
{
	t->heap[i] = e;
	kev_tfd_set_idx(e.it, i);
}

static void kev_tfd_up(struct kev_tfd *t, __u32 i)
{
	struct kev_tent e = t->heap[i];

	while (i && t->heap[(i - 1) / 2].pos_ns > e.pos_ns) {
		kev_tfd_put(t, i, t->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	kev_tfd_put(t, i, e);
}

static void kev_tfd_down(struct kev_tfd *t, __u32 i)
{
	struct kev_tent e = t->heap[i];
	__u32 c;

	while ((c = 2 * i + 1) < t->n) {
		if (c + 1 < t->n && t->heap[c + 1].pos_ns < t->heap[c].pos_ns)
			c++;
		if (t->heap[c].pos_ns >= e.pos_ns)
			break;
		kev_tfd_put(t, i, t->heap[c]);
		i = c;
	}
	kev_tfd_put(t, i, e);
}

/* Entry i got a new place: move it up or down to where it belongs. */
static void kev_tfd_fix(struct kev_tfd *t, __u32 i)
{
	if (i && t->heap[(i - 1) / 2].pos_ns > t->heap[i].pos_ns)
		kev_tfd_up(t, i);
	else
		kev_tfd_down(t, i);
}

static int kev_tfd_resize(struct kev_tfd *t, __u32 cap)
{
	struct kev_tent *h = realloc(t->heap, (size_t)cap * sizeof(*h));

	if (!h)
		return -ENOMEM;
	t->heap = h;
	t->cap = cap;
	return 0;
}

static int kev_tfd_insert(struct kev_tfd *t, struct kev_tent e)
{
	if (t->n == t->cap && (t->cap >= KEV_TFD_NONE / 2 || kev_tfd_resize(t, 2 * t->cap)))
		return -ENOMEM;
	kev_tfd_put(t, t->n++, e);
	kev_tfd_up(t, t->n - 1);
	return 0;
}

static void kev_tfd_remove(struct kev_tfd *t, __u32 i)
{
	kev_tfd_set_idx(t->heap[i].it, KEV_TFD_NONE);
	if (i != --t->n) {
		kev_tfd_put(t, i, t->heap[t->n]);
		kev_tfd_fix(t, i);
	}
	/* Give back what a burst of timers took (a failure keeps the larger array). */
	if (t->cap > KEV_TFD_MIN && t->n < t->cap / 4)
		kev_tfd_resize(t, t->cap / 2);
}

/*
 * Point the timerfd at the earliest due time (disarm it when no timer is left). Setting it
 * also clears an expiry it holds: the queue's descriptor then polls readable only for a
 * timer that is due. The queue's epoll set is looked at while the timerfd is armed
 * (q->fdregs, kev_harvest()).
 */
static void kev_tfd_arm(struct kev_queue *q, struct kev_tfd *t)
{
	__u64 want = t->n ? t->heap[0].pos_ns : 0;
	struct itimerspec its = { 0 };

	if (want == t->armed_ns)
		return;
	its.it_value.tv_sec = (time_t)(want / NSEC_PER_SEC);
	its.it_value.tv_nsec = (long)(want % NSEC_PER_SEC);
	if (timerfd_settime(t->fd, TFD_TIMER_ABSTIME, &its, NULL))
		return; /* left as it was: looked at again at the next flush */
	q->fdregs += (int)!!want - (int)!!t->armed_ns;
	t->armed_ns = want;
}

/* The queue's timerfd and heap, made with its first fallback timer. */
static int kev_tfd_open(struct kev_queue *q)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = KEV_EP_TIMER };
	struct kev_tfd *t;
	int err;

	if (q->tfd)
		return 0;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	err = t->fd < 0 ? -errno : 0;
	if (!err && epoll_ctl(q->fd, EPOLL_CTL_ADD, t->fd, &ev))
		err = -errno;
	if (!err)
		err = kev_tfd_resize(t, KEV_TFD_MIN);
	if (err) {
		if (t->fd >= 0)
			close(t->fd); /* leaves the epoll set with it */
		free(t->heap);
		free(t);
		return err;
	}
	q->tfd = t;
	return 0;
}

/* (Re)start the timer from now: its first expiry a period ahead (timer.c's start). */
static int kev_tfd_start(struct kev_tfd *t, struct kev_interest *it)
{
	__u64 due = kev_now_ns() + kev_tfd_period(it);
	__u32 i = kev_tfd_idx(it);

	if (i == KEV_TFD_NONE)
		return kev_tfd_insert(t, (struct kev_tent){ due, due, it });
	t->heap[i].pos_ns = t->heap[i].due_ns = due;
	kev_tfd_fix(t, i);
	return 0;
}

static int kev_tfd_add(struct kev_queue *q, struct kev_interest *it)
{
	int err;

	/* Seconds are 32 bits: the longest period (136 years) fits 64-bit nanoseconds. */
	if (it->uk.id.raw[1] >= NSEC_PER_SEC || !kev_tfd_period(it))
		return -EINVAL;
	err = kev_tfd_open(q);
	if (err)
		return err;
	it->priv_u64 = KEV_TFD_NONE;
	return kev_tfd_start(q->tfd, it);
}

/* Out of the heap; the timerfd follows at the flush (one settime for the whole call). */
static void kev_tfd_del(struct kev_queue *q, struct kev_interest *it)
{
	__u32 i = kev_tfd_idx(it);

	if (i != KEV_TFD_NONE)
		kev_tfd_remove(q->tfd, i);
}

/*
 * MODIFY restarts the timer, with its new flags: nothing of the old arming is delivered
 * from here on (K10), neither what waits on the ready list nor what it counted; a ONESHOT
 * that fired goes back in the heap.
 */
static int kev_tfd_modify(struct kev_queue *q, struct kev_interest *it)
{
	kev_unqueue(it);
	it->fired = 0;
	kev_tfd_set_count(it, 0);
	return kev_tfd_start(q->tfd, it);
}

/* Expirations merged into the next event (K12), ret_data[0] the first one's millisecond. */
static void kev_tfd_merge(struct kev_interest *it, __u64 count, __u64 first_ns)
{
	__u64 n = kev_tfd_count(it);

	if (!n)
		it->ret_data[0] = (__u32)(first_ns / NSEC_PER_MSEC);
	n += count;
	/* Saturates as the kernel's count does: UINT32_MAX means that many or more (K19). */
	kev_tfd_set_count(it, n < UINT32_MAX ? (__u32)n : UINT32_MAX);
}

/*
 * The earliest timer came due: count what expired and fire it. A ONESHOT expires once
 * however late and leaves the heap. A periodic one counts the periods that passed, late
 * whole periods included, and goes back at its next absolute due time; like the kernel
 * side, it is looked at no more often than every KEV_TIMER_MIN_GAP_NS (a shorter period's
 * expirations merge, counted exactly).
 */
static void kev_tfd_serve(struct kev_queue *q, struct kev_tfd *t, __u64 now)
{
	struct kev_tent *e = &t->heap[0];
	struct kev_interest *it = e->it;
	__u64 period = kev_tfd_period(it), first = e->due_ns, count = 1;

	if (it->uk.req_flags & KEVENT_REQ_ONESHOT) {
		kev_tfd_remove(t, 0);
	} else {
		count = 1 + (now - e->due_ns) / period;
		e->due_ns += count * period; /* absolute: no drift (K19) */
		e->pos_ns = e->due_ns;
		if (period < KEV_TIMER_MIN_GAP_NS && e->pos_ns < now + KEV_TIMER_MIN_GAP_NS)
			e->pos_ns = now + KEV_TIMER_MIN_GAP_NS;
		kev_tfd_down(t, 0);
	}
	kev_tfd_merge(it, count, first);
	kev_fire(q, it, KEVENT_TIMER_FIRED);
}

/* The timerfd expired (kev_dispatch(), queue lock held): serve what is due, re-arm. */
void kev_timer_sys_expire(struct kev_queue *q)
{
	struct kev_tfd *t = q->tfd;
	unsigned int served = 0;
	__u64 now;

	if (!t)
		return;
	now = kev_now_ns();
	while (t->n && t->heap[0].pos_ns <= now && served++ < KEV_TFD_POP_MAX)
		kev_tfd_serve(q, t, now);
	kev_tfd_arm(q, t);
}

/* Delivery takes the merged count: 0 (a restart since it fired) delivers nothing. */
static __u32 kev_tfd_take(struct kev_interest *it)
{
	__u32 n = kev_tfd_count(it);

	kev_tfd_set_count(it, 0);
	return n;
}

static void kev_tfd_flush(struct kev_queue *q)
{
	if (q->tfd)
		kev_tfd_arm(q, q->tfd);
}

/* After every interest went: the heap is empty. */
static void kev_tfd_release(struct kev_queue *q)
{
	struct kev_tfd *t = q->tfd;

	if (!t)
		return;
	if (t->armed_ns)
		q->fdregs--;
	close(t->fd);
	free(t->heap);
	free(t);
	q->tfd = NULL;
}

const struct kev_source kev_timer_sys_source = {
	.events = KEVENT_TIMER_FIRED,
	.add = kev_tfd_add,
	.del = kev_tfd_del,
	.modify = kev_tfd_modify,
	.counts = true,
	.take = kev_tfd_take,
	.flush = kev_tfd_flush,
	.release = kev_tfd_release,
};
