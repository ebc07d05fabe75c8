// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The caller's struct kevent_ring (K3, K4): events are copied to event[ring_kidx], and
 * kevent_commit() frees them. [uidx, kidx) holds `used` events; ring_over counts how many
 * times the committed index wrapped, so that a commit computed before a wrap cannot free
 * slots that were reused since.
 */
#include "internal.h"

bool kev_ring_full(const struct kev_queue *q)
{
	return q->ring && q->used == q->ring_size;
}

bool kev_ring_put(struct kev_queue *q, const struct ukevent *ev)
{
	if (!q->ring || q->used == q->ring_size)
		return false;
	q->ring->event[q->kidx] = *ev;
	q->kidx = q->kidx + 1 == q->ring_size ? 0 : q->kidx + 1;
	q->used++;
	/*
	 * Release: the event is in place before ring_kidx says so, for a reader in another
	 * thread or process that loads ring_kidx with acquire.
	 */
	__atomic_store_n(&q->ring->ring_kidx, q->kidx, __ATOMIC_RELEASE);
	return true;
}

/* How many slots a commit to new_uidx with `over` frees, or -errno. */
static int kev_commit_span(const struct kev_queue *q, unsigned int new_uidx, unsigned int over)
{
	unsigned int n;

	if (new_uidx >= q->ring_size)
		return -EINVAL;
	if (q->over && over == q->over - 1)
		return 0; /* predates the last wrap: the commit that wrapped freed its slots */
	if (over != q->over)
		return -EOVERFLOW;
	/*
	 * The committed index itself frees nothing, even on a full ring: it is what a stale
	 * duplicate commit looks like, as in the original. A full ring is committed in two
	 * steps (all but one slot, then the last).
	 */
	n = new_uidx >= q->uidx ? new_uidx - q->uidx : q->ring_size - q->uidx + new_uidx;
	return n > q->used ? -EINVAL : (int)n;
}

KEV_API int kevent_commit(int ctl_fd, unsigned int new_uidx, unsigned int over)
{
	struct kev_queue *q;
	int n;

	q = kev_queue_get(ctl_fd, &n);
	if (!q)
		return kev_err(n);
	pthread_mutex_lock(&q->lock);
	n = q->ring ? kev_commit_span(q, new_uidx, over) : -EINVAL;
	if (n > 0) {
		if (q->uidx + n >= q->ring_size) {
			q->over++;
			__atomic_store_n(&q->ring->ring_over, q->over, __ATOMIC_RELEASE);
		}
		q->uidx = (q->uidx + n) % q->ring_size;
		q->used -= n;
		kev_space_wake(q);
	}
	pthread_mutex_unlock(&q->lock);
	kev_queue_put(q);
	return n < 0 ? kev_err(n) : n;
}
