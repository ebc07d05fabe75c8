/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * What the stress programs of tests/stress/ share: exit codes, setup failures, findings,
 * clocks and the process's own resources. Each program is run alone (make stress) or in a
 * short smoke version from make test; none asserts a timing.
 *
 * Exit status: 0 every invariant held, 1 a finding (printed), 2 the harness could not set
 * itself up (not a finding about the library).
 */
#ifndef KEV_STRESS_H
#define KEV_STRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "kevent.h"

#define ST_EXIT_OK	0
#define ST_EXIT_FINDING 1
#define ST_EXIT_SETUP	2

/* The harness itself failed (a system call it relies on, bad options): exit 2. */
void st_setup_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* Root is needed to load BPF programs; without it, exit 2 with a reason. */
void st_require_root(const char *prog);

/*
 * A broken invariant: counted, and printed up to a limit so a systematic failure does not
 * flood the log. Thread-safe.
 */
void st_finding(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t st_findings(void);

/* A number option: decimal, 0x hex, or with a k / M suffix (10M = 10,000,000). */
unsigned long st_number(const char *arg, const char *what);

double st_now(void); /* CLOCK_MONOTONIC, in seconds */
struct timespec st_ms(long ms);
void st_nofile(unsigned long n);

/* The process's own resources: open descriptors, resident set, heap in use. */
long st_fd_count(void);
long st_rss_kb(void);
long st_heap_kb(void);

/* kevent_stats() that must work. */
struct kevent_stats st_stats(int q);

#endif /* KEV_STRESS_H */
