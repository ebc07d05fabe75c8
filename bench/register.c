// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Registration (issue 4, scenario 4): add 100,000 socket interests (RECV, level) and
 * remove them again, with batched kevent_ctl (1,000 entries a call by default) against
 * one epoll_ctl ADD / DEL per socket. ADD and REMOVE are timed and reported separately,
 * in ns per interest.
 *
 * 100,000 sockets need as many descriptors: where the hard RLIMIT_NOFILE cannot be raised
 * (no CAP_SYS_RESOURCE in a container), the count falls to the largest round thousand that
 * fits, and the row names the count it measured.
 *
 * Two kinds of socket, each a row of its own: unbound UDP sockets (what libkevent serves
 * from its BPF programs alone, like TCP) and AF_UNIX stream socketpairs (whose peer close
 * libkevent also watches with its epoll set, so their ADD costs more). Creating the
 * sockets and the queue, and loading the socket programs (the startup scenario's first
 * socket interest), is not timed. libkevent runs twice: on the BPF path, and on the
 * syscall path (KEVENT_BACKEND=syscall: the fallback, K26), which registers with epoll.
 *
 * A third row per kind is the floor of the BPF path's ADD: the one thing it cannot batch, an
 * update of the socket's BPF storage (a map of the same value size as libkevent's kev_socks,
 * created here) by descriptor, one bpf() call per socket, timed like epoll_ctl.
 *
 *   build/bench/register [-r runs] [-n interests] [-b batch]
 */
#include <sys/epoll.h>

#include "bench.h"
#include "../bpf/kev_shared.h"
#include "../tests/sk_storage_map.h"

enum kind { UDP, UNIX, NR_KINDS };

/* Who registers: libkevent on each path, the BPF path's floor, then the baseline. */
enum who { KEV_BPF, KEV_SYSCALL, STORAGE, EPOLL, NR_WHO };

static const char *const kind_name[NR_KINDS] = {"udp", "unix"};

static unsigned int ninterests = 100000, batch = 1000;

static int *open_sockets(enum kind k)
{
	int *fd = malloc(ninterests * sizeof(*fd));

	if (!fd)
		bench_die("out of memory");
	for (unsigned int i = 0; i < ninterests; i++) {
		if (k == UNIX && !(i & 1)) {
			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, &fd[i]))
				bench_die("socketpair: %s", strerror(errno));
			continue;
		}
		if (k == UDP && (fd[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
			bench_die("socket: %s", strerror(errno));
	}
	return fd;
}

static void close_sockets(int *fd)
{
	for (unsigned int i = 0; i < ninterests; i++)
		close(fd[i]);
	free(fd);
}

/* ns per interest for ADD and for REMOVE of every socket in fd[]. */
static void run_kevent(const int *fd, double *add, double *del)
{
	struct ukevent *uk = calloc(ninterests, sizeof(*uk));
	int q = bench_kevent_init();
	uint64_t t0, t1, t2, t3;

	if (!uk)
		bench_die("out of memory");
	/* The socket family loads once per process (startup measures that): not timed here. */
	if (kevent_backend(q, KEVENT_SOCKET) < 0)
		bench_die("kevent_backend: %s", strerror(errno));
	for (unsigned int i = 0; i < ninterests; i++)
		uk[i] = bench_sock_entry(fd[i], KEVENT_SOCKET_RECV, 0, NULL);
	t0 = bench_now_ns();
	for (unsigned int i = 0; i < ninterests; i += batch) {
		unsigned int n = ninterests - i < batch ? ninterests - i : batch;

		if (kevent_ctl(q, KEVENT_CTL_ADD, n, uk + i) != (int)n)
			bench_die("kevent_ctl ADD: %s", strerror(errno));
	}
	t1 = bench_now_ns();
	for (unsigned int i = 0; i < ninterests; i++)
		if (uk[i].ret_flags)
			bench_die("ADD fd %d: ret_flags %#x err %d", fd[i], uk[i].ret_flags,
				  (int)uk[i].ret_data[1]);
	t2 = bench_now_ns();
	for (unsigned int i = 0; i < ninterests; i += batch) {
		unsigned int n = ninterests - i < batch ? ninterests - i : batch;

		if (kevent_ctl(q, KEVENT_CTL_REMOVE, n, uk + i) != (int)n)
			bench_die("kevent_ctl REMOVE: %s", strerror(errno));
	}
	t3 = bench_now_ns();
	for (unsigned int i = 0; i < ninterests; i++)
		if (uk[i].ret_flags != KEVENT_RET_DONE)
			bench_die("REMOVE fd %d: ret_flags %#x err %d", fd[i], uk[i].ret_flags,
				  (int)uk[i].ret_data[1]);
	kevent_close(q);
	free(uk);
	*add = (double)(t1 - t0) / ninterests;
	*del = (double)(t3 - t2) / ninterests;
}

static void run_epoll(const int *fd, double *add, double *del)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	uint64_t t0, t1, t2;

	if (ep < 0)
		bench_die("epoll_create1: %s", strerror(errno));
	t0 = bench_now_ns();
	for (unsigned int i = 0; i < ninterests; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};

		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd[i], &ev))
			bench_die("epoll_ctl ADD: %s", strerror(errno));
	}
	t1 = bench_now_ns();
	for (unsigned int i = 0; i < ninterests; i++)
		if (epoll_ctl(ep, EPOLL_CTL_DEL, fd[i], NULL))
			bench_die("epoll_ctl DEL: %s", strerror(errno));
	t2 = bench_now_ns();
	close(ep);
	*add = (double)(t1 - t0) / ninterests;
	*del = (double)(t2 - t1) / ninterests;
}

