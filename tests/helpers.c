// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Shared helpers of the Criterion suite (see helpers.h).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

/* A skip is a failure under CI=true: there everything must run. */
static void kt_skip(const char *why)
{
	const char *ci = getenv("CI");

	if (ci && !strcmp(ci, "true"))
		cr_assert_fail("%s, and CI=true forbids skipping", why);
	cr_skip_test("%s", why);
}

void kt_require_path(int q, unsigned int type, int path)
{
	int b = kevent_backend(q, type);

	cr_assert(b == KEVENT_BACKEND_BPF || b == KEVENT_BACKEND_SYSCALL, "kevent_backend = %d", b);
	if (b != path)
		kt_skip(path == KEVENT_BACKEND_BPF ? "a test of the BPF path, which is not in use"
						   : "a test of the syscall path, which is not in use");
}

void kt_require_bpf_source(const char *name)
{
	char line[64], want[32];
	bool bpf = false;
	FILE *f = popen(KT_BUILD_DIR "/paths 2>/dev/null", "r");

	cr_assert_not_null(f, "cannot run " KT_BUILD_DIR "/paths: %m");
	snprintf(want, sizeof(want), "%s bpf\n", name);
	while (fgets(line, sizeof(line), f))
		bpf |= !strcmp(line, want);
	pclose(f);
	if (!bpf)
		kt_skip("a test of a BPF path this kernel or process does not have");
}

void kt_require_bpf(void)
{
	int q = kevent_init(NULL, 0, KEVENT_INIT_BPF);

	if (q < 0)
		kt_skip("a test of the BPF path, which this process cannot use");
	kevent_close(q);
}

int kt_queue(void)
{
	int q = kevent_init(NULL, 0, 0);

	cr_assert_geq(q, 0, "kevent_init(NULL, 0, 0) = %d", q);
	return q;
}

int kt_queue_ring(struct kevent_ring **ring, unsigned int n)
{
	size_t sz = sizeof(**ring) + (size_t)n * sizeof(struct ukevent);
	int q;

	*ring = malloc(sz);
	cr_assert_not_null(*ring);
	/* Garbage, so that the library has to set the indexes itself. */
	memset(*ring, 0xa5, sz);
	q = kevent_init(*ring, n, 0);
	cr_assert_geq(q, 0, "kevent_init(ring, %u, 0) = %d", n, q);
	return q;
}

void kt_close(int q)
{
	int r = kevent_close(q);

	cr_assert_eq(r, 0, "kevent_close(%d) = %d", q, r);
}

void kt_close_ring(int q, struct kevent_ring *ring)
{
	kt_close(q);
	free(ring);
}

void kt_close_pair(int q, int a, int b)
{
	close(a);
	close(b);
	kt_close(q);
}

struct timespec kt_ts(long ms)
{
	struct timespec ts = { .tv_sec = -1, .tv_nsec = 0 };

	if (ms >= 0) {
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (ms % 1000) * 1000000L;
	}
	return ts;
}

struct ukevent kt_fd_ev(__u32 type, int fd, __u32 event, __u32 req_flags)
{
	struct ukevent uk = { 0 };

	uk.id.raw[0] = (__u32)fd;
	uk.type = type;
	uk.event = event;
	uk.req_flags = req_flags;
	return uk;
}

struct ukevent kt_sock_ev(int fd, __u32 event, __u32 req_flags)
{
	return kt_fd_ev(KEVENT_SOCKET, fd, event, req_flags);
}

struct ukevent kt_unotify_ev(__u64 id, __u32 req_flags)
{
	struct ukevent uk = { 0 };

	uk.id.raw_u64 = id;
	uk.type = KEVENT_UNOTIFY;
	uk.event = KT_UNOTIFY_EV;
	uk.req_flags = req_flags;
	return uk;
}

__u32 kt_ctl1(int q, unsigned int cmd, struct ukevent *uk)
{
	int r = kevent_ctl(q, cmd, 1, uk);

	cr_assert_eq(r, 1, "kevent_ctl(cmd %u, 1 entry) = %d", cmd, r);
	return uk->ret_flags;
}

void kt_add(int q, struct ukevent uk)
{
	__u32 rf = kt_ctl1(q, KEVENT_CTL_ADD, &uk);

	cr_assert_eq(rf, 0, "ADD type %u id %llu: ret_flags %#x ret_data[1] %d, want registered",
		     uk.type, (unsigned long long)uk.id.raw_u64, rf, (int)uk.ret_data[1]);
}

