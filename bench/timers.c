// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Kernel timers (issue 6) against timerfd + epoll doing the same work, and the library's
 * syscall fallback (issue 12: one timerfd and a heap per queue, KEVENT_BACKEND=syscall) against
 * the same baseline, in rows of their own ("fallback: ..."):
 *   a) lateness of one 1 ms periodic timer, p50 / p99 over -n expiries;
 *   b) 10,000 periodic 100 ms timers for -t seconds: CPU the machine spent (the BPF timer
 *      callbacks run in softirq, outside any process's rusage, so this is /proc/stat busy
 *      time; the process's own CPU is a row too), expirations delivered, p99 lateness;
 *   c) arming 100,000 timers (fewer where descriptors are short, as in d): wall time;
 *   d) 1,000,000 one-shot timers 60 s ahead: wall time to arm and to remove, and the memory
 *      they hold while armed (kernel slab + process RSS). A timerfd is a descriptor: where
 *      the descriptor limit cannot be raised that far (no CAP_SYS_RESOURCE), both sides
 *      run at the largest count that fits, and libkevent alone at the full count;
 *   e) one 60 s timer restarted -s times (1,000,000: an idle timeout pushed back on every
 *      request), MODIFY against timerfd_settime(): time per restart, the memory left held
 *      afterwards, and how many timers the kernel then holds (kevent_stats()).
 * Lateness is the time from when an expiry was due (arm time + k * period) to when
 * userspace has it, merged expirations included. Each run measures the three sides in turn
 * (BPF, fallback, timerfd), so that the machine's noise hits all of them.
 *
 *   build/bench/timers [-r runs] [-t seconds] [-n expiries] [-m timers for d] [-s restarts]
 */
#include <malloc.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#include "bench.h"

#define MSEC 1000000ULL

static unsigned int expiries = 2000, big = 1000000, restarts = 1000000;
static double many_secs; /* -t: how long the 10,000 periodic timers run */

/* Who does the work: timerfds, libkevent's BPF timers, or its syscall fallback (K26). */
enum side { TFD, BPF, SYS, SIDES };

static const char *backend0; /* KEVENT_BACKEND as the caller set it, or NULL */
static bool bpf_missing;     /* the BPF side ran on the fallback: no BPF here */

/*
 * The path of the side's queues: the library reads KEVENT_BACKEND when it loads, at the
 * first kevent_init() after every queue closed, which each scenario does.
 */
static void side_env(enum side s)
{
	if (s == SYS)
		setenv("KEVENT_BACKEND", "syscall", 1);
	else if (backend0)
		setenv("KEVENT_BACKEND", backend0, 1);
	else
		unsetenv("KEVENT_BACKEND");
}

/* A queue for side s, whose timers take the path the side stands for. */
static int side_queue(enum side s)
{
	int q = bench_kevent_init(), b = kevent_backend(q, KEVENT_TIMER);

	if (s == SYS && b != KEVENT_BACKEND_SYSCALL)
		bench_die("KEVENT_BACKEND=syscall: timers still on path %d", b);
	if (s == BPF && b != KEVENT_BACKEND_BPF)
		bpf_missing = true;
	return q;
}

static struct ukevent timer_ev(uint64_t period_ns, __u32 flags, uint64_t user)
{
	struct ukevent uk = {.type = KEVENT_TIMER, .event = KEVENT_TIMER_FIRED, .req_flags = flags};

	uk.id.raw[0] = (__u32)(period_ns / NSEC_PER_SEC);
	uk.id.raw[1] = (__u32)(period_ns % NSEC_PER_SEC);
	uk.user_u64 = user;
	return uk;
}

static int timerfd_armed(uint64_t period_ns, bool periodic)
{
	struct itimerspec its = {
	    .it_value = {(time_t)(period_ns / NSEC_PER_SEC), (long)(period_ns % NSEC_PER_SEC)},
	};
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);

	if (periodic)
		its.it_interval = its.it_value;
	if (fd < 0 || timerfd_settime(fd, 0, &its, NULL))
		bench_die("timerfd: %s", strerror(errno));
	return fd;
}

/* Per-timer bookkeeping shared by both sides: when it was armed, how often it fired. */
struct tstate {
	uint64_t armed;
	uint64_t fired;
};

