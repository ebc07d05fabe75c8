// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * echo: a TCP echo server on 127.0.0.1 driven only by one kevent queue, with a built-in
 * client load and a periodic user notification. Runs as root, takes no arguments, stops by
 * itself after about four seconds and exits non-zero on any error.
 *
 *   main thread      the server: get_events, accept/recv/echo, ring commit
 *   CLIENTS threads  CLIENT_CONNS connections each, MSGS_PER_CONN messages per connection,
 *                    every echo checked byte for byte, then close and start again
 *   notifier thread  KEVENT_CTL_READY on a KEVENT_UNOTIFY interest every 100 ms
 *   kernel timer     a periodic KEVENT_TIMER of TICK_MS, counted by the server
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kevent.h"

#define RUN_SECONDS   4.0  /* how long the clients keep opening connections */
#define TICK_MS	      250  /* the period of the kernel timer */
#define RUN_LIMIT     10.0 /* give up: events were lost and someone waits forever */
#define CLIENTS	      4
#define CLIENT_CONNS  100 /* concurrent connections per client thread */
#define MSGS_PER_CONN 30
#define MSG_LEN	      32
#define RING_SIZE     4096
#define BATCH	      256
#define CONN_MAX      4096 /* connection table, indexed by descriptor */
#define NSEC_PER_MSEC 1000000L

/* One accepted connection; &conns[fd] is the ptr of its RECV interest. */
struct conn {
	int fd;
	bool open;
};

struct server {
	int kfd, lfd;
	struct kevent_ring *ring;
	struct conn listener; /* its address tags the ACCEPT interest */
	unsigned int open;    /* accepted and not yet closed */
	uint64_t accepted, echoed_bytes;
	uint64_t ev_all, ev_accept, ev_recv, ev_broken, ev_unotify, ev_stale;
	uint64_t ticks; /* timer expirations, merged ones included */
	uint64_t ring_placed, ring_committed, ring_bad, copy_failed;
};

struct client {
	pthread_t thread;
	unsigned int id;
	uint64_t serial; /* connections opened so far: makes every message unique */
	uint64_t conns, msgs, bytes;
};

struct notifier {
	pthread_t thread;
	int kfd;
	uint64_t sent;
};

static struct conn conns[CONN_MAX];
static uint16_t port;
static double deadline;
static atomic_int clients_running;
static atomic_bool stop_notifier;
static atomic_bool failed;
static char fail_reason[256];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Record the first failure; every thread checks `failed` and winds down. */
static void __attribute__((format(printf, 1, 2))) fail(const char *fmt, ...)
{
	va_list ap;

	if (atomic_exchange(&failed, true))
		return;
	va_start(ap, fmt);
	vsnprintf(fail_reason, sizeof(fail_reason), fmt, ap);
	va_end(ap);
}

/*
 * Apply one kevent_ctl command to one entry. Returns 0, or -errno from the call or from the
 * entry itself (BROKEN puts the negative errno in ret_data[1], K7).
 */
static int ctl_one(int kfd, unsigned int cmd, struct ukevent *ev)
{
	int ret;

	ev->ret_flags = 0;
	ret = kevent_ctl(kfd, cmd, 1, ev);
	if (ret < 0)
		return ret;
	if (ret != 1)
		return -EIO;
	if (ev->ret_flags & KEVENT_RET_BROKEN)
		return (int)ev->ret_data[1];
	return 0;
}

/*
 * A socket interest: edge triggered, so the server reads until EAGAIN; ALWAYS_QUEUE because
 * data may already wait on a fresh connection, and without it such an ADD would come back
 * DONE and not registered (K9). ptr tells the server which connection it is.
 */
static struct ukevent socket_entry(int fd, __u32 event, struct conn *c)
{
	return (struct ukevent){.id.raw[0] = fd,
				.type = KEVENT_SOCKET,
				.event = event,
				.req_flags = KEVENT_REQ_ET | KEVENT_REQ_ALWAYS_QUEUE,
				.ptr = c};
}

static int watch_socket(int kfd, int fd, __u32 event, struct conn *c)
{
	struct ukevent ev = socket_entry(fd, event, c);
	int ret = ctl_one(kfd, KEVENT_CTL_ADD, &ev);

	if (!ret && (ev.ret_flags & KEVENT_RET_DONE))
		return -EPROTO; /* ALWAYS_QUEUE ignored: the interest is not registered */
	return ret;
}

/* The notifier's interest: READY must name the same (type, id, user) as the ADD. */
static struct ukevent timer_entry(void)
{
	return (struct ukevent){.id.raw[1] = TICK_MS * 1000000u, .type = KEVENT_TIMER,
				.event = KEVENT_TIMER_FIRED};
}