void kt_done(int q, unsigned int cmd, struct ukevent uk)
{
	__u32 rf = kt_ctl1(q, cmd, &uk);

	cr_assert_eq(rf, KEVENT_RET_DONE, "cmd %u type %u id %llu: ret_flags %#x ret_data[1] %d",
		     cmd, uk.type, (unsigned long long)uk.id.raw_u64, rf, (int)uk.ret_data[1]);
}

void kt_assert_failed(const struct ukevent *uk, int err)
{
	cr_assert_eq(uk->ret_flags, KEVENT_RET_BROKEN | KEVENT_RET_DONE,
		     "ret_flags %#x, want BROKEN|DONE (error %d)", uk->ret_flags, -err);
	cr_assert_eq((int)uk->ret_data[1], -err, "ret_data[1] = %d, want %d", (int)uk->ret_data[1],
		     -err);
}

void kt_ctl_fails(int q, unsigned int cmd, struct ukevent uk, int err)
{
	kt_ctl1(q, cmd, &uk);
	kt_assert_failed(&uk, err);
}

void kt_assert_gone(int q, struct ukevent uk)
{
	kt_ctl_fails(q, KEVENT_CTL_REMOVE, uk, ENOENT);
}

void kt_unotify_add(int q, __u64 id, __u32 req_flags)
{
	kt_add(q, kt_unotify_ev(id, req_flags));
}

void kt_unotify_queued(int q, __u64 id)
{
	kt_unotify_add(q, id, KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE);
}

void kt_unotify_ready(int q, __u64 id)
{
	kt_done(q, KEVENT_CTL_READY, kt_unotify_ev(id, 0));
}

int kt_get(int q, unsigned int min_nr, unsigned int max_nr, struct ukevent *buf, long ms)
{
	return kevent_get_events(q, min_nr, max_nr, kt_ts(ms), buf, 0);
}

int kt_get_some(int q, struct ukevent *buf, unsigned int max_nr)
{
	int n = kt_get(q, 1, max_nr, buf, KT_WAIT_MS);

	cr_assert_geq(n, 1, "kevent_get_events: %d, want an event within %d ms", n, KT_WAIT_MS);
	return n;
}

void kt_expect_none(int q)
{
	struct ukevent buf[8];
	int n = kt_get(q, 1, 8, buf, KT_QUIET_MS);

	cr_assert_eq(n, 0, "kevent_get_events = %d, want no event (first: type %u id %llu ev %#x)",
		     n, n > 0 ? buf[0].type : 0, n > 0 ? (unsigned long long)buf[0].id.raw_u64 : 0,
		     n > 0 ? buf[0].event : 0);
}

int kt_count(const struct ukevent *ev, int n, __u32 type, __u64 id)
{
	int i, c = 0;

	for (i = 0; i < n; i++)
		if (ev[i].type == type && ev[i].id.raw_u64 == id)
			c++;
	return c;
}

struct ukevent kt_only(const struct ukevent *ev, int n, __u32 type, __u64 id)
{
	int i;

	cr_assert_eq(kt_count(ev, n, type, id), 1, "want exactly one event for type %u id %llu",
		     type, (unsigned long long)id);
	for (i = 0; i < n; i++)
		if (ev[i].type == type && ev[i].id.raw_u64 == id)
			break;
	return ev[i];
}

struct ukevent kt_next(int q, __u32 type, __u64 id)
{
	struct ukevent ev[8];
	int n = kt_get_some(q, ev, 8);

	return kt_only(ev, n, type, id);
}

static struct sockaddr_in kt_loopback(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sin;
}

/* Bind to 127.0.0.1 port 0 and return the address the kernel chose. */
static struct sockaddr_in kt_bind_any(int fd)
{
	struct sockaddr_in sin = kt_loopback();
	socklen_t len = sizeof(sin);

	cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0, "bind: %m");
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0, "getsockname: %m");
	return sin;
}

int kt_udp_socket(struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0, "socket: %m");
	*addr = kt_bind_any(fd);
	return fd;
}

void kt_udp_pair(int *rx, int *tx)
{
	struct sockaddr_in sin;

	*rx = kt_udp_socket(&sin);
	*tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(*tx, 0, "socket: %m");
	cr_assert_eq(connect(*tx, (struct sockaddr *)&sin, sizeof(sin)), 0, "connect: %m");
}

