// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Readiness harvest (issue 4, scenario 1): 1,000 loopback TCP connections; client threads
 * send small messages on random connections; one server thread waits for readiness and
 * reads. libkevent level and ET against epoll LT and ET, and libkevent ET with
 * kevent_set_defer_wakeup(fd, 0) (a wake-up for every event between calls, as an
 * edge-triggered outer poller needs) against epoll ET again.
 *
 * A connection carries at most one unread message: clients take connections from an idle
 * set and the server gives each back once it has read its message. So every readiness
 * event the server handles is exactly one message whatever the event mechanism, and
 * events/s cannot be inflated by events that merge less. At most all connections are in
 * flight: the server sees many ready connections per wait, which is what harvesting is.
 *
 * One read per event on both sides: messages are smaller than the read buffer, so a short
 * read has drained the socket, and new data makes a new edge for ET on both APIs.
 *
 * CPU per event counts the whole process (getrusage RUSAGE_SELF): loopback delivery, and
 * with it the BPF program or epoll's callback, runs in the sending client's context.
 *
 * Each measurement runs in a child process sharing the connections: a run that hangs is
 * killed and reported, and the BPF programs of a libkevent run are gone before the epoll
 * run that follows it.
 *
 *   build/bench/harvest [-r runs] [-t seconds] [-c connections] [-n client_threads]
 *                       [-m level|et] [-v]
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>

#include "bench.h"

#define MSG_LEN	    16
#define BATCH	    256 /* events per wait, both sides */
#define CLIENT_TAKE 16	/* connections a client takes from the idle set per lock */
#define MAX_CLIENTS 16

/*
 * Pairs: each libkevent mode, then its baseline; ET with defer off and ET on the syscall
 * path (KEVENT_BACKEND=syscall, the fallback of K26) reuse epoll ET.
 */
enum mode { KEV_LEVEL, EPOLL_LT, KEV_ET, EPOLL_ET, KEV_ET_NODEFER, KEV_ET_SYSCALL, NR_MODES };

static const char *const mode_name[NR_MODES] = {"libkevent level", "epoll LT", "libkevent ET",
						"epoll ET", "libkevent ET defer off",
						"libkevent ET syscall path"};

static bool is_kev(enum mode m)
{
	return m != EPOLL_LT && m != EPOLL_ET;
}

static enum mode baseline_of(enum mode m)
{
	return m == KEV_LEVEL ? EPOLL_LT : EPOLL_ET;
}

static unsigned int nconns = 1000, nclients = 2;
static bool verbose;
static int *cli, *srv;

/* Connections with no message in flight; clients take from it, the server gives back. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t more;
	unsigned int *idx;
	unsigned int n, waiting;
	bool stop;
} idle = {.lock = PTHREAD_MUTEX_INITIALIZER, .more = PTHREAD_COND_INITIALIZER};

static atomic_uint_fast64_t sent;

static void *client_main(void *arg)
{
	uint64_t seed = 0x9e3779b97f4a7c15ULL * ((uintptr_t)arg + 1);
	char msg[MSG_LEN];
	unsigned int take[CLIENT_TAKE], k;

	memset(msg, 'm', sizeof(msg));
	for (;;) {
		pthread_mutex_lock(&idle.lock);
		while (!idle.n && !idle.stop) {
			idle.waiting++;
			pthread_cond_wait(&idle.more, &idle.lock);
			idle.waiting--;
		}
		if (idle.stop) {
			pthread_mutex_unlock(&idle.lock);
			return NULL;
		}
		/* Random connections: swap-remove random entries of the idle set. */
		for (k = 0; k < CLIENT_TAKE && idle.n; k++) {
			unsigned int j = (unsigned int)(bench_rand(&seed) % idle.n);

			take[k] = idle.idx[j];
			idle.idx[j] = idle.idx[--idle.n];
		}
		pthread_mutex_unlock(&idle.lock);
		for (unsigned int i = 0; i < k; i++)
			if (write(cli[take[i]], msg, sizeof(msg)) != sizeof(msg))
				bench_die("client write: %s", strerror(errno));
		atomic_fetch_add_explicit(&sent, k, memory_order_relaxed);
	}
}