static struct ukevent unotify_entry(void)
{
	return (struct ukevent){.id.raw[0] = 1, .type = KEVENT_UNOTIFY, .event = 1};
}

static void conn_open(struct server *s, int fd)
{
	struct conn *c = &conns[fd];
	int ret;

	c->fd = fd;
	c->open = true;
	s->open++;
	s->accepted++;
	ret = watch_socket(s->kfd, fd, KEVENT_SOCKET_RECV, c);
	if (ret)
		fail("ADD RECV interest on fd %d: %s", fd, strerror(-ret));
}

/*
 * Close a connection. A BROKEN event has already removed its interest (K17); otherwise
 * REMOVE it first, so nothing for it can be delivered once the descriptor is reused (K10).
 */
static void conn_close(struct server *s, struct conn *c, bool broken)
{
	struct ukevent ev = socket_entry(c->fd, KEVENT_SOCKET_RECV, c);
	int ret;

	if (!broken) {
		ret = ctl_one(s->kfd, KEVENT_CTL_REMOVE, &ev);
		if (ret)
			fail("REMOVE RECV interest on fd %d: %s", c->fd, strerror(-ret));
	}
	close(c->fd);
	c->open = false;
	s->open--;
}

static void accept_all(struct server *s)
{
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				fail("accept: %s", strerror(errno));
			return;
		}
		conn_open(s, fd);
	}
}

/*
 * Server echoes are written in place, spinning on EAGAIN: messages are small and each client
 * waits for its answers before sending more, so the socket buffer is never full for long.
 */
static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

