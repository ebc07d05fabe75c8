// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * HTTP keep-alive server under wrk (issue 4, scenario 6). One tiny single-threaded
 * HTTP/1.1 server, written once except for its event loop: one loop on a libkevent queue,
 * one on epoll, both edge-triggered by default (-m level: level-triggered on both).
 * Connection handling, parsing and the response are the same code.
 *
 * Each measurement forks the server, waits until it is ready (libkevent has loaded its
 * programs), runs `wrk --latency` against it for -t seconds at 100 and at 1,000
 * connections, then stops it. The server reports its own CPU time over the serving
 * period, so CPU per request excludes its start-up. libkevent and epoll alternate, and
 * the epoll server runs with no libkevent program loaded anywhere in this benchmark.
 * The libkevent server runs three times: as it is (its ring held back between calls, the
 * default), with kevent_set_defer_wakeup(fd, 0), a wake-up for every event that arrives
 * between calls, as an edge-triggered outer poller needs, and on the syscall path
 * (KEVENT_BACKEND=syscall: the fallback of a process without BPF, K26), which does what
 * the epoll server does and should cost what it costs.
 *
 * Placement decides much on two CPUs: with the server and wrk on one CPU, every wake-up of a
 * sleeping server preempts wrk. So the server and wrk are pinned, on two CPUs and then on
 * the same one (-p picks one or more of 2cpu, same, free).
 *
 * Counters per request (wrk's request count), each against the epoll server's:
 *   - irq_work/request: the IWI line of /proc/interrupts (x86's irq_work self-interrupts:
 *     how the BPF ring buffer wakes its consumer), summed over CPUs, read by this program
 *     right before wrk starts and right after it exits. Machine-wide: the sender raises it,
 *     wrk's CPU as often as the server's, and other processes add to both sides.
 *   - ctx sw/request: context switches, voluntary + involuntary, of every thread of the
 *     server (/proc/PID/task/TID/status), read at the same two moments.
 *   - syscalls/request: system calls of the server process, counted by `perf stat -e
 *     raw_syscalls:sys_enter -p PID` (or `strace -c -f -p PID` where perf cannot; a '#'
 *     line says which) over wrk's window: perf is attached before wrk starts with its counter
 *     off and switched on and off around wrk through its control pipe. The count includes
 *     accepting and registering wrk's connections.
 * The first two cost nothing in the window (a few /proc reads outside it) and come from the
 * timed runs. Counting system calls slows every system call of the machine (bench.h), so it
 * is done in one more 1 s run of each server, load and placement after the timed runs, whose
 * other figures are thrown away (-C: no such runs).
 *
 *   build/bench/http [-r runs] [-t seconds] [-c connections] [-w wrk_threads] [-m et|level]
 *                    [-p 2cpu|same|free]... [-C]
 *   build/bench/http -S kevent|kevent-nodefer|kevent-syscall|epoll [-m et|level]
 *       one server alone, for a profiler: prints its port, stops on SIGTERM/SIGINT
 */
#include <signal.h>
#include <sys/epoll.h>
#include <sys/wait.h>

#include "bench.h"

#define BATCH	  256
#define CONN_BUF  4096
#define MAX_CONNS 20000 /* descriptors index the connection table */

static const char response[] = "HTTP/1.1 200 OK\r\n"
			       "Server: libkevent-bench\r\n"
			       "Content-Type: text/plain\r\n"
			       "Content-Length: 13\r\n"
			       "\r\n"
			       "Hello, world\n";

enum server { KEV, KEV_NODEFER, KEV_SYSCALL, EPOLL, NR_SERVERS };

static const char *const server_name[NR_SERVERS] = {"kevent", "kevent-nodefer",
						     "kevent-syscall", "epoll"};
static const char *const server_how[NR_SERVERS] = {"", " defer off", " syscall path", ""};

static bool level; /* -m level: level-triggered, one read per event */

/* Where the server and wrk run: the scheduler's choice on two CPUs is either, run to run. */
struct placement {
	const char *tag, *opt;
	int srv_cpu, wrk_cpu; /* -1: not pinned */
};

static const struct placement placements[] = {
	{"2 CPUs", "2cpu", 0, 1},
	{"same CPU", "same", 0, 0},
	{"unpinned", "free", -1, -1},
};

#define NR_PLACEMENTS (sizeof(placements) / sizeof(placements[0]))
static unsigned int wrk_threads = 1;
static volatile sig_atomic_t stopping;

struct conn {
	int fd;
	size_t len;
	char buf[CONN_BUF];
};

static struct conn *conns[MAX_CONNS];
static struct conn listener; /* its address tags the listening socket's event */

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

static struct conn *conn_new(int fd)
{
	struct conn *c;

	if (fd >= MAX_CONNS)
		bench_die("descriptor %d beyond the connection table", fd);
	c = conns[fd] ? conns[fd] : malloc(sizeof(*c));
	if (!c)
		bench_die("out of memory");
	c->fd = fd;
	c->len = 0;
	conns[fd] = c;
	return c;
}

/* Answer every complete request in the buffer; keep a partial one for later. */
static int conn_answer(struct conn *c)
{
	char out[8 * sizeof(response)];
	size_t used = 0, olen = 0;
	char *end;

	while ((end = memmem(c->buf + used, c->len - used, "\r\n\r\n", 4))) {
		used = end + 4 - c->buf;
		if (olen + sizeof(response) - 1 > sizeof(out)) {
			if (write(c->fd, out, olen) != (ssize_t)olen)
				return -1;
			olen = 0;
		}
		memcpy(out + olen, response, sizeof(response) - 1);
		olen += sizeof(response) - 1;
	}
	memmove(c->buf, c->buf + used, c->len - used);
	c->len -= used;
	if (c->len == sizeof(c->buf))
		return -1; /* a request larger than we serve */
	/*
	 * wrk waits for each response before the next request, so the socket's send buffer
	 * has room: a short write means the client is gone.
	 */
	return olen && write(c->fd, out, olen) != (ssize_t)olen ? -1 : 0;
}

/*
 * The connection is readable. Edge-triggered: read until a short read (the socket is dry;
 * new data makes a new edge). Level: one read. Returns -1 when the connection is done.
 */
static int conn_readable(struct conn *c)
{
	for (;;) {
		size_t room = sizeof(c->buf) - c->len;
		ssize_t n = read(c->fd, c->buf + c->len, room);

		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		if (n == 0)
			return -1;
		c->len += n;
		if (conn_answer(c))
			return -1;
		if (level || (size_t)n < room)
			return 0;
	}
}

/* Accept every pending connection; add() registers each with the loop. */
static void accept_all(int lfd, void (*add)(int wfd, struct conn *c), int wfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				bench_die("accept: %s", strerror(errno));
			return;
		}
		bench_nodelay(fd);
		add(wfd, conn_new(fd));
	}
}

