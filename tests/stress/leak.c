// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Stress (b), K17 and issue 10 item 3: a server that closes its sockets without REMOVE.
 *
 * N cycles of {open a socket or a connected pair, ADD RECV on each end with a user value of
 * its own (as a server's per-connection pointer), close} over TCP, UDP, AF_UNIX stream and
 * datagram sockets, the event loop turning (kevent_get_events without blocking) every few
 * cycles as a server's would. Closing the last reference removes the interests (K17), so
 * afterwards what the process holds must be back where it started: the entries of every
 * kev_* BPF map of this process that can be iterated, the queue's interests, descriptors,
 * epoll registrations, and memory (within a stated tolerance: the allocator keeps pages).
 *
 * Maps are found through this process's own descriptors, by name, so that a map that moves
 * (kev_sockets to socket-local storage) or appears is still counted, and other processes'
 * libkevent maps are not. kev_sockets, the operators' view, keeps an entry per slot ever
 * used, updated in place (fd -1 once the slot is free): what counts there is the live ones.
 *
 * usage: leak [-n cycles]      (default 100,000)
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "kev_shared.h"
#include "stress.h"

#define LK_TURN	      64  /* cycles between two turns of the event loop */
#define LK_SETTLE_S   5	  /* after the cycles, wait this long at most for things to go back */
#define LK_RSS_SLACK  4096 /* KiB the resident set may keep: freed pages stay mapped */
#define LK_HEAP_SLACK 256  /* KiB of heap: malloc's own bookkeeping, tables sized at a peak */
#define LK_MAPS_MAX   32
#define LK_FIXED      (-1) /* a plain array: always max_entries */
#define LK_OPAQUE     (-2) /* the map cannot be iterated (ring buffers, local storage) */

enum lk_kind { LK_TCP, LK_UDP, LK_UNIX_STREAM, LK_UNIX_DGRAM, LK_KINDS };

static const char *const lk_kind_name[LK_KINDS] = { "TCP", "UDP", "AF_UNIX stream",
						    "AF_UNIX dgram" };

struct lk_map {
	__u32 id;
	char name[BPF_OBJ_NAME_LEN];
	long entries;
};

/* What the process holds at one moment. */
struct lk_snap {
	struct lk_map map[LK_MAPS_MAX];
	unsigned int nmaps;
	long interests, fds, epoll_regs, rss_kb, heap_kb;
};

struct lk {
	int q, listener;
	struct sockaddr_in laddr;
	uint64_t user; /* a fresh user value per interest: identities never repeat */
	uint64_t cycles[LK_KINDS], events, failed;
};

/* fd-array maps answer a lookup only for the indexes that hold something. */
static bool lk_fd_array(__u32 type)
{
	return type == BPF_MAP_TYPE_ARRAY_OF_MAPS || type == BPF_MAP_TYPE_PROG_ARRAY ||
	       type == BPF_MAP_TYPE_PERF_EVENT_ARRAY || type == BPF_MAP_TYPE_CGROUP_ARRAY;
}

/* A kev_sockets entry describes an interest that is still registered. */
static bool lk_view_live(int fd, const void *key)
{
	struct kev_sock_view v;

	return !bpf_map_lookup_elem(fd, key, &v) && v.fd >= 0;
}

static long lk_map_entries(int fd, const struct bpf_map_info *info)
{
	bool view = !strcmp(info->name, "kev_sockets") &&
		    info->value_size == sizeof(struct kev_sock_view);
	char key[512], next[512];
	__u32 val;
	long n = 0;

	if (info->type == BPF_MAP_TYPE_ARRAY || info->type == BPF_MAP_TYPE_PERCPU_ARRAY)
		return LK_FIXED;
	if (info->key_size > sizeof(key) || bpf_map_get_next_key(fd, NULL, next))
		return errno == ENOENT ? 0 : LK_OPAQUE;
	do {
		memcpy(key, next, info->key_size);
		if (view)
			n += lk_view_live(fd, key);
		else
			n += !lk_fd_array(info->type) || !bpf_map_lookup_elem(fd, key, &val);
	} while (!bpf_map_get_next_key(fd, key, next));
	return n;
}

/* What a descriptor of this process is ("anon_inode:bpf-map", ...). */
static bool lk_fd_is(int fd, const char *what)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = 0;
	return !strcmp(link, what);
}

static void lk_add_map(struct lk_snap *s, int fd)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len) || strncmp(info.name, "kev_", 4))
		return;
	for (unsigned int i = 0; i < s->nmaps; i++)
		if (s->map[i].id == info.id)
			return; /* another descriptor of a map already counted */
	if (s->nmaps == LK_MAPS_MAX)
		st_setup_fail("more than %d kev_* maps", LK_MAPS_MAX);
	s->map[s->nmaps].id = info.id;
	memcpy(s->map[s->nmaps].name, info.name, sizeof(info.name));
	s->map[s->nmaps++].entries = lk_map_entries(fd, &info);
}

