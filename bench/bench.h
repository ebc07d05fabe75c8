/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * What every bench program shares: options, clocks, statistics over runs, the table row
 * and its JSON line, and the loopback plumbing. Each bench/<name>.c is a program of its own,
 * so this is a header of static functions rather than a library.
 *
 * A figure is measured K times (-r, default 5), libkevent and its baseline alternating
 * (kevent, baseline, kevent, baseline, ...) so that the noise of a shared machine hits
 * both. A row reports the medians, the min..max of the runs, and ratio = libkevent /
 * baseline (medians): whether > 1 is good depends on higher_is_better.
 *
 * A row with no ratio always says why (the "note" of its JSON line): a reference row is a
 * figure with no baseline at all ("reference": true, "baseline_name": null); any other row
 * whose ratio is missing names what is missing, in the program's words or in bench_report()'s.
 *
 * JSON lines go to $BENCH_JSON, or else to bench.json in the directory above the program
 * (build/bench.json for build/bench/<name>), so a program run alone appends there too.
 */
#ifndef KEV_BENCH_H
#define KEV_BENCH_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "kevent.h"

#define BENCH_MAX_RUNS 64
#define NSEC_PER_SEC   1000000000ULL

struct bench_opts {
	unsigned int runs;
	double secs; /* per measurement, where the scenario is timed by duration */
};

/* Per-run values of one figure. */
struct bench_series {
	unsigned int n;
	double v[BENCH_MAX_RUNS];
};

/* One table row: kevent NULL (or empty) means "not available" in this build. */
struct bench_row {
	const char *scenario;
	const char *unit;
	const char *baseline_name;
	const struct bench_series *kevent;
	const struct bench_series *baseline;
	bool higher_is_better;
};

/* A row with its figures computed: what is printed and what the JSON line holds. */
struct bench_fig {
	char scenario[96], unit[24], baseline_name[48];
	double kevent, klo, khi, baseline, blo, bhi, ratio; /* NAN: none */
	unsigned int runs;
	bool higher_is_better;
	bool reference; /* a figure with no baseline: no ratio by design */
	char note[160]; /* why the ratio is missing, or what else the row needs said */
};

/* Children to take down with the program when it fails or gives up (bench_watchdog()). */
#define BENCH_MAX_KIDS 8
static volatile pid_t bench_kids[BENCH_MAX_KIDS];

static inline void bench_adopt(pid_t pid)
{
	for (int i = 0; i < BENCH_MAX_KIDS; i++)
		if (!bench_kids[i]) {
			bench_kids[i] = pid;
			return;
		}
}

static inline void bench_forget(pid_t pid)
{
	for (int i = 0; i < BENCH_MAX_KIDS; i++)
		if (bench_kids[i] == pid)
			bench_kids[i] = 0;
}

static inline void bench_kill_kids(void)
{
	for (int i = 0; i < BENCH_MAX_KIDS; i++)
		if (bench_kids[i])
			kill(bench_kids[i], SIGKILL);
}

static inline void __attribute__((format(printf, 1, 2), noreturn)) bench_die(const char *fmt, ...)
{
	va_list ap;

	bench_kill_kids();
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* CPU time (user + system) of the process (RUSAGE_SELF) or the calling thread. */
static inline uint64_t bench_cpu_ns(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * NSEC_PER_SEC +
	       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000;
}

/* xorshift64*: cheap, per thread, and the same sequence for both sides of a comparison. */
static inline uint64_t bench_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

/* Options every program takes; the caller's getopt loop hands the others to itself. */
#define BENCH_OPTS "r:t:h"

/* Run the calling thread (and what it forks from now on) on one CPU only. */
static inline void bench_pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		bench_die("sched_setaffinity CPU %d: %s", cpu, strerror(errno));
}

static inline void bench_opts_init(struct bench_opts *o, double secs)
{
	o->runs = 5;
	o->secs = secs;
}

/* Handle -r / -t; false for an option that is not one of them. */
static inline bool bench_opt(struct bench_opts *o, int c, const char *arg)
{
	if (c == 'r') {
		o->runs = (unsigned int)strtoul(arg, NULL, 0);
		if (o->runs < 1 || o->runs > BENCH_MAX_RUNS)
			bench_die("-r: 1 to %d runs", BENCH_MAX_RUNS);
		return true;
	}
	if (c == 't') {
		o->secs = strtod(arg, NULL);
		if (!(o->secs > 0 && o->secs <= 60))
			bench_die("-t: seconds, more than 0 and at most 60");
		return true;
	}
	return false;
}

