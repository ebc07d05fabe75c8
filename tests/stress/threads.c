// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Stress (c): threads hammering one queue with every call at once, invariants checked.
 *
 * T threads (8) each pick at random, for D seconds (30): ADD of KEVENT_UNOTIFY interests
 * with ids never used before (some ready at ADD, some ONESHOT, some WAKEUP_ALL), REMOVE,
 * READY of entries, READY with num 0, kevent_get_events, kevent_wait, and reading the
 * queue's kevent_ring then committing what was read; now and then kevent_set_spin,
 * kevent_set_defer_wakeup or kevent_stats, and a socket round on a queue of the thread's
 * own (th_own()), so that the process-wide socket state sees concurrent calls too.
 *
 * The harness keeps, per interest, how many READYs began and were accepted and how many
 * deliveries it saw, and a global sequence number drawn around each call, which orders
 * calls of different threads:
 *
 *  - no event twice (K20, K12): deliveries of an interest never exceed the READYs begun
 *    on it; at the end, never the READYs accepted; a ONESHOT at most once;
 *  - none after REMOVE returned (K10): a call that began after the REMOVE of an interest
 *    returned never delivers it; a READY that began after it is refused (K8);
 *  - none lost (K20): at the end, after a last drain, an interest still registered whose
 *    last accepted READY began after its last delivery was seen has lost an event;
 *  - the ring adds up (K3, K4): each commit frees exactly what was read since the last one,
 *    what was read equals what the calls placed in the ring (their results, minus the
 *    entries marked COPY_FAILED), and kevent_stats() agrees with the calls' results;
 *  - a datagram sent to a socket whose ADD returned is delivered (K17, K24).
 *
 * Each delivery is counted once: from the ring, where get_events and wait place it, or from
 * get_events' buffer when it is marked COPY_FAILED (the ring was full).
 *
 * usage: threads [-d seconds] [-t threads] [-r ring_size] [-s seed] [-o 0|1]
 *        (defaults 30, 8, 64, the time, 1: with the socket rounds)
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stress.h"

#define TH_MAX_THREADS 64
#define TH_LIVE_MAX    512	  /* interests registered at once, at most */
#define TH_CHUNK_BITS  16	  /* the table of interests grows by 65,536 */
#define TH_IDS_MAX     (1u << 24) /* interests made in one run, at most */
#define TH_BATCH       8	  /* entries of one kevent_ctl() */
#define TH_BUF	       64	  /* events of one get_events */
#define TH_USER_SALT   0x5a5a000000000000ULL /* user = id ^ salt: both are checked */
#define TH_DEAD	       64	  /* recently removed ids, READY now and then (K8) */
#define TH_HANG_MS     10000	  /* an event that must come: wait this long before saying so */

/* Per interest (the id indexes the table): what the harness did to it and saw of it. */
#define TH_ONESHOT 0x1
#define TH_NOTREG  0x2 /* ready at ADD without ALWAYS_QUEUE: never registered (K9) */
#define TH_LIVE	   0x4 /* registered, and no REMOVE of it began */

struct th_rec {
	__u32 ready_started; /* READYs begun, KEVENT_REQ_READY at ADD included */
	__u32 ready_ok;	     /* of those, accepted */
	__u32 delivered;     /* deliveries counted (ring entries, COPY_FAILED buffer entries) */
	__u32 mask;	     /* the event mask it was registered with (K20: delivered whole) */
	__u32 flags;
	__u64 removed_seq; /* drawn after its REMOVE returned DONE; 0: not removed */
	__u64 ready_seq;   /* drawn before its latest accepted READY began */
	__u64 seen_seq;	   /* drawn after its latest delivery was seen */
};

/* One thread's tallies, summed after the join (__u64: printed with %llu). */
struct th_count {
	__u64 add, added, remove, removed, ready, ready_ok, wake, tune, own, get, got,
		copy_failed, wait, waited, consume, commits, freed;
};

struct th_thread {
	pthread_t th;
	unsigned int idx;
	__u64 rng;
	struct th_count c;
	struct ukevent buf[TH_BUF];
	int own, sv[2]; /* the thread's own queue and socket pair (th_own()) */
};

