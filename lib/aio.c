// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * aio_sendfile() and its KEVENT_AIO completions (K22).
 *
 * The caller's socket may be blocking, and its file description (so its O_NONBLOCK) is the
 * caller's: sendfile() or splice() into it blocks for as long as the peer does not read,
 * and only a signal gets a thread out of that, so neither a pool of threads calling
 * sendfile() nor io_uring's splice (run by blocking kernel workers) could be stopped cleanly
 * or kept fair. Instead each queue that uses aio_sendfile() gets one engine thread with its
 * own epoll set. It maps the file range and sends from the page cache with
 * send(MSG_DONTWAIT), which never blocks whatever the socket's flags, waits for EPOLLOUT
 * when the socket is full, and takes the ready transfers in turn, a quantum each. A
 * transfer stuck on a peer costs one registration; closing the queue stops the engine at
 * once. On loopback it is also faster than sendfile() (bench/aio_sendfile.c).
 *
 * A transfer is an interest in the queue's table (type KEVENT_AIO, id = user = the cookie,
 * ONESHOT): REMOVE cancels it, closing the queue cancels them all. It holds its own
 * duplicate of the socket and a mapping of the file, so the caller may close both at once.
 * The engine never takes the queue's lock: it moves finished transfers to a list and
 * writes an eventfd in the queue's epoll set, and the queue collects them when it harvests.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* Bytes one transfer may send before the next ready one gets its turn. */
#define KEV_AIO_QUANTUM (1u << 20)
#define KEV_AIO_BATCH	64

enum kev_job_state {
	KEV_JOB_NEW,	/* a->inbox: not seen by the engine yet */
	KEV_JOB_RUN,	/* a->active: the engine sends it */
	KEV_JOB_DONE,	/* a->done: finished, for the queue to report */
	KEV_JOB_CANCEL, /* a->cancelled: its interest went; the engine frees it */
};

struct kev_aio_job {
	struct kev_list link; /* on the list of its state, under a->lock */
	struct kev_list run;  /* the engine's turn list; engine only */
	enum kev_job_state state;
	struct kev_interest *it; /* NULL once cancelled */
	__u64 cookie;
	int sock;	 /* our duplicate of the destination, -1 once released */
	char *map;	 /* the file range, mapped from its page */
	size_t map_len;	 /* mapping length */
	size_t skip;	 /* bytes of the first page before the offset */
	__u64 count;	 /* bytes to send (clamped to the end of the file) */
	__u64 sent;
	int err;	 /* negative errno once failed */
	bool watched;	 /* registered in the engine's epoll set */
};

struct kev_aio {
	pthread_mutex_t lock; /* the lists and job states; never held with anything else */
	struct kev_list inbox, active, done, cancelled;
	bool stop;
	pthread_t thread;
	int ep;			  /* the engine's epoll set: the sockets and wake */
	int wake;		  /* eventfd: new transfers, cancellations, stop */
	int done_fd;		  /* eventfd in the queue's epoll set: transfers finished */
	struct kev_interest chan; /* the queue's registration of done_fd */
	struct kev_queue *q;
	struct kev_list runq; /* engine only: transfers that may send now */
};

/* The job aio_sendfile() is registering on this thread; add() takes it. */
static __thread struct kev_aio_job *kev_aio_submitting;
static __u64 kev_aio_cookies;

static void kev_aio_signal(int fd)
{
	__u64 one = 1;

	if (write(fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, so the reader is due to wake anyway */
	}
}

static void kev_aio_drain(int fd)
{
	__u64 v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: already drained */
	}
}

/* Release what the transfer holds in the kernel: its socket and its mapping. */
static void kev_aio_job_release(struct kev_aio *a, struct kev_aio_job *j)
{
	if (j->watched)
		epoll_ctl(a->ep, EPOLL_CTL_DEL, j->sock, NULL);
	j->watched = false;
	if (j->sock >= 0)
		close(j->sock);
	j->sock = -1;
	if (j->map)
		munmap(j->map, j->map_len);
	j->map = NULL;
}

static void kev_aio_job_free(struct kev_aio *a, struct kev_aio_job *j)
{
	kev_aio_job_release(a, j);
	free(j);
}

/* ---- the engine thread ---- */

static void kev_aio_runnable(struct kev_aio *a, struct kev_aio_job *j)
{
	if (kev_list_empty(&j->run))
		kev_list_add_tail(&j->run, &a->runq);
}