/* A run that measured nothing (NAN) is left out rather than sorted among the others. */
static inline void bench_series_add(struct bench_series *s, double v)
{
	if (!isnan(v) && s->n < BENCH_MAX_RUNS)
		s->v[s->n++] = v;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The p-th percentile (0..100) of v[0..n), nearest rank; sorts v. NAN when n == 0. */
static inline double bench_percentile(double *v, size_t n, double p)
{
	size_t k;

	if (!n)
		return NAN;
	qsort(v, n, sizeof(*v), bench_cmp_double);
	k = (size_t)ceil(p / 100.0 * (double)n);
	return v[k ? k - 1 : 0];
}

static inline double bench_median(const struct bench_series *s, double *lo, double *hi)
{
	double v[BENCH_MAX_RUNS];

	if (!s || !s->n) {
		*lo = *hi = NAN;
		return NAN;
	}
	memcpy(v, s->v, s->n * sizeof(v[0]));
	qsort(v, s->n, sizeof(v[0]), bench_cmp_double);
	*lo = v[0];
	*hi = v[s->n - 1];
	/* Even run counts: the mean of the two middle runs. */
	return s->n & 1 ? v[s->n / 2] : (v[s->n / 2 - 1] + v[s->n / 2]) / 2;
}

/* A figure in at most 7 characters: 412.3k, 1.25M, 812, 61.4, 0.93. */
static inline const char *bench_num(char *buf, size_t len, double v)
{
	double a = fabs(v);

	if (isnan(v))
		snprintf(buf, len, "-");
	else if (a >= 1e6)
		snprintf(buf, len, "%.2fM", v / 1e6);
	else if (a >= 1e4)
		snprintf(buf, len, "%.1fk", v / 1e3);
	else if (a >= 100)
		snprintf(buf, len, "%.0f", v);
	else if (a >= 10)
		snprintf(buf, len, "%.1f", v);
	else
		snprintf(buf, len, "%.2f", v);
	return buf;
}

/* "412.3k [400.1k..420.5k]", or "not available". */
static inline const char *bench_cell(char *buf, size_t len, double v, double lo, double hi)
{
	char a[16], b[16], c[16];

	if (isnan(v))
		snprintf(buf, len, "not available");
	else
		snprintf(buf, len, "%s [%s..%s]", bench_num(a, sizeof(a), v),
			 bench_num(b, sizeof(b), lo), bench_num(c, sizeof(c), hi));
	return buf;
}

#define BENCH_ROW_FMT "%-52s %-11s %-25s %-25s %-18s %6s  %-3s"

static inline void bench_print_header(FILE *f)
{
	fprintf(f, BENCH_ROW_FMT "  %s\n", "scenario", "unit", "libkevent [min..max]",
		"baseline [min..max]", "baseline", "ratio", "higher_is_better", "note");
}

/* The ratio cell: the figure, "ref" for a reference row, "n/a" when a side is missing. */
static inline const char *bench_ratio_cell(char *buf, size_t len, const struct bench_fig *g)
{
	if (g->reference)
		snprintf(buf, len, "ref");
	else if (isnan(g->ratio))
		snprintf(buf, len, "n/a");
	else
		snprintf(buf, len, "%.2f", g->ratio);
	return buf;
}

/* One row: aligned text, or a line of a Markdown table (for the README). */
static inline void bench_print_fig(FILE *f, const struct bench_fig *g, bool markdown)
{
	const char *base = g->reference ? "-" : g->baseline_name;
	char k[64], b[64], r[16];

	bench_cell(k, sizeof(k), g->kevent, g->klo, g->khi);
	if (g->reference)
		snprintf(b, sizeof(b), "(reference row)");
	else
		bench_cell(b, sizeof(b), g->baseline, g->blo, g->bhi);
	bench_ratio_cell(r, sizeof(r), g);
	if (markdown)
		fprintf(f, "| %s | %s | %s | %s | %s | %s%s%s | %s |\n", g->scenario, g->unit, k, b,
			base, g->reference ? "reference" : r, g->note[0] ? ": " : "", g->note,
			g->higher_is_better ? "yes" : "no");
	else
		fprintf(f, BENCH_ROW_FMT "  %s\n", g->scenario, g->unit, k, b, base, r,
			g->higher_is_better ? "yes" : "no", g->note);
}

/* JSON has no NaN: a missing figure is null. */
static inline void bench_json_num(FILE *f, const char *key, double v)
{
	if (isnan(v))
		fprintf(f, "\"%s\":null", key);
	else
		fprintf(f, "\"%s\":%.6g", key, v);
}

static inline void bench_json_spread(FILE *f, const char *key, double lo, double hi)
{
	if (isnan(lo))
		fprintf(f, "\"%s\":null", key);
	else
		fprintf(f, "\"%s\":[%.6g,%.6g]", key, lo, hi);
}

/* "key":"s", or "key":null for an empty s; the strings are ours, but a quote must not break it. */
static inline void bench_json_str(FILE *f, const char *key, const char *s)
{
	if (!s[0]) {
		fprintf(f, "\"%s\":null", key);
		return;
	}
	fprintf(f, "\"%s\":\"", key);
	for (; *s; s++)
		fputc(*s == '"' || *s == '\\' ? '\'' : *s, f);
	fputc('"', f);
}

/* One flat object, keys in a fixed order: report.c reads them back by name. */
static inline void bench_json_line(FILE *f, const struct bench_fig *g)
{
	fputc('{', f);
	bench_json_str(f, "scenario", g->scenario);
	fputc(',', f);
	bench_json_str(f, "unit", g->unit);
	fputc(',', f);
	bench_json_num(f, "kevent", g->kevent);
	fputc(',', f);
	bench_json_num(f, "baseline", g->baseline);
	fputc(',', f);
	bench_json_str(f, "baseline_name", g->reference ? "" : g->baseline_name);
	fputc(',', f);
	bench_json_num(f, "ratio", g->ratio);
	fprintf(f, ",\"higher_is_better\":%s,\"reference\":%s,",
		g->higher_is_better ? "true" : "false", g->reference ? "true" : "false");
	bench_json_spread(f, "kevent_spread", g->klo, g->khi);
	fputc(',', f);
	bench_json_spread(f, "baseline_spread", g->blo, g->bhi);
	fprintf(f, ",\"runs\":%u,", g->runs);
	bench_json_str(f, "note", g->note);
	fputs("}\n", f);
}

/*
 * Reading a JSON line back (bench/report, bench/chart). Only what bench_json_line() writes:
 * one flat object a line, keys in a fixed order with no nesting but the two spreads, so a
 * few lines of matching do instead of a JSON parser.
 */

/* The text right after "key": in line, or NULL. */
static inline const char *bench_json_field(const char *line, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(line, pat);
	return p ? p + strlen(pat) : NULL;
}

static inline double bench_json_read_num(const char *line, const char *key)
{
	const char *p = bench_json_field(line, key);

	return p && strncmp(p, "null", 4) ? strtod(p, NULL) : NAN;
}

static inline bool bench_json_read_true(const char *line, const char *key)
{
	const char *p = bench_json_field(line, key);

	return p && !strncmp(p, "true", 4);
}

static inline void bench_json_read_str(const char *line, const char *key, char *out, size_t len)
{
	const char *p = bench_json_field(line, key), *end;

	out[0] = '\0';
	if (!p || *p != '"' || !(end = strchr(p + 1, '"')))
		return;
	snprintf(out, len, "%.*s", (int)(end - p - 1), p + 1);
}

static inline void bench_json_read_spread(const char *line, const char *key, double *lo,
					  double *hi)
{
	const char *p = bench_json_field(line, key);
	char *end;

	*lo = *hi = NAN;
	if (!p || *p != '[')
		return;
	*lo = strtod(p + 1, &end);
	if (*end == ',')
		*hi = strtod(end + 1, NULL);
}

/* The row a JSON line holds; false for a line that is not one. */
static inline bool bench_fig_read(const char *line, struct bench_fig *g)
{
	memset(g, 0, sizeof(*g));
	if (!bench_json_field(line, "scenario"))
		return false;
	bench_json_read_str(line, "scenario", g->scenario, sizeof(g->scenario));
	bench_json_read_str(line, "unit", g->unit, sizeof(g->unit));
	bench_json_read_str(line, "baseline_name", g->baseline_name, sizeof(g->baseline_name));
	g->kevent = bench_json_read_num(line, "kevent");
	g->baseline = bench_json_read_num(line, "baseline");
	g->ratio = bench_json_read_num(line, "ratio");
	g->runs = (unsigned int)bench_json_read_num(line, "runs");
	g->higher_is_better = bench_json_read_true(line, "higher_is_better");
	bench_json_read_spread(line, "kevent_spread", &g->klo, &g->khi);
	bench_json_read_spread(line, "baseline_spread", &g->blo, &g->bhi);
	g->reference = bench_json_read_true(line, "reference");
	bench_json_read_str(line, "note", g->note, sizeof(g->note));
	return true;
}

/* $BENCH_JSON, or bench.json one directory above this program's own directory. */
static inline const char *bench_json_path(char *path, size_t len)
{
	const char *env = getenv("BENCH_JSON");
	ssize_t n;

	if (env) {
		snprintf(path, len, "%s", env);
		return path;
	}
	n = readlink("/proc/self/exe", path, len - 16);
	if (n <= 0)
		return "bench.json";
	path[n] = '\0';
	for (int i = 0; i < 2; i++) {
		char *slash = strrchr(path, '/');

		if (slash)
			*slash = '\0';
	}
	strcat(path, "/bench.json");
	return path;
}

static inline FILE *bench_json_open(void)
{
	char buf[4096];
	const char *path = bench_json_path(buf, sizeof(buf));
	FILE *f = fopen(path, "a");

	if (!f)
		fprintf(stderr, "bench: cannot append to %s: %s\n", path, strerror(errno));
	return f;
}

/* Print a row (the table header before the first) and append its JSON line. */
static inline void bench_emit(const struct bench_fig *g)
{
	static bool header;
	FILE *f;

	if (!header) {
		bench_print_header(stdout);
		header = true;
	}
	bench_print_fig(stdout, g, false);
	fflush(stdout);
	f = bench_json_open();
	if (f) {
		bench_json_line(f, g);
		fclose(f);
	}
}

/* Why a comparison has no ratio, when its program did not say. */
static inline void bench_why(struct bench_fig *g)
{
	const char *what = "every run failed or was skipped";

	if (isnan(g->kevent) && isnan(g->baseline))
		snprintf(g->note, sizeof(g->note), "no figure on either side: %s", what);
	else if (isnan(g->kevent))
		snprintf(g->note, sizeof(g->note), "no libkevent figure: %s", what);
	else if (isnan(g->baseline))
		snprintf(g->note, sizeof(g->note), "no %s figure: %s", g->baseline_name, what);
	else
		snprintf(g->note, sizeof(g->note), "%s median is 0: no ratio", g->baseline_name);
}

/*
 * The row of one scenario against its baseline. note (NULL: none) is printed with it; a row
 * left without a ratio gets one in any case, saying which side is missing.
 */
static inline void bench_report_note(const struct bench_row *row, const char *note)
{
	struct bench_fig g = {.higher_is_better = row->higher_is_better};

	snprintf(g.scenario, sizeof(g.scenario), "%s", row->scenario);
	snprintf(g.unit, sizeof(g.unit), "%s", row->unit);
	snprintf(g.baseline_name, sizeof(g.baseline_name), "%s", row->baseline_name);
	snprintf(g.note, sizeof(g.note), "%s", note ? note : "");
	g.kevent = bench_median(row->kevent, &g.klo, &g.khi);
	g.baseline = bench_median(row->baseline, &g.blo, &g.bhi);
	g.ratio =
	    isnan(g.kevent) || isnan(g.baseline) || g.baseline == 0 ? NAN : g.kevent / g.baseline;
	g.runs =
	    row->kevent && row->kevent->n ? row->kevent->n : (row->baseline ? row->baseline->n : 0);
	if (isnan(g.ratio) && !g.note[0])
		bench_why(&g);
	bench_emit(&g);
}

static inline void bench_report(const struct bench_row *row)
{
	bench_report_note(row, NULL);
}

/*
 * A reference row: a libkevent figure with no baseline to hold it against (an absolute
 * cost, or a size the baseline cannot reach here). note says why there is no baseline.
 */
static inline void bench_reference(const char *scenario, const char *unit,
				   const struct bench_series *s, bool higher_is_better,
				   const char *note)
{
	struct bench_fig g = {.higher_is_better = higher_is_better, .reference = true};

	snprintf(g.scenario, sizeof(g.scenario), "%s", scenario);
	snprintf(g.unit, sizeof(g.unit), "%s", unit);
	snprintf(g.note, sizeof(g.note), "%s", note);
	g.kevent = bench_median(s, &g.klo, &g.khi);
	g.baseline = g.blo = g.bhi = g.ratio = NAN;
	g.runs = s ? s->n : 0;
	if (isnan(g.kevent))
		snprintf(g.note, sizeof(g.note), "no figure: every run failed or was skipped");
	bench_emit(&g);
}

/* The kernel keeps the first 15 characters of a program's name. */
static inline bool bench_prog_is(const struct bpf_prog_info *info, const char *name)
{
	return !strncmp(info->name, name, sizeof(info->name) - 1);
}

/*
 * A new descriptor (close it) for this process's own copy of the BPF program called name, or
 * -1. The library keeps no descriptor of an attached program, only its link: it is found
 * through that, once an interest of its family loaded it.
 */
static inline int bench_own_prog(const char *name)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int found = -1;

	while (d && found < 0 && (de = readdir(d))) {
		struct bpf_link_info link = {};
		struct bpf_prog_info info = {};
		__u32 len = sizeof(link);
		char path[300], target[64];
		int fd = atoi(de->d_name);
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0 || de->d_name[0] == '.')
			continue;
		target[n] = '\0';
		if (!strcmp(target, "anon_inode:bpf-prog"))
			fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		else if (!strcmp(target, "anon_inode:bpf_link") &&
			 !bpf_obj_get_info_by_fd(fd, &link, &len))
			fd = bpf_prog_get_fd_by_id(link.prog_id);
		else
			continue;
		len = sizeof(info);
		if (fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &len) &&
		    bench_prog_is(&info, name))
			found = fd;
		else if (fd >= 0)
			close(fd);
	}
	if (d)
		closedir(d);
	return found;
}

