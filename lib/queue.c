// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Queues: kevent_init(), kevent_close(), kevent_stats(), and the table that turns the
 * descriptor a caller hands us back into its queue.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

/*
 * Queues by descriptor. A queue is freed when its last reference goes. Queues a fork()
 * child inherited stay here, dead (fork.c), until it closes them; those whose descriptor
 * number it reused meanwhile go to `orphans`.
 */
static struct {
	pthread_mutex_t lock;
	struct kev_queue **q;
	int size;
	struct kev_queue *orphans;
} qtab = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Made by this process, not inherited from the parent of a fork() (fork.c). */
static bool kev_queue_ours(const struct kev_queue *q)
{
	return q->gen == kev_fork_gen();
}

/*
 * An inherited queue leaves the table. Its memory is the parent's state as the fork found
 * it, possibly halfway through a change: it is kept, never walked.
 */
static void kev_queue_orphan(struct kev_queue *q)
{
	q->orphan_next = qtab.orphans;
	qtab.orphans = q;
}

/*
 * The queue is shut: waiters leave with -EBADF, every call fails. fd_gone: its descriptor
 * was closed with close() rather than kevent_close(), and the number may be someone else's.
 */
static void kev_queue_shut(struct kev_queue *q, bool fd_gone)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	if (fd_gone)
		q->fd = -1;
	kev_wake_all(q);
	kev_kick_update(q);
	pthread_mutex_unlock(&q->lock);
}

static int kev_qtab_insert(struct kev_queue *q)
{
	struct kev_queue *stale = NULL;
	int err = 0;

	pthread_mutex_lock(&qtab.lock);
	if (q->fd >= qtab.size) {
		int size = q->fd < 64 ? 64 : 2 * q->fd;
		struct kev_queue **n = realloc(qtab.q, size * sizeof(*n));

		if (!n) {
			err = -ENOMEM;
			goto out;
		}
		for (int i = qtab.size; i < size; i++)
			n[i] = NULL;
		qtab.q = n;
		qtab.size = size;
	}
	/* A queue still on the number had its descriptor closed with close() (K25). */
	if (qtab.q[q->fd] && !kev_queue_ours(qtab.q[q->fd]))
		kev_queue_orphan(qtab.q[q->fd]); /* in a fork() child */
	else
		stale = qtab.q[q->fd];
	qtab.q[q->fd] = q;
out:
	pthread_mutex_unlock(&qtab.lock);
	if (stale) {
		kev_queue_shut(stale, true);
		kev_queue_put(stale);
	}
	return err;
}

/*
 * A call found the queue's descriptor closed with close() (its wait failed on it): the
 * queue leaves the table unless a new one took the number already.
 */
void kev_queue_lost(struct kev_queue *q, int fd)
{
	bool ours;

	pthread_mutex_lock(&qtab.lock);
	ours = fd >= 0 && fd < qtab.size && qtab.q[fd] == q;
	if (ours)
		qtab.q[fd] = NULL;
	pthread_mutex_unlock(&qtab.lock);
	kev_queue_shut(q, true);
	if (ours)
		kev_queue_put(q);
}

struct kev_queue *kev_queue_get(int fd, int *err)
{
	struct kev_queue *q = NULL;
	bool inherited = false;

	pthread_mutex_lock(&qtab.lock);
	if (fd >= 0 && fd < qtab.size)
		q = qtab.q[fd];
	if (q && !kev_queue_ours(q)) {
		inherited = true;
		q = NULL;
	}
	if (q)
		__atomic_add_fetch(&q->refs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&qtab.lock);
	/*
	 * Not ours: inherited through fork() (K6) or closed is EBADF, anything else open is
	 * EINVAL (K25).
	 */
	if (!q)
		*err = inherited || fd < 0 || fcntl(fd, F_GETFD) < 0 ? -EBADF : -EINVAL;
	return q;
}

void kev_interest_free(struct kev_queue *q, struct kev_interest *it)
{
	kev_unqueue(it);
	it->src->del(q, it);
	kev_slot_free(it);
	kev_htab_remove(&q->ids, &it->hnode);
	free(it);
}

static void kev_interest_free_node(struct kev_hnode *n, void *q)
{
	kev_interest_free(q, kev_container_of(n, struct kev_interest, hnode));
}

static void kev_queue_destroy(struct kev_queue *q)
{
	if (q->ids.buckets)
		kev_htab_each(&q->ids, kev_interest_free_node, q);
	kev_sources_flush(q); /* what freeing the interests queued for the kernel */
	kev_sources_release(q);
	kev_htab_free(&q->ids);
	kev_fdwatch_free_all(q);
	kev_htab_free(&q->fdnodes);
	if (q->qidx >= 0)
		kev_kernel_queue_close(q);
	if (q->kick_fd >= 0)
		close(q->kick_fd);
	if (q->fd >= 0)
		close(q->fd);
	pthread_mutex_destroy(&q->lock);
	free(q);
	kev_kernel_put();
}