static struct {
	int q;
	unsigned int nthreads, ring_size;
	bool own; /* -o 1: socket rounds on the threads' own queues (th_own()) */
	double deadline;
	struct kevent_ring *ring;
	__u64 seq; /* the global order of calls */

	/* Interests: the table, and the registered ones REMOVE and READY pick from. */
	pthread_mutex_t live_mu;
	struct th_rec *chunk[TH_IDS_MAX >> TH_CHUNK_BITS];
	__u64 next_id; /* ids below it exist in the table */
	__u64 live[TH_LIVE_MAX];
	unsigned int nlive, reserved; /* reserved: room kept for ADDs in progress */
	__u64 dead[TH_DEAD];	      /* the last ids taken out of the live set */
	unsigned int ndead;

	/*
	 * The ring: its reader (one at a time, ring_mu) and the floor of K10 for what it reads:
	 * the earliest start of a call that may have placed it (floor_mu, see th_floor()).
	 */
	pthread_mutex_t ring_mu, floor_mu;
	unsigned int uidx; /* what the reader committed up to */
	__u64 placed;	   /* entries the calls that returned placed in the ring */
	__u64 consumed;	   /* entries the reader took */
	__u64 active[TH_MAX_THREADS]; /* start of each thread's call in progress, 0: none */
	__u64 recent_floor;	      /* earliest start of calls ended since the last read */
} th = {
	.live_mu = PTHREAD_MUTEX_INITIALIZER,
	.ring_mu = PTHREAD_MUTEX_INITIALIZER,
	.floor_mu = PTHREAD_MUTEX_INITIALIZER,
	.next_id = 1,
	.recent_floor = UINT64_MAX,
};

static __u64 th_seq(void)
{
	return __atomic_add_fetch(&th.seq, 1, __ATOMIC_SEQ_CST);
}

static void th_max(__u64 *p, __u64 v)
{
	__u64 old = __atomic_load_n(p, __ATOMIC_RELAXED);

	while (old < v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_RELAXED,
						       __ATOMIC_RELAXED))
		;
}

static __u64 th_rand(struct th_thread *t)
{
	/* xorshift64: per thread, so a seed replays each thread's choices */
	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 7;
	t->rng ^= t->rng << 17;
	return t->rng;
}

static unsigned int th_below(struct th_thread *t, unsigned int n)
{
	return (unsigned int)(th_rand(t) % n);
}

/* The record of a delivered id, or NULL (and a finding) for an id never handed out. */
static struct th_rec *th_rec(__u64 id)
{
	struct th_rec *c;

	if (!id || id >= __atomic_load_n(&th.next_id, __ATOMIC_ACQUIRE))
		return NULL;
	c = __atomic_load_n(&th.chunk[id >> TH_CHUNK_BITS], __ATOMIC_ACQUIRE);
	return &c[id & ((1u << TH_CHUNK_BITS) - 1)];
}

/* k fresh ids, their records ready and room for them in th.live; 0: no room. */
static __u64 th_new_ids(unsigned int k)
{
	__u64 first, id;

	pthread_mutex_lock(&th.live_mu);
	first = th.next_id;
	if (first + k > TH_IDS_MAX || th.nlive + th.reserved + k > TH_LIVE_MAX) {
		pthread_mutex_unlock(&th.live_mu);
		return 0;
	}
	th.reserved += k;
	for (id = first; id < first + k; id++) {
		struct th_rec **c = &th.chunk[id >> TH_CHUNK_BITS];

		if (!*c)
			__atomic_store_n(c, calloc(1u << TH_CHUNK_BITS, sizeof(**c)),
					 __ATOMIC_RELEASE);
		if (!*c)
			st_setup_fail("out of memory");
	}
	__atomic_store_n(&th.next_id, first + k, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&th.live_mu);
	return first;
}

/* An ADD of k ids returned: the n registered ones join the live set. */
static void th_live_add(const __u64 *ids, unsigned int n, unsigned int k)
{
	pthread_mutex_lock(&th.live_mu);
	th.reserved -= k;
	for (unsigned int i = 0; i < n; i++)
		th.live[th.nlive++] = ids[i];
	pthread_mutex_unlock(&th.live_mu);
}

static unsigned int th_nlive(void)
{
	unsigned int n;

	pthread_mutex_lock(&th.live_mu);
	n = th.nlive;
	pthread_mutex_unlock(&th.live_mu);
	return n;
}