static void idle_give_back(const unsigned int *idx, unsigned int n)
{
	if (!n)
		return;
	pthread_mutex_lock(&idle.lock);
	memcpy(idle.idx + idle.n, idx, n * sizeof(*idx));
	idle.n += n;
	if (idle.waiting)
		pthread_cond_broadcast(&idle.more);
	pthread_mutex_unlock(&idle.lock);
}

struct result {
	double events_s, cpu_ns, server_ns; /* per second; CPU ns per event */
	uint64_t events, spurious, waits, sent;
};

/* The event loop of one mode: wait, read, give the connections back. */
struct loop {
	enum mode mode;
	int fd; /* the kevent queue or the epoll descriptor */
	struct ukevent kev[BATCH];
	struct epoll_event eev[BATCH];
};

static void loop_open(struct loop *l, enum mode m)
{
	l->mode = m;
	if (is_kev(m)) {
		struct ukevent *uk = calloc(nconns, sizeof(*uk));
		int ret;

		if (m == KEV_ET_SYSCALL)
			bench_syscall_path(); /* a child of its own: read by this first queue */
		l->fd = bench_kevent_init();
		if (m == KEV_ET_NODEFER && kevent_set_defer_wakeup(l->fd, 0))
			bench_die("kevent_set_defer_wakeup failed");
		for (unsigned int i = 0; i < nconns; i++) {
			uk[i] = bench_sock_entry(srv[i], KEVENT_SOCKET_RECV,
						 m == KEV_LEVEL ? 0 : KEVENT_REQ_ET, NULL);
			uk[i].user[0] = i;
		}
		/* One batched call: registration is not what this scenario times. */
		ret = kevent_ctl(l->fd, KEVENT_CTL_ADD, nconns, uk);
		if (ret != (int)nconns)
			bench_die("kevent_ctl ADD: %d", ret);
		for (unsigned int i = 0; i < nconns; i++)
			if (uk[i].ret_flags)
				bench_die("kevent_ctl ADD fd %d: ret_flags %#x err %d", srv[i],
					  uk[i].ret_flags, (int)uk[i].ret_data[1]);
		free(uk);
		return;
	}
	l->fd = epoll_create1(EPOLL_CLOEXEC);
	for (unsigned int i = 0; i < nconns; i++) {
		struct epoll_event ev = {.events = EPOLLIN | (m == EPOLL_ET ? EPOLLET : 0),
					 .data.u32 = i};

		if (epoll_ctl(l->fd, EPOLL_CTL_ADD, srv[i], &ev))
			bench_die("epoll_ctl ADD: %s", strerror(errno));
	}
}

static void loop_close(struct loop *l)
{
	if (is_kev(l->mode))
		kevent_close(l->fd);
	else
		close(l->fd);
}

/* Wait up to 100 ms; the indexes of the ready connections go to idx. */
static int loop_wait(struct loop *l, unsigned int *idx)
{
	int n;

	if (is_kev(l->mode)) {
		n = kevent_get_events(l->fd, 1, BATCH, (struct timespec){0, 100000000}, l->kev, 0);
		for (int i = 0; i < n; i++) {
			if (l->kev[i].ret_flags & KEVENT_RET_BROKEN)
				bench_die("connection %u broken", l->kev[i].user[0]);
			idx[i] = l->kev[i].user[0];
		}
	} else {
		n = epoll_wait(l->fd, l->eev, BATCH, 100);
		for (int i = 0; i < n; i++)
			idx[i] = l->eev[i].data.u32;
	}
	/* Both calls set errno on failure. */
	if (n < 0 && errno != EINTR)
		bench_die("%s wait: %s", mode_name[l->mode], strerror(errno));
	return n < 0 ? 0 : n;
}

