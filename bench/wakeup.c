// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Wake-up latency (issue 4, scenarios 2 and 3): one loopback TCP connection, ping-pong.
 * The producer (main thread) writes a ping carrying its send time; the consumer thread,
 * asleep in kevent_get_events or epoll_wait, takes the time as soon as the wait returns,
 * reads the ping and answers with a pong. Once the pong is in, the producer lets the gap
 * pass (20 us, 200 us) before the next ping, so every ping finds the consumer asleep again.
 * Reported: p50 and p99 of write-to-event-in-userspace, and p50 of the ping's write() itself:
 * what waking a sleeping consumer costs the sender, which on loopback runs the socket's
 * wake-up (epoll's callback; libkevent's programs and the ring buffer's irq_work).
 *
 * The producer busy-waits the gap: a timed sleep would add the timer's slack to the gap
 * and let its own CPU idle, which changes nothing for the consumer but blurs the gap.
 *
 * Where the threads run decides what a wake-up costs, so both placements are measured,
 * pinned so that the scheduler's choice (which follows the machine's other load) does not
 * change the experiment from run to run: the producer on CPU 0, the consumer on CPU 0 too
 * ("same CPU": no inter-processor interrupt is needed to wake it) or on CPU 1 ("2 CPUs").
 *
 * Scenario 3 runs libkevent with the queue's bounded spin before sleeping (-s usec) when
 * kevent.h offers it (KEVENT_HAVE_SPIN); otherwise its rows say "not available". Only
 * across 2 CPUs: on the producer's own CPU a spinning consumer would only keep the
 * producer from running.
 *
 *   build/bench/wakeup [-r runs] [-t seconds] [-s spin_us]
 */
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>

#include "bench.h"

enum mode { KEV, EPOLL, KEV_SPIN, NR_MODES };
enum place { SAME_CPU, CROSS_CPU, NR_PLACES };

static const char *const place_name[NR_PLACES] = {"same CPU", "2 CPUs"};
static const int consumer_cpu[NR_PLACES] = {0, 1};

static const unsigned int gaps_us[] = {20, 200};
#define NR_GAPS (sizeof(gaps_us) / sizeof(gaps_us[0]))

#ifdef KEVENT_HAVE_SPIN
static const bool have_spin = true;
#else
static const bool have_spin = false;
#endif

static unsigned int spin_us = 50;

struct consumer {
	enum mode mode;
	int cpu;
	int fd;	     /* the socket's consumer end */
	int wfd;     /* kevent queue or epoll descriptor */
	double *lat; /* us */
	size_t n, max;
};

static void consumer_open(struct consumer *c)
{
	struct ukevent uk = bench_sock_entry(c->fd, KEVENT_SOCKET_RECV, 0, NULL);

	if (c->mode == EPOLL) {
		struct epoll_event ev = {.events = EPOLLIN};

		c->wfd = epoll_create1(EPOLL_CLOEXEC);
		if (c->wfd < 0 || epoll_ctl(c->wfd, EPOLL_CTL_ADD, c->fd, &ev))
			bench_die("epoll: %s", strerror(errno));
		return;
	}
	c->wfd = bench_kevent_init();
#ifdef KEVENT_HAVE_SPIN
	if (c->mode == KEV_SPIN && kevent_set_spin(c->wfd, spin_us) < 0)
		bench_die("kevent_set_spin: %s", strerror(errno));
#endif
	if (kevent_ctl(c->wfd, KEVENT_CTL_ADD, 1, &uk) != 1 || uk.ret_flags)
		bench_die("kevent_ctl ADD: ret_flags %#x err %d", uk.ret_flags,
			  (int)uk.ret_data[1]);
}

static void consumer_close(struct consumer *c)
{
	if (c->mode == EPOLL)
		close(c->wfd);
	else
		kevent_close(c->wfd);
}