/* The transfer is over: hand it to the queue, unless its interest went meanwhile. */
static void kev_aio_finish(struct kev_aio *a, struct kev_aio_job *j)
{
	bool report;

	kev_list_del(&j->run);
	kev_aio_job_release(a, j);
	pthread_mutex_lock(&a->lock);
	report = j->state == KEV_JOB_RUN;
	if (report) {
		j->state = KEV_JOB_DONE;
		kev_list_del(&j->link);
		kev_list_add_tail(&j->link, &a->done);
	}
	pthread_mutex_unlock(&a->lock);
	if (report)
		kev_aio_signal(a->done_fd);
}

static void kev_aio_start(struct kev_aio *a, struct kev_aio_job *j)
{
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLET, .data.ptr = j };

	if (j->sent == j->count) {
		kev_aio_finish(a, j);
		return;
	}
	madvise(j->map, j->map_len, MADV_SEQUENTIAL);
	if (epoll_ctl(a->ep, EPOLL_CTL_ADD, j->sock, &ev)) {
		j->err = -errno;
		kev_aio_finish(a, j);
		return;
	}
	j->watched = true;
	kev_aio_runnable(a, j);
}

/*
 * New transfers (onto fresh, by their engine-only link), cancelled ones (freed), stop:
 * returns true when the engine must stop.
 */
static bool kev_aio_mail(struct kev_aio *a, struct kev_list *fresh)
{
	struct kev_list dead;
	bool stop;

	kev_list_init(&dead);
	kev_aio_drain(a->wake);
	pthread_mutex_lock(&a->lock);
	while (!kev_list_empty(&a->inbox)) {
		struct kev_aio_job *j = kev_container_of(a->inbox.next, struct kev_aio_job, link);

		kev_list_del(&j->link);
		j->state = KEV_JOB_RUN;
		kev_list_add_tail(&j->link, &a->active);
		kev_list_add_tail(&j->run, fresh);
	}
	kev_list_splice_tail(&a->cancelled, &dead);
	stop = a->stop;
	pthread_mutex_unlock(&a->lock);
	while (!kev_list_empty(&dead)) {
		struct kev_aio_job *j = kev_container_of(dead.next, struct kev_aio_job, link);

		kev_list_del(&j->link);
		kev_list_del(&j->run);
		kev_aio_job_free(a, j);
	}
	return stop;
}

/* Start what the mail brought (even if cancelled since: the next mail frees it). */
static void kev_aio_start_new(struct kev_aio *a, struct kev_list *fresh)
{
	while (!kev_list_empty(fresh)) {
		struct kev_aio_job *j = kev_container_of(fresh->next, struct kev_aio_job, run);

		kev_list_del(&j->run);
		kev_aio_start(a, j);
	}
}

/*
 * Map the pages of the next quantum in one call rather than one fault each inside send()
 * (a third faster on loopback); a quantum at a time, so that a file not in the page cache
 * holds the engine for one quantum's reading, not the whole file's.
 */
static void kev_aio_prefault(const struct kev_aio_job *j)
{
#ifdef MADV_POPULATE_READ
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t from = (j->skip + j->sent) & ~(page - 1);
	__u64 left = j->count - j->sent;
	size_t to = j->skip + j->sent + (left < KEV_AIO_QUANTUM ? left : KEV_AIO_QUANTUM);

	madvise(j->map + from, to - from, MADV_POPULATE_READ); /* EFAULT past the end: send says */
#else
	(void)j;
#endif
}

enum kev_send_result { KEV_SEND_WAIT, KEV_SEND_MORE, KEV_SEND_OVER };

static enum kev_send_result kev_aio_send(struct kev_aio_job *j)
{
	size_t budget = KEV_AIO_QUANTUM;

	kev_aio_prefault(j);

	while (j->sent < j->count && budget) {
		__u64 left = j->count - j->sent;
		size_t len = left < budget ? (size_t)left : budget;
		ssize_t r = send(j->sock, j->map + j->skip + j->sent, len,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (r > 0) {
			j->sent += (size_t)r;
			budget -= (size_t)r;
		} else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return KEV_SEND_WAIT;
		} else if (r == 0 || errno != EINTR) {
			/* EFAULT: the file shrank under the mapping; stop at its end as sendfile. */
			j->err = r == 0 || errno == EFAULT ? 0 : -errno;
			return KEV_SEND_OVER;
		}
	}
	return j->sent < j->count ? KEV_SEND_MORE : KEV_SEND_OVER;
}