/*
 * Up to k registered ids into ids[]; take: they leave the live set (they are being
 * removed). Now and then one removed recently instead, whose READY must fail (K8).
 */
static unsigned int th_pick(struct th_thread *t, __u64 *ids, unsigned int k, bool take)
{
	unsigned int n = 0;

	pthread_mutex_lock(&th.live_mu);
	for (; n < k && th.nlive; n++) {
		unsigned int i = th_below(t, th.nlive);

		if (!take && th.ndead && !th_below(t, 8)) {
			ids[n] = th.dead[th_below(t, th.ndead < TH_DEAD ? th.ndead : TH_DEAD)];
			continue;
		}
		ids[n] = th.live[i];
		if (take) {
			th.live[i] = th.live[--th.nlive];
			th.dead[th.ndead++ % TH_DEAD] = ids[n];
			__atomic_and_fetch(&th_rec(ids[n])->flags, ~TH_LIVE, __ATOMIC_RELAXED);
		}
	}
	pthread_mutex_unlock(&th.live_mu);
	return n;
}

static struct ukevent th_uk(__u64 id)
{
	return (struct ukevent){ .id.raw_u64 = id, .type = KEVENT_UNOTIFY,
				 .user_u64 = id ^ TH_USER_SALT };
}

/*
 * A delivery of e, seen at `seen`, by a call that began at `floor` or later. count: this
 * is the copy the harness counts (ring entry, or COPY_FAILED buffer entry).
 */
static void th_delivery(const struct ukevent *e, __u64 floor, __u64 seen, bool count)
{
	struct th_rec *r = e->type == KEVENT_UNOTIFY ? th_rec(e->id.raw_u64) : NULL;
	__u64 removed;
	__u32 d;

	if (!r || e->user_u64 != (e->id.raw_u64 ^ TH_USER_SALT) || e->event != r->mask) {
		st_finding("delivered: type %u id %llu user %#llx event %#x: not an interest of "
			   "this queue as registered", e->type, e->id.raw_u64,
			   e->user_u64, e->event);
		return;
	}
	removed = __atomic_load_n(&r->removed_seq, __ATOMIC_SEQ_CST);
	if (removed && removed < floor)
		st_finding("id %llu delivered by a call that began after its REMOVE returned (K10)",
			   e->id.raw_u64);
	if (__atomic_load_n(&r->flags, __ATOMIC_RELAXED) & TH_NOTREG)
		st_finding("id %llu delivered, but its ADD said DONE: not registered (K9)",
			   e->id.raw_u64);
	th_max(&r->seen_seq, seen);
	if (!count)
		return;
	d = __atomic_add_fetch(&r->delivered, 1, __ATOMIC_SEQ_CST);
	if (d > __atomic_load_n(&r->ready_started, __ATOMIC_SEQ_CST))
		st_finding("id %llu delivered %u times for fewer READYs (K20: once each)",
			   e->id.raw_u64, d);
	if (d > 1 && (__atomic_load_n(&r->flags, __ATOMIC_RELAXED) & TH_ONESHOT))
		st_finding("ONESHOT id %llu delivered %u times (K13)",
			   e->id.raw_u64, d);
}

/* A thread's get_events / wait call begins: its start bounds what the ring reader sees. */
static __u64 th_call_begin(struct th_thread *t)
{
	__u64 start;

	pthread_mutex_lock(&th.floor_mu);
	start = th_seq();
	th.active[t->idx] = start;
	pthread_mutex_unlock(&th.floor_mu);
	return start;
}

/* The call returned, having placed `placed` entries in the ring. */
static void th_call_end(struct th_thread *t, __u64 start, unsigned int placed)
{
	pthread_mutex_lock(&th.floor_mu);
	th.placed += placed;
	th.active[t->idx] = 0;
	if (start < th.recent_floor)
		th.recent_floor = start;
	pthread_mutex_unlock(&th.floor_mu);
}

/*
 * The ring reader's view: how many entries wait at uidx, and the earliest start of a call
 * that can have placed them. A call placed them before it ended, and ended either after
 * the last read (recent_floor) or is still running (active); one that ended before the last
 * read had them read then. Under floor_mu, so no call begins in between.
 */