/* Sleep until the socket is readable; the same level-triggered request on both sides. */
static void consumer_wait(struct consumer *c)
{
	struct ukevent kev[8];
	struct epoll_event eev[8];
	int n;

	do {
		if (c->mode == EPOLL)
			n = epoll_wait(c->wfd, eev, 8, -1);
		else
			n = kevent_get_events(c->wfd, 1, 8, (struct timespec){-1, 0}, kev, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 1)
		bench_die("wait: %s", n < 0 ? strerror(errno) : "returned nothing");
}

static void *consumer_main(void *arg)
{
	struct consumer *c = arg;
	uint64_t stamp;

	bench_pin(c->cpu);
	for (;;) {
		uint64_t t;
		ssize_t got;

		consumer_wait(c);
		t = bench_now_ns();
		got = read(c->fd, &stamp, sizeof(stamp));
		if (got < 0 && errno == EAGAIN)
			continue; /* an event without data: the next wait brings the ping */
		if (got != sizeof(stamp))
			bench_die("consumer read: %zd", got);
		if (!stamp)
			return NULL; /* the producer is done */
		if (c->n < c->max)
			c->lat[c->n++] = (double)(t - stamp) / 1e3;
		if (write(c->fd, "p", 1) != 1)
			bench_die("pong: %s", strerror(errno));
	}
}

/*
 * The producer's wait for the pong. On its own CPU it polls for it, so that its own
 * wake-up takes nothing from the gap the consumer sleeps through; sharing the consumer's
 * CPU it must sleep in read() to let the consumer run.
 */
static bool pong_wait(int prod, bool poll_it)
{
	char pong;
	ssize_t n;

	do
		n = recv(prod, &pong, 1, poll_it ? MSG_DONTWAIT : 0);
	while (n < 0 && (errno == EAGAIN || errno == EINTR));
	return n == 1;
}

/* One measurement: secs of ping-pong with the given gap; p50/p99 in us. */
static void run(enum mode m, enum place pl, unsigned int gap_us, double secs, int prod, int cons,
		double *p50, double *p99, double *w50)
{
	struct consumer c = {.mode = m, .cpu = consumer_cpu[pl], .fd = cons};
	uint64_t deadline, stamp, zero = 0;
	double *wlat;
	size_t nw = 0;
	pthread_t th;

	c.max = (size_t)(secs * 1e6 / gap_us) + 16;
	c.lat = malloc(c.max * sizeof(*c.lat));
	wlat = malloc(c.max * sizeof(*wlat));
	if (!c.lat || !wlat)
		bench_die("out of memory");
	consumer_open(&c);
	pthread_create(&th, NULL, consumer_main, &c);
	usleep(1000); /* let the consumer reach its first wait */
	deadline = bench_now_ns() + (uint64_t)(secs * 1e9);
	while (bench_now_ns() < deadline) {
		uint64_t until = bench_now_ns() + gap_us * 1000ULL;

		while (bench_now_ns() < until)
			;
		stamp = bench_now_ns();
		if (write(prod, &stamp, sizeof(stamp)) != sizeof(stamp))
			bench_die("ping: %s", strerror(errno));
		if (nw < c.max)
			wlat[nw++] = (double)(bench_now_ns() - stamp) / 1e3;
		if (!pong_wait(prod, pl == CROSS_CPU))
			bench_die("waiting for the pong: %s", strerror(errno));
	}
	if (write(prod, &zero, sizeof(zero)) != sizeof(zero))
		bench_die("stop: %s", strerror(errno));
	pthread_join(th, NULL);
	consumer_close(&c);
	*p50 = bench_percentile(c.lat, c.n, 50);
	*p99 = bench_percentile(c.lat, c.n, 99);
	*w50 = bench_percentile(wlat, nw, 50);
	free(c.lat);
	free(wlat);
}

static void usage(void)
{
	fprintf(stderr, "usage: wakeup [-r runs] [-t seconds] [-s spin_us]\n");
	exit(2);
}

/* What one placement, gap and mode measured, run by run. */
struct stats {
	struct bench_series p50, p99, w50;
};

/*
 * The rows of one placement and mode: wake-up p50 and p99 and the waker's write() at each
 * gap, against epoll. why: the reason the rows have no figures (NULL when they were measured).
 */
static void report(struct stats (*st)[NR_GAPS][NR_MODES], enum place pl, enum mode m,
		   const char *why)
{
	for (unsigned int g = 0; g < NR_GAPS; g++) {
		const char *what = m == KEV ? "wakeup" : "wakeup+spin";
		struct stats *k = &st[pl][g][m], *e = &st[pl][g][EPOLL];
		const struct {
			const char *name;
			struct bench_series *kev, *epoll;
		} rows[] = {
		    {"p50", &k->p50, &e->p50},
		    {"p99", &k->p99, &e->p99},
		    {"waker's write p50", &k->w50, &e->w50},
		};

		for (unsigned int i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
			char name[80];

			snprintf(name, sizeof(name), "%s %s %uus gap: %s", what, place_name[pl],
				 gaps_us[g], rows[i].name);
			bench_report_note(&(struct bench_row){name, "us", "epoll_wait", rows[i].kev,
							      rows[i].epoll, false},
					  why);
		}
	}
}

int main(int argc, char **argv)
{
	static struct stats st[NR_PLACES][NR_GAPS][NR_MODES];
	bool two_cpus = sysconf(_SC_NPROCESSORS_ONLN) >= 2;
	struct bench_opts o;
	int c, prod, cons;

	bench_opts_init(&o, 0.5);
	while ((c = getopt(argc, argv, BENCH_OPTS "s:")) != -1) {
		if (bench_opt(&o, c, optarg))
			continue;
		if (c == 's')
			spin_us = (unsigned int)strtoul(optarg, NULL, 0);
		else
			usage();
	}
	bench_pin(0); /* the producer, for the whole run */
	bench_tcp_pairs(&prod, &cons, 1);
	/* The producer's reads say whether they block (pong_wait()); the consumer's never do. */
	fcntl(prod, F_SETFL, fcntl(prod, F_GETFL) & ~O_NONBLOCK);

	bench_watchdog(o.runs * NR_PLACES * NR_GAPS * NR_MODES * (unsigned int)(o.secs + 2) + 30);
	bench_begin("wakeup", &o);
	if (have_spin)
		printf("# libkevent spin: %u us\n", spin_us);
	if (!two_cpus)
		printf("# one CPU online: the 2-CPU rows are not available\n");
	for (unsigned int r = 0; r < o.runs; r++)
		for (int pl = 0; pl < NR_PLACES; pl++)
			for (unsigned int g = 0; g < NR_GAPS; g++)
				for (int m = 0; m < NR_MODES; m++) {
					struct stats *x = &st[pl][g][m];
					double a, b, w;

					if ((pl == CROSS_CPU && !two_cpus) ||
					    (m == KEV_SPIN && (pl == SAME_CPU || !have_spin)))
						continue;
					run(m, pl, gaps_us[g], o.secs, prod, cons, &a, &b, &w);
					bench_series_add(&x->p50, a);
					bench_series_add(&x->p99, b);
					bench_series_add(&x->w50, w);
				}
	for (int pl = 0; pl < NR_PLACES; pl++)
		for (int m = KEV; m < NR_MODES; m += 2) {
			const char *why = NULL;

			if (m == KEV_SPIN && pl == SAME_CPU)
				continue;
			if (pl == CROSS_CPU && !two_cpus)
				why = "not measured: one CPU online";
			else if (m == KEV_SPIN && !have_spin)
				why = "not measured: this kevent.h has no KEVENT_HAVE_SPIN";
			report(st, pl, m, why);
		}
	return 0;
}
