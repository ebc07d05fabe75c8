// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Readiness and delivery: records from the kernel and epoll edges become bits on an
 * interest (kev_fire), interests wait on the ready list at most once (K12), and
 * kev_deliver() takes them off it applying LAST_CHECK (K14), ONESHOT and ET (K13), and
 * BROKEN (K17). What a call delivered in level mode is delivered again by the next call
 * while still ready (K13): the source knows (sockets: the kernel side's level state), or
 * one poll() at the next call looks at all of it.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "internal.h"

/* Readiness forced by KEVENT_CTL_READY or KEVENT_REQ_READY: delivered as the whole mask. */
#define KEV_PEND_USER 0x40000000u
#define KEV_PEND_MASK (KEV_PEND_HUP | KEV_PEND_USER)

void kev_unqueue(struct kev_interest *it)
{
	if (it->where != KEV_NOWHERE)
		kev_list_del(&it->link);
	it->where = KEV_NOWHERE;
}

void kev_fire(struct kev_queue *q, struct kev_interest *it, __u32 bits)
{
	if (bits & KEV_PEND_ERR_MASK) {
		/* A socket's error, as the kernel side saw it: kept until it is classified. */
		it->sock_err = KEV_PEND_ERRNO(bits);
		bits &= ~KEV_PEND_ERR_MASK;
	}
	if (!bits && !(it->ret_flags & KEVENT_RET_BROKEN))
		return;
	it->fired |= bits;
	/* Already queued, or out with a call that re-queues it when it finishes (K12). */
	if (it->where == KEV_READY || it->where == KEV_TAKEN)
		return;
	kev_unqueue(it);
	it->where = KEV_READY;
	it->fired_call = q->calls;
	kev_list_add_tail(&it->link, &q->ready);
	if (it->uk.req_flags & KEVENT_REQ_WAKEUP_ALL)
		kev_wake_all(q); /* K15 */
}

void kev_fire_user(struct kev_queue *q, struct kev_interest *it)
{
	kev_fire(q, it, KEV_PEND_USER);
}

/*
 * Check n interests with one poll(): bits[i] = what is ready now (0: nothing). A source
 * may mark the interest broken. Interests without a pollmask get 0.
 */
#define KEV_CHECK_BATCH 256

void kev_check(struct kev_interest **its, unsigned int n, __u32 *bits)
{
	struct pollfd pfd[KEV_CHECK_BATCH];
	unsigned int i, k;

	for (i = 0; i < n; i += k) {
		unsigned int m = n - i < KEV_CHECK_BATCH ? n - i : KEV_CHECK_BATCH;

		for (k = 0; k < m; k++) {
			const struct kev_interest *it = its[i + k];

			pfd[k].fd = it->src->pollmask ? it->fd : -1;
			pfd[k].events = it->src->pollmask ? it->src->pollmask(it) : 0;
			pfd[k].revents = 0;
		}
		if (poll(pfd, m, 0) < 0)
			for (k = 0; k < m; k++)
				pfd[k].revents = 0;
		for (k = 0; k < m; k++)
			bits[i + k] = pfd[k].revents ? its[i + k]->src->classify(its[i + k],
										 pfd[k].revents)
						     : 0;
	}
}

/*
 * What is ready now, bits[i] for its[i] (n <= KEV_CHECK_BATCH): what a source knows without
 * a system call (its level() hook), and one poll() for the rest.
 */
void kev_ready_now(struct kev_interest **its, unsigned int n, __u32 *bits)
{
	struct kev_interest *ask[KEV_CHECK_BATCH];
	unsigned int at[KEV_CHECK_BATCH], m = 0;
	__u32 got[KEV_CHECK_BATCH];

	for (unsigned int i = 0; i < n; i++) {
		if (!its[i]->src->level || !its[i]->src->level(its[i], &bits[i])) {
			at[m] = i;
			ask[m++] = its[i];
		}
	}
	kev_check(ask, m, got);
	for (unsigned int k = 0; k < m; k++)
		bits[at[k]] = got[k];
}

/*
 * Was the record's object still at the registered descriptor after the calling thread's
 * last close? A kernel side that does not look at the descriptor (inodes) cannot say (K25).
 * One that does (sockets) looked when the record was pushed, which settles it only for a
 * record pushed during this very call (the call's epoch, socket.bpf.c): one pushed earlier
 * may predate a close, with no hook to tell, and the delivery checks (K17).
 */
static bool kev_record_checked(const struct kev_queue *q, const struct kev_interest *it,
			       const struct ukevent *e)
{
	return it->src->kernel_checks_fd && q->epoch_now && e->ret_data[1] == q->epoch_now;
}

/* One record from the queue's BPF ring buffer: the slot names the interest. */
static void kev_on_record(void *ctx, const void *rec, size_t len)
{
	const struct ukevent *e = rec;
	struct kev_queue *q = ctx;
	struct kev_interest *it;

	if (len < sizeof(*e))
		return;
	q->st.bpf_records++;
	it = kev_slot_owner(e->id.raw[0], e->id.raw[1]);
	if (!it) /* removed since the kernel pushed it (K10) */
		return;
	if (it->src->counts) {
		/* The count stays in the slot until delivery collects it. */
		it->ret_data[0] = e->ret_data[0];
		kev_fire(q, it, e->event);
	} else {
		__u32 bits = kev_slot_clear(it);

		if (bits && it->src->named && !kev_record_checked(q, it, e))
			bits |= KEV_PEND_VERIFY;
		kev_fire(q, it, bits);
	}
}

/* The ring buffer overflowed: the lost records' bits are still pending in their slots. */
static void kev_rescan_node(struct kev_hnode *n, void *q)
{
	struct kev_interest *it = kev_container_of(n, struct kev_interest, hnode);

	__u32 bits;

	if (!it->src->counts) {
		/* Pushed when, no record says: the delivery checks the descriptor (K17). */
		bits = kev_slot_clear(it);
		kev_fire(q, it, bits && it->src->named ? bits | KEV_PEND_VERIFY : bits);
	}
	else if (kev_slot_pending(it))
		kev_fire(q, it, it->uk.event);
}

void kev_dispatch(struct kev_queue *q, const struct epoll_event *ev, int n)
{
	for (int i = 0; i < n; i++) {
		__u64 tag = ev[i].data.u64;

		if (tag == KEV_EP_TIMER)
			kev_timer_sys_expire(q);
		else if (tag == KEV_EP_INOTIFY)
			kev_inotify_dispatch(q);
		else if (tag != KEV_EP_RING && tag != KEV_EP_KICK)
			kev_fdwatch_dispatch(q, tag, ev[i].events);
	}
}

/*
 * Level mode (K13): what the last call delivered is looked at again (what the source does
 * not know, with one poll() for all of it) and goes back on the ready list while still
 * ready. Whatever is not waits for its next edge (a kernel record, an epoll event). The
 * number is checked at delivery: poll() and a level state know an object, not whether the
 * number still names it.
 */
static void kev_recheck(struct kev_queue *q)
{
	struct kev_interest *its[KEV_CHECK_BATCH];
	__u32 bits[KEV_CHECK_BATCH];

	while (!kev_list_empty(&q->recheck)) {
		unsigned int n = 0;

		while (n < KEV_CHECK_BATCH && !kev_list_empty(&q->recheck)) {
			its[n] = kev_container_of(q->recheck.next, struct kev_interest, link);
			kev_unqueue(its[n++]);
		}
		kev_ready_now(its, n, bits);
		for (unsigned int i = 0; i < n; i++) {
			if (bits[i] && its[i]->src->named)
				bits[i] |= KEV_PEND_VERIFY;
			kev_fire(q, its[i], bits[i]);
		}
	}
}

/*
 * While the kernel ring feeds the calls, the queue's epoll set (send space, AF_UNIX
 * hang-ups, polled descriptors, signals, aio) is asked once every KEV_EPOLL_EVERY harvests:
 * a system call per call would cost more than the events it brings. epoll keeps what it
 * has; a harvest the ring does not feed asks at once, and a sleep gets it from epoll_wait.
 */
#define KEV_EPOLL_EVERY 16

static bool kev_epoll_due(struct kev_queue *q, bool fed)
{
	if (!q->fdregs || (fed && ++q->epoll_skips < KEV_EPOLL_EVERY))
		return false;
	q->epoll_skips = 0;
	return true;
}

/*
 * What epoll has, up to what the call can deliver (want): the rest stays in epoll, whose
 * events are current when they are taken, while an event that waits on the ready list
 * past the call has its number checked at delivery (kev_still_there()).
 */
static void kev_epoll_drain(struct kev_queue *q, unsigned int want)
{
	struct epoll_event ev[64];
	unsigned int got = 0;
	int n;

	do {
		n = epoll_wait(q->fd, ev, 64, 0);
		kev_dispatch(q, ev, n);
		got += n > 0 ? (unsigned int)n : 0;
	} while (n == 64 && got < want);
}

/* The kernel ring's records, and what an overflow lost (K24). Returns the records read. */
static unsigned int kev_ring_take(struct kev_queue *q)
{
	unsigned int fed = kev_rb_drain(&q->rb, kev_on_record, q);
	__u64 ov;

	/*
	 * The drain's consumer_pos before the count: pairs with the BPF side's count before its
	 * second reserve (kev_push()), so that an overflow is never seen by neither (K24).
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	ov = kev_kernel_overflows(q);
	if (ov != q->seen_overflows) {
		q->seen_overflows = ov;
		kev_htab_each(&q->ids, kev_rescan_node, q);
	}
	return fed;
}

/*
 * Gather what became ready since the last call, without blocking; want: room for events.
 * fresh: this thread's wait has just taken all epoll had (kev_park_events()), which the
 * harvest then need not ask again.
 */
void kev_harvest(struct kev_queue *q, unsigned int want, bool fresh)
{
	unsigned int fed = kev_ring_take(q);

	if (!fresh && kev_epoll_due(q, fed))
		kev_epoll_drain(q, want);
	else
		kev_timer_sys_poll(q); /* fallback timers are not kept waiting by a busy ring */
	kev_recheck(q);
}

/*
 * The end of a kevent_ctl(): no record stays in the ring. One for an interest the call
 * removed or restarted would have the descriptor poll readable with nothing to deliver
 * (K2); what is still wanted goes on the ready list, which the kick then tells.
 */
void kev_harvest_ring(struct kev_queue *q)
{
	if (!kev_rb_pending(&q->rb))
		return;
	kev_ring_take(q);
	kev_rb_release(&q->rb);
}

/*
 * Does the registered descriptor still name the object (K17)? Asked before anything is
 * asked of the object itself, so that no probe ever reaches whatever holds the number now.
 * Every source is asked for an event that waited since an earlier call, in which the
 * caller may have closed the descriptor and reused its number, and before a probe. Within
 * one call, a source whose kernel side checks the descriptor is asked only when that side
 * could not tell (KEV_PEND_VERIFY, kev_record_checked()); an epoll event taken and
 * delivered within one call names the file epoll holds, under the number it was registered
 * with, as epoll_wait() would report it.
 */
static bool kev_still_there(struct kev_queue *q, struct kev_interest *it, __u32 bits,
			    bool probe)
{
	bool ask = (bits & KEV_PEND_VERIFY) || probe || it->fired_call != q->calls;

	return !it->src->named || !ask || it->src->named(it);
}

/*
 * Take one interest off the ready list into *ev. Returns false when there is nothing to
 * deliver after all (LAST_CHECK found it not ready, or the watched object is gone).
 */
static bool kev_take(struct kev_queue *q, struct kev_interest *it, struct ukevent *ev,
		     struct kev_list *taken)
{
	__u32 bits = it->fired, flags = it->uk.req_flags;
	bool user = bits & KEV_PEND_USER; /* delivered with its mask, even an empty one */
	bool hup = bits & KEV_PEND_HUP;
	bool probe = !user && it->src->pollmask && ((flags & KEVENT_REQ_LAST_CHECK) || hup);

	kev_unqueue(it);
	it->fired = 0;
	if ((bits & KEV_PEND_DEAD) || !kev_still_there(q, it, bits, probe)) {
		/* Its descriptor was closed: the interest goes silently (K17). */
		kev_interest_free(q, it);
		return false;
	}
	if (it->src->counts) {
		/*
		 * Firings merged into this event, taken even by a READY (which is delivered with
		 * none): the kernel side pushes its next record only once they are.
		 */
		it->ret_data[1] = it->src->take ? it->src->take(it) : kev_slot_clear(it);
		if (!it->ret_data[1] && !user)
			return false;
	}
	if (user)
		bits = it->uk.event;
	else if (probe)
		kev_check(&it, 1, &bits); /* K14 and K17: the event is what is true now */
	if (it->src->complete)
		it->src->complete(it);
	bits &= it->uk.event;
	if (it->ret_flags & KEVENT_RET_BROKEN)
		bits = bits ? bits : it->uk.event; /* say which interest broke */
	else if (!bits && !user)
		return false;

	*ev = it->uk;
	ev->event = bits;
	ev->ret_flags = it->ret_flags;
	ev->ret_data[0] = it->ret_data[0];
	ev->ret_data[1] = it->ret_data[1];
	if ((it->ret_flags & KEVENT_RET_BROKEN) || (flags & KEVENT_REQ_ONESHOT)) {
		kev_interest_free(q, it); /* BROKEN once, then gone; ONESHOT: once (K13) */
	} else if ((!(flags & KEVENT_REQ_ET) && it->src->pollmask) || hup) {
		/*
		 * Level mode is re-checked after the call; so is a hang-up that found data still
		 * to read, whatever the mode: BROKEN comes once nothing is left (K17).
		 */
		it->hup_kept = hup;
		it->where = KEV_TAKEN;
		kev_list_add_tail(&it->link, taken);
	}
	return true;
}

/*
 * The numbers of the interests about to be delivered that need checking, checked together
 * where the source can (one system call for many): each comes out verified, or dead.
 */
#define KEV_VERIFY_AHEAD 64

static void kev_verify_ahead(struct kev_queue *q, unsigned int max)
{
	struct kev_interest *its[KEV_VERIFY_AHEAD];
	bool ok[KEV_VERIFY_AHEAD];
	const struct kev_source *src = NULL;
	unsigned int n = 0, seen = 0;

	for (struct kev_list *l = q->ready.next; l != &q->ready && seen < max; l = l->next, seen++) {
		struct kev_interest *it = kev_container_of(l, struct kev_interest, link);

		if (!(it->fired & KEV_PEND_VERIFY) || !it->src->named_many ||
		    (src && it->src != src))
			continue;
		src = it->src;
		its[n++] = it;
		if (n == KEV_VERIFY_AHEAD)
			break;
	}
	if (n < 2)
		return; /* one is checked as it is taken */
	src->named_many(its, n, ok);
	for (unsigned int i = 0; i < n; i++)
		its[i]->fired = (its[i]->fired & ~KEV_PEND_VERIFY) | (ok[i] ? 0 : KEV_PEND_DEAD);
}

unsigned int kev_deliver(struct kev_queue *q, struct ukevent *out, unsigned int max,
			 struct kev_list *taken)
{
	unsigned int n = 0;
	struct ukevent ev;

	kev_verify_ahead(q, max);
	while (n < max && !kev_list_empty(&q->ready)) {
		struct kev_interest *it = kev_container_of(q->ready.next, struct kev_interest, link);
		bool placed;

		if (!out && kev_ring_full(q))
			break; /* kevent_wait() copies into the ring only */
		if (!kev_take(q, it, &ev, taken))
			continue;
		placed = kev_ring_put(q, &ev);
		if (out) {
			if (!placed && q->ring) {
				ev.ret_flags |= KEVENT_RET_COPY_FAILED; /* K4 */
				q->st.copy_failed++;
			}
			out[n] = ev;
		}
		n++;
	}
	q->st.delivered += n;
	return n;
}

/*
 * A call is done with what it delivered in level mode (never twice in one call): the next
 * call looks at it again (kev_recheck()). Breakage, a close, a READY or a kept hang-up is
 * not what poll() shows, so those go back on the ready list at once.
 */
void kev_settle(struct kev_queue *q, struct kev_list *taken)
{
	while (!kev_list_empty(taken)) {
		struct kev_interest *it = kev_container_of(taken->next, struct kev_interest, link);
		__u32 bits = it->fired & (KEV_PEND_MASK | KEV_PEND_DEAD | KEV_PEND_VERIFY);

		kev_unqueue(it);
		it->fired = 0;
		if (it->hup_kept)
			bits |= KEV_PEND_HUP;
		it->hup_kept = false;
		if (bits || (it->ret_flags & KEVENT_RET_BROKEN)) {
			kev_fire(q, it, bits ? bits : KEV_PEND_HUP);
		} else if (!(it->uk.req_flags & KEVENT_REQ_ET)) {
			it->where = KEV_RECHECK;
			kev_list_add_tail(&it->link, &q->recheck);
		}
	}
}