static unsigned int th_floor(__u64 *floor)
{
	unsigned int kidx, n;

	pthread_mutex_lock(&th.floor_mu);
	*floor = th.recent_floor;
	th.recent_floor = UINT64_MAX;
	for (unsigned int i = 0; i < th.nthreads; i++)
		if (th.active[i] && th.active[i] < *floor)
			*floor = th.active[i];
	/* Acquire: pairs with the library's release of ring_kidx after writing the event. */
	kidx = __atomic_load_n(&th.ring->ring_kidx, __ATOMIC_ACQUIRE);
	n = (kidx + th.ring_size - th.uidx) % th.ring_size;
	/* kidx back at uidx: empty, or full when calls that returned placed more than read. */
	if (!n && th.placed > th.consumed)
		n = th.ring_size;
	pthread_mutex_unlock(&th.floor_mu);
	return n;
}

/*
 * Commit n entries from uidx. Never the whole ring at once: a commit back to the committed
 * index is ambiguous (issue 10 item 4), so a full ring is committed in two steps.
 */
static void th_commit(struct th_thread *t, unsigned int n)
{
	while (n) {
		unsigned int k = n < th.ring_size ? n : th.ring_size - 1;
		unsigned int to = (th.uidx + k) % th.ring_size;
		unsigned int over = __atomic_load_n(&th.ring->ring_over, __ATOMIC_ACQUIRE);
		int r = kevent_commit(th.q, to, over);

		t->c.commits++;
		if (r != (int)k) {
			st_finding("kevent_commit(%u, over %u) freed %d of the %u read (K3)", to,
				   over, r, k);
			return;
		}
		t->c.freed += k;
		__atomic_store_n(&th.uidx, to, __ATOMIC_RELEASE);
		n -= k;
	}
}

/* Read what the ring holds, count each entry as a delivery, commit it. */
static void th_consume(struct th_thread *t)
{
	unsigned int n, i;
	__u64 floor, seen;

	pthread_mutex_lock(&th.ring_mu);
	n = th_floor(&floor);
	seen = th_seq();
	for (i = 0; i < n; i++) {
		const struct ukevent *e = &th.ring->event[(th.uidx + i) % th.ring_size];

		if (e->ret_flags)
			st_finding("ring entry with ret_flags %#x", e->ret_flags);
		th_delivery(e, floor, seen, true);
	}
	pthread_mutex_lock(&th.floor_mu);
	th.consumed += n;
	pthread_mutex_unlock(&th.floor_mu);
	th_commit(t, n);
	t->c.consume++;
	pthread_mutex_unlock(&th.ring_mu);
}

/* ADD 1..TH_BATCH fresh interests, in one of the ways an UNOTIFY can be added. */
static void th_add(struct th_thread *t)
{
	unsigned int k = 1 + th_below(t, TH_BATCH), i, n = 0;
	struct ukevent uk[TH_BATCH];
	__u64 first = th_new_ids(k), start, ids[TH_BATCH];

	if (!first)
		return;
	for (i = 0; i < k; i++) {
		struct th_rec *r = th_rec(first + i);
		unsigned int how = th_below(t, 16);

		uk[i] = th_uk(first + i);
		/* Any mask, 0 included: K20 delivers it whole. */
		r->mask = th_below(t, 8) ? (__u32)(th_rand(t) >> th_below(t, 64)) : 0;
		uk[i].event = r->mask;
		uk[i].req_flags = (how < 4 ? KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE : 0) |
				  (how == 4 ? KEVENT_REQ_READY : 0) |
				  (how >= 12 ? KEVENT_REQ_ONESHOT : 0) |
				  (how == 5 || how == 13 ? KEVENT_REQ_WAKEUP_ALL : 0);
		__atomic_store_n(&r->flags,
				 (how >= 12 ? TH_ONESHOT : 0) | (how == 4 ? TH_NOTREG : 0),
				 __ATOMIC_RELAXED);
		if (uk[i].req_flags & KEVENT_REQ_READY)
			__atomic_add_fetch(&r->ready_started, 1, __ATOMIC_SEQ_CST);
	}
	start = th_seq();
	if (kevent_ctl(th.q, KEVENT_CTL_ADD, k, uk) != (int)k)
		st_finding("kevent_ctl(ADD, %u) failed: %s", k, strerror(errno));
	for (i = 0; i < k; i++) {
		struct th_rec *r = th_rec(first + i);
		bool notreg = __atomic_load_n(&r->flags, __ATOMIC_RELAXED) & TH_NOTREG;

		if (uk[i].ret_flags != (notreg ? KEVENT_RET_DONE : 0)) {
			st_finding("ADD of id %llu: ret_flags %#x, error %d (K7, K9)",
				   (first + i), uk[i].ret_flags,
				   (int)uk[i].ret_data[1]);
			continue;
		}
		if (!notreg && (uk[i].req_flags & KEVENT_REQ_READY)) {
			__atomic_add_fetch(&r->ready_ok, 1, __ATOMIC_SEQ_CST);
			th_max(&r->ready_seq, start);
		}
		if (!notreg) {
			__atomic_or_fetch(&r->flags, TH_LIVE, __ATOMIC_RELAXED);
			ids[n++] = first + i;
		}
	}
	th_live_add(ids, n, k);
	t->c.added += n;
	t->c.add++;
}

