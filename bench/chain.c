// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The event-loop chain (issue 11, item 5), the pattern of libevent's bench.c: N AF_UNIX
 * socketpairs in a ring, A of them holding a byte at the start ("active", spread evenly);
 * each readiness callback reads its pair's byte and writes one byte to the next pair, until
 * W bytes have been written: W hops a run. libkevent against epoll doing the same work, in
 * level mode (the default of both) and edge-triggered (KEVENT_REQ_ET against EPOLLET).
 *
 * Both sides are driven as an event loop drives them: wait for a batch (kevent_get_events /
 * epoll_wait, blocking), then run the callbacks of the batch, then wait again. The writes of
 * the callbacks therefore land while the loop is between waits, which is where a queue that
 * wakes its consumer from the kernel for every new event pays for it (issue 11, item 1).
 *
 * Level mode, as in libevent: a callback reads one byte and writes one, so a hop is a callback
 * even where bytes meet (with every pair active, a pair is written before its own byte is
 * read): the pair stays readable and the next wait delivers it again. ET must leave the pair
 * dry for its next edge, so there a callback reads with a buffer larger than A (at most A
 * bytes are in flight: one short read drains the pair, with no extra read to see EAGAIN)
 * and passes on as many bytes as it read. With the active pairs at least 2 apart (A <= N/2,
 * spread evenly, each batch whole) bytes never meet and a hop is a callback in ET too;
 * ET with A > N/2 is not run, since merged bytes would make it a different workload.
 * An event that finds its pair empty is "spurious" (-v counts them). A wait that brings
 * nothing for a second while bytes are in flight is a lost event: the run "stalls", its
 * figure is dropped and the program says so.
 *
 * libkevent registers with KEVENT_REQ_ALWAYS_QUEUE: the pairs are empty at registration, but
 * a pair found readable then must be queued rather than returned at once and dropped (K9).
 *
 * Each (pairs, mode, active) measurement runs in a child process: the loop is set up (not
 * timed), runs an untimed warm-up of W/10 hops, then the timed run of W hops. libkevent and
 * epoll alternate measurement by measurement, and the BPF programs of a libkevent child are
 * gone before the epoll child that follows it. Rows give the median and [min..max] over
 * -r runs (default 9: a timed run lasts 10 to 100 ms) of
 *   - time/run (ms) and time/hop (ns, time/run / W), wall clock of the timed run;
 *   - irq_work/hop: IWI interrupts of the whole machine over the timed run (bench.h), per
 *     hop; the epoll side shows what the rest of the machine adds;
 *   - syscalls/hop: system calls of the child over one more run of W hops after the timed
 *     one, counted by perf stat (or strace, which the output names), in the first round
 *     only (one figure): counting slows every system call, so it is kept out of the timed
 *     run. It includes the A initial writes and about 3 calls of the counter's own control.
 *
 *   build/bench/chain [-r runs] [-n pairs] [-a active] [-w writes] [-m level|et] [-C] [-v]
 *     -n, -a: one value instead of 100 and 1,000 pairs, 1, 10 and 100 active
 *     -C: no system call counting
 */
#include <sys/epoll.h>

#include "bench.h"

#define MAX_PAIRS  10000
#define MAX_ACTIVE 1024 /* the read buffer: at most this many bytes in flight */
#define BATCH	   256	/* events per wait, both sides */
#define WAIT_MS	   1000 /* a wait this long with bytes in flight: a lost event */

enum side { KEV, EPOLL, NR_SIDES };

static const char *const trig_name[2] = {"level", "ET"};
static const char *const base_name[2] = {"epoll LT", "epoll ET"};

static unsigned int maxpairs;
static int *rd, *wr; /* pair i: the loop watches rd[i], the previous pair writes wr[i] */
static bool verbose;

/* One measurement, as the child is told to make it. */
struct pass_arg {
	enum side side;
	bool et, count;
	unsigned int pairs, active, writes;
};

/* What the child sends back. */
struct pass_res {
	double ns, irq, syscalls; /* timed run; IWI over it; system calls of the counted run */
	unsigned long waits, spurious;
	bool stalled;
	char tool[16];
};

