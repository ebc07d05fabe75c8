// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * kevent_get_events() and kevent_wait(): harvest, deliver, and sleep until something
 * changes (K4, K5, K11, K15, K16).
 *
 * Every wait goes through kev_sleep(). For events it sleeps in epoll_wait() on the queue's
 * descriptor, which wakes one exclusive waiter per readiness edge: one activity wakes one
 * thread (K15). kevent_wait() waiting for ring space sleeps on a futex that commits bump.
 * Either sleep ends with a wake-all (K11), a signal (-EINTR when nothing was copied, K16),
 * the deadline, or the queue's close.
 *
 * Wake-ups from the kernel ring (ringbuf.c): while a thread of the queue is in a call, and
 * after a call that returned events, the queue holds the last record it processed back, so
 * the kernel raises no wake-up for what arrives meanwhile: the caller takes it at its next
 * harvest. A thread catches up before it sleeps (the next record then wakes it), a call
 * that returns nothing catches up as it leaves, and a thread that leaves while another
 * sleeps kicks the sleeper for what arrived. An outside poller (poll, select, epoll without
 * EPOLLET) sees POLLIN while anything is held back: spuriously at most once, right after a
 * call that returned events (K2). kevent_set_defer_wakeup(fd, 0) catches up at every exit,
 * for pollers that need an edge.
 *
 * The kick eventfd is held readable while userspace has work a waiter could take, and
 * while a wake-all has not reached every parked thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
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
	/* Further than the clock can count: forever (and no signed overflow). */
	if (t.tv_sec >= LONG_MAX - d->when.tv_sec - 1) {
		d->forever = true;
		return 0;
	}
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
	bool work = !kev_list_empty(&q->ready) || !kev_list_empty(&q->recheck);
	/*
	 * A sleeper is woken for work it can take: what is ready in userspace, and records that
	 * arrived while the ring was held back (no wake-up came for them). For an outside
	 * poller the descriptor must poll readable while there is work, which it already does
	 * while the ring holds something back (ringbuf.c): no system call then.
	 */
	bool want = q->closed || q->wake_left ||
		    (q->parked && (!kev_list_empty(&q->ready) || kev_rb_ready(&q->rb))) ||
		    (work && !kev_rb_holding(&q->rb));
	__u64 v = 1;

	if (want == q->kicked)
		return;
	if (want ? write(q->kick_fd, &v, sizeof(v)) : read(q->kick_fd, &v, sizeof(v)))
		__atomic_store_n(&q->kicked, want, __ATOMIC_RELEASE);
}

static long kev_futex(__u32 *addr, int op, __u32 val, const struct timespec *abs)
{
	return syscall(SYS_futex, addr, op, val, abs, NULL, FUTEX_BITSET_MATCH_ANY);
}