void kev_queue_put(struct kev_queue *q)
{
	if (!__atomic_sub_fetch(&q->refs, 1, __ATOMIC_ACQ_REL))
		kev_queue_destroy(q);
}

static int kev_epoll_add(int epfd, int fd, __u64 tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int kev_queue_setup(struct kev_queue *q)
{
	int err;

	pthread_mutex_init(&q->lock, NULL);
	kev_list_init(&q->ready);
	kev_list_init(&q->recheck);

	q->refs = 1;
	q->defer = true; /* hold the ring back between calls (wait.c) */
	q->gen = kev_fork_gen();
	q->qidx = -1;
	q->fd = epoll_create1(EPOLL_CLOEXEC);
	q->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->fd < 0 || q->kick_fd < 0)
		return -errno;
	err = kev_htab_init(&q->ids);
	if (!err)
		err = kev_htab_init(&q->fdnodes);
	if (!err)
		err = kev_kernel_queue_open(q);
	if (!err && q->rb.map_fd >= 0)
		err = kev_epoll_add(q->fd, q->rb.map_fd, KEV_EP_RING);
	if (!err)
		kev_rb_drop_fd(&q->rb);
	if (!err)
		err = kev_epoll_add(q->fd, q->kick_fd, KEV_EP_KICK);
	return err;
}

KEV_API int kevent_init(struct kevent_ring *ring, unsigned int ring_size, unsigned int flags)
{
	struct kev_queue *q;
	int err;

	if ((flags & ~KEVENT_INIT_BPF) || !ring != !ring_size || (ring && ring_size < 2) ||
	    ring_size > KEVENT_MAX_BATCH)
		return kev_err(-EINVAL);
	err = kev_kernel_get(flags & KEVENT_INIT_BPF);
	if (err)
		return kev_err(err);
	q = calloc(1, sizeof(*q));
	if (!q) {
		kev_kernel_put();
		return kev_err(-ENOMEM);
	}
	q->need_bpf = flags & KEVENT_INIT_BPF;
	err = kev_queue_setup(q);
	if (!err && ring) {
		q->ring = ring;
		q->ring_size = ring_size;
		ring->ring_kidx = 0;
		ring->ring_over = 0;
	}
	if (!err)
		err = kev_qtab_insert(q);
	if (err) {
		kev_queue_destroy(q);
		return kev_err(err);
	}
	return q->fd;
}

KEV_API int kevent_close(int fd)
{
	struct kev_queue *q = NULL;

	pthread_mutex_lock(&qtab.lock);
	if (fd >= 0 && fd < qtab.size) {
		q = qtab.q[fd];
		qtab.q[fd] = NULL;
	}
	if (q && !kev_queue_ours(q))
		kev_queue_orphan(q);
	pthread_mutex_unlock(&qtab.lock);
	if (q && !kev_queue_ours(q)) {
		/* The child's copy of an inherited queue: its descriptor is all it has (K6). */
		close(fd);
		return 0;
	}
	if (!q) {
		int err;

		kev_queue_get(fd, &err);
		return kev_err(err);
	}
	/* Waiters hold references; they see `closed` once woken and leave with -EBADF. */
	kev_queue_shut(q, false);
	kev_queue_put(q);
	return 0;
}

/*
 * fork() child (fork.c): every queue in the table is the parent's now. Their internal
 * descriptors are closed here (they would keep the parent's ring buffers and epoll sets
 * alive in the child); the one the caller holds stays until it closes it.
 */
void kev_queue_forget(void)
{
	pthread_mutex_init(&qtab.lock, NULL);
	for (int fd = 0; fd < qtab.size; fd++) {
		struct kev_queue *q = qtab.q[fd];

		if (!q)
			continue;
		close(q->kick_fd);
		kev_timer_sys_forget(q);
		kev_inotify_forget(q);
		if (q->aio)
			kev_aio_forget(q->aio);
	}
}

KEV_API int kevent_stats(int fd, struct kevent_stats *st)
{
	struct kev_queue *q;
	int err;

	if (!st)
		return kev_err(-EFAULT);
	q = kev_queue_get(fd, &err);
	if (!q)
		return kev_err(err);
	pthread_mutex_lock(&q->lock);
	*st = q->st;
	st->ring_overflows = kev_kernel_overflows(q);
	st->interests = q->ids.count;
	st->kernel_timers = kev_kernel_timers();
	pthread_mutex_unlock(&q->lock);
	kev_queue_put(q);
	return 0;
}