/* Read every server socket dry: the next run starts with nothing in flight. */
static void drain_all(void)
{
	char buf[4096];

	for (unsigned int i = 0; i < nconns; i++)
		while (read(srv[i], buf, sizeof(buf)) > 0)
			;
}

struct run_arg {
	enum mode mode;
	double secs;
};

/* One measurement, in a child process (bench_child()): the result goes to out. */
static void run_child(int out, void *arg)
{
	const struct run_arg *a = arg;
	pthread_t th[MAX_CLIENTS];
	unsigned int ready[BATCH], back[BATCH];
	struct result r = {0};
	struct loop l;
	uint64_t t0, t1, c0, c1, s0, s1, deadline;
	char buf[4096];

	loop_open(&l, a->mode);
	idle.n = nconns;
	idle.stop = false;
	for (unsigned int i = 0; i < nconns; i++)
		idle.idx[i] = i;
	for (uintptr_t i = 0; i < nclients; i++)
		pthread_create(&th[i], NULL, client_main, (void *)i);

	t0 = bench_now_ns();
	c0 = bench_cpu_ns(RUSAGE_SELF);
	s0 = bench_cpu_ns(RUSAGE_THREAD);
	deadline = t0 + (uint64_t)(a->secs * 1e9);
	while (bench_now_ns() < deadline) {
		int n = loop_wait(&l, ready), nb = 0;

		r.waits++;
		for (int i = 0; i < n; i++) {
			ssize_t got = read(srv[ready[i]], buf, sizeof(buf));

			if (got > 0) {
				/* Exactly one message was in flight on it. */
				back[nb++] = ready[i];
			} else if (got < 0 && errno == EAGAIN) {
				r.spurious++;
			} else {
				bench_die("server read: %s", got ? strerror(errno) : "end of file");
			}
		}
		r.events += nb;
		idle_give_back(back, nb);
	}
	t1 = bench_now_ns();
	c1 = bench_cpu_ns(RUSAGE_SELF);
	s1 = bench_cpu_ns(RUSAGE_THREAD);

	pthread_mutex_lock(&idle.lock);
	idle.stop = true;
	pthread_cond_broadcast(&idle.more);
	pthread_mutex_unlock(&idle.lock);
	for (unsigned int i = 0; i < nclients; i++)
		pthread_join(th[i], NULL);
	loop_close(&l);

	r.events_s = r.events / ((t1 - t0) / 1e9);
	r.cpu_ns = r.events ? (double)(c1 - c0) / r.events : NAN;
	r.server_ns = r.events ? (double)(s1 - s0) / r.events : NAN;
	r.sent = atomic_load(&sent);
	if (write(out, &r, sizeof(r)) != sizeof(r))
		_exit(1);
}

/*
 * One measurement of mode m. The child shares the connections; whatever it left unread
 * (or a killed child left) is drained here, so every run starts with nothing in flight.
 */
static bool run(enum mode m, double secs, struct result *r)
{
	struct run_arg a = {m, secs};
	bool ok = bench_child(run_child, &a, r, sizeof(*r), secs + 15);

	drain_all();
	if (!ok) {
		printf("# %s: the run did not finish: killed (a hang in the library?)\n",
		       mode_name[m]);
		return false;
	}
	if (verbose)
		printf(
		    "#   %-16s %9.0f events/s  %5.0f ns CPU/event (server %4.0f)  %6.1f events/wait"
		    "  %lu spurious  %lu sent\n",
		    mode_name[m], r->events_s, r->cpu_ns, r->server_ns,
		    r->waits ? (double)r->events / r->waits : 0.0, (unsigned long)r->spurious,
		    (unsigned long)r->sent);
	return true;
}