/* The libkevent loop. */

static void kev_add(int q, struct conn *c)
{
	/* ALWAYS_QUEUE: a request may already wait; registered and queued then (K9). */
	struct ukevent uk =
	    bench_sock_entry(c->fd, c == &listener ? KEVENT_SOCKET_ACCEPT : KEVENT_SOCKET_RECV,
			     (level ? 0 : KEVENT_REQ_ET) | KEVENT_REQ_ALWAYS_QUEUE, c);

	if (kevent_ctl(q, KEVENT_CTL_ADD, 1, &uk) != 1 || (uk.ret_flags & KEVENT_RET_BROKEN))
		bench_die("kevent_ctl ADD fd %d: %d", c->fd, (int)uk.ret_data[1]);
}

static void kev_drop(int q, struct conn *c, bool broken)
{
	struct ukevent uk = bench_sock_entry(c->fd, KEVENT_SOCKET_RECV, 0, c);

	/* A broken interest is gone already (K17); otherwise remove it before the close. */
	if (!broken)
		kevent_ctl(q, KEVENT_CTL_REMOVE, 1, &uk);
	close(c->fd);
}

static void kev_serve(int lfd, int ready, bool nodefer)
{
	struct ukevent ev[BATCH];
	int q = bench_kevent_init();

	if (nodefer && kevent_set_defer_wakeup(q, 0))
		bench_die("kevent_set_defer_wakeup failed");
	listener.fd = lfd;
	kev_add(q, &listener);
	if (write(ready, "r", 1) != 1)
		bench_die("ready: %s", strerror(errno));
	while (!stopping) {
		int n = kevent_get_events(q, 1, BATCH, (struct timespec){0, 100000000}, ev, 0);

		for (int i = 0; i < n; i++) {
			struct conn *c = ev[i].ptr;
			bool broken = ev[i].ret_flags & KEVENT_RET_BROKEN;

			if (c == &listener)
				accept_all(lfd, kev_add, q);
			else if (broken || conn_readable(c))
				kev_drop(q, c, broken);
		}
	}
	kevent_close(q);
}

