// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * KEVENT_POLL (K21): any descriptor epoll accepts (pipe, FIFO, eventfd, timerfd, signalfd,
 * inotify, tty, socket, another queue). event is a POLL* mask; ret_data[0] = the POLL* bits
 * seen. The queue's epoll set gives the edges (fdwatch.c) and poll() the level, so level,
 * ET, ONESHOT (K13) and LAST_CHECK (K14) work as for every source.
 *
 * Like poll(), an error or a hang-up counts even when the mask does not ask for it: when
 * none of the requested bits is ready, it is delivered once as BROKEN and the interest
 * goes (a hung-up pipe would otherwise be ready, unasked, forever).
 *
 * A descriptor closed behind our back: epoll drops its registration, and named() sees that
 * the number no longer names the registered file (kcmp, fdwatch.c), even when it has been
 * reused since. A dev/ino check would not do: every eventfd, timerfd or signalfd shares
 * one anonymous inode. Its interests then go silently at delivery.
 */
#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>

#include "internal.h"

/* POLLNVAL is not asked for: a closed descriptor's interests go silently. */
#define KEV_POLL_EVENTS                                                                     \
	(POLLIN | POLLPRI | POLLOUT | POLLERR | POLLHUP | POLLRDNORM | POLLRDBAND | POLLWRNORM | \
	 POLLWRBAND | POLLMSG | POLLRDHUP)
/* What poll() and epoll report whether asked or not. */
#define KEV_POLL_ALWAYS (POLLERR | POLLHUP)

/* Shared with pipe.c: watch it->uk.id.raw[0] in the queue's epoll set. */
int kev_pollfd_add(struct kev_queue *q, struct kev_interest *it, __u32 epoll_events)
{
	int err;

	it->fd = (int)it->uk.id.raw[0];
	if (it->fd < 0)
		return -EBADF;
	it->priv = q;
	err = kev_fdwatch_add(q, it, epoll_events);
	/* Regular files and directories (EPERM), the queue itself (EINVAL), a loop (ELOOP). */
	return err == -EPERM || err == -ELOOP ? -EINVAL : err;
}

void kev_pollfd_del(struct kev_queue *q, struct kev_interest *it)
{
	kev_fdwatch_del(q, it);
}

bool kev_pollfd_named(const struct kev_interest *it)
{
	return kev_fdwatch_named(it->priv, it);
}

static int kev_poll_add(struct kev_queue *q, struct kev_interest *it)
{
	return kev_pollfd_add(q, it, it->uk.event | KEV_POLL_ALWAYS);
}

static int kev_poll_modify(struct kev_queue *q, struct kev_interest *it)
{
	return kev_fdwatch_set(q, it, it->uk.event | KEV_POLL_ALWAYS);
}

static short kev_poll_pollmask(const struct kev_interest *it)
{
	return (short)it->uk.event;
}

static __u32 kev_poll_classify(struct kev_interest *it, short revents)
{
	__u32 seen = (__u16)revents & (it->uk.event | KEV_POLL_ALWAYS);
	__u32 bits = seen & it->uk.event;

	if (revents & POLLNVAL)
		return 0; /* closed: named() drops it at delivery */
	it->ret_data[0] = seen;
	if (!bits && seen) {
		it->ret_flags |= KEVENT_RET_BROKEN;
		it->ret_data[1] = (__u32)(seen & POLLERR ? -EIO : -EPIPE);
	}
	return bits;
}

const struct kev_source kev_poll_source = {
	.events = KEV_POLL_EVENTS,
	.add = kev_poll_add,
	.del = kev_pollfd_del,
	.modify = kev_poll_modify,
	.pollmask = kev_poll_pollmask,
	.classify = kev_poll_classify,
	.named = kev_pollfd_named,
};