/* One turn for each transfer that may send: a quantum each, round robin. */
static void kev_aio_turns(struct kev_aio *a)
{
	struct kev_list turn;

	kev_list_init(&turn);
	kev_list_splice_tail(&a->runq, &turn);
	while (!kev_list_empty(&turn)) {
		struct kev_aio_job *j = kev_container_of(turn.next, struct kev_aio_job, run);

		kev_list_del(&j->run);
		switch (kev_aio_send(j)) {
		case KEV_SEND_MORE:
			kev_aio_runnable(a, j);
			break;
		case KEV_SEND_OVER:
			kev_aio_finish(a, j);
			break;
		case KEV_SEND_WAIT:
			break; /* EPOLLOUT brings it back */
		}
	}
}

static void *kev_aio_main(void *arg)
{
	struct epoll_event ev[KEV_AIO_BATCH];
	struct kev_aio *a = arg;
	struct kev_list fresh;

	kev_list_init(&fresh);
	for (;;) {
		int n = epoll_wait(a->ep, ev, KEV_AIO_BATCH, kev_list_empty(&a->runq) ? -1 : 0);
		bool mail = false;

		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr)
				kev_aio_runnable(a, ev[i].data.ptr);
			else
				mail = true;
		}
		if (mail && kev_aio_mail(a, &fresh))
			return NULL;
		kev_aio_start_new(a, &fresh);
		kev_aio_turns(a);
	}
}

/* ---- the queue's side (under q->lock) ---- */

static void kev_aio_complete(struct kev_queue *q, struct kev_aio_job *j)
{
	struct kev_interest *it = j->it;

	it->priv = NULL;
	if (j->err) {
		it->ret_flags |= KEVENT_RET_BROKEN;
		it->ret_data[0] = (__u32)j->sent; /* how far it got, for what it is worth */
		it->ret_data[1] = (__u32)j->err;
	} else {
		it->ret_data[0] = (__u32)j->sent;
		it->ret_data[1] = (__u32)(j->sent >> 32);
	}
	free(j);
	kev_fire(q, it, KEVENT_AIO_BIO);
}

/* done_fd was written: fire the interests of the finished transfers. */
static __u32 kev_aio_collect(struct kev_interest *chan, short revents)
{
	struct kev_aio *a = kev_container_of(chan, struct kev_aio, chan);
	struct kev_list done;

	(void)revents;
	kev_list_init(&done);
	kev_aio_drain(a->done_fd);
	pthread_mutex_lock(&a->lock);
	kev_list_splice_tail(&a->done, &done);
	pthread_mutex_unlock(&a->lock);
	/* The caller holds q->lock, which a cancellation needs too: these stay valid. */
	while (!kev_list_empty(&done)) {
		struct kev_aio_job *j = kev_container_of(done.next, struct kev_aio_job, link);

		kev_list_del(&j->link);
		kev_aio_complete(a->q, j);
	}
	return 0;
}

static const struct kev_source kev_aio_chan_source = {
	.classify = kev_aio_collect,
};

