// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * kevent_get_events() and kevent_wait(): harvest, deliver, and sleep in epoll_wait() on
 * the queue's descriptor until something changes (K5, K11, K15, K16).
 *
 * Waiters sleep in epoll_wait, which wakes one exclusive waiter per readiness edge: one
 * activity wakes one thread (K15). The kick eventfd is held readable while userspace has
 * work a waiter could take, and while a wake-all has not reached every parked thread.
 */
#include <errno.h>
#include <sched.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "internal.h"

#define NSEC_PER_SEC 1000000000L

static inline void kev_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

struct kev_deadline {
	bool forever;
	clockid_t clock;
	struct timespec when;
};

static int kev_deadline_init(struct kev_deadline *d, struct timespec t, unsigned int flags)
{
	if (flags & ~KEVENT_FLAGS_ABSTIME)
		return -EINVAL;
	if (t.tv_nsec < 0 || t.tv_nsec >= NSEC_PER_SEC || t.tv_sec < -1)
		return -EINVAL;
	d->forever = t.tv_sec == -1;
	if (flags & KEVENT_FLAGS_ABSTIME) {
		d->clock = CLOCK_REALTIME; /* K16: absolute times are wall-clock times */
		d->when = t;
		return 0;
	}
	d->clock = CLOCK_MONOTONIC;
	clock_gettime(CLOCK_MONOTONIC, &d->when);
	d->when.tv_sec += t.tv_sec;
	d->when.tv_nsec += t.tv_nsec;
	if (d->when.tv_nsec >= NSEC_PER_SEC) {
		d->when.tv_sec++;
		d->when.tv_nsec -= NSEC_PER_SEC;
	}
	return 0;
}

/* Time left before the deadline; false once it has passed. */
static bool kev_time_left(const struct kev_deadline *d, struct timespec *left)
{
	struct timespec now;

	if (d->forever)
		return true;
	clock_gettime(d->clock, &now);
	left->tv_sec = d->when.tv_sec - now.tv_sec;
	left->tv_nsec = d->when.tv_nsec - now.tv_nsec;
	if (left->tv_nsec < 0) {
		left->tv_sec--;
		left->tv_nsec += NSEC_PER_SEC;
	}
	return left->tv_sec > 0 || (left->tv_sec == 0 && left->tv_nsec > 0);
}

void kev_kick_update(struct kev_queue *q)
{
	/* A lease holder comes back for the ring; anyone who sleeps first takes the lease. */
	bool want = !kev_list_empty(&q->ready) || q->wake_left || q->closed ||
		    (!q->leased && !kev_rb_empty(&q->rb));
	__u64 v = 1;

	if (want == q->kicked)
		return;
	if (want ? write(q->kick_fd, &v, sizeof(v)) : read(q->kick_fd, &v, sizeof(v)))
		q->kicked = want;
}

void kev_wake_all(struct kev_queue *q)
{
	q->wake_gen++;
	q->wake_left = q->parked;
}

/*
 * A thread of the queue is in a call and awake: it looks at the ring buffer before it
 * sleeps, so the BPF side pushes records without waking anyone (kev_push()). The
 * sequentially consistent update is the full barrier that pairs with the one there.
 */
static void kev_awake(struct kev_queue *q, int delta)
{
	__atomic_add_fetch(q->awake, delta, __ATOMIC_SEQ_CST);
}

/*
 * kevent_set_defer_wakeup(): a thread leaving a call stays counted as awake (the lease), as
 * its caller promised to come back; what arrives meanwhile waits in the ring without a
 * wake-up. Not while another thread sleeps on the queue: that one must be woken.
 */
static void kev_leave(struct kev_queue *q)
{
	if (q->defer && !q->leased && !q->parked && !q->closed)
		q->leased = true;
	else
		kev_awake(q, -1);
}

/* The count a lease holds: a thread about to sleep, or the option turned off, ends it. */
static int kev_lease_end(struct kev_queue *q)
{
	bool held = q->leased;

	q->leased = false;
	return held;
}

