// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * What the socket BPF program costs per run, from the kernel's own accounting
 * (kernel.bpf_stats_enabled=1): on sockets nobody watches (with and without a cookie
 * assigned) and on a watched one. Run alone: every process using libkevent has its own
 * copy of the program attached, and all of them run on every event.
 *
 *   build/sockcost [datagrams]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "kevent.h"

struct prog_stat {
	__u64 ns, cnt;
};

/* Sum run time and count over every loaded program with this name (the kernel keeps 15 chars). */
static struct prog_stat prog_stat(const char *name)
{
	struct prog_stat s = { 0, 0 };
	__u32 id = 0;

	while (!bpf_prog_get_next_id(id, &id)) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		int fd = bpf_prog_get_fd_by_id(id);

		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) && !strncmp(info.name, name, sizeof(info.name) - 1)) {
			s.ns += info.run_time_ns;
			s.cnt += info.run_cnt;
		}
		close(fd);
	}
	return s;
}

static int udp_bound(struct sockaddr_in *sa)
{
	socklen_t len = sizeof(*sa);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa->sin_port = 0;
	if (fd < 0 || bind(fd, (struct sockaddr *)sa, len) || getsockname(fd, (void *)sa, &len))
		exit(1);
	return fd;
}

/* Send n datagrams to rx, draining as we go; report the program's ns per run. */
static void measure(const char *what, int q, int tx, int rx, const struct sockaddr_in *sa, int n)
{
	struct prog_stat a = prog_stat("kev_sk_data_ready"), b;
	struct ukevent ev[64];
	char buf[64];

	for (int i = 0; i < n; i++) {
		sendto(tx, "x", 1, 0, (const struct sockaddr *)sa, sizeof(*sa));
		recv(rx, buf, sizeof(buf), MSG_DONTWAIT);
		if (q >= 0 && !(i & 63))
			kevent_get_events(q, 0, 64, (struct timespec){ 0, 0 }, ev, 0);
	}
	b = prog_stat("kev_sk_data_ready");
	printf("%-28s runs %8llu   %6.1f ns/run\n", what, (unsigned long long)(b.cnt - a.cnt),
	       b.cnt > a.cnt ? (double)(b.ns - a.ns) / (double)(b.cnt - a.cnt) : 0.0);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 200000, q, tx, rx;
	struct sockaddr_in sa;
	struct ukevent e = { .type = KEVENT_SOCKET, .event = KEVENT_SOCKET_RECV,
			     .req_flags = KEVENT_REQ_ET };
	FILE *f = fopen("/proc/sys/kernel/bpf_stats_enabled", "w");
	__u64 cookie;
	socklen_t len = sizeof(cookie);

	if (!f || fputs("1", f) < 0 || fclose(f)) {
		fprintf(stderr, "sockcost: cannot enable kernel.bpf_stats_enabled (needs root)\n");
		return 1;
	}
	q = kevent_init(NULL, 0, 0);
	if (q < 0) {
		fprintf(stderr, "sockcost: kevent_init: %s\n", strerror(-q));
		return 1;
	}
	tx = socket(AF_INET, SOCK_DGRAM, 0);
	rx = udp_bound(&sa);
	measure("miss, socket without cookie", -1, tx, rx, &sa, n);
	getsockopt(rx, SOL_SOCKET, SO_COOKIE, &cookie, &len);
	measure("miss, cookie not in the map", -1, tx, rx, &sa, n);
	e.id.raw[0] = rx;
	kevent_ctl(q, KEVENT_CTL_ADD, 1, &e);
	measure("hit, watched socket", q, tx, rx, &sa, n);
	kevent_close(q);
	return 0;
}