/*
 * Copies of the libkevent socket programs attached by other processes run on every socket of
 * the machine, ours included: count them, since they add to both sides of a comparison and
 * to the BPF figures. A process attaches them with its first socket interest; a copy that is
 * only loaded runs on nothing.
 */
static inline unsigned int bench_foreign_programs(void)
{
	int own_fd = bench_own_prog("kev_sk_data_ready");
	struct bpf_prog_info own = {};
	__u32 len = sizeof(own), id = 0;
	unsigned int total = 0;

	if (own_fd >= 0 && bpf_obj_get_info_by_fd(own_fd, &own, &len))
		own.id = 0;
	if (own_fd >= 0)
		close(own_fd);
	while (!bpf_link_get_next_id(id, &id)) {
		struct bpf_link_info link = {};
		struct bpf_prog_info info = {};
		int fd = bpf_link_get_fd_by_id(id), pfd;

		len = sizeof(link);
		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &link, &len) && link.prog_id != own.id &&
		    (pfd = bpf_prog_get_fd_by_id(link.prog_id)) >= 0) {
			len = sizeof(info);
			total += !bpf_obj_get_info_by_fd(pfd, &info, &len) &&
				 bench_prog_is(&info, "kev_sk_data_ready");
			close(pfd);
		}
		close(fd);
	}
	return total;
}

