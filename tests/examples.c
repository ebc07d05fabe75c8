// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The examples in examples/ build and run (K9, K13, K17, K26): loop.c is the event loop that
 * libkevent(7) points a port at; it checks every echo itself and exits 0 only if all came.
 * paths.c prints which path each source takes, which tests/run-suite.sh relies on.
 */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "helpers.h"

TestSuite(examples, .timeout = KT_TEST_TIMEOUT);

extern char **environ;

Test(examples, k9_k17_minimal_event_loop_runs,
     .description = "K9/K13/K17: examples/loop.c (ALWAYS_QUEUE, MODIFY for SEND, close "
		    "without REMOVE) serves its clients and exits 0")
{
	char *argv[] = { KT_BUILD_DIR "/loop", NULL };
	int status;
	pid_t pid;

	cr_assert_eq(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ), 0, "spawn %s",
		     argv[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: status %#x", argv[0],
		  status);
}

/* What examples/paths printed for source `name` ("bpf", "syscall"), or "". */
static const char *paths_line(const char *out, const char *name, char *buf, size_t len)
{
	const char *p = out;
	size_t n = strlen(name);

	buf[0] = 0;
	for (; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (!strncmp(p, name, n) && p[n] == ' ') {
			snprintf(buf, len, "%.*s", (int)strcspn(p + n + 1, "\n"), p + n + 1);
			break;
		}
	}
	return buf;
}

Test(examples, k26_paths_names_each_source,
     .description = "K26: examples/paths prints the path of each BPF-served source, as "
		    "kevent_backend() gives it in this process")
{
	static const struct {
		unsigned int type;
		const char *name;
	} src[] = { { KEVENT_SOCKET, "socket" }, { KEVENT_INODE, "inode" }, { KEVENT_TIMER, "timer" } };
	char out[256] = "", buf[32];
	int q = kt_queue(), status, p[2], all = 1;
	posix_spawn_file_actions_t fa;
	char *argv[] = { KT_BUILD_DIR "/paths", NULL };
	ssize_t len = 0, r;
	pid_t pid;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
	cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	while ((r = read(p[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += r;
	close(p[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	for (size_t i = 0; i < sizeof(src) / sizeof(src[0]); i++) {
		int b = kevent_backend(q, src[i].type);
		const char *want = b == KEVENT_BACKEND_BPF ? "bpf" : "syscall";

		cr_assert(b == KEVENT_BACKEND_BPF || b == KEVENT_BACKEND_SYSCALL, "%s: %d",
			  src[i].name, b);
		cr_assert_str_eq(paths_line(out, src[i].name, buf, sizeof(buf)), want,
				 "%s: paths says \"%s\", kevent_backend %s", src[i].name, buf, want);
		all &= b == KEVENT_BACKEND_BPF;
	}
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == (all ? 0 : 2), "status %#x",
		  status);
	kt_close(q);
}