/* Record n merged expirations of timer t seen at `now`; returns the lateness in ns. */
static double expired(struct tstate *t, uint64_t period, uint64_t n, uint64_t now)
{
	uint64_t due;

	t->fired += n;
	due = t->armed + t->fired * period;
	return now > due ? (double)(now - due) : 0;
}

/* Busy CPU time of the whole machine (all CPUs), from /proc/stat, in ns. */
static uint64_t machine_busy_ns(void)
{
	unsigned long long v[8] = {0};
	FILE *f = fopen("/proc/stat", "r");

	if (!f || fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
			 &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
		bench_die("/proc/stat: cannot read");
	fclose(f);
	/* user nice system idle iowait irq softirq steal: all but idle and iowait */
	return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) * (NSEC_PER_SEC / sysconf(_SC_CLK_TCK));
}

/*
 * Kernel memory in slab objects, in kB: the objects allocated (/proc/slabinfo), not the
 * Slab: figure of /proc/meminfo, which also counts the free room an earlier row's freed
 * objects leave in the caches (a million timers armed then removed hide the next million).
 */
static long slab_kb(void)
{
	unsigned long long active, size, total = 0;
	char line[512];
	FILE *f = fopen("/proc/slabinfo", "r");

	if (!f)
		bench_die("/proc/slabinfo: %s", strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %llu %*u %llu", &active, &size) == 2)
			total += active * size;
	fclose(f);
	return (long)(total / 1024);
}

static long rss_kb(void)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			v = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

/*
 * Where held_mb() counts from. The memory an earlier scenario freed goes back to the system
 * first: reused, it would hide what the next one allocates from the process's RSS.
 */
static void held_start(long *slab0, long *rss0)
{
	malloc_trim(0);
	*slab0 = slab_kb();
	*rss0 = rss_kb();
}

/* What the timers hold: kernel slab objects and process memory, in MB. */
static double held_mb(long slab0, long rss0)
{
	return (double)(slab_kb() - slab0 + rss_kb() - rss0) / 1024.0;
}

/* One measurement of a side: lateness samples (ns) and counters. */
struct sample {
	double *late;
	size_t n, cap;
	uint64_t expirations, cpu_machine, cpu_self, wall;
};

static void sample_add(struct sample *s, double v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 4096;
		s->late = realloc(s->late, s->cap * sizeof(*s->late));
		if (!s->late)
			bench_die("out of memory");
	}
	s->late[s->n++] = v;
}

/* Run the timers until `stop` expirations or `until` (ns, monotonic); kevent side. */
static void drive_kevent(int q, struct tstate *t, uint64_t period, uint64_t stop, uint64_t until,
			 struct sample *s)
{
	struct ukevent ev[256];

	while (s->expirations < stop && bench_now_ns() < until) {
		int n = kevent_get_events(q, 1, 256, (struct timespec){0, 100 * MSEC}, ev, 0);
		uint64_t now = bench_now_ns();

		for (int i = 0; i < n; i++) {
			sample_add(s, expired(&t[ev[i].user_u64], period, ev[i].ret_data[1], now));
			s->expirations += ev[i].ret_data[1];
		}
	}
}

static void drive_timerfd(int ep, struct tstate *t, uint64_t period, uint64_t stop, uint64_t until,
			  struct sample *s)
{
	struct epoll_event ev[256];

	while (s->expirations < stop && bench_now_ns() < until) {
		int n = epoll_wait(ep, ev, 256, 100);
		uint64_t now = bench_now_ns();

		for (int i = 0; i < n; i++) {
			uint64_t x;

			if (read((int)(ev[i].data.u64 >> 32), &x, sizeof(x)) != sizeof(x))
				continue;
			sample_add(s, expired(&t[(uint32_t)ev[i].data.u64], period, x, now));
			s->expirations += x;
		}
	}
}