/* Start of a program: the machine's state. The table header comes with the first row. */
static inline void bench_begin(const char *name, const struct bench_opts *o)
{
	unsigned int foreign = bench_foreign_programs();
	FILE *f = fopen("/proc/sys/kernel/bpf_stats_enabled", "r");
	double load[3] = {0, 0, 0};
	int stats = 0;

	if (f) {
		if (fscanf(f, "%d", &stats) != 1)
			stats = 0;
		fclose(f);
	}
	getloadavg(load, 3);
	printf("# %s: %u runs, %ld CPUs online, load average %.2f\n", name, o->runs,
	       sysconf(_SC_NPROCESSORS_ONLN), load[0]);
	if (stats)
		printf("# warning: kernel.bpf_stats_enabled=1: every BPF program run pays for two "
		       "clock reads; set it to 0 for these figures\n");
	if (foreign)
		printf("# warning: %u other process(es) have the libkevent socket programs "
		       "attached; they run on every socket and skew these figures\n",
		       foreign);
	fflush(stdout);
}

/*
 * Allow n descriptors, raising the hard limit too where the process may (CAP_SYS_RESOURCE,
 * up to fs.nr_open). Returns how many it may have open now: n, or less when the hard
 * limit stays below it (a container without CAP_SYS_RESOURCE).
 */