/* The loop of one side: a queue or an epoll set, and the batch it waits for. */
struct loop {
	enum side side;
	int fd;
	struct ukevent kev[BATCH];
	struct epoll_event eev[BATCH];
};

/* The chain's state within a run. */
struct chain {
	unsigned int pairs, left, consumed; /* writes still to make; bytes read */
	size_t grab;			    /* bytes a callback reads: 1, or all (ET) */
	unsigned long spurious;
};

static void make_pairs(unsigned int n)
{
	rd = calloc(n, sizeof(*rd));
	wr = calloc(n, sizeof(*wr));
	if (!rd || !wr)
		bench_die("out of memory");
	for (unsigned int i = 0; i < n; i++) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
			bench_die("socketpair: %s", strerror(errno));
		rd[i] = sv[0];
		wr[i] = sv[1];
	}
}

/* Read every pair dry: what a stalled or killed run left must not reach the next one. */
static void drain_pairs(void)
{
	char buf[MAX_ACTIVE];

	for (unsigned int i = 0; i < maxpairs; i++)
		while (read(rd[i], buf, sizeof(buf)) > 0)
			;
}

static void kev_open(struct loop *l, bool et, unsigned int n)
{
	struct ukevent *uk = calloc(n, sizeof(*uk));
	int ret;

	if (!uk)
		bench_die("out of memory");
	l->fd = bench_kevent_init();
	for (unsigned int i = 0; i < n; i++) {
		uk[i] = bench_sock_entry(rd[i], KEVENT_SOCKET_RECV,
					 (et ? KEVENT_REQ_ET : 0) | KEVENT_REQ_ALWAYS_QUEUE, NULL);
		uk[i].user[0] = i;
	}
	ret = kevent_ctl(l->fd, KEVENT_CTL_ADD, n, uk);
	if (ret != (int)n)
		bench_die("kevent_ctl ADD: %d", ret);
	for (unsigned int i = 0; i < n; i++)
		if (uk[i].ret_flags & KEVENT_RET_BROKEN)
			bench_die("kevent_ctl ADD pair %u: error %d", i, (int)uk[i].ret_data[1]);
	free(uk);
}

static void ep_open(struct loop *l, bool et, unsigned int n)
{
	l->fd = epoll_create1(EPOLL_CLOEXEC);
	if (l->fd < 0)
		bench_die("epoll_create1: %s", strerror(errno));
	for (unsigned int i = 0; i < n; i++) {
		struct epoll_event ev = {.events = EPOLLIN | (et ? EPOLLET : 0), .data.u32 = i};

		if (epoll_ctl(l->fd, EPOLL_CTL_ADD, rd[i], &ev))
			bench_die("epoll_ctl ADD: %s", strerror(errno));
	}
}

static void loop_open(struct loop *l, const struct pass_arg *a)
{
	l->side = a->side;
	if (a->side == KEV)
		kev_open(l, a->et, a->pairs);
	else
		ep_open(l, a->et, a->pairs);
}

static void loop_close(struct loop *l)
{
	if (l->side == KEV)
		kevent_close(l->fd);
	else
		close(l->fd);
}