/* The epoll loop. */

static void ep_add(int ep, struct conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN | (level ? 0 : EPOLLET), .data.ptr = c};

	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev))
		bench_die("epoll_ctl ADD fd %d: %s", c->fd, strerror(errno));
}

static void ep_serve(int lfd, int ready)
{
	struct epoll_event ev[BATCH];
	int ep = epoll_create1(EPOLL_CLOEXEC);

	listener.fd = lfd;
	ep_add(ep, &listener);
	if (write(ready, "r", 1) != 1)
		bench_die("ready: %s", strerror(errno));
	while (!stopping) {
		int n = epoll_wait(ep, ev, BATCH, 100);

		for (int i = 0; i < n; i++) {
			struct conn *c = ev[i].data.ptr;

			if (c == &listener)
				accept_all(lfd, ep_add, ep);
			else if (conn_readable(c))
				close(c->fd); /* leaves the epoll set with its last reference */
		}
	}
	close(ep);
}

/*
 * The server process: serve until SIGTERM, then write the CPU time it spent serving to
 * `report`.
 */
static void server_main(enum server s, int lfd, int ready, int report)
{
	struct sigaction sa = {.sa_handler = on_term};
	uint64_t cpu0 = bench_cpu_ns(RUSAGE_SELF), cpu;

	sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: the wait returns with EINTR */
	if (s == KEV_SYSCALL)
		bench_syscall_path();
	if (s == EPOLL)
		ep_serve(lfd, ready);
	else
		kev_serve(lfd, ready, s == KEV_NODEFER);
	cpu = bench_cpu_ns(RUSAGE_SELF) - cpu0;
	if (write(report, &cpu, sizeof(cpu)) != sizeof(cpu))
		_exit(1);
	_exit(0);
}

struct result {
	double rps, p50, p99, cpu_us; /* requests/s, us, us, server CPU us per request */
	double irq, csw, sys;	      /* per request: IWI, context switches, system calls */
	unsigned long errors;
	bool hung; /* the server was killed: no figure, and no more runs of it */
};

/* The counters read around wrk's window (see the top of the file). */
struct window {
	double irq, csw;
	struct bench_syscount sc;
	bool counting; /* system calls are counted in this run */
};

static const char *syscount_tool = "none";

/* Before wrk starts: attach the system call counter if asked, then read the others. */
static void window_open(struct window *w, pid_t srv, bool count)
{
	w->counting = count && bench_syscount_attach(&w->sc, srv);
	if (w->counting) {
		syscount_tool = bench_syscount_tool(&w->sc);
		if (!bench_syscount_on(&w->sc)) {
			bench_syscount_finish(&w->sc);
			w->counting = false;
		}
	}
	w->irq = bench_irq_work();
	w->csw = bench_ctxsw(srv);
}

/* After wrk exits: the counters' growth over the window, per request. */
static void window_close(struct window *w, pid_t srv, double requests, struct result *r)
{
	bool off;

	if (!(requests > 0))
		requests = NAN; /* no request: no figure per request */
	r->irq = (bench_irq_work() - w->irq) / requests;
	r->csw = (bench_ctxsw(srv) - w->csw) / requests;
	r->sys = NAN;
	if (!w->counting)
		return;
	off = bench_syscount_off(&w->sc);
	r->sys = bench_syscount_finish(&w->sc) / requests;
	if (!off)
		r->sys = NAN;
}

/* "1.23ms" -> 1230 (us). */
static double wrk_time_us(const char *s)
{
	char unit[8] = "";
	double v;

	if (sscanf(s, "%lf%7s", &v, unit) < 1)
		return NAN;
	if (!strcmp(unit, "ms"))
		return v * 1e3;
	if (!strcmp(unit, "s"))
		return v * 1e6;
	if (!strcmp(unit, "m"))
		return v * 60e6;
	return v; /* us */
}