static inline rlim_t bench_nofile(rlim_t n)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		bench_die("getrlimit: %s", strerror(errno));
	if (rl.rlim_cur >= n)
		return rl.rlim_cur;
	if (rl.rlim_max < n) {
		struct rlimit want = {n, n};

		if (!setrlimit(RLIMIT_NOFILE, &want))
			return n;
	}
	rl.rlim_cur = rl.rlim_max < n ? rl.rlim_max : n;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		bench_die("setrlimit: %s", strerror(errno));
	return rl.rlim_cur;
}

/*
 * A library that hangs must not hang `make bench`: past the time bench_watchdog() allows,
 * the program says so and exits, killing the children it still has.
 */
static inline void bench_on_alarm(int sig)
{
	static const char msg[] = "bench: gave up: a measurement did not finish in time "
				  "(a hang in the library?)\n";

	(void)sig;
	bench_kill_kids();
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(3);
	_exit(3);
}

static inline void bench_watchdog(unsigned int secs)
{
	signal(SIGALRM, bench_on_alarm);
	alarm(secs);
}

/*
 * Run fn in a child process that writes len bytes of results to the pipe it is given,
 * and wait at most timeout seconds for them. A kevent measurement in a process of its
 * own also leaves no BPF program attached for the next (baseline) one: they go with it.
 * false (and the child killed) when it died or did not answer in time.
 */