/* What a row says when a run of either side was killed: its later runs were skipped. */
static const char *hung_note(const bool *hung, enum mode k, enum mode b)
{
	if (hung[k] && hung[b])
		return "both sides: a run was killed (hang?), later runs skipped";
	if (hung[k])
		return "libkevent: a run was killed (hang?), later runs skipped";
	if (hung[b])
		return "baseline: a run was killed (hang?), later runs skipped";
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: harvest [-r runs] [-t seconds] [-c connections] "
			"[-n client_threads] [-m level|et] [-v]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct bench_series ev[NR_MODES] = {0}, cpu[NR_MODES] = {0}, srvcpu[NR_MODES] = {0};
	bool hung[NR_MODES] = {false};
	unsigned int pairs = 7; /* bit 0: level vs LT, bit 1: ET vs ET, bit 2: defer off, syscall */
	struct bench_opts o;
	int c;

	bench_opts_init(&o, 2.0);
	while ((c = getopt(argc, argv, BENCH_OPTS "c:n:m:v")) != -1) {
		if (bench_opt(&o, c, optarg))
			continue;
		if (c == 'm' && (!strcmp(optarg, "level") || !strcmp(optarg, "et")))
			pairs = !strcmp(optarg, "level") ? 1 : 6;
		else if (c == 'c')
			nconns = (unsigned int)strtoul(optarg, NULL, 0);
		else if (c == 'n')
			nclients = (unsigned int)strtoul(optarg, NULL, 0);
		else if (c == 'v')
			verbose = true;
		else
			usage();
	}
	if (nconns < 1 || nconns > 100000 || nclients < 1 || nclients > MAX_CLIENTS)
		usage();
	if (bench_nofile(2 * nconns + 64) < 2 * nconns + 64)
		bench_die("%u connections need %u descriptors", nconns, 2 * nconns + 64);
	cli = calloc(nconns, sizeof(*cli));
	srv = calloc(nconns, sizeof(*srv));
	idle.idx = calloc(nconns, sizeof(*idle.idx));
	if (!cli || !srv || !idle.idx)
		bench_die("out of memory");
	bench_tcp_pairs(cli, srv, nconns);
	bench_watchdog(o.runs * NR_MODES * (unsigned int)(o.secs + 16) + 30);

	bench_begin("harvest", &o);
	for (unsigned int r = 0; r < o.runs; r++) {
		/* Alternating: each libkevent run right before its epoll counterpart. */
		for (int m = 0; m < NR_MODES; m++) {
			struct result res;

			if (!(pairs & (1u << m / 2)) || hung[m])
				continue;
			if (!run(m, o.secs, &res)) {
				hung[m] = true; /* once is enough: the row says not available */
				continue;
			}
			bench_series_add(&ev[m], res.events_s);
			bench_series_add(&cpu[m], res.cpu_ns);
			bench_series_add(&srvcpu[m], res.server_ns);
		}
	}
	for (int k = KEV_LEVEL; k < NR_MODES; k++) {
		static const char *const tags[NR_MODES] = {
			[KEV_LEVEL] = "level", [KEV_ET] = "ET", [KEV_ET_NODEFER] = "ET defer off",
			[KEV_ET_SYSCALL] = "ET syscall path"};
		const char *tag = tags[k];
		enum mode b = baseline_of(k);
		char s1[64], s2[64], s3[64];
		const char *why;

		if (!is_kev(k) || !(pairs & (1u << k / 2)))
			continue;
		snprintf(s1, sizeof(s1), "harvest %s: events/s", tag);
		snprintf(s2, sizeof(s2), "harvest %s: CPU/event", tag);
		snprintf(s3, sizeof(s3), "harvest %s: server CPU/event", tag);
		why = hung_note(hung, k, b);
		bench_report_note(
		    &(struct bench_row){s1, "events/s", mode_name[b], &ev[k], &ev[b], true}, why);
		bench_report_note(
		    &(struct bench_row){s2, "ns", mode_name[b], &cpu[k], &cpu[b], false}, why);
		bench_report_note(
		    &(struct bench_row){s3, "ns", mode_name[b], &srvcpu[k], &srvcpu[b], false},
		    why);
	}
	return 0;
}