static void th_ready_ids(struct th_thread *t, const __u64 *ids, unsigned int k)
{
	struct ukevent uk[TH_BATCH];
	unsigned int i;
	__u64 start;

	for (i = 0; i < k; i++) {
		uk[i] = th_uk(ids[i]);
		__atomic_add_fetch(&th_rec(ids[i])->ready_started, 1, __ATOMIC_SEQ_CST);
	}
	start = th_seq();
	if (kevent_ctl(th.q, KEVENT_CTL_READY, k, uk) != (int)k)
		st_finding("kevent_ctl(READY, %u) failed: %s", k, strerror(errno));
	for (i = 0; i < k; i++) {
		struct th_rec *r = th_rec(ids[i]);
		__u64 removed = __atomic_load_n(&r->removed_seq, __ATOMIC_SEQ_CST);

		if (uk[i].ret_flags == KEVENT_RET_DONE) {
			if (removed && removed < start)
				st_finding("READY of id %llu accepted after its REMOVE "
					   "returned (K8)", ids[i]);
			__atomic_add_fetch(&r->ready_ok, 1, __ATOMIC_SEQ_CST);
			th_max(&r->ready_seq, start);
			t->c.ready_ok++;
		} else if (uk[i].ret_flags != (KEVENT_RET_DONE | KEVENT_RET_BROKEN) ||
			   (int)uk[i].ret_data[1] != -ENOENT) {
			/* Removed meanwhile (ENOENT) is the only other answer. */
			st_finding("READY of id %llu: ret_flags %#x, error %d (K7)",
				   ids[i], uk[i].ret_flags,
				   (int)uk[i].ret_data[1]);
		}
	}
	t->c.ready += k;
}

static void th_ready(struct th_thread *t)
{
	__u64 ids[TH_BATCH];

	th_ready_ids(t, ids, th_pick(t, ids, 1 + th_below(t, TH_BATCH), false));
}

/* REMOVE 1..TH_BATCH / 2 interests; half the time READY first: ready ones go too (K10). */
static void th_remove(struct th_thread *t)
{
	__u64 ids[TH_BATCH];
	unsigned int k = th_pick(t, ids, 1 + th_below(t, TH_BATCH / 2), true), i;
	struct ukevent uk[TH_BATCH];

	if (th_below(t, 2))
		th_ready_ids(t, ids, k);
	for (i = 0; i < k; i++)
		uk[i] = th_uk(ids[i]);
	if (kevent_ctl(th.q, KEVENT_CTL_REMOVE, k, uk) != (int)k)
		st_finding("kevent_ctl(REMOVE, %u) failed: %s", k, strerror(errno));
	for (i = 0; i < k; i++) {
		struct th_rec *r = th_rec(ids[i]);

		if (uk[i].ret_flags == KEVENT_RET_DONE) {
			__atomic_store_n(&r->removed_seq, th_seq(), __ATOMIC_SEQ_CST);
			t->c.removed++;
		} else if (!(__atomic_load_n(&r->flags, __ATOMIC_RELAXED) & TH_ONESHOT) ||
			   (int)uk[i].ret_data[1] != -ENOENT) {
			/* Only a ONESHOT can have gone by itself (delivered). */
			st_finding("REMOVE of registered id %llu: ret_flags %#x, error %d (K8)",
				   ids[i], uk[i].ret_flags,
				   (int)uk[i].ret_data[1]);
		}
	}
	t->c.remove++;
}