static __u64 kev_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * NSEC_PER_SEC + (__u64)ts.tv_nsec;
}

/*
 * kevent_set_spin(): watch the ring buffer (mapped memory, no system call) for up to
 * spin_ns before sleeping; still awake, so records arrive without a wake-up. true: something
 * arrived. Called and returns with q->lock held.
 */
static bool kev_spin(struct kev_queue *q, const struct kev_deadline *d)
{
	__u64 until = kev_now_ns() + q->spin_ns;
	struct timespec left;
	bool hit = false;

	pthread_mutex_unlock(&q->lock);
	for (unsigned int i = 1; !hit; i++) {
		hit = !kev_rb_empty(&q->rb) || __atomic_load_n(&q->kicked, __ATOMIC_ACQUIRE);
		if (!(i & 63) && (kev_now_ns() >= until || !kev_time_left(d, &left)))
			break;
		kev_cpu_relax();
	}
	pthread_mutex_lock(&q->lock);
	return hit;
}

/*
 * Woken by one record pushed on this very CPU: its producer was cut short, since the ring
 * buffer's wake-up (an irq_work) is not the "sync" kind that lets the waker go on, as a
 * socket's own wake-up does. Let it go on: what else it has for us then comes without
 * another wake-up, since we are awake. Called and returns with q->lock held.
 */
static void kev_yield(struct kev_queue *q)
{
	const struct ukevent *e = kev_rb_sole(&q->rb);

	if (!e || e->user_u64 != (__u64)sched_getcpu())
		return;
	pthread_mutex_unlock(&q->lock);
	sched_yield();
	pthread_mutex_lock(&q->lock);
}

/*
 * Sleep until the queue's descriptor is readable or the deadline. Called and returns with
 * q->lock held. false: stop waiting (*err = 0 on timeout, -EINTR on a signal).
 */
static bool kev_sleep(struct kev_queue *q, const struct kev_deadline *d, int *err)
{
	struct epoll_event ev[64];
	struct timespec left;
	unsigned int gen = q->wake_gen;
	int n, e;

	if (!kev_time_left(d, &left))
		return false;
	if (q->spin_ns && kev_spin(q, d))
		return true;
	kev_awake(q, -1 - kev_lease_end(q));
	if (!kev_rb_empty(&q->rb)) {
		/* Pushed while we were awake: no wake-up is coming for it. */
		kev_awake(q, 1);
		return true;
	}
	q->parked++;
	kev_kick_update(q);
	pthread_mutex_unlock(&q->lock);
	n = epoll_pwait2(q->fd, ev, 64, d->forever ? NULL : &left, NULL);
	e = errno;
	pthread_mutex_lock(&q->lock);
	kev_awake(q, 1);
	q->parked--;
	if (gen != q->wake_gen && q->wake_left)
		q->wake_left--; /* a wake-all counted this thread; it has now woken */
	if (n < 0) {
		*err = -e;
		return false;
	}
	if (n)
		kev_yield(q);
	kev_dispatch(q, ev, n);
	return true;
}

