// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * KEVENT_PIPE (K21): a pipe or FIFO end with KEVENT_SOCKET_RECV (data to read) and
 * KEVENT_SOCKET_SEND (room to write). It is a KEVENT_POLL watch (poll.c) that speaks in
 * socket events, plus the end of file the historic implementation lost: the write end
 * closing while the pipe is empty reports RECV with BROKEN (-EPIPE) once; so does SEND
 * when the read end goes. Data still in the pipe is RECV first, in level mode until read.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include "internal.h"

#define KEV_PIPE_EVENTS (KEVENT_SOCKET_RECV | KEVENT_SOCKET_SEND)

/* A pipe or FIFO, open in the direction each requested event needs. */
static int kev_pipe_check(int fd, __u32 event)
{
	struct stat st;
	int mode;

	if (fd < 0 || fstat(fd, &st))
		return -EBADF;
	if (!S_ISFIFO(st.st_mode))
		return -EINVAL;
	mode = fcntl(fd, F_GETFL) & O_ACCMODE;
	if ((event & KEVENT_SOCKET_RECV) && mode == O_WRONLY)
		return -EINVAL;
	if ((event & KEVENT_SOCKET_SEND) && mode == O_RDONLY)
		return -EINVAL;
	return 0;
}

static __u32 kev_pipe_epoll_events(const struct kev_interest *it)
{
	return (it->uk.event & KEVENT_SOCKET_RECV ? EPOLLIN : 0) |
	       (it->uk.event & KEVENT_SOCKET_SEND ? EPOLLOUT : 0);
}

static int kev_pipe_add(struct kev_queue *q, struct kev_interest *it)
{
	int err = kev_pipe_check((int)it->uk.id.raw[0], it->uk.event);

	return err ? err : kev_pollfd_add(q, it, kev_pipe_epoll_events(it));
}

static int kev_pipe_modify(struct kev_queue *q, struct kev_interest *it)
{
	int err = kev_pipe_check(it->fd, it->uk.event);

	return err ? err : kev_fdwatch_set(q, it, kev_pipe_epoll_events(it));
}

static short kev_pipe_pollmask(const struct kev_interest *it)
{
	return (short)kev_pipe_epoll_events(it);
}

static __u32 kev_pipe_classify(struct kev_interest *it, short revents)
{
	__u32 bits = 0;

	if (revents & POLLNVAL)
		return 0; /* closed: named() drops it at delivery */
	if (revents & POLLIN)
		bits |= KEVENT_SOCKET_RECV;
	else if (revents & POLLHUP)
		bits |= KEVENT_SOCKET_RECV; /* end of file: every writer has gone */
	if (revents & (POLLOUT | POLLERR))
		bits |= KEVENT_SOCKET_SEND; /* POLLERR: every reader has gone */
	if ((revents & (POLLIN | POLLHUP)) == POLLHUP || (revents & POLLERR)) {
		it->ret_flags |= KEVENT_RET_BROKEN;
		it->ret_data[1] = (__u32)-EPIPE;
	}
	return bits & it->uk.event;
}

const struct kev_source kev_pipe_source = {
	.events = KEV_PIPE_EVENTS,
	.add = kev_pipe_add,
	.del = kev_pollfd_del,
	.modify = kev_pipe_modify,
	.pollmask = kev_pipe_pollmask,
	.classify = kev_pipe_classify,
	.named = kev_pollfd_named,
};