/* Wait for a batch (blocking, up to WAIT_MS); the ready pairs' indexes go to idx. */
static int loop_wait(struct loop *l, unsigned int *idx)
{
	int n;

	do {
		if (l->side == KEV)
			n = kevent_get_events(l->fd, 1, BATCH, (struct timespec){WAIT_MS / 1000, 0},
					      l->kev, 0);
		else
			n = epoll_wait(l->fd, l->eev, BATCH, WAIT_MS);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		bench_die("wait: %s", strerror(errno));
	for (int i = 0; i < n; i++) {
		if (l->side == EPOLL) {
			idx[i] = l->eev[i].data.u32;
			continue;
		}
		if (l->kev[i].ret_flags & KEVENT_RET_BROKEN)
			bench_die("pair %u broken", l->kev[i].user[0]);
		idx[i] = l->kev[i].user[0];
	}
	return n;
}

/* The readiness callback of pair i: read its byte, write one to the next pair. */
static void chain_cb(struct chain *c, unsigned int i)
{
	char buf[MAX_ACTIVE];
	ssize_t n = read(rd[i], buf, c->grab);
	unsigned int m;

	if (n < 0 && errno == EAGAIN) {
		c->spurious++;
		return;
	}
	if (n <= 0)
		bench_die("read pair %u: %s", i, n ? strerror(errno) : "end of file");
	c->consumed += n;
	m = (unsigned int)n < c->left ? (unsigned int)n : c->left;
	if (m && write(wr[(i + 1) % c->pairs], buf, m) != (ssize_t)m)
		bench_die("write pair %u: %s", (i + 1) % c->pairs, strerror(errno));
	c->left -= m;
}

/*
 * One run: a byte in every (pairs / active)-th pair, then hops until `writes` bytes were
 * written and every byte read. Wall ns from the first wait, or NAN when the chain stalled.
 */
static double chain_run(struct loop *l, struct chain *c, unsigned int active, unsigned int writes,
			unsigned long *waits)
{
	unsigned int idx[BATCH], space = c->pairs / active;
	uint64_t t0;

	c->left = writes;
	c->consumed = 0;
	for (unsigned int i = 0; i < active; i++)
		if (write(wr[i * space], "e", 1) != 1)
			bench_die("write: %s", strerror(errno));
	t0 = bench_now_ns();
	while (c->consumed < active + writes) {
		int n = loop_wait(l, idx);

		(*waits)++;
		if (!n)
			return NAN;
		for (int i = 0; i < n; i++)
			chain_cb(c, idx[i]);
	}
	return (double)(bench_now_ns() - t0);
}

/* One more run with this process's system calls counted; NAN when it cannot be. */
static double counted_run(struct loop *l, struct chain *c, const struct pass_arg *a,
			  struct pass_res *r)
{
	struct bench_syscount sc;
	unsigned long waits = 0;
	bool on;
	double ns;

	if (!bench_syscount_attach(&sc, getpid()))
		return NAN;
	snprintf(r->tool, sizeof(r->tool), "%s", bench_syscount_tool(&sc));
	on = bench_syscount_on(&sc);
	ns = chain_run(l, c, a->active, a->writes, &waits);
	on = bench_syscount_off(&sc) && on;
	r->stalled |= isnan(ns);
	ns = bench_syscount_finish(&sc);
	return on && !r->stalled ? ns : NAN;
}

/* The measurement in a child process (bench_child()): the result goes to out. */
static void run_child(int out, void *arg)
{
	const struct pass_arg *a = arg;
	struct pass_res r = {.ns = NAN, .irq = NAN, .syscalls = NAN, .tool = "none"};
	struct chain c = {.pairs = a->pairs, .grab = a->et ? MAX_ACTIVE : 1};
	unsigned long warm = 0;
	struct loop l;
	double irq0;

	loop_open(&l, a);
	r.stalled = isnan(chain_run(&l, &c, a->active, a->writes / 10 + 1, &warm));
	c.spurious = 0;
	if (!r.stalled) {
		irq0 = bench_irq_work();
		r.ns = chain_run(&l, &c, a->active, a->writes, &r.waits);
		r.irq = bench_irq_work() - irq0;
		r.spurious = c.spurious;
		r.stalled = isnan(r.ns);
	}
	if (!r.stalled && a->count)
		r.syscalls = counted_run(&l, &c, a, &r);
	loop_close(&l);
	if (write(out, &r, sizeof(r)) != sizeof(r))
		_exit(1);
}

/* "chain N=100 A=1 level" */
static void label(char *buf, size_t len, const struct pass_arg *a)
{
	snprintf(buf, len, "chain N=%u A=%u %s", a->pairs, a->active, trig_name[a->et]);
}

/* The counter of the first counted run: "none" when neither perf nor strace could attach. */
static char sys_tool[16];

/* One measurement; false when the child was killed (r->stalled: when the chain stalled). */
static bool run(const struct pass_arg *a, struct pass_res *r)
{
	const char *who = a->side == KEV ? "libkevent" : base_name[a->et];
	bool ok = bench_child(run_child, (void *)a, r, sizeof(*r), 30);
	char name[64];

	drain_pairs();
	label(name, sizeof(name), a);
	if (ok && a->count && !r->stalled && !sys_tool[0]) {
		snprintf(sys_tool, sizeof(sys_tool), "%s", r->tool);
		if (strcmp(r->tool, "none"))
			printf("# system calls counted by %s, in the first round only\n", r->tool);
	}
	if (!ok)
		printf("# %s, %s: the run did not finish: killed (a hang in the library?)\n", name,
		       who);
	else if (r->stalled)
		printf("# %s, %s: stalled: a %d ms wait brought nothing with bytes in flight "
		       "(a lost event)\n",
		       name, who, WAIT_MS);
	else if (verbose)
		printf("#   %-26s %-9s %6.0f ns/hop  %6.2f hops/wait  %5lu spurious  "
		       "%.3f IWI/hop  %.2f syscalls/hop (%s)\n",
		       name, who, r->ns / a->writes, (double)a->writes / r->waits, r->spurious,
		       r->irq / a->writes, r->syscalls / a->writes, r->tool);
	return ok;
}

/* The figures of one configuration and side, over the runs. */
struct figs {
	struct bench_series run_ms, hop_ns, irq, sys;
	unsigned int failed; /* runs killed or stalled */
	bool killed;	     /* a run was killed: later ones are skipped */
};

static void add_figs(struct figs *f, const struct pass_arg *a, const struct pass_res *r)
{
	bench_series_add(&f->run_ms, r->ns / 1e6);
	bench_series_add(&f->hop_ns, r->ns / a->writes);
	bench_series_add(&f->irq, r->irq / a->writes);
	bench_series_add(&f->sys, r->syscalls / a->writes);
}

/* What the rows of a configuration say when runs of either side failed. */
static const char *fail_note(char *buf, size_t len, const struct figs *f, unsigned int runs)
{
	if (!f[KEV].failed && !f[EPOLL].failed)
		return NULL;
	snprintf(buf, len, "runs that stalled or were killed: libkevent %u, epoll %u of %u",
		 f[KEV].failed, f[EPOLL].failed, runs);
	return buf;
}

/* One row of a configuration: "chain N=100 A=1 level: what" against the same epoll mode. */
static void row(const struct pass_arg *a, const char *what, const char *unit,
		const struct bench_series *kev, const struct bench_series *ep, const char *note)
{
	char name[64], full[96];

	label(name, sizeof(name), a);
	snprintf(full, sizeof(full), "%s: %s", name, what);
	bench_report_note(&(struct bench_row){full, unit, base_name[a->et], kev, ep, false}, note);
}

static void report(const struct pass_arg *a, const struct figs *f, unsigned int runs,
		   const char *sys_why)
{
	char why[96];
	const char *fail = fail_note(why, sizeof(why), f, runs);

	row(a, "time/run", "ms", &f[KEV].run_ms, &f[EPOLL].run_ms, fail);
	row(a, "time/hop", "ns", &f[KEV].hop_ns, &f[EPOLL].hop_ns, fail);
	row(a, "irq_work/hop", "IWI", &f[KEV].irq, &f[EPOLL].irq, fail);
	row(a, "syscalls/hop", "calls", &f[KEV].sys, &f[EPOLL].sys, sys_why ? sys_why : fail);
}

static void usage(void)
{
	fprintf(stderr, "usage: chain [-r runs] [-n pairs] [-a active] [-w writes] "
			"[-m level|et] [-C] [-v]\n");
	exit(2);
}

#define MAX_CFG 64

/* Every (pairs, mode, active) to measure, in their order: active <= pairs (ET: pairs / 2). */
static unsigned int configs(struct pass_arg *cfg, const unsigned int *np, unsigned int nn,
			    const unsigned int *na, unsigned int nact, unsigned int modes,
			    unsigned int writes)
{
	unsigned int k = 0;

	for (unsigned int n = 0; n < nn; n++)
		for (unsigned int et = 0; et < 2; et++)
			for (unsigned int i = 0; i < nact && (modes & (1u << et)); i++)
				if (na[i] <= np[n] >> et && k < MAX_CFG)
					cfg[k++] = (struct pass_arg){.et = et,
								     .pairs = np[n],
								     .active = na[i],
								     .writes = writes};
	return k;
}

int main(int argc, char **argv)
{
	unsigned int np[2] = {100, 1000}, na[3] = {1, 10, 100}, nn = 2, nact = 3, writes = 10000;
	unsigned int modes = 3, ncfg; /* bit 0: level, bit 1: ET */
	static struct figs f[MAX_CFG][NR_SIDES];
	struct pass_arg cfg[MAX_CFG];
	const char *sys_why = NULL;
	bool count = true;
	struct bench_opts o;
	int c;

	bench_opts_init(&o, 0);
	o.runs = 9; /* a run is 10 to 100 ms: more of them for the same noise */
	while ((c = getopt(argc, argv, BENCH_OPTS "n:a:w:m:Cv")) != -1) {
		if (bench_opt(&o, c, optarg))
			continue;
		if (c == 'n')
			np[0] = (unsigned int)strtoul(optarg, NULL, 0), nn = 1;
		else if (c == 'a')
			na[0] = (unsigned int)strtoul(optarg, NULL, 0), nact = 1;
		else if (c == 'w')
			writes = (unsigned int)strtoul(optarg, NULL, 0);
		else if (c == 'm' && (!strcmp(optarg, "level") || !strcmp(optarg, "et")))
			modes = !strcmp(optarg, "level") ? 1 : 2;
		else if (c == 'C')
			count = false;
		else if (c == 'v')
			verbose = true;
		else
			usage();
	}
	for (unsigned int i = 0; i < nn; i++)
		if (np[i] < 2 || np[i] > MAX_PAIRS)
			usage();
	if (na[0] < 1 || na[0] > MAX_ACTIVE || writes < 10 || writes > 100000000)
		usage();
	ncfg = configs(cfg, np, nn, na, nact, modes, writes);
	if (!ncfg)
		bench_die("chain: no configuration with active <= pairs");
	maxpairs = nn == 2 && np[1] > np[0] ? np[1] : np[0];
	if (bench_nofile(2 * maxpairs + 256) < 2 * maxpairs + 256)
		bench_die("%u pairs need %u descriptors", maxpairs, 2 * maxpairs + 256);
	make_pairs(maxpairs);
	if (!count)
		sys_why = "not counted (-C)";
	bench_watchdog(o.runs * ncfg * NR_SIDES * 31 + 60);

	bench_begin("chain", &o);
	printf("# %u hops a run, AF_UNIX socketpairs; callbacks run between waits (batches of "
	       "up to %d)\n",
	       writes, BATCH);
	for (unsigned int n = 0; n < nn; n++)
		for (unsigned int i = 0; i < nact; i++)
			if ((modes & 2) && na[i] > np[n] / 2 && na[i] <= np[n])
				printf(
				    "# ET with N=%u A=%u not run: bytes would meet at every hop\n",
				    np[n], na[i]);
	if (isnan(bench_irq_work()))
		printf("# no IWI line in /proc/interrupts: irq_work/hop not available\n");
	for (unsigned int r = 0; r < o.runs; r++)
		for (unsigned int k = 0; k < ncfg; k++)
			for (int s = 0; s < NR_SIDES; s++) {
				struct pass_arg a = cfg[k];
				struct pass_res res;
				bool ok;

				if (f[k][s].killed)
					continue;
				a.side = s;
				a.count = count && !r; /* the first round only */
				ok = run(&a, &res);
				f[k][s].killed = !ok;
				if (!ok || res.stalled) {
					f[k][s].failed++;
					continue;
				}
				add_figs(&f[k][s], &a, &res);
			}
	if (count && !strcmp(sys_tool, "none"))
		sys_why = "not counted: neither perf nor strace could attach";
	for (unsigned int k = 0; k < ncfg; k++)
		report(&cfg[k], f[k], o.runs, sys_why);
	return 0;
}
