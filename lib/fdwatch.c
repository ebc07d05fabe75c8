// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Every interest on a descriptor (sockets, KEVENT_POLL, KEVENT_PIPE, ...) is on the
 * queue's node for that number. The node is how the queue finds what it still has on a
 * number that was closed without REMOVE and now names another object (those interests
 * go), and it carries the epoll registrations for what the kernel gives no tracepoint for
 * (a socket's send space, an AF_UNIX peer's close, polled descriptors): the interests of a
 * node share one edge-triggered registration; epoll supplies edges, the core supplies ET
 * and ONESHOT like for every other source.
 *
 * epoll data carries (generation, fd) rather than a pointer: a thread that slept in
 * epoll_wait may bring back an event for a node another thread has freed since.
 */
#include <errno.h>
#include <linux/kcmp.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

struct kev_fdnode {
	struct kev_hnode hnode;
	int fd;
	__u32 gen;
	__u32 events; /* registered in q->fd now, edge-triggered */
	struct kev_interest *head;
};

static bool kev_fdnode_match(const struct kev_hnode *n, const void *key)
{
	return kev_container_of(n, struct kev_fdnode, hnode)->fd == *(const int *)key;
}

static struct kev_fdnode *kev_fdnode_find(struct kev_queue *q, int fd)
{
	struct kev_hnode *n = kev_htab_find(&q->fdnodes, kev_hash64(fd), kev_fdnode_match, &fd);

	return n ? kev_container_of(n, struct kev_fdnode, hnode) : NULL;
}

static void kev_fdnode_free(struct kev_queue *q, struct kev_fdnode *n)
{
	if (n->events) {
		epoll_ctl(q->fd, EPOLL_CTL_DEL, n->fd, NULL);
		q->fdregs--;
	}
	kev_htab_remove(&q->fdnodes, &n->hnode);
	free(n);
}

static int kev_fdnode_ctl(struct kev_queue *q, struct kev_fdnode *n, int op, __u32 want)
{
	struct epoll_event ev = {
		.events = want | EPOLLET,
		.data.u64 = (__u64)n->gen << 32 | (__u32)n->fd,
	};

	return epoll_ctl(q->fd, op, n->fd, &ev) ? -errno : 0;
}

/*
 * Make the node's registration say `want` (0: none). epoll knows a registration by (file,
 * number): one made before the number was closed lives on while another descriptor holds
 * the file, so the same file back on the number is EEXIST (and a registration whose file
 * went is ENOENT): both mean "make it say `want`". EPOLLEXCLUSIVE is given at EPOLL_CTL_ADD
 * only: a registration that has it or gets it is made anew, and the new one reports what
 * is ready already (as every ADD does): no edge is lost in between.
 */
static int kev_fdnode_register(struct kev_queue *q, struct kev_fdnode *n, __u32 want)
{
	bool anew = (want | n->events) & EPOLLEXCLUSIVE;
	int err = 0;

	if (want == n->events)
		return 0;
	if (!want) {
		epoll_ctl(q->fd, EPOLL_CTL_DEL, n->fd, NULL);
	} else if (n->events && !anew) {
		err = kev_fdnode_ctl(q, n, EPOLL_CTL_MOD, want);
		if (err == -ENOENT)
			err = kev_fdnode_ctl(q, n, EPOLL_CTL_ADD, want);
	} else {
		if (n->events)
			epoll_ctl(q->fd, EPOLL_CTL_DEL, n->fd, NULL);
		err = kev_fdnode_ctl(q, n, EPOLL_CTL_ADD, want);
		if (err == -EEXIST) {
			epoll_ctl(q->fd, EPOLL_CTL_DEL, n->fd, NULL);
			err = kev_fdnode_ctl(q, n, EPOLL_CTL_ADD, want);
		}
	}
	if (!err) {
		q->fdregs += (int)!!want - (int)!!n->events;
		n->events = want;
	}
	return err;
}

/*
 * Register the union of what the node's interests need; free the node once it has none.
 * EPOLLEXCLUSIVE (one queue woken among those asleep, K15) only when every interest with a
 * registration asks for it, and then without what it does not allow (EPOLLRDHUP).
 */