/* Fill rps, p50, p99 and the request count from wrk's --latency report. */
static void wrk_parse(FILE *f, struct result *r, double *requests)
{
	char line[512], t[32];
	unsigned long a, b, c, d;

	r->rps = r->p50 = r->p99 = NAN;
	*requests = NAN;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " 50%% %31s", t) == 1)
			r->p50 = wrk_time_us(t);
		else if (sscanf(line, " 99%% %31s", t) == 1)
			r->p99 = wrk_time_us(t);
		else if (sscanf(line, "Requests/sec: %lf", &r->rps) == 1)
			;
		else if (sscanf(line, " %lf requests in", requests) == 1)
			;
		else if (sscanf(line,
				" Socket errors: connect %lu, read %lu, write %lu, timeout %lu", &a,
				&b, &c, &d) == 4)
			r->errors += a + b + c + d;
		else if (sscanf(line, " Non-2xx or 3xx responses: %lu", &a) == 1)
			r->errors += a;
	}
}

static pid_t spawn_wrk(uint16_t port, unsigned int conns, double secs, int out, int cpu)
{
	char c[16], t[16], d[16], url[64];
	pid_t pid;

	snprintf(c, sizeof(c), "%u", conns);
	snprintf(t, sizeof(t), "%u", wrk_threads);
	snprintf(d, sizeof(d), "%.0fs", secs < 1 ? 1 : secs);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/", port);
	pid = fork();
	if (pid < 0)
		bench_die("fork: %s", strerror(errno));
	if (!pid) {
		dup2(out, STDOUT_FILENO);
		if (cpu >= 0)
			bench_pin(cpu);
		execlp("wrk", "wrk", "-t", t, "-c", c, "-d", d, "--latency", url, (char *)NULL);
		fprintf(stderr, "http: cannot run wrk (%s): apt-get install wrk, or make deps\n",
			strerror(errno));
		_exit(127);
	}
	return pid;
}

