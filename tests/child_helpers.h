/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * Helpers of the tests that drive programs as a user would (keventctl.c, install.c): a child
 * process whose output the test reads as it comes, and shell commands run to completion.
 * Everything asserts through Criterion.
 */
#ifndef KT_CHILD_HELPERS_H
#define KT_CHILD_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "helpers.h"

/* Hang guard for a child's next line: a BPF load on a busy machine (not a measurement). */
#define KT_CHILD_WAIT_MS 20000

/* The built keventctl (make asan: the one built with the sanitizers). */
#ifndef KT_KEVENTCTL
#define KT_KEVENTCTL KT_BUILD_DIR "/keventctl"
#endif

struct kt_child {
	pid_t pid;
	int out, err; /* its stdout and stderr, read ends */
};

/*
 * Start argv (argv[0] a path) with stdin from /dev/null; uid != 0: as that user and group,
 * where the caller may change user (else it runs as the caller, unprivileged already).
 */
void kt_child_start(struct kt_child *c, char *const argv[], uid_t uid);
/* The next line of fd, without its newline; false at the end of the output. */
bool kt_child_line(int fd, char *buf, size_t len);
/* Everything fd still gives, up to len - 1 bytes, NUL-terminated; returns the length. */
size_t kt_child_rest(int fd, char *buf, size_t len);
/* Wait for the child and close its pipes: its exit status (it must not die of a signal). */
int kt_child_wait(struct kt_child *c);
/* Run argv to its end: exit status, with stdout and stderr in out and err. */
int kt_run(char *const argv[], uid_t uid, char *out, size_t outlen, char *err, size_t errlen);
/* Lines in s (each ends with '\n'); -1 if the last one has no newline. */
int kt_lines(const char *s);
/* s holds what, anywhere; s holds line (one or more whole lines). */
void kt_has(const char *s, const char *what);
void kt_has_line(const char *s, const char *line);

/*
 * sh -c with the environment of a user at a shell: no make variables of a make that runs
 * the suite (its jobserver is not ours). Its output (stdout and stderr) goes into out.
 */
int kt_sh(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif /* KT_CHILD_HELPERS_H */
