// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * keventctl(8), driven as a user drives it: the built tool as a child process, its output
 * read as it comes. `watch` streams what real files, sockets, timers and signals do, on
 * whichever path each source takes (K26); `ls` and `stats` show this test process's own
 * queue, found through the kernel's maps (the BPF path: tests named bpf); bad input and
 * missing privileges are one line and exit status 1.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child_helpers.h"

TestSuite(keventctl, .timeout = KT_TEST_TIMEOUT);

#define NOBODY 65534

/* Read stderr until the watches are in place; the lines before it come back in before. */
static void kt_established(struct kt_child *c, char *before, size_t len)
{
	char line[256];
	size_t off = 0;

	before[0] = '\0';
	while (kt_child_line(c->err, line, sizeof(line))) {
		if (!strcmp(line, "keventctl: watches established"))
			return;
		off += (size_t)snprintf(before + off, off < len ? len - off : 0, "%s\n", line);
	}
	cr_assert_fail("keventctl watch ended before its watches were in place: %s", before);
}

/* A directory of the test's own, short enough to name anything in it. */
static char tmpdir[64];

static void kt_rm_tmpdir(void)
{
	char out[256];

	if (tmpdir[0])
		kt_sh(out, sizeof(out), "rm -rf '%s'", tmpdir);
	tmpdir[0] = '\0';
}

static void kt_mkdtemp(const char *base)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/keventctl-test-XXXXXX", base);
	cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %m");
}

/*
 * One JSON line of an inode entry: the directory, the entry's event, inode and name. The
 * BPF path knows the inode of every entry; a syscall path may not (0: not known).
 */
static void kt_entry_line(const char *line, const char *event, ino_t ino, const char *name)
{
	const char *backend = getenv("KEVENT_BACKEND");
	bool exact = backend && !strcmp(backend, "bpf");
	char want[512];

	cr_assert(line[0] == '{' && line[strlen(line) - 1] == '}', "not a JSON line: %s", line);
	kt_has(line, "{\"time\":\"");
	snprintf(want, sizeof(want), "\"type\":\"inode\",\"source\":\"%s\",\"id\":[", tmpdir);
	kt_has(line, want);
	snprintf(want, sizeof(want), "\"events\":[\"%s\"],\"ret_flags\":[],\"ret_data\":[", event);
	kt_has(line, want);
	snprintf(want, sizeof(want), "\"entry\":{\"lost\":false,\"ino\":%llu,\"name\":\"%s\"}",
		 (unsigned long long)ino, name);
	if (!exact && !strstr(line, want))
		snprintf(want, sizeof(want), "\"entry\":{\"lost\":false,\"ino\":0,\"name\":\"%s\"}",
			 name);
	kt_has(line, want);
}

static ino_t kt_ino(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_eq(stat(path, &sb), 0, "stat %s: %m", path);
	return sb.st_ino;
}

Test(keventctl, k18_watch_json_three_changes_three_lines,
     .description = "K18: keventctl watch --json --file DIR --count 3 prints one JSON line per "
		    "change in DIR (mkdir, mkdir, rmdir), with the entries' names, and exits 0",
     .fini = kt_rm_tmpdir)
{
	char *argv[] = { KT_KEVENTCTL, "watch", "--json", "--file",    tmpdir,
			 "--count",    "3",	"--timeout", "20s",   NULL };
	char line[3][1024], rest[1024], path[PATH_MAX];
	struct kt_child c;
	ino_t a, b;

	/* Directories: no open, write or close of a file, which a syscall path may report. */
	kt_mkdtemp("/var/tmp");
	kt_child_start(&c, argv, 0);
	kt_established(&c, rest, sizeof(rest));
	snprintf(path, sizeof(path), "%s/a", tmpdir);
	cr_assert_eq(mkdir(path, 0755), 0, "mkdir %s: %m", path);
	a = kt_ino(tmpdir, "a");
	snprintf(path, sizeof(path), "%s/b", tmpdir);
	cr_assert_eq(mkdir(path, 0755), 0, "mkdir %s: %m", path);
	b = kt_ino(tmpdir, "b");
	snprintf(path, sizeof(path), "%s/a", tmpdir);
	cr_assert_eq(rmdir(path), 0, "rmdir %s: %m", path);

	for (int i = 0; i < 3; i++)
		cr_assert(kt_child_line(c.out, line[i], sizeof(line[i])), "line %d missing", i + 1);
	kt_child_rest(c.out, rest, sizeof(rest));
	cr_assert_str_empty(rest, "more than --count lines: %s", rest);
	cr_assert_eq(kt_child_wait(&c), 0, "--count reached: exit status 0");
	kt_entry_line(line[0], "CREATE", a, "a");
	kt_entry_line(line[1], "CREATE", b, "b");
	kt_entry_line(line[2], "REMOVE", a, "a");
}