static struct result run(enum server s, const struct placement *pl, unsigned int conns, double secs,
			 bool count)
{
	struct pollfd pfd = {.events = POLLIN};
	int ready[2], report[2], out[2], status;
	struct result r = {0};
	struct window w;
	uint16_t port;
	uint64_t cpu = 0;
	double requests;
	pid_t srv, wrk;
	char byte;
	FILE *f;
	int lfd = bench_listen(&port, SOCK_NONBLOCK);

	if (pipe2(ready, O_CLOEXEC) || pipe2(report, O_CLOEXEC))
		bench_die("pipe: %s", strerror(errno));
	srv = fork();
	if (srv < 0)
		bench_die("fork: %s", strerror(errno));
	if (!srv) {
		if (pl->srv_cpu >= 0)
			bench_pin(pl->srv_cpu);
		server_main(s, lfd, ready[1], report[1]);
	}
	bench_adopt(srv);
	close(ready[1]);
	close(report[1]);
	if (read(ready[0], &byte, 1) != 1)
		bench_die("the server did not start");

	/* Only now: a server holding the write end would keep wrk's output from ending. */
	if (pipe2(out, O_CLOEXEC))
		bench_die("pipe: %s", strerror(errno));
	window_open(&w, srv, count);
	wrk = spawn_wrk(port, conns, secs, out[1], pl->wrk_cpu);
	bench_adopt(wrk);
	close(out[1]);
	f = fdopen(out[0], "r");
	wrk_parse(f, &r, &requests);
	fclose(f);
	if (waitpid(wrk, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		bench_die("wrk failed");
	bench_forget(wrk);
	window_close(&w, srv, requests, &r);

	kill(srv, SIGTERM);
	/* It stops within its 100 ms wait; a server stuck in the library is killed. */
	pfd.fd = report[0];
	if (poll(&pfd, 1, 5000) != 1 || read(report[0], &cpu, sizeof(cpu)) != sizeof(cpu)) {
		printf("# %s, %u connections: the server did not stop: killed (a hang in the "
		       "library?)\n",
		       server_name[s], conns);
		kill(srv, SIGKILL);
		r.hung = true;
	}
	waitpid(srv, &status, 0);
	bench_forget(srv);
	close(ready[0]);
	close(report[0]);
	close(lfd);
	if (r.hung) {
		/* Nothing this run measured counts. */
		r.rps = r.p50 = r.p99 = r.cpu_us = r.irq = r.csw = r.sys = NAN;
		return r;
	}
	if (isnan(r.rps) || isnan(r.p50) || isnan(r.p99) || isnan(requests))
		bench_die("could not read wrk's report");
	r.cpu_us = requests > 0 ? (double)cpu / 1e3 / requests : NAN;
	if (r.errors)
		printf("# %s, %u connections: wrk counted %lu socket errors or bad responses\n",
		       server_name[s], conns, r.errors);
	return r;
}

static void usage(void)
{
	fprintf(stderr, "usage: http [-r runs] [-t seconds] [-c connections] [-w wrk_threads] "
			"[-m et|level] [-p 2cpu|same|free] [-C]\n"
			"       http -S kevent|kevent-nodefer|kevent-syscall|epoll [-m et|level]\n");
	exit(2);
}

/* -S: one server in the foreground, loaded by whoever wants to profile it. */
static int serve_alone(const char *which)
{
	struct sigaction sa = {.sa_handler = on_term};
	int ready[2], lfd;
	uint16_t port;

	enum server s = KEV;

	while (strcmp(which, server_name[s]))
		if (++s == NR_SERVERS)
			usage();
	lfd = bench_listen(&port, SOCK_NONBLOCK);
	if (pipe2(ready, O_CLOEXEC))
		bench_die("pipe: %s", strerror(errno));
	printf("http://127.0.0.1:%u/\n", port);
	fflush(stdout);
	sigaction(SIGINT, &sa, NULL);
	server_main(s, lfd, ready[1], ready[1]);
	return 0;
}

/* What a configuration (placement x load) holds for one server, over the runs. */
struct figs {
	struct bench_series rps, p50, p99, cpu, irq, csw, sys;
	bool hung; /* a run was killed: later ones are skipped */
};

static void add_figs(struct figs *f, const struct result *r)
{
	bench_series_add(&f->rps, r->rps);
	bench_series_add(&f->p50, r->p50);
	bench_series_add(&f->p99, r->p99);
	bench_series_add(&f->cpu, r->cpu_us);
	bench_series_add(&f->irq, r->irq);
	bench_series_add(&f->csw, r->csw);
}

/* The name of a row: "http 100 conns defer off, 2 CPUs: requests/s". */
struct rowname {
	unsigned int conns;
	const char *how, *where, *base, *note;
};

static void row(const struct rowname *n, const char *what, const char *unit, bool higher,
		const struct bench_series *kev, const struct bench_series *ep)
{
	char name[96];

	snprintf(name, sizeof(name), "http %u conns%s, %s: %s", n->conns, n->how, n->where, what);
	bench_report_note(&(struct bench_row){name, unit, n->base, kev, ep, higher}, n->note);
}

/* The rows of one libkevent server in one configuration, against the epoll server. */
static void report(const struct rowname *n, const struct figs *k, const struct figs *e,
		   const char *sys_why)
{
	struct rowname sys = *n;

	if (sys_why)
		sys.note = sys_why;
	row(n, "requests/s", "requests/s", true, &k->rps, &e->rps);
	row(n, "latency p50", "us", false, &k->p50, &e->p50);
	row(n, "latency p99", "us", false, &k->p99, &e->p99);
	row(n, "server CPU/request", "us", false, &k->cpu, &e->cpu);
	row(&sys, "syscalls/request", "calls", false, &k->sys, &e->sys);
	row(n, "irq_work/request", "IWI", false, &k->irq, &e->irq);
	row(n, "ctx sw/request", "switches", false, &k->csw, &e->csw);
}

/* What the rows say when a server was killed. */
static const char *hung_note(const struct figs *k, const struct figs *e)
{
	if (k->hung && e->hung)
		return "both servers: one was killed (hang?), later runs skipped";
	if (k->hung)
		return "libkevent server killed in a run (hang?), later runs skipped";
	if (e->hung)
		return "epoll server killed in a run (hang?), later runs skipped";
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned int nconns[2] = {100, 1000}, nc = 2, np = 0, ns;
	const struct placement *pl[NR_PLACEMENTS];
	static struct figs fig[2 * NR_PLACEMENTS][NR_SERVERS];
	const char *base, *alone = NULL, *sys_why = NULL;
	bool count = true;
	struct bench_opts o;
	int c;

	bench_opts_init(&o, 2.0);
	o.runs = 3; /* 2 placements x 2 loads x 3 servers: each placement within a minute */
	while ((c = getopt(argc, argv, BENCH_OPTS "c:w:m:S:p:C")) != -1) {
		if (bench_opt(&o, c, optarg))
			continue;
		if (c == 'c') {
			nconns[0] = (unsigned int)strtoul(optarg, NULL, 0);
			nc = 1;
		} else if (c == 'S') {
			alone = optarg;
		} else if (c == 'C') {
			count = false;
		} else if (c == 'w') {
			wrk_threads = (unsigned int)strtoul(optarg, NULL, 0);
		} else if (c == 'm' && (!strcmp(optarg, "et") || !strcmp(optarg, "level"))) {
			level = !strcmp(optarg, "level");
		} else if (c == 'p' && np < NR_PLACEMENTS) {
			for (unsigned int i = 0; i < NR_PLACEMENTS; i++)
				if (!strcmp(optarg, placements[i].opt))
					pl[np++] = &placements[i];
			if (!np || strcmp(pl[np - 1]->opt, optarg))
				usage();
		} else {
			usage();
		}
	}
	if (nconns[0] < 1 || nconns[0] > MAX_CONNS / 2 - 64 || wrk_threads < 1 ||
	    wrk_threads > nconns[0])
		usage();
	bench_nofile(MAX_CONNS);
	signal(SIGPIPE, SIG_IGN);
	if (alone)
		return serve_alone(alone);
	base = level ? "epoll LT" : "epoll ET";
	if (!np) {
		/* Both pinned placements: unpinned, a run is one or the other by chance. */
		if (sysconf(_SC_NPROCESSORS_ONLN) > 1)
			pl[np++] = &placements[0];
		else
			printf("# one CPU online: the 2-CPU rows are not available\n");
		pl[np++] = &placements[1];
	}
	ns = np * nc;

	bench_watchdog((o.runs * (unsigned int)(o.secs + 10) + 12) * ns * NR_SERVERS + 30);
	bench_begin("http", &o);
	printf("# wrk: %u thread(s), %.0f s a run; servers %s\n", wrk_threads,
	       o.secs < 1 ? 1 : o.secs, level ? "level-triggered" : "edge-triggered");
	if (isnan(bench_irq_work()))
		printf("# no IWI line in /proc/interrupts: irq_work/request not available\n");
	for (unsigned int r = 0; r < o.runs; r++)
		for (unsigned int k = 0; k < ns; k++)
			for (int s = 0; s < NR_SERVERS; s++) {
				struct result res;

				if (fig[k][s].hung)
					continue;
				res = run(s, pl[k / nc], nconns[k % nc], o.secs, false);
				fig[k][s].hung = res.hung;
				add_figs(&fig[k][s], &res);
			}
	/* System calls: one more run of each, counted, its other figures not kept. */
	for (unsigned int k = 0; k < ns && count; k++)
		for (int s = 0; s < NR_SERVERS; s++) {
			struct result res;

			if (fig[k][s].hung)
				continue;
			res = run(s, pl[k / nc], nconns[k % nc], 1, true);
			fig[k][s].hung = res.hung;
			bench_series_add(&fig[k][s].sys, res.sys);
		}
	if (count && !strcmp(syscount_tool, "none"))
		sys_why = "not counted: neither perf nor strace could attach";
	else if (count)
		printf("# system calls counted by %s, in one more 1 s run of each server\n",
		       syscount_tool);
	else
		sys_why = "not counted (-C)";
	for (unsigned int k = 0; k < ns; k++)
		for (int s = KEV; s < EPOLL; s++) {
			struct rowname n = {nconns[k % nc], server_how[s], pl[k / nc]->tag, base,
					    hung_note(&fig[k][s], &fig[k][EPOLL])};

			report(&n, &fig[k][s], &fig[k][EPOLL], sys_why);
		}
	return 0;
}
