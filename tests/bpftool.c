// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Operators inspect the live interest table with bpftool: `bpftool map dump name
 * kev_sockets` shows each socket interest (keyed by its slot) with the owner's pid, the
 * descriptor it registered, its queue and its events.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(bpftool, .init = kt_require_bpf, .timeout = KT_TEST_TIMEOUT);

/*
 * One JSON dump of every kev_sockets map on the machine (other tests have theirs), or NULL
 * when bpftool failed.
 */
static char *dump_once(void)
{
	FILE *p = popen("PATH=\"$PATH:/usr/sbin:/sbin\" bpftool -j map dump name kev_sockets "
			"2>/dev/null",
			"r");
	size_t len = 0, cap = 1 << 16, r;
	char *buf = malloc(cap);

	cr_assert_not_null(p, "popen bpftool: %m");
	cr_assert_not_null(buf);
	while ((r = fread(buf + len, 1, cap - len - 1, p)) > 0) {
		len += r;
		if (cap - len < 4096) {
			cap *= 2;
			buf = realloc(buf, cap);
			cr_assert_not_null(buf);
		}
	}
	buf[len] = 0;
	if (pclose(p) == 0 && buf[0] == '[')
		return buf;
	free(buf);
	return NULL;
}

/* Other processes create and destroy their maps meanwhile: a dump may fail, so retry. */
static char *dump_sockets(void)
{
	char *buf = NULL;
	int i;

	for (i = 0; i < 10 && !buf; i++) {
		buf = dump_once();
		if (!buf)
			kt_sleep_ms(50);
	}
	cr_assert_not_null(buf, "bpftool -j map dump name kev_sockets keeps failing");
	return buf;
}

/*
 * The entry of the interest (pid, fd), or NULL. Compact JSON looks like
 * {"key":[...],"value":[...],"formatted":{"key":{"slot":N},"value":{"tgid":P,"fd":F,...}}}.
 */
static char *find_entry(char *dump, int fd)
{
	char pat[64], *e, *end;

	snprintf(pat, sizeof(pat), "\"tgid\":%d,\"fd\":%d,", getpid(), fd);
	e = strstr(dump, pat);
	if (!e)
		return NULL;
	end = strstr(e + strlen(pat), "\"key\":");
	if (end)
		*end = 0;
	return e;
}

static bool has_field(const char *entry, const char *name, long long v)
{
	char pat[64];

	snprintf(pat, sizeof(pat), "\"%s\":%lld", name, v);
	return strstr(entry, pat) != NULL;
}

Test(bpftool, watched_socket_in_kev_sockets,
     .description = "K17 (operators): bpftool lists a socket interest by pid, fd and events")
{
	char *dump, *entry;
	int q, a, b;

	kt_require_bpf_source("socket");
	q = kt_queue();
	kt_tcp_pair(&a, &b);
	kt_add(q, kt_sock_ev(a, KEVENT_SOCKET_RECV, 0));

	dump = dump_sockets();
	entry = find_entry(dump, a);
	cr_assert_not_null(entry, "pid %d fd %d not in the kev_sockets dump", getpid(), a);
	cr_assert(has_field(entry, "events", KEVENT_SOCKET_RECV), "no RECV in the entry: %.300s",
		  entry);
	free(dump);

	/* Removed: the operator's view follows. */
	kt_done(q, KEVENT_CTL_REMOVE, kt_sock_ev(a, KEVENT_SOCKET_RECV, 0));
	dump = dump_sockets();
	cr_assert_null(find_entry(dump, a), "fd %d still listed after REMOVE", a);
	free(dump);
	kt_close_pair(q, a, b);
}