Test(keventctl, keventctl_watch_socket_and_signal_json,
     .description = "keventctl watch --socket-listen 127.0.0.1:0 --signal USR1: a connection "
		    "is accepted and reported with its peer, USR1 is reported, and the watch "
		    "goes on (NOMASK)")
{
	char *argv[] = { KT_KEVENTCTL, "watch",   "--json",    "--socket-listen", "127.0.0.1:0",
			 "--signal",   "USR1",	  "--count",   "2",		  "--timeout",
			 "20s",	       NULL };
	struct sockaddr_in sin = { .sin_family = AF_INET }, me;
	socklen_t len = sizeof(me);
	char before[256], line[1024], want[128];
	unsigned int port;
	struct kt_child c;
	int s;

	kt_child_start(&c, argv, 0);
	kt_established(&c, before, sizeof(before));
	cr_assert_eq(sscanf(before, "keventctl: listening on 127.0.0.1:%u", &port), 1,
		     "where it listens: %s", before);
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(s, 0, "socket: %m");
	sin.sin_port = htons((in_port_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(s, (struct sockaddr *)&sin, sizeof(sin)), 0, "connect: %m");
	cr_assert_eq(getsockname(s, (struct sockaddr *)&me, &len), 0);

	cr_assert(kt_child_line(c.out, line, sizeof(line)), "no line for the connection");
	kt_has(line, "\"type\":\"socket\"");
	kt_has(line, "\"events\":[\"ACCEPT\"]");
	snprintf(want, sizeof(want), "\"source\":\"127.0.0.1:%u\"", port);
	kt_has(line, want);
	snprintf(want, sizeof(want), "\"peer\":\"127.0.0.1:%u\"", ntohs(me.sin_port));
	kt_has(line, want);

	cr_assert_eq(kill(c.pid, SIGUSR1), 0);
	cr_assert(kt_child_line(c.out, line, sizeof(line)), "no line for the signal");
	kt_has(line, "\"type\":\"signal\",\"source\":\"USR1\"");
	kt_has(line, "\"events\":[\"DELIVERY\"]");
	cr_assert_eq(kt_child_wait(&c), 0);
	close(s);
}

Test(keventctl, keventctl_watch_timer_count_and_timeout,
     .description = "keventctl watch --timer: --count 2 prints two text lines and exits 0; a "
		    "--timeout with no event exits 2 and prints nothing")
{
	char *counted[] = { KT_KEVENTCTL, "watch", "--timer", "10ms", "--count", "2",
			    "--timeout",  "20s",   NULL };
	char *idle[] = { KT_KEVENTCTL, "watch", "--timer", "1h", "--timeout", "50ms", NULL };
	char out[1024], err[256];

	cr_assert_eq(kt_run(counted, 0, out, sizeof(out), err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(kt_lines(out), 2, "two lines: %s", out);
	kt_has(out, " timer 10ms FIRED expirations ");
	cr_assert_eq(kt_run(idle, 0, out, sizeof(out), err, sizeof(err)), 2, "%s", err);
	cr_assert_str_empty(out);
}

/* This process's object in `keventctl ls --json`, cut out of the array. */
static char *kt_ls_self(char *all)
{
	char key[32], *me, *end;

	snprintf(key, sizeof(key), "{\"pid\":%d,", getpid());
	me = strstr(all, key);
	cr_assert_not_null(me, "this process (%d) is not listed:\n%s", getpid(), all);
	end = strstr(me + 1, "},{\"pid\":");
	if (end)
		end[1] = '\0';
	return me;
}

Test(keventctl, k17_k19_ls_bpf_shows_a_socket_and_a_timer, .init = kt_require_bpf,
     .description = "K17/K19: keventctl ls (text and --json) shows this process's queue, its "
		    "listening socket with its address, and its timer; a removed socket (a free "
		    "slot, fd -1 in kev_sockets) is not listed")
{
	char *json[] = { KT_KEVENTCTL, "ls", "--json", NULL };
	char *text[] = { KT_KEVENTCTL, "ls", NULL };
	struct ukevent timer = { .type = KEVENT_TIMER, .event = KEVENT_TIMER_FIRED,
				 .id.raw = { 3600, 0 } };
	static char out[1 << 20];
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char err[256], want[128], *me;
	int q, l, rx, tx;

	kt_require_bpf_source("socket");
	kt_require_bpf_source("timer");
	q = kt_queue();
	l = kt_tcp_listener();
	cr_assert_eq(getsockname(l, (struct sockaddr *)&sin, &len), 0);
	kt_add(q, kt_sock_ev(l, KEVENT_SOCKET_RECV, 0));
	kt_udp_pair(&rx, &tx);
	kt_add(q, kt_sock_ev(rx, KEVENT_SOCKET_RECV, 0));
	kt_done(q, KEVENT_CTL_REMOVE, kt_sock_ev(rx, KEVENT_SOCKET_RECV, 0));
	kt_add(q, timer);

	cr_assert_eq(kt_run(json, 0, out, sizeof(out), err, sizeof(err)), 0, "%s", err);
	cr_assert_str_empty(err);
	cr_assert_eq(kt_lines(out), 1, "one JSON document: %s", out);
	me = kt_ls_self(out);
	kt_has(me, "\"queues\":[{\"queue\":");
	snprintf(want, sizeof(want), "\"fd\":%d,\"queue\":", l);
	kt_has(me, want);
	snprintf(want, sizeof(want),
		 "\"proto\":\"tcp\",\"state\":\"LISTEN\",\"local\":\"127.0.0.1:%u\"",
		 ntohs(sin.sin_port));
	kt_has(me, want);
	kt_has(me, "\"events\":[\"RECV\"]");
	snprintf(want, sizeof(want), "\"fd\":%d,", rx);
	cr_assert_null(strstr(me, want), "the removed socket is listed: %s", me);
	cr_assert_null(strstr(me, "\"fd\":-1"), "a free slot is listed: %s", me);
	kt_has(me, "\"timers\":[{\"slot\":");
	kt_has(me, "\"oneshot\":false,\"fired\":false,\"next_in_ns\":");

	/* After a newline, the first line's too: a process's line begins with its pid. */
	out[0] = '\n';
	cr_assert_eq(kt_run(text, 0, out + 1, sizeof(out) - 1, err, sizeof(err)), 0, "%s", err);
	snprintf(want, sizeof(want), "\n%d ", getpid());
	me = strstr(out, want);
	cr_assert_not_null(me, "this process is not listed:\n%s", out);
	kt_has(me, ": 1 queue, 1 socket, 0 inodes, 1 timer\n");
	snprintf(want, sizeof(want), "  socket fd %d queue ", l);
	kt_has(me, want);
	snprintf(want, sizeof(want), " RECV tcp LISTEN 127.0.0.1:%u\n", ntohs(sin.sin_port));
	kt_has(me, want);
	kt_has(me, " periodic next in ");
	kt_close(q);
	close(l);
	close(rx);
	close(tx);
}

Test(keventctl, k24_stats_bpf_shows_queue_counters_and_programs, .init = kt_require_bpf,
     .description = "K24: keventctl stats PID shows this process's queue with its overflow "
		    "count from kev_qstats, and the socket programs by their full names")
{
	char pid[16], *json[] = { KT_KEVENTCTL, "stats", "--json", pid, NULL };
	char *text[] = { KT_KEVENTCTL, "stats", pid, NULL };
	char out[16384], err[256], want[64];
	int rx, tx, q;

	kt_require_bpf_source("socket");
	q = kt_udp_watched(&rx, &tx, 0);

	snprintf(pid, sizeof(pid), "%d", getpid());
	cr_assert_eq(kt_run(json, 0, out, sizeof(out), err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(kt_lines(out), 1, "one JSON document: %s", out);
	kt_has(out, "{\"bpf_stats_enabled\":");
	snprintf(want, sizeof(want), "\"processes\":[{\"pid\":%d,", getpid());
	kt_has(out, want);
	kt_has(out, "\"ring_overflows\":0,\"unread_records\":");
	kt_has(out, "\"interests\":1}");
	kt_has(out, "\"name\":\"kev_sk_data_ready\",\"type\":\"tracing\",\"run_cnt\":");

	cr_assert_eq(kt_run(text, 0, out, sizeof(out), err, sizeof(err)), 0, "%s", err);
	kt_has(out, ": 0 overflows, ");
	kt_has(out, "  program kev_sk_data_ready (tracing, id ");
	kt_close_pair(q, rx, tx);
}

Test(keventctl, keventctl_bad_input_one_line_exit_1,
     .description = "keventctl: an unknown command or option, a missing value or path, a "
		    "malformed duration, signal or address: one line on stderr, exit status 1, "
		    "nothing on stdout, never a crash")
{
	static const char *const cases[][8] = {
		{ NULL },
		{ "frobnicate" },
		{ "watch" },
		{ "watch", "--frobnicate" },
		{ "watch", "-x" },
		{ "watch", "--file" },
		{ "watch", "--file", "/nonexistent/keventctl-test" },
		{ "watch", "--file=" },
		{ "watch", "--timer", "5parsecs" },
		{ "watch", "--timer", "0" },
		{ "watch", "--timer", "1.s" },
		{ "watch", "--timer", "99999999999999999999s" },
		{ "watch", "--timer", "1s", "--timeout", "-1" },
		{ "watch", "--timer", "1s", "--count", "0" },
		{ "watch", "--signal", "NOSUCHSIGNAL" },
		{ "watch", "--signal", "KILL" },
		{ "watch", "--socket-listen", "1.2.3:80" },
		{ "watch", "--socket-listen", "127.0.0.1:65536" },
		{ "watch", "--socket-listen", "[::1:80" },
		{ "watch", "--socket-listen", "localhost" },
		{ "watch", "--timer", "1s", "stray" },
		{ "ls", "--frobnicate" },
		{ "ls", "stray" },
		{ "stats", "notapid" },
		{ "stats", "1", "2" },
	};
	char out[256], err[1024];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[10] = { KT_KEVENTCTL };

		for (size_t a = 0; a < 8 && cases[i][a]; a++)
			argv[a + 1] = (char *)cases[i][a];
		cr_assert_eq(kt_run(argv, 0, out, sizeof(out), err, sizeof(err)), 1,
			     "case %zu (%s %s): %s", i, argv[1] ?: "", argv[2] ?: "", err);
		cr_assert_str_empty(out, "case %zu: stdout %s", i, out);
		cr_assert_eq(kt_lines(err), 1, "case %zu: one line, not: %s", i, err);
		cr_assert(!strncmp(err, "keventctl: ", 11), "case %zu: %s", i, err);
	}
}

Test(keventctl, keventctl_ls_stats_without_privilege_one_line_exit_1,
     .description = "keventctl ls and stats run as nobody: one line saying root is needed, "
		    "exit status 1", .fini = kt_rm_tmpdir)
{
	char tool[PATH_MAX], out[256], err[1024];
	char *cmds[][3] = {
		{ tool, "ls", NULL },
		{ tool, "stats", NULL },
	};

	/* A copy nobody can run, wherever the build tree is. */
	kt_mkdtemp("/tmp");
	cr_assert_eq(chmod(tmpdir, 0755), 0, "chmod: %m");
	snprintf(tool, sizeof(tool), "%s/keventctl", tmpdir);
	cr_assert_eq(kt_sh(out, sizeof(out), "cp '%s' '%s'", KT_KEVENTCTL, tool), 0, "%s", out);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char *argv[3] = { cmds[i][0], cmds[i][1], NULL };

		cr_assert_eq(kt_run(argv, NOBODY, out, sizeof(out), err, sizeof(err)), 1,
			     "%s: %s", argv[1], err);
		cr_assert_str_empty(out);
		cr_assert_eq(kt_lines(err), 1, "%s: one line, not: %s", argv[1], err);
		kt_has(err, "root");
	}
}