/* n periodic timers of `period`, driven for `secs` or `stop` expirations. */
static void run_periodic(enum side side, unsigned int n, uint64_t period, double secs,
			 uint64_t stop, struct sample *s)
{
	bool kevent = side != TFD;
	struct tstate *t = calloc(n, sizeof(*t));
	int *fds = calloc(n, sizeof(*fds)), q = -1, ep = -1;
	uint64_t m0, c0, until;

	if (!t || !fds)
		bench_die("out of memory");
	if (kevent) {
		struct ukevent *uk = calloc(n, sizeof(*uk));

		q = side_queue(side);
		for (unsigned int i = 0; i < n; i++)
			uk[i] = timer_ev(period, 0, i);
		t[0].armed = bench_now_ns();
		if (kevent_ctl(q, KEVENT_CTL_ADD, n, uk) != (int)n || uk[n - 1].ret_flags)
			bench_die("kevent_ctl ADD of %u timers failed", n);
		for (unsigned int i = 1; i < n; i++)
			t[i].armed = t[0].armed;
		free(uk);
	} else {
		ep = epoll_create1(EPOLL_CLOEXEC);
		for (unsigned int i = 0; i < n; i++) {
			struct epoll_event e = {.events = EPOLLIN};

			t[i].armed = bench_now_ns();
			fds[i] = timerfd_armed(period, true);
			e.data.u64 = (uint64_t)fds[i] << 32 | i;
			epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e);
		}
	}
	m0 = machine_busy_ns();
	c0 = bench_cpu_ns(RUSAGE_SELF);
	s->wall = bench_now_ns();
	until = s->wall + (uint64_t)(secs * NSEC_PER_SEC);
	if (kevent)
		drive_kevent(q, t, period, stop, until, s);
	else
		drive_timerfd(ep, t, period, stop, until, s);
	s->wall = bench_now_ns() - s->wall;
	s->cpu_machine = machine_busy_ns() - m0;
	s->cpu_self = bench_cpu_ns(RUSAGE_SELF) - c0;
	if (kevent)
		kevent_close(q);
	for (unsigned int i = 0; !kevent && i < n; i++)
		close(fds[i]);
	if (ep >= 0)
		close(ep);
	free(fds);
	free(t);
}

/* Arm n timers `ahead` from now (one-shot), then remove them; wall times in ms, memory MB. */
static void run_many(enum side side, unsigned int n, uint64_t ahead, double *arm, double *del,
		     double *mem)
{
	bool kevent = side != TFD;
	long slab0, rss0;
	uint64_t t0;
	int q = -1, *fds = NULL;
	struct ukevent *uk = NULL;

	if (kevent) {
		q = side_queue(side);
		uk = calloc(n, sizeof(*uk));
		if (!uk)
			bench_die("out of memory");
		for (unsigned int i = 0; i < n; i++)
			uk[i] = timer_ev(ahead, KEVENT_REQ_ONESHOT, i);
	} else {
		fds = calloc(n, sizeof(*fds));
		if (!fds)
			bench_die("out of memory");
	}
	held_start(&slab0, &rss0);
	t0 = bench_now_ns();
	if (kevent && (kevent_ctl(q, KEVENT_CTL_ADD, n, uk) != (int)n || uk[n - 1].ret_flags))
		bench_die("kevent_ctl ADD of %u timers: %d", n, (int)uk[n - 1].ret_data[1]);
	for (unsigned int i = 0; !kevent && i < n; i++)
		fds[i] = timerfd_armed(ahead, false);
	*arm = (double)(bench_now_ns() - t0) / MSEC;
	*mem = held_mb(slab0, rss0);
	t0 = bench_now_ns();
	if (kevent)
		kevent_ctl(q, KEVENT_CTL_REMOVE, n, uk);
	for (unsigned int i = 0; !kevent && i < n; i++)
		close(fds[i]);
	*del = (double)(bench_now_ns() - t0) / MSEC;
	if (kevent)
		kevent_close(q);
	free(uk);
	free(fds);
}

static void restart_one(bool kevent, int h, struct ukevent *uk, const struct itimerspec *its)
{
	bool ok;

	if (kevent)
		ok = kevent_ctl(h, KEVENT_CTL_MODIFY, 1, uk) == 1 &&
		     uk->ret_flags == KEVENT_RET_DONE;
	else
		ok = !timerfd_settime(h, 0, its, NULL);
	if (!ok)
		bench_die("restarting a timer failed");
}

