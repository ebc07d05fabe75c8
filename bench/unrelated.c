// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Cost to unrelated traffic (issue 4, scenario 5). Once a process watches a socket, the
 * libkevent socket programs run on every socket of the machine, watched or not. So the
 * queue here always watches one socket elsewhere (watch_elsewhere()).
 *
 * 1. What kev_sk_data_ready costs per run, from the kernel's own accounting (BPF run-time
 *    statistics, enabled through BPF_ENABLE_STATS only while measured, since they cost
 *    time themselves): on a socket nobody asked the cookie of, on one whose cookie is not
 *    in the map, and, for reference, on a watched one. Only this process's own copy of the
 *    program is read. These are reference rows: with no program the cost is 0 by
 *    definition, so the figure stands alone (its target is absolute).
 * 2. The wall time of a 1-byte AF_UNIX write + read, with a queue watching a socket in
 *    this process and with no queue (the programs detached), alternating.
 *
 *   build/bench/unrelated [-r runs] [-n datagrams_or_pairs]
 */
#include <sys/socket.h>

#include "bench.h"

enum bpf_case { NO_COOKIE, COOKIE_MISS, HIT, NR_CASES };

static unsigned int count = 200000;

/* This process's kev_sk_data_ready: total run time and runs so far. */
static void prog_stat(int prog, double *ns, double *cnt)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(prog, &info, &len))
		bench_die("bpf_obj_get_info_by_fd: %s", strerror(errno));
	*ns = (double)info.run_time_ns;
	*cnt = (double)info.run_cnt;
}

static int udp_bound(struct sockaddr_in *sa)
{
	socklen_t len = sizeof(*sa);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	*sa =
	    (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd < 0 || bind(fd, (struct sockaddr *)sa, len) || getsockname(fd, (void *)sa, &len))
		bench_die("UDP socket: %s", strerror(errno));
	return fd;
}

/*
 * ns per run of the program over `count` datagrams to a fresh receiving socket, drained as
 * they come (and the queue too, for a watched one, so that records keep flowing).
 */
static double bpf_case_ns(enum bpf_case c, int q, int prog, int tx)
{
	struct sockaddr_in sa;
	int rx = udp_bound(&sa);
	struct ukevent ev[64];
	double ns0, n0, ns1, n1;
	char buf[64];

	if (c != NO_COOKIE) {
		__u64 cookie;
		socklen_t len = sizeof(cookie);

		/* Asking the cookie assigns it: now the program looks it up in the map. */
		getsockopt(rx, SOL_SOCKET, SO_COOKIE, &cookie, &len);
	}
	if (c == HIT) {
		struct ukevent uk = bench_sock_entry(rx, KEVENT_SOCKET_RECV, KEVENT_REQ_ET, NULL);

		if (kevent_ctl(q, KEVENT_CTL_ADD, 1, &uk) != 1 || uk.ret_flags)
			bench_die("kevent_ctl ADD: ret_flags %#x", uk.ret_flags);
	}
	prog_stat(prog, &ns0, &n0);
	for (unsigned int i = 0; i < count; i++) {
		sendto(tx, "x", 1, 0, (struct sockaddr *)&sa, sizeof(sa));
		recv(rx, buf, sizeof(buf), MSG_DONTWAIT);
		if (c == HIT && !(i & 63))
			kevent_get_events(q, 0, 64, (struct timespec){0, 0}, ev, 0);
	}
	prog_stat(prog, &ns1, &n1);
	close(rx); /* closing a watched socket removes its interest (K17) */
	return n1 > n0 ? (ns1 - ns0) / (n1 - n0) : NAN;
}

/* A queue that watches one idle socket: the socket programs are attached from then on. */
static int watch_elsewhere(int *sock)
{
	int q = bench_kevent_init();
	struct ukevent uk;

	*sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	uk = bench_sock_entry(*sock, KEVENT_SOCKET_RECV, 0, NULL);
	if (*sock < 0 || kevent_ctl(q, KEVENT_CTL_ADD, 1, &uk) != 1 || uk.ret_flags)
		bench_die("watching a socket: %s", strerror(errno));
	return q;
}

static void unwatch_elsewhere(int q, int sock)
{
	kevent_close(q); /* the last queue: the programs are detached */
	close(sock);
}

/* ns per 1-byte write + read on an AF_UNIX stream pair. */
static double unix_pair_ns(void)
{
	int sv[2];
	uint64_t t0, t1;
	char c = 'x';

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		bench_die("socketpair: %s", strerror(errno));
	t0 = bench_now_ns();
	for (unsigned int i = 0; i < count; i++)
		if (write(sv[0], &c, 1) != 1 || read(sv[1], &c, 1) != 1)
			bench_die("AF_UNIX write/read: %s", strerror(errno));
	t1 = bench_now_ns();
	close(sv[0]);
	close(sv[1]);
	return (double)(t1 - t0) / count;
}

static void usage(void)
{
	fprintf(stderr, "usage: unrelated [-r runs] [-n datagrams_or_pairs]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const char *const case_name[NR_CASES] = {
	    "socket BPF run, unwatched, no cookie",
	    "socket BPF run, unwatched, cookie",
	    "socket BPF run, watched (reference)",
	};
	struct bench_series bpf[NR_CASES] = {0}, with = {0}, without = {0};
	struct bench_opts o;
	int c, q, prog, stats, tx, elsewhere;

	bench_opts_init(&o, 0);
	while ((c = getopt(argc, argv, BENCH_OPTS "n:")) != -1) {
		if (bench_opt(&o, c, optarg))
			continue;
		if (c == 'n')
			count = (unsigned int)strtoul(optarg, NULL, 0);
		else
			usage();
	}
	if (count < 1000)
		usage();
	bench_watchdog(120);
	bench_begin("unrelated", &o);

	/* 1. The program's own figures: one queue open throughout, statistics on. */
	q = watch_elsewhere(&elsewhere);
	prog = bench_own_prog("kev_sk_data_ready");
	if (prog < 0)
		bench_die("kev_sk_data_ready is not loaded in this process");
	stats = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats < 0)
		bench_die("BPF_ENABLE_STATS: %s", strerror(errno));
	tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	for (unsigned int r = 0; r < o.runs; r++) {
		for (int k = 0; k < NR_CASES; k++)
			bench_series_add(&bpf[k], bpf_case_ns(k, q, prog, tx));
	}
	close(tx);
	close(prog);
	close(stats); /* statistics off again: they would slow the timing below */
	unwatch_elsewhere(q, elsewhere);

	/* 2. AF_UNIX write + read, alternating with and without a queue in the process. */
	for (unsigned int r = 0; r < o.runs; r++) {
		q = watch_elsewhere(&elsewhere);
		bench_series_add(&with, unix_pair_ns());
		unwatch_elsewhere(q, elsewhere);
		if (bench_own_prog("kev_sk_data_ready") >= 0)
			bench_die("the programs stay loaded after the last kevent_close");
		bench_series_add(&without, unix_pair_ns());
	}

	for (int k = 0; k < NR_CASES; k++)
		bench_reference(case_name[k], "ns/run", &bpf[k], false,
				"absolute cost: with no program it is 0");
	bench_report(&(struct bench_row){"AF_UNIX write+read, unwatched", "ns", "no libkevent",
					 &with, &without, false});
	return 0;
}