/* The loop both calls share; out == NULL copies into the ring only (kevent_wait). */
static int kev_collect(struct kev_queue *q, struct ukevent *out, unsigned int min_nr,
		       unsigned int max_nr, const struct kev_deadline *d, const unsigned int *old_uidx)
{
	struct kev_list taken;
	unsigned int got = 0, gen;
	int err = 0;

	kev_list_init(&taken);
	pthread_mutex_lock(&q->lock);
	kev_awake(q, 1);
	gen = q->wake_gen;
	kev_fdwatch_sweep(q);
	while (!q->closed) {
		kev_harvest(q);
		got += kev_deliver(q, out ? out + got : NULL, max_nr - got, &taken);
		if (got >= min_nr || got == max_nr || gen != q->wake_gen)
			break;
		if (old_uidx && *old_uidx != q->uidx)
			break; /* K5: another thread committed: return at once */
		if (!out && kev_ring_full(q) && !kev_list_empty(&q->ready)) {
			/* K4: kevent_wait waits for a commit to make room. */
			struct timespec left, at;

			if (!kev_time_left(d, &left))
				break;
			if (d->forever) {
				pthread_cond_wait(&q->space, &q->lock);
				continue;
			}
			clock_gettime(CLOCK_MONOTONIC, &at);
			at.tv_sec += left.tv_sec;
			at.tv_nsec += left.tv_nsec;
			if (at.tv_nsec >= NSEC_PER_SEC) {
				at.tv_sec++;
				at.tv_nsec -= NSEC_PER_SEC;
			}
			pthread_cond_timedwait(&q->space, &q->lock, &at);
			continue;
		}
		if (!kev_sleep(q, d, &err))
			break;
	}
	if (q->closed && !got)
		err = -EBADF;
	kev_settle(q, &taken);
	kev_sources_flush(q); /* what delivery removed (ONESHOT, BROKEN, closed) */
	kev_leave(q); /* before kev_kick_update() looks at the ring: see kev_sleep() */
	kev_kick_update(q);
	pthread_mutex_unlock(&q->lock);
	return got ? (int)got : err;
}

/* What both calls share once their own arguments are checked; old_uidx: kevent_wait(). */
static int kev_wait_call(int fd, struct ukevent *out, unsigned int min_nr, unsigned int max_nr,
			 struct timespec timeout, unsigned int flags, const unsigned int *old_uidx)
{
	struct kev_deadline d;
	struct kev_queue *q;
	int err = kev_deadline_init(&d, timeout, flags);

	if (err)
		return kev_err(err);
	q = kev_queue_get(fd, &err);
	if (!q)
		return kev_err(err);
	if (old_uidx && !q->ring)
		err = -EINVAL; /* kevent_wait() copies into the ring only */
	else
		err = max_nr ? kev_collect(q, out, min_nr, max_nr, &d, old_uidx) : 0;
	kev_queue_put(q);
	return err < 0 ? kev_err(err) : err;
}

KEV_API int kevent_get_events(int ctl_fd, unsigned int min_nr, unsigned int max_nr,
			      struct timespec timeout, struct ukevent *buf, unsigned int flags)
{
	if (max_nr > KEVENT_MAX_BATCH || min_nr > max_nr)
		return kev_err(-EINVAL);
	if (!buf && max_nr)
		return kev_err(-EFAULT);
	return kev_wait_call(ctl_fd, buf, min_nr, max_nr, timeout, flags, NULL);
}

KEV_API int kevent_set_spin(int fd, unsigned int usec)
{
	struct kev_queue *q;
	int err;

	if (usec > KEVENT_MAX_SPIN_US)
		return kev_err(-EINVAL);
	q = kev_queue_get(fd, &err);
	if (!q)
		return kev_err(err);
	pthread_mutex_lock(&q->lock);
	q->spin_ns = (__u64)usec * 1000;
	pthread_mutex_unlock(&q->lock);
	kev_queue_put(q);
	return 0;
}

KEV_API int kevent_set_defer_wakeup(int fd, unsigned int on)
{
	struct kev_queue *q;
	int err;

	if (on > 1)
		return kev_err(-EINVAL);
	q = kev_queue_get(fd, &err);
	if (!q)
		return kev_err(err);
	pthread_mutex_lock(&q->lock);
	q->defer = on;
	if (!on && kev_lease_end(q)) {
		kev_awake(q, -1);
		kev_kick_update(q); /* what the ring holds must now show on the descriptor (K2) */
	}
	pthread_mutex_unlock(&q->lock);
	kev_queue_put(q);
	return 0;
}

KEV_API int kevent_wait(int ctl_fd, unsigned int num, unsigned int old_uidx,
			struct timespec timeout, unsigned int flags)
{
	if (num > KEVENT_MAX_BATCH)
		return kev_err(-EINVAL);
	return kev_wait_call(ctl_fd, NULL, 1, num, timeout, flags, &old_uidx);
}