static inline bool bench_child(void (*fn)(int out, void *arg), void *arg, void *res, size_t len,
			       double timeout)
{
	struct pollfd pfd = {.events = POLLIN};
	int fds[2], status;
	size_t got = 0;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC))
		bench_die("pipe: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		bench_die("fork: %s", strerror(errno));
	if (!pid) {
		signal(SIGALRM, SIG_DFL);
		alarm(0);
		close(fds[0]);
		fn(fds[1], arg);
		_exit(0);
	}
	bench_adopt(pid);
	close(fds[1]);
	pfd.fd = fds[0];
	while (got < len && poll(&pfd, 1, (int)(timeout * 1000)) == 1) {
		ssize_t n = read(fds[0], (char *)res + got, len - got);

		if (n <= 0)
			break;
		got += n;
	}
	if (got < len)
		kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	bench_forget(pid);
	close(fds[0]);
	return got == len;
}

/*
 * Counters for "per request" and "per hop" rows, read outside the timed windows.
 *
 * irq_work: the IWI line of /proc/interrupts (x86's irq_work self-interrupts, which is how
 * the BPF ring buffer wakes a consumer), summed over CPUs. Machine-wide: whatever else
 * runs on the machine adds to both sides of a comparison. NAN where there is no such line.
 */
static inline double bench_irq_work(void)
{
	FILE *f = fopen("/proc/interrupts", "r");
	char line[4096];
	double sum = NAN;

	while (f && fgets(line, sizeof(line), f)) {
		char *p = line + strspn(line, " "), *end;

		if (strncmp(p, "IWI:", 4))
			continue;
		sum = 0;
		for (p += 4;; p = end) {
			unsigned long long v = strtoull(p, &end, 10);

			if (end == p)
				break;
			sum += (double)v;
		}
		break;
	}
	if (f)
		fclose(f);
	return sum;
}

/* Context switches (voluntary + involuntary) of every thread of process pid so far. */
static inline double bench_ctxsw(pid_t pid)
{
	char path[64], line[256];
	struct dirent *de;
	double sum = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return NAN;
	while ((de = readdir(d))) {
		FILE *f;
		unsigned long v;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/status", (int)pid, de->d_name);
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "voluntary_ctxt_switches: %lu", &v) == 1 ||
			    sscanf(line, "nonvoluntary_ctxt_switches: %lu", &v) == 1)
				sum += (double)v;
		if (f)
			fclose(f);
	}
	closedir(d);
	return sum;
}

/*
 * System calls of one process over a window, counted by `perf stat -e raw_syscalls:sys_enter
 * -p pid`, or by `strace -c -f -p pid` where perf cannot (bench_syscount_tool() says which).
 * Counting makes every system call of the machine take the kernel's traced path (about 35 ns
 * more for the counted process and 7 ns for the others here; strace far more), so the
 * programs count in a pass or run of its own, never in a timed one.
 *
 * perf starts with its counter disabled (-D -1) and is switched on and off through its
 * control pipe, each command acknowledged: the count covers exactly the window between
 * bench_syscount_on() and bench_syscount_off(). strace has no such switch: it counts from
 * its attach (seen on its stderr) to its stop, so a window in which the process is idle
 * around the measured one adds next to nothing.
 */