/* Restart one 60 s timer n times; ns per restart, memory held afterwards (MB), kernel timers. */
static void run_restarts(enum side side, unsigned int n, double *ns, double *mem, double *held)
{
	bool kevent = side != TFD;
	struct itimerspec its = {.it_value = {60, 0}};
	struct ukevent uk = timer_ev(60 * NSEC_PER_SEC, 0, 0);
	struct kevent_stats st = {0};
	long slab0, rss0;
	uint64_t t0;
	int h;

	if (kevent) {
		h = side_queue(side);
		if (kevent_ctl(h, KEVENT_CTL_ADD, 1, &uk) != 1 || uk.ret_flags)
			bench_die("kevent_ctl ADD of a timer failed");
	} else {
		h = timerfd_armed(60 * NSEC_PER_SEC, false);
	}
	held_start(&slab0, &rss0);
	t0 = bench_now_ns();
	for (unsigned int i = 0; i < n; i++)
		restart_one(kevent, h, &uk, &its);
	*ns = (double)(bench_now_ns() - t0) / n;
	*mem = held_mb(slab0, rss0);
	if (kevent && kevent_stats(h, &st))
		bench_die("kevent_stats: %s", strerror(errno));
	*held = (double)st.kernel_timers;
	if (kevent)
		kevent_close(h);
	else
		close(h);
}

static double pct(struct sample *s, double p)
{
	return bench_percentile(s->late, s->n, p) / 1000.0;
}

/* Every figure of one side, a value per run. */
struct figs {
	struct bench_series lat50, lat99, cpu, self, rate, p99, arm100k, arm, del, mem, armbig,
		delbig, membig, rst, rstmem, rstheld;
};

/* One run of every scenario on one side. fitting: timerfds the descriptor limit allows. */
static void run_side(enum side side, unsigned int fitting, struct figs *f)
{
	struct sample one = {0}, many = {0};
	double a, d, m, held;

	side_env(side);
	run_periodic(side, 1, 1 * MSEC, 60, expiries, &one);
	bench_series_add(&f->lat50, pct(&one, 50));
	bench_series_add(&f->lat99, pct(&one, 99));
	run_periodic(side, 10000, 100 * MSEC, many_secs, UINT64_MAX, &many);
	bench_series_add(&f->cpu, (double)many.cpu_machine / (double)many.wall * 1000);
	bench_series_add(&f->self, (double)many.cpu_self / (double)many.wall * 1000);
	bench_series_add(&f->rate, (double)many.expirations * NSEC_PER_SEC / (double)many.wall);
	bench_series_add(&f->p99, pct(&many, 99));
	run_many(side, fitting < 100000 ? fitting : 100000, 60 * NSEC_PER_SEC, &a, &d, &m);
	bench_series_add(&f->arm100k, a);
	run_many(side, fitting, 60 * NSEC_PER_SEC, &a, &d, &m);
	bench_series_add(&f->arm, a);
	bench_series_add(&f->del, d);
	bench_series_add(&f->mem, m);
	if (side != TFD && fitting < big) {
		run_many(side, big, 60 * NSEC_PER_SEC, &a, &d, &m);
		bench_series_add(&f->armbig, a);
		bench_series_add(&f->delbig, d);
		bench_series_add(&f->membig, m);
	}
	run_restarts(side, restarts, &a, &m, &held);
	bench_series_add(&f->rst, a);
	bench_series_add(&f->rstmem, m);
	bench_series_add(&f->rstheld, held);
	free(one.late);
	free(many.late);
	side_env(BPF); /* KEVENT_BACKEND as the caller had it */
}

/* A row of one libkevent side (prefix: which) against timerfd+epoll. */
static void row(const char *prefix, const char *scenario, const char *unit,
		struct bench_series *k, struct bench_series *b, bool higher, const char *note)
{
	char name[96];

	snprintf(name, sizeof(name), "%s%s", prefix, scenario);
	bench_report_note(&(struct bench_row){name, unit, "timerfd+epoll", k, b, higher}, note);
}

/* libkevent alone at a count whose timerfds the descriptor limit does not allow. */
static void ref_row(const char *prefix, const char *scenario, const char *unit,
		    struct bench_series *k, unsigned int fitting)
{
	char why[96], name[96];

	snprintf(name, sizeof(name), "%s%s", prefix, scenario);
	snprintf(why, sizeof(why), "no timerfd side: the descriptor limit allows %u", fitting);
	bench_reference(name, unit, k, false, why);
}