static void th_wake_all(struct th_thread *t)
{
	int r = kevent_ctl(th.q, KEVENT_CTL_READY, 0, NULL);

	if (r)
		st_finding("kevent_ctl(READY, 0) = %d (K11)", r);
	t->c.wake++;
}

/*
 * The queue's options and counters, changed and read while the others run: a spin before
 * sleeping, deferred wake-ups (neither changes what is delivered, only when), statistics.
 */
static void th_tune(struct th_thread *t)
{
	struct kevent_stats st;
	unsigned int what = th_below(t, 3), on = th_below(t, 2);
	int r = what == 0   ? kevent_set_spin(th.q, on ? 20 : 0)
		: what == 1 ? kevent_set_defer_wakeup(th.q, on)
			    : kevent_stats(th.q, &st);

	if (r)
		st_finding("kevent_set_spin / set_defer_wakeup / stats (%u) = %d", what, r);
	t->c.tune++;
}

/*
 * A socket round on the thread's own queue: ADD, a datagram, its event, REMOVE. The threads
 * do it at once on their queues, so the process-wide socket table, slots and BPF maps are
 * shared by concurrent calls (one queue per thread, as event loops do).
 */
static void th_own(struct th_thread *t)
{
	struct ukevent uk = { .id.raw[0] = (__u32)t->sv[0], .type = KEVENT_SOCKET,
			      .event = KEVENT_SOCKET_RECV, .req_flags = KEVENT_REQ_ET,
			      .user_u64 = th_rand(t) };
	struct ukevent ev;
	char byte = 0;
	int n;

	if (kevent_ctl(t->own, KEVENT_CTL_ADD, 1, &uk) != 1 || uk.ret_flags)
		st_finding("ADD of the thread's socket: ret_flags %#x, error %d", uk.ret_flags,
			   (int)uk.ret_data[1]);
	if (send(t->sv[1], &byte, 1, 0) != 1)
		st_setup_fail("send: %s", strerror(errno));
	/* A hang guard, not a measurement: the datagram is there, the event must come. */
	n = kevent_get_events(t->own, 1, 1, st_ms(TH_HANG_MS), &ev, 0);
	if (n != 1)
		st_finding("the datagram on a thread's own socket was not delivered within %d ms "
			   "(get_events = %d): lost", TH_HANG_MS, n);
	else if (ev.user_u64 != uk.user_u64 || ev.event != KEVENT_SOCKET_RECV || ev.ret_flags)
		st_finding("a thread's own socket: user %#llx event %#x ret_flags %#x",
			   ev.user_u64, ev.event, ev.ret_flags);
	if (recv(t->sv[0], &byte, 1, 0) != 1)
		st_setup_fail("recv: %s", strerror(errno));
	if (kevent_ctl(t->own, KEVENT_CTL_REMOVE, 1, &uk) != 1 || uk.ret_flags != KEVENT_RET_DONE)
		st_finding("REMOVE of the thread's socket: ret_flags %#x", uk.ret_flags);
	t->c.own++;
}

static struct timespec th_timeout(struct th_thread *t)
{
	return (struct timespec){ .tv_nsec = th_below(t, 5) * 1000000L };
}

static void th_get(struct th_thread *t)
{
	unsigned int max = 1 + th_below(t, TH_BUF), min = th_below(t, 3);
	unsigned int failed = 0;
	__u64 start = th_call_begin(t), seen;
	int n = kevent_get_events(th.q, min < max ? min : max, max, th_timeout(t), t->buf, 0);

	seen = th_seq();
	if (n < 0 || n > (int)max) {
		st_finding("kevent_get_events(%u, %u) = %d", min, max, n);
		n = 0;
	}
	for (int i = 0; i < n; i++) {
		bool cf = t->buf[i].ret_flags == KEVENT_RET_COPY_FAILED;

		if (t->buf[i].ret_flags && !cf)
			st_finding("get_events entry with ret_flags %#x", t->buf[i].ret_flags);
		th_delivery(&t->buf[i], start, seen, cf);
		failed += cf;
	}
	th_call_end(t, start, (unsigned int)n - failed);
	t->c.get++;
	t->c.got += (unsigned int)n;
	t->c.copy_failed += failed;
}