/* The "tfd:" lines of an epoll descriptor's fdinfo: one per registered descriptor. */
static long lk_epoll_regs(int fd)
{
	char path[64], line[256];
	FILE *f;
	long n = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += !strncmp(line, "tfd:", 4);
	fclose(f);
	return n;
}

static void lk_snapshot(const struct lk *lk, struct lk_snap *s)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	if (!d)
		st_setup_fail("/proc/self/fd: %s", strerror(errno));
	memset(s, 0, sizeof(*s));
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);

		if (de->d_name[0] == '.' || fd == dirfd(d))
			continue;
		if (lk_fd_is(fd, "anon_inode:bpf-map"))
			lk_add_map(s, fd);
		else if (lk_fd_is(fd, "anon_inode:[eventpoll]"))
			s->epoll_regs += lk_epoll_regs(fd);
	}
	closedir(d);
	s->interests = (long)st_stats(lk->q).interests;
	s->fds = st_fd_count();
	s->rss_kb = st_rss_kb();
	s->heap_kb = st_heap_kb();
}

static void lk_nolinger(int fd)
{
	/* A reset instead of TIME_WAIT: 25,000 connections would otherwise pile up. */
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

static void lk_listen(struct lk *lk)
{
	socklen_t len = sizeof(lk->laddr);

	lk->listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	lk->laddr = (struct sockaddr_in){ .sin_family = AF_INET,
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (lk->listener < 0 || bind(lk->listener, (struct sockaddr *)&lk->laddr, len) ||
	    listen(lk->listener, 128) ||
	    getsockname(lk->listener, (struct sockaddr *)&lk->laddr, &len))
		st_setup_fail("TCP listener: %s", strerror(errno));
}

/* Open the sockets of one cycle into fd[0..1] (fd[1] = -1 when there is one). */
static void lk_open(struct lk *lk, enum lk_kind kind, int fd[2])
{
	int t = kind == LK_UNIX_STREAM ? SOCK_STREAM : SOCK_DGRAM;

	fd[1] = -1;
	if (kind == LK_TCP) {
		fd[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd[0] < 0 ||
		    connect(fd[0], (struct sockaddr *)&lk->laddr, sizeof(lk->laddr)) ||
		    (fd[1] = accept4(lk->listener, NULL, NULL, SOCK_CLOEXEC)) < 0)
			st_setup_fail("TCP connection: %s", strerror(errno));
		lk_nolinger(fd[0]);
		lk_nolinger(fd[1]);
	} else if (kind == LK_UDP) {
		fd[0] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd[0] < 0)
			st_setup_fail("UDP socket: %s", strerror(errno));
	} else if (socketpair(AF_UNIX, t | SOCK_CLOEXEC, 0, fd)) {
		st_setup_fail("socketpair: %s", strerror(errno));
	}
}

/* One cycle: open, ADD RECV on each socket, then close (after REMOVE when remove is set). */
static void lk_cycle(struct lk *lk, enum lk_kind kind, bool remove)
{
	struct ukevent uk[2];
	int fd[2], n = 0;

	lk_open(lk, kind, fd);
	for (; n < 2 && fd[n] >= 0; n++)
		uk[n] = (struct ukevent){ .id.raw[0] = (__u32)fd[n], .type = KEVENT_SOCKET,
					  .event = KEVENT_SOCKET_RECV, .user_u64 = ++lk->user };
	if (kevent_ctl(lk->q, KEVENT_CTL_ADD, n, uk) != n)
		st_setup_fail("kevent_ctl(ADD) failed: %s", strerror(errno));
	for (int i = 0; i < n; i++) {
		if (uk[i].ret_flags && !lk->failed++)
			st_finding("%s ADD failed after %llu cycles: ret_flags %#x, error %d",
				   lk_kind_name[kind], (unsigned long long)lk->cycles[kind],
				   uk[i].ret_flags, (int)uk[i].ret_data[1]);
		if (remove)
			kevent_ctl(lk->q, KEVENT_CTL_REMOVE, 1, &uk[i]);
	}
	for (int i = 0; i < n; i++)
		close(fd[i]);
	lk->cycles[kind]++;
}

/* One turn of the event loop: wait up to ms for something, then take what is ready. */
static void lk_turn(struct lk *lk, long ms)
{
	struct ukevent ev[256];
	int n = kevent_get_events(lk->q, ms > 0, 256, st_ms(ms), ev, 0);

	while (n > 0) {
		lk->events += (uint64_t)n;
		n = kevent_get_events(lk->q, 0, 256, st_ms(0), ev, 0);
	}
	if (n < 0)
		st_finding("kevent_get_events = %d", n);
}

static long lk_before_map(const struct lk_snap *s, const struct lk_map *m)
{
	for (unsigned int i = 0; i < s->nmaps; i++)
		if (s->map[i].id == m->id)
			return s->map[i].entries;
	return 0; /* a map made since: it started empty */
}

/* Every measure back where it was (memory within its slack)? */
static bool lk_back(const struct lk_snap *a, const struct lk_snap *b)
{
	for (unsigned int i = 0; i < b->nmaps; i++)
		if (b->map[i].entries >= 0 && b->map[i].entries != lk_before_map(a, &b->map[i]))
			return false;
	return a->interests == b->interests && a->fds == b->fds &&
	       a->epoll_regs == b->epoll_regs && b->rss_kb - a->rss_kb <= LK_RSS_SLACK &&
	       b->heap_kb - a->heap_kb <= LK_HEAP_SLACK;
}

/* One line of the table; a measure that did not come back is named in *bad. */
static void lk_row(const char *what, long before, long after, long slack, char *bad, size_t len)
{
	bool ok = after - before <= slack && (slack || after == before);

	printf("  %-36s %10ld %10ld %+10ld   %s\n", what, before, after, after - before,
	       ok ? "ok" : "NOT BACK");
	if (!ok)
		snprintf(bad + strlen(bad), len - strlen(bad), "%s%s", *bad ? ", " : "", what);
}

static void lk_report(const struct lk_snap *a, const struct lk_snap *b)
{
	char what[64], bad[512] = "";

	printf("  %-36s %10s %10s %10s\n", "what the process holds", "before", "after", "delta");
	for (unsigned int i = 0; i < b->nmaps; i++) {
		const struct lk_map *m = &b->map[i];

		snprintf(what, sizeof(what), "map %s entries", m->name);
		if (m->entries >= 0)
			lk_row(what, lk_before_map(a, m), m->entries, 0, bad, sizeof(bad));
		else
			printf("  %-36s %s\n", what,
			       m->entries == LK_FIXED ? "(array: fixed size)" : "(not iterable)");
	}
	lk_row("interests (kevent_stats)", a->interests, b->interests, 0, bad, sizeof(bad));
	lk_row("open descriptors", a->fds, b->fds, 0, bad, sizeof(bad));
	lk_row("epoll registrations (all epoll fds)", a->epoll_regs, b->epoll_regs, 0, bad,
	       sizeof(bad));
	lk_row("resident set, KiB", a->rss_kb, b->rss_kb, LK_RSS_SLACK, bad, sizeof(bad));
	lk_row("heap in use, KiB", a->heap_kb, b->heap_kb, LK_HEAP_SLACK, bad, sizeof(bad));
	if (*bad)
		st_finding("not back where they started: %s", bad);
}

int main(int argc, char **argv)
{
	struct lk_snap before, after;
	unsigned long cycles = 100000, i;
	struct lk lk = { 0 };
	double t0, t1, settle;
	int c, turns = 0;

	while ((c = getopt(argc, argv, "n:")) != -1) {
		if (c != 'n')
			st_setup_fail("usage: %s [-n cycles]", argv[0]);
		cycles = st_number(optarg, "cycle count");
	}
	st_require_root(argv[0]);
	lk.q = kevent_init(NULL, 0, 0);
	if (lk.q < 0)
		st_setup_fail("kevent_init = %d", lk.q);
	lk_listen(&lk);
	/* One cycle of each kind with REMOVE: programs attached, tables made, before counting. */
	for (int k = 0; k < LK_KINDS; k++)
		lk_cycle(&lk, k, true);
	lk_turn(&lk, 0);
	memset(lk.cycles, 0, sizeof(lk.cycles));
	lk_snapshot(&lk, &before);

	t0 = st_now();
	for (i = 0; i < cycles; i++) {
		lk_cycle(&lk, i % LK_KINDS, false);
		if (!((i + 1) % LK_TURN))
			lk_turn(&lk, 0);
	}
	t1 = st_now();
	/* Released at the next call, or within a bounded time: give it that time. */
	do {
		lk_turn(&lk, 100);
		lk_snapshot(&lk, &after);
		turns++;
	} while (!lk_back(&before, &after) && st_now() - t1 < LK_SETTLE_S);
	settle = st_now() - t1;

	printf("stress leak: %lu open/ADD/close cycles without REMOVE (%llu TCP, %llu UDP, %llu "
	       "AF_UNIX stream, %llu AF_UNIX dgram) in %.2f s; %llu events taken\n", cycles,
	       (unsigned long long)lk.cycles[LK_TCP], (unsigned long long)lk.cycles[LK_UDP],
	       (unsigned long long)lk.cycles[LK_UNIX_STREAM],
	       (unsigned long long)lk.cycles[LK_UNIX_DGRAM], t1 - t0,
	       (unsigned long long)lk.events);
	printf("  then %d turns of the event loop in %.1f s (%s)\n", turns, settle,
	       lk_back(&before, &after) ? "everything back" : "gave up waiting");
	lk_report(&before, &after);
	if (lk.failed)
		printf("  ADDs that failed: %llu\n", (unsigned long long)lk.failed);
	printf("  findings: %llu\n", (unsigned long long)st_findings());
	kevent_close(lk.q);
	close(lk.listener);
	return st_findings() ? ST_EXIT_FINDING : ST_EXIT_OK;
}