/* The rows of one libkevent side (k) against the timerfds (b). */
static void report(const char *prefix, struct figs *k, struct figs *b, unsigned int fitting,
		   const char *note)
{
	unsigned int some = fitting < 100000 ? fitting : 100000;
	char name[3][64];

	row(prefix, "1 ms timer lateness p50", "us", &k->lat50, &b->lat50, false, note);
	row(prefix, "1 ms timer lateness p99", "us", &k->lat99, &b->lat99, false, note);
	row(prefix, "10k x 100 ms timers: machine CPU", "ms/s", &k->cpu, &b->cpu, false, note);
	row(prefix, "10k x 100 ms timers: process CPU", "ms/s", &k->self, &b->self, false, note);
	row(prefix, "10k x 100 ms timers: expirations", "/s", &k->rate, &b->rate, true, note);
	row(prefix, "10k x 100 ms timers: lateness p99", "us", &k->p99, &b->p99, false, note);
	snprintf(name[0], sizeof(name[0]), "arm %u timers", some);
	row(prefix, name[0], "ms", &k->arm100k, &b->arm100k, false, note);
	snprintf(name[0], sizeof(name[0]), "arm %u one-shot timers (60 s)", fitting);
	snprintf(name[1], sizeof(name[1]), "remove %u timers", fitting);
	snprintf(name[2], sizeof(name[2]), "memory of %u armed timers", fitting);
	row(prefix, name[0], "ms", &k->arm, &b->arm, false, note);
	row(prefix, name[1], "ms", &k->del, &b->del, false, note);
	row(prefix, name[2], "MB", &k->mem, &b->mem, false, note);
	if (fitting < big) {
		snprintf(name[0], sizeof(name[0]), "arm %u one-shot timers (60 s)", big);
		snprintf(name[1], sizeof(name[1]), "remove %u timers", big);
		snprintf(name[2], sizeof(name[2]), "memory of %u armed timers", big);
		ref_row(prefix, name[0], "ms", &k->armbig, fitting);
		ref_row(prefix, name[1], "ms", &k->delbig, fitting);
		ref_row(prefix, name[2], "MB", &k->membig, fitting);
	}
	snprintf(name[0], sizeof(name[0]), "%u restarts of one timer", restarts);
	snprintf(name[1], sizeof(name[1]), "memory after %u restarts", restarts);
	row(prefix, name[0], "ns each", &k->rst, &b->rst, false, note);
	row(prefix, name[1], "MB", &k->rstmem, &b->rstmem, false, note);
}

int main(int argc, char **argv)
{
	static struct figs f[SIDES];
	struct bench_opts o;
	unsigned int fitting;
	char buf[32], name[64];
	int c;

	bench_opts_init(&o, 10);
	while ((c = getopt(argc, argv, BENCH_OPTS "n:m:s:")) != -1) {
		if (c == 's')
			restarts = (unsigned int)strtoul(optarg, NULL, 0);
		else if (c == 'n')
			expiries = (unsigned int)strtoul(optarg, NULL, 0);
		else if (c == 'm')
			big = (unsigned int)strtoul(optarg, NULL, 0);
		else if (!bench_opt(&o, c, optarg))
			bench_die("usage: %s [-r runs] [-t seconds] [-n expiries] [-m timers] "
				  "[-s restarts]", argv[0]);
	}
	many_secs = o.secs;
	backend0 = getenv("KEVENT_BACKEND");
	/* Room for d): a million timers, and a million timerfds. */
	snprintf(buf, sizeof(buf), "%u", big + 16384);
	setenv("KEVENT_MAX_INTERESTS", buf, 1);
	fitting = (unsigned int)bench_nofile(big + 1024) - 1024;
	fitting = fitting > big ? big : fitting / 1000 * 1000;
	bench_begin("timers", &o);
	for (unsigned int r = 0; r < o.runs; r++) {
		run_side(BPF, fitting, &f[BPF]);
		run_side(SYS, fitting, &f[SYS]);
		run_side(TFD, fitting, &f[TFD]);
	}
	report("", &f[BPF], &f[TFD], fitting,
	       bpf_missing ? "BPF timers did not load here: this side ran on the fallback" : NULL);
	snprintf(name, sizeof(name), "kernel timers after %u restarts", restarts);
	row("", name, "timers", &f[BPF].rstheld, NULL, false, NULL);
	report("fallback: ", &f[SYS], &f[TFD], fitting, NULL);
	return 0;
}