static int kev_fdnode_sync(struct kev_queue *q, struct kev_fdnode *n)
{
	__u32 edge = 0, excl = EPOLLEXCLUSIVE;
	struct kev_interest *it;

	if (!n->head) {
		kev_fdnode_free(q, n);
		return 0;
	}
	for (it = n->head; it; it = it->fd_next) {
		edge |= it->fd_events & ~EPOLLEXCLUSIVE;
		if (it->fd_events)
			excl &= it->fd_events;
	}
	if (edge && excl)
		edge = (edge & ~EPOLLRDHUP) | EPOLLEXCLUSIVE;
	return kev_fdnode_register(q, n, edge);
}

static void kev_fdnode_unlink(struct kev_interest *it)
{
	struct kev_interest **p;

	for (p = &it->fdn->head; *p; p = &(*p)->fd_next) {
		if (*p == it) {
			*p = it->fd_next;
			break;
		}
	}
	it->fdn = NULL;
	it->fd_next = NULL;
}

static __u32 kev_fdnode_newgen(struct kev_queue *q)
{
	q->fdnode_gen++;
	return q->fdnode_gen ? q->fdnode_gen : ++q->fdnode_gen;
}

/*
 * Does fd still name a file this queue's epoll set watches under that number? The kernel
 * drops a registration when its file is closed, and a reused number names another file.
 * kcmp(KCMP_EPOLL_TFD) compares without side effects (EPOLL_CTL_MOD would re-arm the
 * edge). Without kcmp in the kernel the answer is yes, as it was before this check.
 */
static bool kev_fd_in_epoll(int epfd, int fd)
{
	struct kcmp_epoll_slot slot = { .efd = (__u32)epfd, .tfd = (__u32)fd };
	pid_t pid = getpid();

	for (;; slot.toff++) {
		long r = syscall(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, fd, (unsigned long)&slot);

		if (!r)
			return true;
		if (r < 0) /* ENOENT: no other registration; EBADF: closed; else cannot tell */
			return errno != ENOENT && errno != EBADF;
		/* Another file is registered under this number (still open elsewhere): next. */
	}
}

/* The node's descriptor still names the file its registration was made for. */
static bool kev_fdnode_alive(struct kev_queue *q, const struct kev_fdnode *n)
{
	return !n->events || kev_fd_in_epoll(q->fd, n->fd);
}

/* The interest's descriptor still names the file its registration was made for. */
bool kev_fdwatch_named(struct kev_queue *q, const struct kev_interest *it)
{
	return it->fdn && kev_fdnode_alive(q, it->fdn);
}

/*
 * The node's registrations name a file that has left the number (closed without a REMOVE,
 * and the number reused): the interests that were registered with it watch a file that is
 * gone, and go (K17). A new generation mutes epoll events still queued for the old file.
 * Freeing an interest may free the node: it is looked up again each time.
 */
static void kev_fdnode_drop_stale(struct kev_queue *q, struct kev_fdnode *n)
{
	int fd = n->fd;

	q->fdregs--;
	n->events = 0;
	n->gen = kev_fdnode_newgen(q);
	while ((n = kev_fdnode_find(q, fd))) {
		struct kev_interest *it = n->head;

		while (it && !it->fd_events)
			it = it->fd_next;
		if (!it)
			return;
		kev_interest_free(q, it);
	}
}

/* Put the interest on its descriptor's node, with its edge-triggered events. */
int kev_fdwatch_add(struct kev_queue *q, struct kev_interest *it, __u32 epoll_events)
{
	struct kev_fdnode *n = kev_fdnode_find(q, it->fd);
	int err;

	if (n && n->events && !kev_fdnode_alive(q, n)) {
		kev_fdnode_drop_stale(q, n);
		n = kev_fdnode_find(q, it->fd);
	}
	if (!n) {
		n = calloc(1, sizeof(*n));
		if (!n)
			return -ENOMEM;
		n->fd = it->fd;
		n->gen = kev_fdnode_newgen(q);
		n->hnode.hash = kev_hash64(it->fd);
		if (kev_htab_insert(&q->fdnodes, &n->hnode)) {
			free(n);
			return -ENOMEM;
		}
	}
	it->fd_events = epoll_events;
	it->fdn = n;
	it->fd_next = n->head;
	n->head = it;
	err = kev_fdnode_sync(q, n);
	if (err) {
		kev_fdnode_unlink(it);
		kev_fdnode_sync(q, n);
	}
	return err;
}

