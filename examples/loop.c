// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * loop: the smallest event loop worth porting onto libkevent, as libevent's or Redis's
 * backends would drive it: a handler per descriptor, callbacks run between waits, and the
 * points a port must get right (libkevent(7), "Putting libkevent under an event loop"):
 *
 * - every ADD sets KEVENT_REQ_ALWAYS_QUEUE, so an already-ready descriptor is registered
 *   (and queued) rather than handed back as DONE (K9);
 * - SEND interest is switched on and off with MODIFY, never REMOVE + ADD;
 * - an event with KEVENT_RET_BROKEN is the interest's last;
 * - connections are closed without REMOVE: nothing is delivered for them afterwards (K17).
 *
 * It serves a TCP echo on 127.0.0.1 to CLIENTS clients driven by the same loop, checks every
 * echo, and exits 0 once each client got ROUNDS echoes, non-zero on any error. The suite
 * runs it (tests/examples.c).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kevent.h"

#define CLIENTS 20
#define ROUNDS	50
#define MAXFD	1024

struct loop;
struct handler;
typedef void (*callback)(struct loop *l, struct handler *h, const struct ukevent *ev);

/* One descriptor's handler; its address is the ptr of the descriptor's interest. */
struct handler {
	int fd;
	callback on_event;
	unsigned int rounds; /* clients: echoes received */
	char pending;	     /* servers: the byte to echo back, 0 when none */
};

struct loop {
	int q;
	int done; /* clients that finished */
	struct handler h[MAXFD];
};

static void die(const char *what, int err)
{
	fprintf(stderr, "loop: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

/* (Re)register fd with event bits: ADD the first time, MODIFY afterwards. */
static void watch(struct loop *l, int fd, unsigned int cmd, __u32 event, callback cb)
{
	struct ukevent uk = { .type = KEVENT_SOCKET, .event = event };
	struct handler *h = &l->h[fd];

	if (fd >= MAXFD)
		die("descriptor out of range", EMFILE);
	if (cmd == KEVENT_CTL_ADD)
		*h = (struct handler){ .fd = fd, .on_event = cb };
	uk.id.raw[0] = (__u32)fd;
	uk.req_flags = KEVENT_REQ_ALWAYS_QUEUE;
	uk.ptr = h;
	if (kevent_ctl(l->q, cmd, 1, &uk) != 1 || (uk.ret_flags & KEVENT_RET_BROKEN))
		die("kevent_ctl", (int)uk.ret_data[1]);
}

/* Server side of a connection: read a byte, then write it back when SEND is ready. */
static void on_conn(struct loop *l, struct handler *h, const struct ukevent *ev)
{
	if (ev->ret_flags & KEVENT_RET_BROKEN) {
		close(h->fd); /* the interest has gone already */
		return;
	}
	if ((ev->event & KEVENT_SOCKET_RECV) && !h->pending) {
		ssize_t n = recv(h->fd, &h->pending, 1, MSG_DONTWAIT);

		if (n == 0) {
			close(h->fd); /* no REMOVE: closing is enough (K17) */
			return;
		}
		if (n == 1)
			watch(l, h->fd, KEVENT_CTL_MODIFY, KEVENT_SOCKET_RECV | KEVENT_SOCKET_SEND,
			      NULL);
	}
	if ((ev->event & KEVENT_SOCKET_SEND) && h->pending &&
	    send(h->fd, &h->pending, 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1) {
		h->pending = 0;
		watch(l, h->fd, KEVENT_CTL_MODIFY, KEVENT_SOCKET_RECV, NULL);
	}
}

static void on_listener(struct loop *l, struct handler *h, const struct ukevent *ev)
{
	int c;

	(void)ev;
	while ((c = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
		watch(l, c, KEVENT_CTL_ADD, KEVENT_SOCKET_RECV, on_conn);
}

/* Client side: send one byte, expect it back, ROUNDS times, then hang up. */
static void on_client(struct loop *l, struct handler *h, const struct ukevent *ev)
{
	char c;

	if (ev->ret_flags & KEVENT_RET_BROKEN)
		die("client connection broke", (int)ev->ret_data[1]);
	if (recv(h->fd, &c, 1, MSG_DONTWAIT) != 1)
		return;
	if (c != (char)('a' + h->rounds % 26))
		die("wrong echo", EPROTO);
	if (++h->rounds == ROUNDS) {
		close(h->fd);
		l->done++;
		return;
	}
	c = (char)('a' + h->rounds % 26);
	if (send(h->fd, &c, 1, MSG_NOSIGNAL) != 1)
		die("send", errno);
}

static int listener(struct sockaddr_in *sa)
{
	socklen_t len = sizeof(*sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	*sa = (struct sockaddr_in){ .sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (fd < 0 || bind(fd, (struct sockaddr *)sa, len) || listen(fd, CLIENTS) ||
	    getsockname(fd, (struct sockaddr *)sa, &len))
		die("listener", errno);
	return fd;
}

static void client(struct loop *l, const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) ||
	    send(fd, "a", 1, MSG_NOSIGNAL) != 1)
		die("client", errno);
	watch(l, fd, KEVENT_CTL_ADD, KEVENT_SOCKET_RECV, on_client);
}

int main(void)
{
	static struct loop l;
	struct ukevent ev[64];
	struct sockaddr_in sa;
	int lfd, n, i;

	l.q = kevent_init(NULL, 0, 0);
	if (l.q < 0)
		die("kevent_init", l.q);
	lfd = listener(&sa);
	watch(&l, lfd, KEVENT_CTL_ADD, KEVENT_SOCKET_ACCEPT, on_listener);
	for (i = 0; i < CLIENTS; i++)
		client(&l, &sa);
	while (l.done < CLIENTS) {
		/* Collect a batch, then run its callbacks: the way event loops drive a backend. */
		n = kevent_get_events(l.q, 1, 64, (struct timespec){ 5, 0 }, ev, 0);
		if (n <= 0)
			die(n ? "kevent_get_events" : "no event for 5 s", n ? n : ETIMEDOUT);
		for (i = 0; i < n; i++) {
			struct handler *h = ev[i].ptr;

			h->on_event(&l, h, &ev[i]);
		}
	}
	close(lfd);
	kevent_close(l.q);
	printf("loop: %d clients, %d echoes each\n", CLIENTS, ROUNDS);
	return 0;
}