/* A commit freed ring slots, or every waiter must return: wake kevent_wait()'s sleepers. */
void kev_space_wake(struct kev_queue *q)
{
	if (!q->space_waiters)
		return;
	__atomic_add_fetch(&q->space_seq, 1, __ATOMIC_RELEASE);
	kev_futex(&q->space_seq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
}

void kev_wake_all(struct kev_queue *q)
{
	__atomic_add_fetch(&q->wake_gen, 1, __ATOMIC_RELEASE);
	q->wake_left = q->parked;
	kev_space_wake(q);
}

/*
 * kevent_set_spin(): watch the ring buffer (mapped memory, no system call) for up to
 * spin_ns before sleeping; the ring is still held back, so records arrive without a
 * wake-up. A kick or a wake-all (K11) ends it too. true: something to look at. Called and
 * returns with q->lock held.
 */
static bool kev_spin(struct kev_queue *q, const struct kev_deadline *d, unsigned int gen)
{
	__u64 until = kev_now_ns() + q->spin_ns;
	struct timespec left;
	bool hit = false;

	pthread_mutex_unlock(&q->lock);
	for (unsigned int i = 1; !hit; i++) {
		hit = kev_rb_ready(&q->rb) || __atomic_load_n(&q->kicked, __ATOMIC_ACQUIRE) ||
		      __atomic_load_n(&q->wake_gen, __ATOMIC_ACQUIRE) != gen;
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
 * another wake-up, since we hold the ring back once awake. Called and returns with q->lock
 * held.
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
 * Asleep in epoll_wait on the queue's descriptor. 0: woken or timed out, or -errno.
 * *fresh: epoll gave all it had.
 */
static int kev_park_events(struct kev_queue *q, const struct kev_deadline *d,
			   const struct timespec *left, unsigned int gen, bool *fresh)
{
	struct epoll_event ev[64];
	int n, e;

	q->parked++;
	kev_kick_update(q);
	pthread_mutex_unlock(&q->lock);
	n = epoll_pwait2(q->fd, ev, 64, d->forever ? NULL : left, NULL);
	e = errno;
	pthread_mutex_lock(&q->lock);
	q->parked--;
	if (gen != q->wake_gen && q->wake_left)
		q->wake_left--; /* a wake-all counted this thread; it has now woken */
	if (n < 0 && (e == EBADF || e == EINVAL))
		return -ENOTCONN; /* the descriptor was closed with close(): kev_wait_call() */
	if (n < 0)
		return -e;
	if (n)
		kev_yield(q);
	kev_dispatch(q, ev, n);
	*fresh = n < 64; /* the set gave all it had: the harvest that follows need not ask */
	return 0;
}

/* Asleep until a commit frees ring space (K4). 0: woken or timed out, or -errno. */
static int kev_park_space(struct kev_queue *q, const struct kev_deadline *d)
{
	__u32 seq = q->space_seq;
	int op = FUTEX_WAIT_BITSET_PRIVATE | (d->clock == CLOCK_REALTIME ? FUTEX_CLOCK_REALTIME : 0);
	long r;

	q->space_waiters++;
	kev_kick_update(q);
	pthread_mutex_unlock(&q->lock);
	/* The value is checked in the kernel: a commit since `seq` was read returns at once. */
	r = kev_futex(&q->space_seq, op, seq, d->forever ? NULL : &d->when);
	pthread_mutex_lock(&q->lock);
	q->space_waiters--;
	return r < 0 && errno == EINTR ? -EINTR : 0;
}

/*
 * The one way a call waits: for events, or (space) for room in the caller's ring. Called
 * and returns with q->lock held. false: stop waiting (*err = 0 on timeout, -EINTR on a
 * signal).
 */
static bool kev_sleep(struct kev_queue *q, const struct kev_deadline *d, unsigned int gen,
		      bool space, int *err, bool *fresh)
{
	struct timespec left;

	if (!kev_time_left(d, &left))
		return false;
	/* A queue without a kernel ring has nothing to watch in memory: it sleeps at once. */
	if (!space && q->spin_ns && q->qidx >= 0 && kev_spin(q, d, gen))
		return true;
	/* Catch up, so that the next record wakes a sleeper; one that came meanwhile is taken. */
	if (kev_rb_publish(&q->rb) && !space)
		return true;
	*err = space ? kev_park_space(q, d) : kev_park_events(q, d, &left, gen, fresh);
	return !*err;
}

/*
 * A call is over. One that returned nothing catches up, so that no readiness is left for an
 * outside poller; so does every call when the caller asked for an edge at every record, and
 * when another thread sleeps on the queue: the next record must wake it, and those that came
 * while the ring was held back are its work (the kick).
 */
static void kev_leave(struct kev_queue *q, unsigned int got)
{
	if (q->parked)
		kev_rb_publish(&q->rb);
	else if (!got || !q->defer)
		kev_rb_release(&q->rb);
	kev_kick_update(q);
}

/* The loop both calls share; out == NULL copies into the ring only (kevent_wait). */
static int kev_collect(struct kev_queue *q, struct ukevent *out, unsigned int min_nr,
		       unsigned int max_nr, const struct kev_deadline *d, const unsigned int *old_uidx)
{
	struct kev_list taken;
	unsigned int got = 0, gen;
	bool space, fresh = false;
	__u32 epoch;
	int err = 0;

	kev_list_init(&taken);
	pthread_mutex_lock(&q->lock);
	q->calls++;
	epoch = kev_kernel_epoch(q); /* after whatever this thread closed: see kev_on_record() */
	gen = q->wake_gen;
	kev_fdwatch_sweep(q);
	while (!q->closed) {
		q->epoch_now = epoch; /* another thread's call may have set its own meanwhile */
		kev_harvest(q, max_nr - got, fresh);
		fresh = false;
		got += kev_deliver(q, out ? out + got : NULL, max_nr - got, &taken);
		if (got >= min_nr || got == max_nr || gen != q->wake_gen)
			break;
		if (old_uidx && *old_uidx != q->uidx)
			break; /* K5: another thread committed: return at once */
		/* K4: kevent_wait() waits for a commit to make room for what is ready. */
		space = !out && kev_ring_full(q) && !kev_list_empty(&q->ready);
		if (!kev_sleep(q, d, gen, space, &err, &fresh))
			break;
	}
	if (q->closed && !got)
		err = -EBADF;
	kev_settle(q, &taken);
	kev_sources_flush(q); /* what delivery removed (ONESHOT, BROKEN, closed) */
	kev_leave(q, got);
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
	if (err == -ENOTCONN) {
		/* Not a queue any more (K25): EBADF if closed, EINVAL if the number was reused. */
		kev_queue_lost(q, fd);
		err = fcntl(fd, F_GETFD) < 0 ? -EBADF : -EINVAL;
	}
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

KEV_API int kevent_wait(int ctl_fd, unsigned int num, unsigned int old_uidx,
			struct timespec timeout, unsigned int flags)
{
	if (num > KEVENT_MAX_BATCH)
		return kev_err(-EINVAL);
	return kev_wait_call(ctl_fd, NULL, 1, num, timeout, flags, &old_uidx);
}

/* An option of the queue, set under its lock by set(). */
static int kev_option(int fd, void (*set)(struct kev_queue *q, unsigned int v), unsigned int v)
{
	struct kev_queue *q;
	int err;

	q = kev_queue_get(fd, &err);
	if (!q)
		return kev_err(err);
	pthread_mutex_lock(&q->lock);
	set(q, v);
	pthread_mutex_unlock(&q->lock);
	kev_queue_put(q);
	return 0;
}

static void kev_set_spin(struct kev_queue *q, unsigned int usec)
{
	q->spin_ns = (__u64)usec * 1000;
}

KEV_API int kevent_set_spin(int fd, unsigned int usec)
{
	if (usec > KEVENT_MAX_SPIN_US)
		return kev_err(-EINVAL);
	return kev_option(fd, kev_set_spin, usec);
}

static void kev_set_defer(struct kev_queue *q, unsigned int on)
{
	q->defer = on;
	if (!on)
		kev_rb_release(&q->rb);
}

KEV_API int kevent_set_defer_wakeup(int fd, unsigned int on)
{
	if (on > 1)
		return kev_err(-EINVAL);
	return kev_option(fd, kev_set_defer, on);
}
