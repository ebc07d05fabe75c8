// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Child processes of the suite (see child_helpers.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child_helpers.h"

/* In the child: between fork() and exec(), only async-signal-safe calls. */
static void kt_child_exec(char *const argv[], uid_t uid, int out[2], int err[2])
{
	int null = open("/dev/null", O_RDONLY);

	if (null < 0 || dup2(null, 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
		_exit(126);
	/* Without the capabilities to become uid, the caller is unprivileged already. */
	if (uid && getuid() != uid &&
	    (setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid)) &&
	    errno != EPERM)
		_exit(126);
	execv(argv[0], argv);
	_exit(127);
}

void kt_child_start(struct kt_child *c, char *const argv[], uid_t uid)
{
	int out[2], err[2];

	cr_assert_eq(pipe2(out, O_CLOEXEC), 0, "pipe: %m");
	cr_assert_eq(pipe2(err, O_CLOEXEC), 0, "pipe: %m");
	fflush(NULL);
	c->pid = fork();
	cr_assert_geq(c->pid, 0, "fork: %m");
	if (!c->pid)
		kt_child_exec(argv, uid, out, err);
	close(out[1]);
	close(err[1]);
	c->out = out[0];
	c->err = err[0];
}

/* One byte of fd, waiting at most KT_CHILD_WAIT_MS; false at the end. */
static bool kt_child_byte(int fd, char *b)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	cr_assert_gt(poll(&p, 1, KT_CHILD_WAIT_MS), 0, "the child said nothing for %d ms",
		     KT_CHILD_WAIT_MS);
	do
		n = read(fd, b, 1);
	while (n < 0 && errno == EINTR);
	return n == 1;
}

bool kt_child_line(int fd, char *buf, size_t len)
{
	size_t n = 0;
	char b = 0;

	while (kt_child_byte(fd, &b) && b != '\n')
		if (n + 1 < len)
			buf[n++] = b;
	buf[n] = '\0';
	return n || b == '\n';
}

size_t kt_child_rest(int fd, char *buf, size_t len)
{
	size_t n = 0;
	char b;

	while (kt_child_byte(fd, &b))
		if (n + 1 < len)
			buf[n++] = b;
	buf[n] = '\0';
	return n;
}

int kt_child_wait(struct kt_child *c)
{
	int status;

	cr_assert_eq(waitpid(c->pid, &status, 0), c->pid, "waitpid: %m");
	close(c->out);
	close(c->err);
	cr_assert(WIFEXITED(status), "the child died of signal %d", WTERMSIG(status));
	return WEXITSTATUS(status);
}

int kt_run(char *const argv[], uid_t uid, char *out, size_t outlen, char *err, size_t errlen)
{
	struct kt_child c;

	kt_child_start(&c, argv, uid);
	/* Small outputs: the pipe holds one while the other is read. */
	kt_child_rest(c.out, out, outlen);
	kt_child_rest(c.err, err, errlen);
	return kt_child_wait(&c);
}

int kt_lines(const char *s)
{
	size_t len = strlen(s);
	int n = 0;

	for (size_t i = 0; i < len; i++)
		n += s[i] == '\n';
	return len && s[len - 1] != '\n' ? -1 : n;
}

void kt_has(const char *s, const char *what)
{
	cr_assert_not_null(strstr(s, what), "no %s in:\n%s", what, s);
}

void kt_has_line(const char *s, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = s; (p = strstr(p, line)); p++)
		if ((p == s || p[-1] == '\n') && p[n] == '\n')
			return;
	cr_assert_fail("no line %s in:\n%s", line, s);
}

int kt_sh(char *out, size_t len, const char *fmt, ...)
{
	static const char *const make_env[] = { "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEFILES" };
	char *cmd, *argv[] = { "/bin/sh", "-c", NULL, NULL };
	char err[256];
	va_list ap;
	int r;

	va_start(ap, fmt);
	cr_assert_geq(vasprintf(&cmd, fmt, ap), 0);
	va_end(ap);
	for (size_t i = 0; i < sizeof(make_env) / sizeof(make_env[0]); i++)
		unsetenv(make_env[i]);
	/* Both outputs in one, in order: the command's own 2>&1. */
	r = asprintf(&argv[2], "exec 2>&1; %s", cmd);
	cr_assert_geq(r, 0);
	r = kt_run(argv, 0, out, len, err, sizeof(err));
	free(argv[2]);
	free(cmd);
	return r;
}