/* Edge triggered: drain the socket, or no new event comes for the data left behind. */
static void echo_all(struct server *s, struct conn *c)
{
	char buf[4096];

	for (;;) {
		ssize_t n = read(c->fd, buf, sizeof(buf));

		if (n > 0) {
			if (send_all(c->fd, buf, n))
				break;
			s->echoed_bytes += n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		break;
	}
	conn_close(s, c, false); /* end of file, or the peer is gone */
}

static void handle_event(struct server *s, const struct ukevent *ev)
{
	struct conn *c = ev->ptr;
	bool broken = ev->ret_flags & KEVENT_RET_BROKEN;

	s->ev_all++;
	if (ev->type == KEVENT_UNOTIFY) {
		s->ev_unotify++;
	} else if (ev->type == KEVENT_TIMER) {
		s->ticks += ev->ret_data[1];
	} else if (ev->type != KEVENT_SOCKET) {
		fail("event of unexpected type %u", ev->type);
	} else if (c == &s->listener) {
		s->ev_accept++;
		if (broken)
			fail("listening socket broken: %s", strerror(-(int)ev->ret_data[1]));
		else
			accept_all(s);
	} else if (!c->open) {
		s->ev_stale++; /* delivered after REMOVE: a library bug, K10 */
	} else if (broken) {
		s->ev_broken++;
		conn_close(s, c, true);
	} else {
		s->ev_recv++;
		echo_all(s, c);
	}
}

/* get_events placed, in order, every event it returned without COPY_FAILED in the ring. */
static void ring_check(struct server *s, unsigned int idx, const struct ukevent *buf, int n)
{
	for (int i = 0; i < n; i++) {
		if (buf[i].ret_flags & KEVENT_RET_COPY_FAILED) {
			s->copy_failed++;
			continue;
		}
		if (memcmp(&s->ring->event[idx], &buf[i], sizeof(buf[i])))
			s->ring_bad++;
		idx = (idx + 1) % RING_SIZE;
		s->ring_placed++;
	}
	if (idx != s->ring->ring_kidx)
		s->ring_bad++;
}

static void serve_once(struct server *s, struct ukevent *buf)
{
	struct timespec timeout = {0, 100 * NSEC_PER_MSEC};
	unsigned int kidx = s->ring->ring_kidx;
	int n, ret;

	n = kevent_get_events(s->kfd, 1, BATCH, timeout, buf, 0);
	if (n == -EINTR)
		return;
	if (n < 0) {
		fail("kevent_get_events: %s", strerror(-n));
		return;
	}
	ring_check(s, kidx, buf, n);
	for (int i = 0; i < n; i++)
		handle_event(s, &buf[i]);

	/* Everything copied so far is handled: free the ring slots. */
	ret = kevent_commit(s->kfd, s->ring->ring_kidx, s->ring->ring_over);
	if (ret < 0)
		fail("kevent_commit: %s", strerror(-ret));
	else
		s->ring_committed += ret;
}

static void *notifier_main(void *arg)
{
	struct notifier *nt = arg;
	struct timespec period = {0, 100 * NSEC_PER_MSEC};

	while (!atomic_load(&stop_notifier) && !atomic_load(&failed)) {
		struct ukevent ev = unotify_entry();
		int ret;

		nanosleep(&period, NULL);
		ret = ctl_one(nt->kfd, KEVENT_CTL_READY, &ev);
		if (ret) {
			fail("KEVENT_CTL_READY: %s", strerror(-ret));
			break;
		}
		nt->sent++;
	}
	return NULL;
}

static int client_connect(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	/* A lost event leaves the client waiting for its echo: time out instead of hanging. */
	struct timeval tv = {.tv_sec = 2};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    connect(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static int recv_all(int fd, char *buf, size_t len)
{
	while (len) {
		ssize_t n = recv(fd, buf, len, 0);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

/* Message seq of connection conn: a readable header padded with a pattern of its own. */
static void make_msg(char *msg, unsigned int client, uint64_t conn, unsigned int seq)
{
	char head[MSG_LEN + 1];
	int len = snprintf(head, sizeof(head), "c%u n%" PRIu64 " m%u ", client, conn, seq);

	memcpy(msg, head, len < MSG_LEN ? len : MSG_LEN);
	for (int i = len; i < MSG_LEN; i++)
		msg[i] = 'a' + (conn * 7 + seq * 3 + i) % 26;
}

/* One message on each connection, then each echo read back and compared byte for byte. */
static int client_round(struct client *cl, const int *fds, int n, unsigned int seq)
{
	char msg[MSG_LEN], got[MSG_LEN];
	int i, ret = 0;

	for (i = 0; i < n && !ret; i++) {
		make_msg(msg, cl->id, cl->serial + i, seq);
		ret = send_all(fds[i], msg, MSG_LEN);
	}
	for (i = 0; i < n && !ret; i++) {
		make_msg(msg, cl->id, cl->serial + i, seq);
		ret = recv_all(fds[i], got, MSG_LEN);
		if (!ret && memcmp(msg, got, MSG_LEN))
			ret = -EBADMSG;
	}
	if (ret) {
		fail("client %u: echo of \"%.*s\": %s", cl->id, MSG_LEN, msg, strerror(-ret));
		return ret;
	}
	cl->msgs += n;
	cl->bytes += (uint64_t)n * MSG_LEN;
	return 0;
}

/* Open CLIENT_CONNS connections, talk on all of them, close them all. */
static void client_batch(struct client *cl)
{
	int fds[CLIENT_CONNS];
	int n, ret = 0;

	for (n = 0; n < CLIENT_CONNS; n++) {
		fds[n] = client_connect();
		if (fds[n] < 0) {
			fail("client %u: connect: %s", cl->id, strerror(-fds[n]));
			break;
		}
	}
	for (unsigned int seq = 0; seq < MSGS_PER_CONN && !ret && !atomic_load(&failed); seq++)
		ret = client_round(cl, fds, n, seq);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	if (!ret && !atomic_load(&failed))
		cl->conns += n;
	cl->serial += n;
}

static void *client_main(void *arg)
{
	struct client *cl = arg;

	while (now() < deadline && !atomic_load(&failed))
		client_batch(cl);
	atomic_fetch_sub(&clients_running, 1);
	return NULL;
}

static int listen_socket(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, SOMAXCONN) ||
	    getsockname(fd, (struct sockaddr *)&sin, &len)) {
		fprintf(stderr, "echo: listening socket: %s\n", strerror(errno));
		exit(1);
	}
	port = ntohs(sin.sin_port);
	return fd;
}

/*
 * Both ends of every connection live in this process: allow more than 1024 descriptors, but
 * no more than CONN_MAX, so that every descriptor indexes the connection table.
 */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max < CONN_MAX ? rl.rlim_max : CONN_MAX;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static struct client client_totals(const struct client *cl)
{
	struct client sum = {0};

	for (int i = 0; i < CLIENTS; i++) {
		sum.conns += cl[i].conns;
		sum.msgs += cl[i].msgs;
		sum.bytes += cl[i].bytes;
	}
	return sum;
}

static void print_summary(const struct server *s, const struct client *cl,
			  const struct notifier *nt, const struct kevent_stats *st, double secs)
{
	printf("libkevent echo demo: %.1f s\n", secs);
	printf("  connections accepted   %" PRIu64 "\n", s->accepted);
	printf("  messages echoed        %" PRIu64 " (bytes verified %" PRIu64 ")\n", cl->msgs,
	       cl->bytes);
	printf("  events: accept %" PRIu64 "  recv %" PRIu64 "  broken %" PRIu64
	       "  unotify %" PRIu64 " (of %" PRIu64 " sent)\n",
	       s->ev_accept, s->ev_recv, s->ev_broken, s->ev_unotify, nt->sent);
	printf("  kernel timer           %" PRIu64 " ticks of %d ms (%.0f expected)\n", s->ticks,
	       TICK_MS, secs * 1000 / TICK_MS);
	printf("  events/s               %.0f\n", s->ev_all / secs);
	printf("  ring                   %" PRIu64 " placed, %" PRIu64 " committed, %" PRIu64
	       " copy failed\n",
	       s->ring_placed, s->ring_committed, s->copy_failed);
	printf("  ring overflows (BPF)   %" PRIu64 "   (of %" PRIu64
	       " records, from kevent_stats)\n",
	       st->ring_overflows, st->bpf_records);
}

/* What must hold after a clean run, beyond each echo matching. */
static void check_totals(const struct server *s, const struct client *cl)
{
	if (!s->accepted)
		fail("no connection was served");
	else if (s->accepted != cl->conns)
		fail("server accepted %" PRIu64 " connections, clients completed %" PRIu64,
		     s->accepted, cl->conns);
	else if (s->echoed_bytes != cl->bytes)
		fail("server echoed %" PRIu64 " bytes, clients verified %" PRIu64, s->echoed_bytes,
		     cl->bytes);
	else if (s->ev_stale)
		fail("%" PRIu64 " events for removed interests", s->ev_stale);
	else if (s->ring_bad)
		fail("the ring disagrees with get_events %" PRIu64 " times", s->ring_bad);
}

int main(void)
{
	struct server s = {0};
	struct client cl[CLIENTS] = {0}, total;
	struct notifier nt = {0};
	struct ukevent ev = unotify_entry(), tick = timer_entry(), *buf;
	struct kevent_stats st = {0};
	double start;
	int ret;

	raise_fd_limit();
	s.ring = calloc(1, sizeof(*s.ring) + RING_SIZE * sizeof(struct ukevent));
	buf = calloc(BATCH, sizeof(*buf));
	if (!s.ring || !buf) {
		fprintf(stderr, "echo: out of memory\n");
		return 1;
	}
	s.kfd = kevent_init(s.ring, RING_SIZE, 0);
	if (s.kfd < 0) {
		fprintf(stderr, "echo: kevent_init: %s\n", strerror(-s.kfd));
		return 1;
	}
	s.lfd = listen_socket();
	ret = watch_socket(s.kfd, s.lfd, KEVENT_SOCKET_ACCEPT, &s.listener);
	if (!ret)
		ret = ctl_one(s.kfd, KEVENT_CTL_ADD, &ev);
	if (!ret)
		ret = ctl_one(s.kfd, KEVENT_CTL_ADD, &tick);
	if (ret) {
		fprintf(stderr, "echo: registering interests: %s\n", strerror(-ret));
		return 1;
	}

	start = now();
	deadline = start + RUN_SECONDS;
	nt.kfd = s.kfd;
	pthread_create(&nt.thread, NULL, notifier_main, &nt);
	atomic_store(&clients_running, CLIENTS);
	for (int i = 0; i < CLIENTS; i++) {
		cl[i].id = i;
		pthread_create(&cl[i].thread, NULL, client_main, &cl[i]);
	}

	/* Serve until the clients are done and the server has seen every connection close. */
	while (!atomic_load(&failed) && (atomic_load(&clients_running) || s.open)) {
		if (now() - start > RUN_LIMIT)
			fail("gave up after %.0f s: %d client threads running, %u connections open",
			     RUN_LIMIT, atomic_load(&clients_running), s.open);
		serve_once(&s, buf);
	}

	atomic_store(&stop_notifier, true);
	pthread_join(nt.thread, NULL);
	for (int i = 0; i < CLIENTS; i++)
		pthread_join(cl[i].thread, NULL);
	ret = kevent_stats(s.kfd, &st);
	if (ret)
		fail("kevent_stats: %s", strerror(-ret));
	total = client_totals(cl);
	check_totals(&s, &total);
	print_summary(&s, &total, &nt, &st, now() - start);
	kevent_close(s.kfd);
	close(s.lfd);
	free(s.ring); /* only now: the queue writes into it until it is closed */
	free(buf);
	if (atomic_load(&failed)) {
		fprintf(stderr, "echo: FAILED: %s\n", fail_reason);
		return 1;
	}
	return 0;
}
