// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Start-up (issue 11, item 4; issue 10, item 17): what a process pays for its first
 * kevent_init() and for the first interest of each kernel-fed family, in time and in
 * descriptors held, against epoll_create1() and epoll_ctl() in a process of their own.
 *
 * Every run is a fresh child process (nothing of libkevent or libbpf cached), libkevent
 * and epoll alternating. "further kevent_init" is a second queue, the process's kernel side
 * loaded already. The first socket ADD is a UDP socket's RECV; the timer and inode rows
 * are the first ADD of a 1 s timer and of a directory's CREATE, after the socket.
 *
 *   build/bench/startup [-r runs]
 */
#include <sys/epoll.h>
#include <sys/stat.h>

#include "bench.h"

enum fig { INIT, INIT2, SOCK, TIMER, INODE, FD_INIT, FD_QUEUE, FD_SOCK, NR_FIGS };

struct sample {
	double v[NR_FIGS];
};

static unsigned int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned int n = 0;
	struct dirent *de;

	while (d && (de = readdir(d)))
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n - 1; /* the directory's own */
}

static double ms_since(uint64_t t0)
{
	return (double)(bench_now_ns() - t0) / 1e6;
}

/* ms of one kevent_ctl() ADD of e. */
static double add_ms(int q, struct ukevent e)
{
	uint64_t t0 = bench_now_ns();

	if (kevent_ctl(q, KEVENT_CTL_ADD, 1, &e) != 1 || (e.ret_flags & KEVENT_RET_BROKEN))
		return NAN;
	return ms_since(t0);
}

static void run_kevent(int out, void *arg)
{
	struct sample s;
	unsigned int base = open_fds();
	uint64_t t0 = bench_now_ns();
	int q = kevent_init(NULL, 0, 0), q2, sock, dir;

	(void)arg;
	s.v[INIT] = q < 0 ? NAN : ms_since(t0);
	s.v[FD_INIT] = open_fds() - base;
	t0 = bench_now_ns();
	q2 = kevent_init(NULL, 0, 0);
	s.v[INIT2] = q2 < 0 ? NAN : ms_since(t0);
	s.v[FD_QUEUE] = q2 < 0 ? NAN : open_fds() - base - s.v[FD_INIT];
	kevent_close(q2);
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	base = open_fds();
	s.v[SOCK] = add_ms(q, bench_sock_entry(sock, KEVENT_SOCKET_RECV, 0, NULL));
	s.v[FD_SOCK] = open_fds() - base;
	s.v[TIMER] = add_ms(
	    q, (struct ukevent){.id.raw[0] = 1, .type = KEVENT_TIMER, .event = KEVENT_TIMER_FIRED});
	dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	s.v[INODE] = add_ms(q, (struct ukevent){.id.raw[0] = (__u32)dir,
						.type = KEVENT_INODE,
						.event = KEVENT_INODE_CREATE});
	if (write(out, &s, sizeof(s)) != sizeof(s))
		_exit(1);
}

/* The same steps with epoll: a set, one socket registered. */
static void run_epoll(int out, void *arg)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct sample s;
	unsigned int base = open_fds();
	uint64_t t0 = bench_now_ns();
	int ep = epoll_create1(EPOLL_CLOEXEC), sock;

	(void)arg;
	for (int f = 0; f < NR_FIGS; f++)
		s.v[f] = NAN;
	s.v[INIT] = s.v[INIT2] = ms_since(t0);
	s.v[FD_INIT] = s.v[FD_QUEUE] = open_fds() - base;
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	base = open_fds();
	t0 = bench_now_ns();
	s.v[SOCK] = epoll_ctl(ep, EPOLL_CTL_ADD, sock, &ev) ? NAN : ms_since(t0);
	s.v[FD_SOCK] = open_fds() - base;
	if (write(out, &s, sizeof(s)) != sizeof(s))
		_exit(1);
}

static void collect(void (*fn)(int, void *), struct bench_series *to)
{
	struct sample s;

	if (!bench_child(fn, NULL, &s, sizeof(s), 30))
		return;
	for (int f = 0; f < NR_FIGS; f++)
		bench_series_add(&to[f], s.v[f]);
}

static void usage(void)
{
	fprintf(stderr, "usage: startup [-r runs]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct bench_series k[NR_FIGS] = {0}, e[NR_FIGS] = {0};
	struct bench_opts o;
	int c;

	bench_opts_init(&o, 0);
	while ((c = getopt(argc, argv, BENCH_OPTS)) != -1)
		if (!bench_opt(&o, c, optarg))
			usage();
	bench_watchdog(300);
	bench_begin("startup", &o);
	for (unsigned int r = 0; r < o.runs; r++) {
		collect(run_kevent, k);
		collect(run_epoll, e);
	}
	bench_report(&(struct bench_row){"first kevent_init", "ms", "epoll_create1", &k[INIT],
					 &e[INIT], false});
	bench_report(&(struct bench_row){"further kevent_init", "ms", "epoll_create1", &k[INIT2],
					 &e[INIT2], false});
	bench_report(&(struct bench_row){"first socket ADD", "ms", "epoll_ctl ADD", &k[SOCK],
					 &e[SOCK], false});
	bench_reference("first timer ADD", "ms", &k[TIMER], false,
			"no target: the timer family loads with its first interest");
	bench_reference("first inode ADD", "ms", &k[INODE], false,
			"no target: the inode family loads with its first interest");
	bench_report(&(struct bench_row){"descriptors after first kevent_init", "fds",
					 "epoll_create1", &k[FD_INIT], &e[FD_INIT], false});
	bench_report(&(struct bench_row){"descriptors per further queue", "fds", "epoll_create1",
					 &k[FD_QUEUE], &e[FD_QUEUE], false});
	bench_report(&(struct bench_row){"descriptors added by first socket ADD", "fds",
					 "epoll_ctl ADD", &k[FD_SOCK], &e[FD_SOCK], false});
	return 0;
}