/*
 * ns per socket for one storage update each; closing the map frees them all. EAGAIN: the
 * socket's storage from an earlier run is going at that moment; retried until it is gone.
 */
static void run_storage(const int *fd, double *add)
{
	struct kev_sock_val v = {.nr = 1};
	int map = kt_sk_storage_map("bench_socks", sizeof(v));
	uint64_t t0, t1;

	if (map < 0)
		bench_die("socket storage map: %s", strerror(-map));
	t0 = bench_now_ns();
	for (unsigned int i = 0; i < ninterests; i++) {
		int err;

		while ((err = bpf_map_update_elem(map, &fd[i], &v, BPF_NOEXIST)) && errno == EAGAIN)
			;
		if (err)
			bench_die("socket storage update: %s", strerror(errno));
	}
	t1 = bench_now_ns();
	close(map);
	*add = (double)(t1 - t0) / ninterests;
}

static void usage(void)
{
	fprintf(stderr, "usage: register [-r runs] [-n interests] [-b batch]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct bench_series add[NR_KINDS][NR_WHO] = {0}, del[NR_KINDS][NR_WHO] = {0};
	struct bench_opts o;
	rlim_t limit;
	int c;

	bench_opts_init(&o, 0);
	while ((c = getopt(argc, argv, BENCH_OPTS "n:b:")) != -1) {
		if (bench_opt(&o, c, optarg))
			continue;
		if (c == 'n')
			ninterests = (unsigned int)strtoul(optarg, NULL, 0) & ~1u;
		else if (c == 'b')
			batch = (unsigned int)strtoul(optarg, NULL, 0);
		else
			usage();
	}
	if (ninterests < 2 || ninterests > 1000000 || batch < 1 || batch > KEVENT_MAX_BATCH)
		usage();
	/* The queue, its BPF objects and stdio need a few hundred descriptors more. */
	limit = bench_nofile(ninterests + 512);
	if (limit < ninterests + 512) {
		unsigned int fit = limit > 1512 ? (unsigned int)(limit - 512) / 1000 * 1000 : 0;

		printf("# only %lu descriptors allowed (hard RLIMIT_NOFILE; no CAP_SYS_RESOURCE): "
		       "%u interests instead of %u\n",
		       (unsigned long)limit, fit, ninterests);
		ninterests = fit;
		if (ninterests < 2)
			bench_die("too few descriptors allowed");
	}

	bench_watchdog(120);
	bench_begin("register", &o);
	for (int k = 0; k < NR_KINDS; k++) {
		int *fd = open_sockets(k);

		for (unsigned int r = 0; r < o.runs; r++) {
			for (int w = 0; w < NR_WHO; w++) {
				double a, d = 0;

				/* Read by the next first kevent_init (the last queue closed). */
				if (w == KEV_SYSCALL)
					bench_syscall_path();
				else
					unsetenv("KEVENT_BACKEND");
				if (w == EPOLL)
					run_epoll(fd, &a, &d);
				else if (w == STORAGE)
					run_storage(fd, &a);
				else
					run_kevent(fd, &a, &d);
				bench_series_add(&add[k][w], a);
				bench_series_add(&del[k][w], d);
			}
		}
		close_sockets(fd);
	}
	for (int k = 0; k < NR_KINDS; k++) {
		char s3[80];

		for (int w = KEV_BPF; w < STORAGE; w++) {
			const char *how = w == KEV_SYSCALL ? " syscall path" : "";
			char s1[80], s2[80];

			snprintf(s1, sizeof(s1), "register %s %uk%s: ADD", kind_name[k],
				 ninterests / 1000, how);
			snprintf(s2, sizeof(s2), "register %s %uk%s: REMOVE", kind_name[k],
				 ninterests / 1000, how);
			bench_report(&(struct bench_row){s1, "ns/interest", "epoll_ctl",
							 &add[k][w], &add[k][EPOLL], false});
			bench_report(&(struct bench_row){s2, "ns/interest", "epoll_ctl",
							 &del[k][w], &del[k][EPOLL], false});
		}
		snprintf(s3, sizeof(s3), "register %s %uk: socket storage alone (floor of ADD)",
			 kind_name[k], ninterests / 1000);
		bench_report(&(struct bench_row){s3, "ns/interest", "epoll_ctl", &add[k][STORAGE],
						 &add[k][EPOLL], false});
	}
	return 0;
}