static int kev_aio_thread(struct kev_aio *a)
{
	sigset_t all, old;
	int err;

	/* Signals are for the application's threads (and KEVENT_SIGNAL), not the engine's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&a->thread, NULL, kev_aio_main, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -err;
}

static int kev_aio_fds(struct kev_aio *a)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	a->ep = epoll_create1(EPOLL_CLOEXEC);
	a->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	a->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (a->ep < 0 || a->wake < 0 || a->done_fd < 0)
		return -errno;
	return epoll_ctl(a->ep, EPOLL_CTL_ADD, a->wake, &ev) ? -errno : 0;
}

static void kev_aio_free_list(struct kev_aio *a, struct kev_list *l)
{
	while (!kev_list_empty(l)) {
		struct kev_aio_job *j = kev_container_of(l->next, struct kev_aio_job, link);

		kev_list_del(&j->link);
		kev_aio_job_free(a, j);
	}
}

static void kev_aio_destroy(struct kev_aio *a)
{
	kev_aio_free_list(a, &a->inbox);
	kev_aio_free_list(a, &a->active);
	kev_aio_free_list(a, &a->done);
	kev_aio_free_list(a, &a->cancelled);
	if (a->chan.fdn)
		kev_fdwatch_del(a->q, &a->chan);
	if (a->ep >= 0)
		close(a->ep);
	if (a->wake >= 0)
		close(a->wake);
	if (a->done_fd >= 0)
		close(a->done_fd);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* Close the descriptors of every transfer on list l (fork() child: see kev_aio_forget()). */
static void kev_aio_forget_list(struct kev_list *l)
{
	for (struct kev_list *n = l->next; n != l; n = n->next)
		close(kev_container_of(n, struct kev_aio_job, link)->sock);
}

/*
 * fork() child (fork.c): the engine thread did not come along. Its descriptors, and the
 * duplicates of the sockets in transfer, are closed so that the child does not keep the
 * parent's connections open; the memory is left as the fork found it.
 */
void kev_aio_forget(struct kev_aio *a)
{
	close(a->ep);
	close(a->wake);
	close(a->done_fd);
	kev_aio_forget_list(&a->inbox);
	kev_aio_forget_list(&a->active);
	kev_aio_forget_list(&a->cancelled);
}

/* The queue's engine, started by its first transfer. */
static struct kev_aio *kev_aio_engine(struct kev_queue *q, int *err)
{
	struct kev_aio *a = q->aio;

	if (a)
		return a;
	a = calloc(1, sizeof(*a));
	if (!a) {
		*err = -ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&a->lock, NULL);
	kev_list_init(&a->inbox);
	kev_list_init(&a->active);
	kev_list_init(&a->done);
	kev_list_init(&a->cancelled);
	kev_list_init(&a->runq);
	kev_list_init(&a->chan.link);
	a->q = q;
	a->chan.src = &kev_aio_chan_source;
	a->chan.slot = KEV_NO_SLOT;
	a->chan.fd = -1;
	a->ep = a->wake = a->done_fd = -1;
	*err = kev_aio_fds(a);
	a->chan.fd = a->done_fd;
	if (!*err)
		*err = kev_fdwatch_add(q, &a->chan, EPOLLIN);
	if (!*err)
		*err = kev_aio_thread(a);
	if (*err) {
		kev_aio_destroy(a);
		return NULL;
	}
	q->aio = a;
	return a;
}

static int kev_aio_add(struct kev_queue *q, struct kev_interest *it)
{
	struct kev_aio_job *j = kev_aio_submitting;
	struct kev_aio *a;
	int err;

	/* Only aio_sendfile() makes these: an ADD from the application has no transfer. */
	if (!j || it->uk.id.raw_u64 != j->cookie)
		return -EINVAL;
	a = kev_aio_engine(q, &err);
	if (!a)
		return err;
	kev_aio_submitting = NULL; /* the interest owns it now */
	j->it = it;
	it->priv = j;
	pthread_mutex_lock(&a->lock);
	kev_list_add_tail(&j->link, &a->inbox);
	pthread_mutex_unlock(&a->lock);
	kev_aio_signal(a->wake);
	return 0;
}

/* REMOVE, the queue's close, or the delivery of a finished transfer. */
static void kev_aio_del(struct kev_queue *q, struct kev_interest *it)
{
	struct kev_aio_job *j = it->priv;
	struct kev_aio *a = q->aio;
	bool done;

	if (!j)
		return; /* reported: the job has gone already */
	it->priv = NULL;
	pthread_mutex_lock(&a->lock);
	j->it = NULL;
	kev_list_del(&j->link);
	done = j->state == KEV_JOB_DONE;
	if (!done) {
		j->state = KEV_JOB_CANCEL;
		kev_list_add_tail(&j->link, &a->cancelled);
	}
	pthread_mutex_unlock(&a->lock);
	if (done)
		free(j); /* the engine released its socket and mapping when it finished */
	else
		kev_aio_signal(a->wake);
}

static int kev_aio_modify(struct kev_queue *q, struct kev_interest *it)
{
	(void)q;
	(void)it;
	return -EINVAL; /* a transfer is reported once; there is nothing to change */
}

/* The queue is going away; its interests, so its transfers, were cancelled already. */
static void kev_aio_release(struct kev_queue *q)
{
	struct kev_aio *a = q->aio;

	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_mutex_unlock(&a->lock);
	kev_aio_signal(a->wake);
	pthread_join(a->thread, NULL);
	kev_aio_destroy(a);
	q->aio = NULL;
}

const struct kev_source kev_aio_source = {
	.events = KEVENT_AIO_BIO,
	.add = kev_aio_add,
	.del = kev_aio_del,
	.modify = kev_aio_modify,
	.release = kev_aio_release,
};

/* ---- aio_sendfile() ---- */

/* A connected stream socket; -EBADF closed, -ENOTSOCK not a socket. */
static int kev_aio_check_sock(int fd)
{
	int type;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len))
		return -errno;
	return type == SOCK_STREAM ? 0 : -EINVAL;
}

