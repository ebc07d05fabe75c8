// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Shared helpers of the stress programs (see stress.h).
 */
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "stress.h"

/* Findings printed in full; the rest are only counted. */
#define ST_FINDINGS_SHOWN 20

static uint64_t st_nfindings;

void st_setup_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("stress: setup failed: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(ST_EXIT_SETUP);
}

void st_require_root(const char *prog)
{
	if (geteuid())
		st_setup_fail("%s needs root (it loads BPF programs)", prog);
}

void st_finding(const char *fmt, ...)
{
	uint64_t n = __atomic_add_fetch(&st_nfindings, 1, __ATOMIC_RELAXED);
	char line[512];
	va_list ap;

	if (n > ST_FINDINGS_SHOWN) {
		if (n == ST_FINDINGS_SHOWN + 1)
			fputs("FINDING: (more findings are counted, not shown)\n", stderr);
		return;
	}
	/* One buffer, one write: lines of concurrent threads do not interleave. */
	fflush(stdout);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "FINDING: %s\n", line);
}

uint64_t st_findings(void)
{
	return __atomic_load_n(&st_nfindings, __ATOMIC_RELAXED);
}

unsigned long st_number(const char *arg, const char *what)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(arg, &end, 0);
	if (*end == 'k' || *end == 'M')
		n *= *end++ == 'k' ? 1000 : 1000000;
	if (errno || end == arg || *end)
		st_setup_fail("bad %s: %s", what, arg);
	return n;
}

double st_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct timespec st_ms(long ms)
{
	return (struct timespec){ .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
}

void st_nofile(unsigned long n)
{
	struct rlimit rl = { .rlim_cur = n, .rlim_max = n };

	if (setrlimit(RLIMIT_NOFILE, &rl))
		st_setup_fail("setrlimit(RLIMIT_NOFILE, %lu): %s", n, strerror(errno));
}

long st_fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	long n = 0;

	if (!d)
		st_setup_fail("/proc/self/fd: %s", strerror(errno));
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

long st_rss_kb(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f || fscanf(f, "%ld %ld", &pages, &rss) != 2)
		st_setup_fail("/proc/self/statm unreadable");
	fclose(f);
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* malloc's bytes in use: unlike the resident set, it goes down again when memory is freed. */
long st_heap_kb(void)
{
	struct mallinfo2 mi = mallinfo2();

	return (long)((mi.uordblks + mi.hblkhd) / 1024);
}

struct kevent_stats st_stats(int q)
{
	struct kevent_stats st;
	int r = kevent_stats(q, &st);

	if (r)
		st_setup_fail("kevent_stats(%d) = %d", q, r);
	return st;
}