static void th_wait(struct th_thread *t)
{
	unsigned int num = 1 + th_below(t, th.ring_size);
	unsigned int old = __atomic_load_n(&th.uidx, __ATOMIC_ACQUIRE);
	__u64 start = th_call_begin(t);
	int n = kevent_wait(th.q, num, old, th_timeout(t), 0);

	if (n < 0 || n > (int)num) {
		st_finding("kevent_wait(%u, %u) = %d", num, old, n);
		n = 0;
	}
	th_call_end(t, start, (unsigned int)n);
	t->c.wait++;
	t->c.waited += (unsigned int)n;
}

/* One operation, chosen at random: weights in percent. */
static void th_op(struct th_thread *t)
{
	unsigned int r = th_below(t, 100), live = th_nlive();

	if (r < 15 && live >= TH_LIVE_MAX - TH_BATCH)
		r = 20; /* full: remove instead */
	else if (r >= 15 && r < 55 && !live)
		r = 0; /* nothing to remove or fire: add */
	if (r < 15)
		th_add(t);
	else if (r < 27)
		th_remove(t);
	else if (r < 55)
		th_ready(t);
	else if (r < 57)
		th_wake_all(t);
	else if (r < 58)
		th_tune(t);
	else if (r < 60 && th.own)
		th_own(t);
	else if (r < 77)
		th_get(t);
	else if (r < 90)
		th_wait(t);
	else
		th_consume(t);
}

static void *th_main(void *arg)
{
	struct th_thread *t = arg;

	t->own = kevent_init(NULL, 0, 0);
	if (t->own < 0 || socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, t->sv))
		st_setup_fail("the thread's own queue and sockets: %d, %s", t->own,
			      strerror(errno));
	while (st_now() < th.deadline)
		th_op(t);
	kevent_close(t->own);
	close(t->sv[0]);
	close(t->sv[1]);
	return NULL;
}

/* Everything stopped: take what remains until the queue and the ring are empty. */
static void th_drain(struct th_thread *t)
{
	int n;

	do {
		th_consume(t);
		n = kevent_get_events(th.q, 0, TH_BUF, st_ms(0), t->buf, 0);
		if (n > 0) {
			/* As th_get() counts them; one thread: the start is the seq now. */
			__u64 s = th_seq();
			unsigned int failed = 0;

			for (int i = 0; i < n; i++) {
				bool cf = t->buf[i].ret_flags == KEVENT_RET_COPY_FAILED;

				th_delivery(&t->buf[i], s, s, cf);
				failed += cf;
			}
			th.placed += (unsigned int)n - failed;
			t->c.got += (unsigned int)n;
			t->c.copy_failed += failed;
		}
	} while (n > 0 || th_floor(&(__u64){ 0 }));
}

/* Per interest, at the end: nothing delivered twice, nothing lost. */
static void th_check_all(__u64 *deliveries, __u64 *accepted)
{
	__u64 end = __atomic_load_n(&th.next_id, __ATOMIC_ACQUIRE);

	for (__u64 id = 1; id < end; id++) {
		struct th_rec *r = th_rec(id);

		*deliveries += r->delivered;
		*accepted += r->ready_ok;
		if (r->delivered > r->ready_ok && !(r->flags & TH_NOTREG))
			st_finding("id %llu: %u deliveries for %u accepted READYs (K20)",
				   id, r->delivered, r->ready_ok);
		if ((r->flags & TH_LIVE) && r->ready_ok && r->ready_seq > r->seen_seq)
			st_finding("id %llu: a READY accepted after its last delivery was never "
				   "delivered (lost)", id);
	}
}

static void th_sum(struct th_count *s, const struct th_count *c)
{
	const __u64 *from = (const __u64 *)c;
	__u64 *to = (__u64 *)s;

	for (size_t i = 0; i < sizeof(*c) / sizeof(*to); i++)
		to[i] += from[i];
}