struct bench_syscount {
	pid_t tool;   /* perf or strace; 0 when neither runs */
	int ctl, ack; /* perf's control and acknowledgement pipes; -1 for strace */
	int out;      /* the tool's stderr: its report */
	bool strace;
};

static inline const char *bench_syscount_tool(const struct bench_syscount *sc)
{
	return !sc->tool ? "none" : sc->strace ? "strace -c" : "perf stat";
}

/* Fork argv with stderr on a pipe (returned in *out); keep[] stay open in the child. */
static inline pid_t bench_spawn_tool(char *const argv[], int *out, const int *keep, int nkeep)
{
	int err[2];
	pid_t pid;

	if (pipe2(err, O_CLOEXEC))
		return -1;
	fflush(stdout);
	pid = fork();
	if (!pid) {
		int null = open("/dev/null", O_WRONLY);

		dup2(err[1], STDERR_FILENO);
		dup2(null, STDOUT_FILENO);
		for (int i = 0; i < nkeep; i++)
			fcntl(keep[i], F_SETFD, 0);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(err[1]);
	if (pid < 0) {
		close(err[0]);
		return -1;
	}
	*out = err[0];
	return pid;
}

/* Send perf a command ("enable", "disable") and wait for its acknowledgement. */
static inline bool bench_perf_ctl(struct bench_syscount *sc, const char *cmd)
{
	struct pollfd pfd = {.fd = sc->ack, .events = POLLIN};
	char ack[16];

	if (write(sc->ctl, cmd, strlen(cmd)) != (ssize_t)strlen(cmd) || poll(&pfd, 1, 10000) != 1)
		return false;
	return read(sc->ack, ack, sizeof(ack)) > 0 && !strncmp(ack, "ack", 3);
}

/* Reap the tool and close its pipes. */
static inline void bench_syscount_reap(struct bench_syscount *sc)
{
	if (sc->tool > 0) {
		kill(sc->tool, SIGINT);
		waitpid(sc->tool, NULL, 0);
	}
	sc->tool = 0;
	if (sc->ctl >= 0)
		close(sc->ctl);
	if (sc->ack >= 0)
		close(sc->ack);
	close(sc->out);
	sc->ctl = sc->ack = -1;
}

static inline bool bench_perf_attach(struct bench_syscount *sc, pid_t pid)
{
	int ctl[2], ack[2];
	char p[16], control[48];
	char *argv[] = {"perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-D", "-1",
			"--control", control, "-p", p, NULL};

	if (pipe2(ctl, O_CLOEXEC) || pipe2(ack, O_CLOEXEC))
		bench_die("pipe: %s", strerror(errno));
	snprintf(p, sizeof(p), "%d", (int)pid);
	snprintf(control, sizeof(control), "fd:%d,%d", ctl[0], ack[1]);
	sc->strace = false;
	sc->tool = bench_spawn_tool(argv, &sc->out, (int[]){ctl[0], ack[1]}, 2);
	close(ctl[0]);
	close(ack[1]);
	sc->ctl = ctl[1];
	sc->ack = ack[0];
	if (sc->tool < 0) {
		sc->tool = 0;
		close(sc->ctl);
		close(sc->ack);
		return false;
	}
	/* Enabled and at once disabled: proof that perf runs and its counter is attached. */
	if (bench_perf_ctl(sc, "enable") && bench_perf_ctl(sc, "disable"))
		return true;
	bench_syscount_reap(sc);
	return false;
}

/* strace counts from its attach: wait for it to say so on its stderr. */
static inline bool bench_strace_attach(struct bench_syscount *sc, pid_t pid)
{
	struct pollfd pfd = {.events = POLLIN};
	char p[16], buf[512];
	char *argv[] = {"strace", "-c", "-f", "-p", p, NULL};
	size_t got = 0;

	snprintf(p, sizeof(p), "%d", (int)pid);
	sc->strace = true;
	sc->ctl = sc->ack = -1;
	sc->tool = bench_spawn_tool(argv, &sc->out, NULL, 0);
	if (sc->tool < 0) {
		sc->tool = 0;
		return false;
	}
	pfd.fd = sc->out;
	while (got < sizeof(buf) - 1 && poll(&pfd, 1, 10000) == 1) {
		ssize_t n = read(sc->out, buf + got, sizeof(buf) - 1 - got);

		if (n <= 0)
			break;
		got += n;
		buf[got] = '\0';
		if (strstr(buf, "attached"))
			return true;
	}
	bench_syscount_reap(sc);
	return false;
}

/*
 * Attach a counter to pid, switched off; false when neither perf nor strace can. A perf that
 * exits early leaves its control pipe without a reader: writing a command to it must fail
 * with EPIPE rather than kill the caller, so SIGPIPE is ignored from then on.
 */
static inline bool bench_syscount_attach(struct bench_syscount *sc, pid_t pid)
{
	signal(SIGPIPE, SIG_IGN);
	*sc = (struct bench_syscount){.ctl = -1, .ack = -1, .out = -1};
	return bench_perf_attach(sc, pid) || bench_strace_attach(sc, pid);
}

static inline bool bench_syscount_on(struct bench_syscount *sc)
{
	return sc->strace || bench_perf_ctl(sc, "enable");
}

static inline bool bench_syscount_off(struct bench_syscount *sc)
{
	return sc->strace || bench_perf_ctl(sc, "disable");
}

/*
 * Stop the tool and read its count: perf's CSV line for the event ("<count>,,raw_syscalls:
 * sys_enter,..."; "<not counted>" is 0), or the "total" line of strace's summary. NAN when
 * the report holds neither.
 */
static inline double bench_syscount_finish(struct bench_syscount *sc)
{
	double count = NAN;
	char line[512];
	FILE *f;

	if (!sc->tool)
		return NAN;
	kill(sc->tool, SIGINT);
	f = fdopen(dup(sc->out), "r");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long v, calls;
		double pct, secs;

		if (!sc->strace && strstr(line, "raw_syscalls:sys_enter"))
			count = sscanf(line, "%llu,", &v) == 1 ? (double)v : 0;
		else if (sc->strace && strstr(line, "total") &&
			 sscanf(line, "%lf %lf %*u %llu", &pct, &secs, &calls) == 3)
			count = (double)calls;
	}
	if (f)
		fclose(f);
	bench_syscount_reap(sc);
	return count;
}