int kt_tcp_listener(void)
{
	int one = 1;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(l, 0, "socket: %m");
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	kt_bind_any(l);
	cr_assert_eq(listen(l, 128), 0, "listen: %m");
	return l;
}

int kt_tcp_connect(int listener)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(c, 0, "socket: %m");
	cr_assert_eq(getsockname(listener, (struct sockaddr *)&sin, &len), 0, "getsockname: %m");
	cr_assert_eq(connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0, "connect: %m");
	return c;
}

void kt_tcp_pair(int *a, int *b)
{
	int l = kt_tcp_listener();

	*b = kt_tcp_connect(l);
	*a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(*a, 0, "accept: %m");
	close(l);
}

void kt_unix_pair(int type, int sv[2])
{
	cr_assert_eq(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0, "socketpair: %m");
}

int kt_udp_watched(int *rx, int *tx, __u32 req_flags)
{
	int q = kt_queue();

	kt_udp_pair(rx, tx);
	kt_add(q, kt_sock_ev(*rx, KEVENT_SOCKET_RECV, req_flags));
	return q;
}

void kt_send(int fd, size_t len)
{
	char buf[512];
	ssize_t r;

	cr_assert_leq(len, sizeof(buf));
	memset(buf, 'k', len);
	r = send(fd, buf, len, MSG_NOSIGNAL);
	cr_assert_eq(r, (ssize_t)len, "send(%d, %zu) = %zd: %m", fd, len, r);
}

void kt_drain(int fd)
{
	char buf[4096];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

void kt_wait_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	cr_assert_eq(poll(&p, 1, KT_WAIT_MS), 1, "fd %d not readable within %d ms", fd,
		     KT_WAIT_MS);
}

int kt_regular_file(void)
{
	char path[] = "/tmp/kevent-test-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC);

	cr_assert_geq(fd, 0, "mkostemp: %m");
	unlink(path);
	return fd;
}

int kt_closed_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	cr_assert_geq(fd, 0);
	close(fd);
	return fd;
}

int kt_fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

void kt_thread_start(pthread_t *th, void *(*fn)(void *), void *arg)
{
	int r = pthread_create(th, NULL, fn, arg);

	cr_assert_eq(r, 0, "pthread_create: %s", strerror(r));
}

struct timespec kt_deadline(long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

bool kt_join_within(pthread_t th, long ms)
{
	struct timespec ts = kt_deadline(ms);

	return pthread_timedjoin_np(th, NULL, &ts) == 0;
}

void kt_sleep_ms(long ms)
{
	struct timespec ts = kt_ts(ms);

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void *kt_getter_main(void *arg)
{
	struct kt_getter *g = arg;

	g->tid = gettid();
	g->ret = kevent_get_events(g->q, g->min_nr, g->max_nr, g->ts, g->buf, g->flags);
	g->err = errno;
	return NULL;
}

void kt_getter_start(struct kt_getter *g, int q, unsigned int min_nr, long ms)
{
	memset(g, 0, sizeof(*g));
	g->q = q;
	g->min_nr = min_nr;
	g->max_nr = 16;
	g->ts = kt_ts(ms);
	g->ret = -1000;
	kt_thread_start(&g->th, kt_getter_main, g);
}

/* The thread's state letter from /proc: 'S' while it sleeps in a system call. */
static char kt_thread_state(pid_t tid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return '?';
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '?';
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

void kt_getter_parked(struct kt_getter *g)
{
	int i;

	for (i = 0; i < KT_WAIT_MS / 5; i++) {
		if (g->tid && kt_thread_state(g->tid) == 'S')
			break;
		kt_sleep_ms(5);
	}
	cr_assert_lt(i, KT_WAIT_MS / 5, "the waiting thread never went to sleep");
	/* It may sleep on the queue's lock on its way in: give it time to reach the wait. */
	kt_sleep_ms(KT_QUIET_MS);
}

void kt_getters_parked(struct kt_getter *g, int n, int q, unsigned int min_nr, long ms)
{
	int i;

	/* All start before any is waited for, so that they wait on the queue together. */
	for (i = 0; i < n; i++)
		kt_getter_start(&g[i], q, min_nr, ms);
	for (i = 0; i < n; i++)
		kt_getter_parked(&g[i]);
}

void kt_getter_blocked(struct kt_getter *g, int q)
{
	kt_getter_start(g, q, 1, -1);
	cr_assert_not(kt_join_within(g->th, KT_QUIET_MS), "get_events(-1) returned %d at once",
		      g->ret);
}