static void th_report(const struct th_count *c, double secs)
{
	struct kevent_stats st = st_stats(th.q);
	__u64 deliveries = 0, accepted = 0;

	th_check_all(&deliveries, &accepted);
	if (c->freed != th.consumed || th.consumed != th.placed)
		st_finding("ring: %llu placed, %llu read, %llu freed by commits (K3)", th.placed,
			   th.consumed, c->freed);
	if (st.delivered != c->got + c->waited || st.copy_failed != c->copy_failed)
		st_finding("kevent_stats: delivered %llu copy_failed %llu; the calls returned %llu "
			   "with %llu COPY_FAILED", (__u64)st.delivered, (__u64)st.copy_failed,
			   c->got + c->waited, c->copy_failed);
	printf("stress threads: %u threads on one queue with a %u-event ring for %.1f s\n",
	       th.nthreads, th.ring_size, secs);
	printf("  ADD calls %llu (%llu interests), REMOVE calls %llu (%llu removed), READY %llu "
	       "(%llu accepted), READY(0) %llu, spin/defer/stats %llu\n", c->add, c->added,
	       c->remove, c->removed, c->ready, c->ready_ok, c->wake, c->tune);
	printf("  socket rounds on the threads' own queues %llu\n", c->own);
	printf("  get_events %llu (%llu events, %llu COPY_FAILED), wait %llu (%llu events), "
	       "ring reads %llu, commits %llu\n", c->get, c->got, c->copy_failed, c->wait,
	       c->waited, c->consume, c->commits);
	printf("  deliveries %llu for %llu accepted READYs (%llu merged); ring: placed %llu, "
	       "read %llu, freed %llu\n", deliveries, accepted, accepted - deliveries, th.placed,
	       th.consumed, c->freed);
	printf("  findings: %llu\n", (__u64)st_findings());
}

static void th_options(int argc, char **argv, double *secs, __u64 *seed)
{
	int c;

	while ((c = getopt(argc, argv, "d:t:r:s:o:")) != -1) {
		if (c == 'd')
			*secs = (double)st_number(optarg, "duration");
		else if (c == 't')
			th.nthreads = (unsigned int)st_number(optarg, "thread count");
		else if (c == 'r')
			th.ring_size = (unsigned int)st_number(optarg, "ring size");
		else if (c == 's')
			*seed = st_number(optarg, "seed");
		else if (c == 'o')
			th.own = st_number(optarg, "-o") != 0;
		else
			st_setup_fail("usage: %s [-d seconds] [-t threads] [-r ring_size] "
				      "[-s seed] [-o 0|1]", argv[0]);
	}
	if (!th.nthreads || th.nthreads > TH_MAX_THREADS || th.ring_size < 2)
		st_setup_fail("1 to %d threads, a ring of 2 or more", TH_MAX_THREADS);
}

int main(int argc, char **argv)
{
	static struct th_thread t[TH_MAX_THREADS + 1];
	struct th_count sum = { 0 };
	__u64 seed = (__u64)time(NULL);
	double secs = 30, t0;

	th.nthreads = 8;
	th.ring_size = 64;
	th.own = true;
	th_options(argc, argv, &secs, &seed);
	st_require_root(argv[0]);
	th.ring = calloc(1, sizeof(*th.ring) + th.ring_size * sizeof(struct ukevent));
	if (!th.ring)
		st_setup_fail("out of memory");
	th.q = kevent_init(th.ring, th.ring_size, 0);
	if (th.q < 0)
		st_setup_fail("kevent_init = %d", th.q);
	printf("stress threads: seed %llu (-s to replay each thread's choices)\n",
	       seed);
	t0 = st_now();
	th.deadline = t0 + secs;
	for (unsigned int i = 0; i < th.nthreads; i++) {
		t[i].idx = i;
		t[i].rng = (seed + 1) * 0x9e3779b97f4a7c15ULL + i;
		if (pthread_create(&t[i].th, NULL, th_main, &t[i]))
			st_setup_fail("pthread_create failed");
	}
	for (unsigned int i = 0; i < th.nthreads; i++) {
		pthread_join(t[i].th, NULL);
		th_sum(&sum, &t[i].c);
	}
	th_drain(&t[th.nthreads]); /* a spare: the joined threads' tallies are summed */
	th_sum(&sum, &t[th.nthreads].c);
	th_report(&sum, st_now() - t0);
	kevent_close(th.q);
	free(th.ring);
	return st_findings() ? ST_EXIT_FINDING : ST_EXIT_OK;
}