/* A regular file open for reading; count is clamped to its end. */
static int kev_aio_check_file(int fd, off_t offset, size_t *count)
{
	struct stat st;
	int fl;

	if (fstat(fd, &st))
		return -errno;
	fl = fcntl(fd, F_GETFL);
	if ((fl & O_PATH) || (fl & O_ACCMODE) == O_WRONLY)
		return -EBADF;
	if (!S_ISREG(st.st_mode) || offset < 0 || !*count || offset > st.st_size)
		return -EINVAL;
	if (*count > (__u64)(st.st_size - offset))
		*count = (size_t)(st.st_size - offset);
	return 0;
}

static int kev_aio_map(struct kev_aio_job *j, int in_fd, off_t offset)
{
	off_t base = offset & ~((off_t)sysconf(_SC_PAGESIZE) - 1);
	void *m;

	if (!j->count)
		return 0; /* at the end of the file: nothing to map, nothing to send */
	j->skip = (size_t)(offset - base);
	j->map_len = j->skip + j->count;
	m = mmap(NULL, j->map_len, PROT_READ, MAP_SHARED, in_fd, base);
	if (m == MAP_FAILED)
		return errno == ENODEV ? -EINVAL : -errno;
	j->map = m;
	return 0;
}

static int kev_aio_job_new(struct kev_aio_job **out, int sock_fd, int in_fd, off_t offset,
			   size_t count)
{
	struct kev_aio_job *j;
	int err = kev_aio_check_sock(sock_fd);

	if (!err)
		err = kev_aio_check_file(in_fd, offset, &count);
	if (err)
		return err;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	kev_list_init(&j->link);
	kev_list_init(&j->run);
	j->count = count;
	j->sock = fcntl(sock_fd, F_DUPFD_CLOEXEC, 0);
	err = j->sock < 0 ? -errno : kev_aio_map(j, in_fd, offset);
	if (err) {
		if (j->sock >= 0)
			close(j->sock);
		free(j);
		return err;
	}
	j->cookie = __atomic_add_fetch(&kev_aio_cookies, 1, __ATOMIC_RELAXED) & LONG_MAX;
	*out = j;
	return 0;
}

KEV_API long aio_sendfile(int kevent_fd, int sock_fd, int in_fd, off_t offset, size_t count)
{
	struct ukevent uk = { .type = KEVENT_AIO, .event = KEVENT_AIO_BIO };
	struct kev_aio_job *j;
	struct kev_queue *q;
	int err, r;

	/* First, before a duplicate could take the number of a closed kevent_fd. */
	q = kev_queue_get(kevent_fd, &err);
	if (!q)
		return kev_err(err);
	kev_queue_put(q);
	err = kev_aio_job_new(&j, sock_fd, in_fd, offset, count);
	if (err)
		return kev_err(err);
	/* From the ADD on, the job may finish and be freed at any time: keep the cookie. */
	uk.id.raw_u64 = uk.user_u64 = j->cookie;
	uk.req_flags = KEVENT_REQ_ONESHOT;
	kev_aio_submitting = j;
	r = kevent_ctl(kevent_fd, KEVENT_CTL_ADD, 1, &uk);
	if (kev_aio_submitting) {
		/* Never reached the queue (not a queue, closed): nothing else knows the job. */
		kev_aio_submitting = NULL;
		kev_aio_job_free(NULL, j); /* not watched yet: no engine to tell */
	}
	if (r < 0)
		return kev_err(r); /* errno again: the clean-up may have changed it */
	if (uk.ret_flags & KEVENT_RET_BROKEN)
		return kev_err((int)uk.ret_data[1]);
	return (long)uk.id.raw_u64;
}