/* A queue without a ring, or exit: every scenario needs one. */
/*
 * A queue for the benchmark's libkevent side: on the BPF path (KEVENT_INIT_BPF: a row never
 * measures the fallback by accident), unless the process runs the syscall path on purpose
 * (bench_syscall_path()).
 */
static inline int bench_kevent_init(void)
{
	const char *b = getenv("KEVENT_BACKEND");
	int q = kevent_init(NULL, 0, b && !strcmp(b, "syscall") ? 0 : KEVENT_INIT_BPF);

	if (q < 0)
		bench_die("kevent_init: %s (run as root)", strerror(-q));
	return q;
}

/* From here on, this process's libkevent runs every source on its syscall fallback (K26). */
static inline void bench_syscall_path(void)
{
	if (setenv("KEVENT_BACKEND", "syscall", 1))
		bench_die("setenv: %s", strerror(errno));
}

/* A TCP listener on 127.0.0.1, ephemeral port. */
static inline int bench_listen(uint16_t *port, int flags)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, 4096) ||
	    getsockname(fd, (struct sockaddr *)&sin, &len))
		bench_die("listening socket: %s", strerror(errno));
	*port = ntohs(sin.sin_port);
	return fd;
}

static inline int bench_connect(uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)))
		bench_die("connect to 127.0.0.1:%u: %s", port, strerror(errno));
	return fd;
}

/* Small messages go out at once: no Nagle delay on either side. */
static inline void bench_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static inline void bench_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* n loopback TCP connections: cli[i] connected to srv[i] (non-blocking, no Nagle). */
static inline void bench_tcp_pairs(int *cli, int *srv, unsigned int n)
{
	uint16_t port;
	int lfd = bench_listen(&port, 0);

	for (unsigned int i = 0; i < n; i++) {
		cli[i] = bench_connect(port);
		srv[i] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (srv[i] < 0)
			bench_die("accept: %s", strerror(errno));
		bench_nodelay(cli[i]);
		bench_nodelay(srv[i]);
	}
	close(lfd);
}

/* A socket interest as the benches register it: RECV (ACCEPT), ptr = the caller's tag. */
static inline struct ukevent bench_sock_entry(int fd, __u32 event, __u32 req_flags, void *ptr)
{
	return (struct ukevent){.id.raw[0] = (__u32)fd,
				.type = KEVENT_SOCKET,
				.event = event,
				.req_flags = req_flags,
				.ptr = ptr};
}

#endif /* KEV_BENCH_H */