void kev_fdwatch_del(struct kev_queue *q, struct kev_interest *it)
{
	struct kev_fdnode *n = it->fdn;

	if (!n)
		return;
	kev_fdnode_unlink(it);
	kev_fdnode_sync(q, n);
}

int kev_fdwatch_set(struct kev_queue *q, struct kev_interest *it, __u32 epoll_events)
{
	if (!it->fdn)
		return epoll_events ? kev_fdwatch_add(q, it, epoll_events) : 0;
	it->fd_events = epoll_events; /* 0 too: it stays on its number's node (reuse, sweep) */
	return kev_fdnode_sync(q, it->fdn);
}

/* Up to max interests of source src on it's node, other than it. */
unsigned int kev_fdwatch_others(struct kev_queue *q, const struct kev_interest *it,
				const struct kev_source *src, struct kev_interest **out,
				unsigned int max)
{
	unsigned int n = 0;

	(void)q;
	for (struct kev_interest *o = it->fdn ? it->fdn->head : NULL; o && n < max; o = o->fd_next)
		if (o != it && o->src == src)
			out[n++] = o;
	return n;
}

void kev_fdwatch_dispatch(struct kev_queue *q, __u64 tag, __u32 revents)
{
	struct kev_fdnode *n = kev_fdnode_find(q, (int)(__u32)tag);
	struct kev_interest *it, *next;
	__u32 bits;

	if (!n || n->gen != (__u32)(tag >> 32))
		return; /* freed since epoll_wait returned it */
	for (it = n->head; it; it = next) {
		/* Only what this interest registered, plus errors and hang-ups. */
		__u32 mask = it->fd_events;

		next = it->fd_next;
		if (!mask)
			continue;
		bits = it->src->classify(it, (short)(revents & (mask | EPOLLERR | EPOLLHUP)));
		/* epoll knows the file, not the number: is the number still the file's? */
		if (bits && it->src->kernel_checks_fd)
			bits |= KEV_PEND_VERIFY;
		kev_fire(q, it, bits);
	}
}

/*
 * The sweep (K17): an interest whose descriptor was closed without REMOVE, and whose number
 * nothing has taken again, is found here. Each call looks at a few numbers, at most every
 * KEV_SWEEP_NS: a queue lets go of what closed descriptors held within a bounded time, at
 * a bounded cost (a system call per interest looked at).
 */
#define KEV_SWEEP_NS	  100000000ULL
#define KEV_SWEEP_NODES	  16   /* numbers looked at per sweep */
#define KEV_SWEEP_BUCKETS 4096 /* empty buckets cost a load each */
#define KEV_SWEEP_MAX	  16   /* interests of one number looked at per sweep */

static void kev_fdnode_sweep(struct kev_hnode *h, void *arg)
{
	struct kev_fdnode *n = kev_container_of(h, struct kev_fdnode, hnode);
	struct kev_interest *gone[KEV_SWEEP_MAX], *it;
	unsigned int ngone = 0, seen = 0;

	for (it = n->head; it && seen < KEV_SWEEP_MAX; it = it->fd_next, seen++)
		if (it->src->named && !it->src->named(it))
			gone[ngone++] = it;
	/* Freeing may free the node: gone[] holds interests, each freed once. */
	for (unsigned int i = 0; i < ngone; i++)
		kev_interest_free(arg, gone[i]);
}

void kev_fdwatch_sweep(struct kev_queue *q)
{
	__u64 now;

	if (!q->fdnodes.count)
		return;
	now = kev_clock_ns(CLOCK_MONOTONIC_COARSE); /* a tick is precise enough, and cheaper */
	if (now < q->sweep_at)
		return;
	q->sweep_at = now + KEV_SWEEP_NS;
	kev_htab_scan(&q->fdnodes, &q->sweep_cursor, KEV_SWEEP_BUCKETS, KEV_SWEEP_NODES,
		      kev_fdnode_sweep, q);
}

static void kev_fdnode_free_node(struct kev_hnode *h, void *q)
{
	kev_fdnode_free(q, kev_container_of(h, struct kev_fdnode, hnode));
}

void kev_fdwatch_free_all(struct kev_queue *q)
{
	if (q->fdnodes.buckets)
		kev_htab_each(&q->fdnodes, kev_fdnode_free_node, q);
}
