// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * KEVENT_SOCKET on plain system calls (K26): the fallback when the socket family's BPF
 * programs cannot load. Each interest is an edge-triggered registration in the queue's
 * epoll set, on its descriptor's node (fdwatch.c), which the kernel drops with the
 * socket's last close; what the readiness means (K17) is socket.c's, the same on both
 * paths. What the BPF side learns without a system call costs one here: the socket's
 * family at ADD, a poll() for the level state after a delivery (K13).
 *
 * One difference: a socket's pending error cannot be read without clearing it (SO_ERROR
 * would take it from the application, K17), so BROKEN carries -EIO for an error and -EPIPE
 * for a hang-up, and the socket's own error stays in SO_ERROR.
 */
#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "internal.h"

/*
 * The edges the interest needs: readiness to read (an end of file is one) and to write.
 * Without WAKEUP_ALL, EPOLLEXCLUSIVE: of the queues asleep on the socket, one is woken and
 * gets the event (K15); a queue that is not asleep when it comes gets it too, as epoll
 * does.
 */
static __u32 kev_sockfd_events(const struct kev_interest *it)
{
	__u32 ev = 0;

	if (it->uk.event & (KEVENT_SOCKET_RECV | KEVENT_SOCKET_ACCEPT))
		ev |= EPOLLIN;
	if (it->uk.event & KEVENT_SOCKET_SEND)
		ev |= EPOLLOUT;
	if (!(it->uk.req_flags & KEVENT_REQ_WAKEUP_ALL))
		ev |= EPOLLEXCLUSIVE;
	return ev;
}

static int kev_sockfd_opt(int fd, int opt, int *val)
{
	socklen_t len = sizeof(*val);

	return getsockopt(fd, SOL_SOCKET, opt, val, &len) ? -errno : 0;
}

/*
 * Whether the socket listens matters to an interest that asks for ACCEPT (RECV on a
 * listener is RECV either way): only then is it asked.
 */
static int kev_sockfd_listening(struct kev_interest *it)
{
	int listening;
	int err = kev_sockfd_opt(it->fd, SO_ACCEPTCONN, &listening);

	if (!err)
		it->listening = listening;
	return err;
}

/*
 * One system call besides epoll's: SO_DOMAIN says at once whether the number is open
 * (EBADF), a socket (ENOTSOCK) and of a family K17 covers. Who the number names from
 * then on is the epoll registration's file (kev_pollfd_named()).
 */
static int kev_sockfd_add(struct kev_queue *q, struct kev_interest *it)
{
	int domain, err;

	it->fd = (int)it->uk.id.raw[0];
	if (it->fd < 0)
		return -EBADF;
	err = kev_sockfd_opt(it->fd, SO_DOMAIN, &domain);
	if (err)
		return err;
	if (domain != AF_INET && domain != AF_INET6 && domain != AF_UNIX)
		return -EINVAL;
	it->domain = domain;
	if (it->uk.event & KEVENT_SOCKET_ACCEPT) {
		err = kev_sockfd_listening(it);
		if (err)
			return err;
	}
	it->priv = q;
	return kev_fdwatch_add(q, it, kev_sockfd_events(it));
}

static void kev_sockfd_del(struct kev_queue *q, struct kev_interest *it)
{
	kev_fdwatch_del(q, it);
}

static int kev_sockfd_modify(struct kev_queue *q, struct kev_interest *it)
{
	if ((it->uk.event & KEVENT_SOCKET_ACCEPT) && !it->listening) {
		int err = kev_sockfd_listening(it);

		if (err)
			return err;
	}
	return kev_fdwatch_set(q, it, kev_sockfd_events(it));
}

const struct kev_source kev_socket_sys_source = {
	.events = KEVENT_SOCKET_RECV | KEVENT_SOCKET_ACCEPT | KEVENT_SOCKET_SEND,
	.add = kev_sockfd_add,
	.del = kev_sockfd_del,
	.modify = kev_sockfd_modify,
	.pollmask = kev_sock_pollmask,
	.classify = kev_sock_classify,
	.named = kev_pollfd_named,
};
