// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * aio_sendfile() throughput against a blocking sendfile() loop and against a pool of
 * threads calling sendfile(): 100 files of 1 MiB (page cache warm) sent to a loopback TCP
 * peer over 4 connections, one file at a time per connection, as a server answers.
 *
 * - sendfile loop: one thread, sendfile() until each file is out, file after file.
 * - thread pool: one thread per connection, each a sendfile() loop over its files.
 * - aio_sendfile: one thread starts a file on every connection and, at each KEVENT_AIO
 *   completion from kevent_get_events(), the next file on that connection.
 *
 * The clock stops when the peer has read every byte. Medians of RUNS runs, modes
 * interleaved so that a noisy neighbour hurts them alike. Run as root (BPF).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <kevent.h>

#define NFILES 100
#define FSIZE  (1 << 20)
#define NCONN  4
#define RUNS   9

enum { M_LOOP, M_POOL, M_AIO, M_N };
static const char *const mode_name[M_N] = { "sendfile loop", "thread pool (4)", "aio_sendfile" };

static int files[NFILES];
static int tx[NCONN], rx[NCONN];
static int queue;

static void die(const char *what)
{
	fprintf(stderr, "aio_sendfile bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void make_files(void)
{
	static char buf[FSIZE];

	memset(buf, 'k', sizeof(buf));
	for (int i = 0; i < NFILES; i++) {
		char path[] = "/tmp/kevent-bench-XXXXXX";

		files[i] = mkostemp(path, O_CLOEXEC);
		if (files[i] < 0)
			die("mkostemp");
		unlink(path);
		if (write(files[i], buf, FSIZE) != FSIZE)
			die("write");
	}
}

static void connect_peer(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof(sin)) || listen(l, NCONN) ||
	    getsockname(l, (struct sockaddr *)&sin, &len))
		die("listen");
	for (int c = 0; c < NCONN; c++) {
		rx[c] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (rx[c] < 0 || connect(rx[c], (struct sockaddr *)&sin, sizeof(sin)))
			die("connect");
		tx[c] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		if (tx[c] < 0)
			die("accept");
	}
	close(l);
}

/* The peer: reads one connection's share of a run. */
static void *drain(void *arg)
{
	static __thread char buf[1 << 18];
	long long left = (long long)NFILES / NCONN * FSIZE;
	int fd = *(int *)arg;

	while (left > 0) {
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r <= 0)
			die("peer read");
		left -= r;
	}
	return NULL;
}

static void sendfile_all(int sock, int file)
{
	off_t off = 0;

	while (off < FSIZE)
		if (sendfile(sock, file, &off, FSIZE - off) < 0 && errno != EINTR)
			die("sendfile");
}

static void run_loop(void)
{
	for (int i = 0; i < NFILES; i++)
		sendfile_all(tx[i % NCONN], files[i]);
}

static void *pool_worker(void *arg)
{
	int c = (int)(long)arg;

	for (int i = c; i < NFILES; i += NCONN)
		sendfile_all(tx[c], files[i]);
	return NULL;
}

static void run_pool(void)
{
	pthread_t th[NCONN];

	for (long c = 0; c < NCONN; c++)
		pthread_create(&th[c], NULL, pool_worker, (void *)c);
	for (int c = 0; c < NCONN; c++)
		pthread_join(th[c], NULL);
}

static long aio_start(int file_idx)
{
	long cookie = aio_sendfile(queue, tx[file_idx % NCONN], files[file_idx], 0, FSIZE);

	if (cookie <= 0)
		die("aio_sendfile");
	return cookie;
}

static void run_aio(void)
{
	struct timespec forever = { .tv_sec = -1 };
	long cookie[NCONN];
	int next[NCONN], done = 0;
	struct ukevent ev[NCONN];

	for (int c = 0; c < NCONN; c++) {
		next[c] = c + NCONN;
		cookie[c] = aio_start(c);
	}
	while (done < NFILES) {
		int n = kevent_get_events(queue, 1, NCONN, forever, ev, 0);

		if (n < 0 && n != -EINTR)
			die("kevent_get_events");
		for (int k = 0; k < n; k++, done++) {
			int c = 0;

			if (ev[k].ret_flags)
				die("transfer failed");
			while (cookie[c] != (long)ev[k].ptr)
				c++;
			if (next[c] < NFILES) {
				cookie[c] = aio_start(next[c]);
				next[c] += NCONN;
			}
		}
	}
}

static double run(int mode)
{
	static void (*const fn[M_N])(void) = { run_loop, run_pool, run_aio };
	pthread_t peer[NCONN];
	double t0;

	t0 = now();
	for (int c = 0; c < NCONN; c++)
		pthread_create(&peer[c], NULL, drain, &rx[c]);
	fn[mode]();
	for (int c = 0; c < NCONN; c++)
		pthread_join(peer[c], NULL);
	return (double)NFILES * FSIZE / 1e6 / (now() - t0);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(void)
{
	double mbs[M_N][RUNS], med[M_N];

	queue = kevent_init(NULL, 0, 0);
	if (queue < 0) {
		fprintf(stderr, "aio_sendfile bench: kevent_init: %s (run as root)\n",
			strerror(-queue));
		return 1;
	}
	make_files();
	connect_peer();
	for (int m = 0; m < M_N; m++)
		run(m); /* warm-up: page cache, socket buffers, the aio engine */
	for (int r = 0; r < RUNS; r++)
		for (int m = 0; m < M_N; m++)
			mbs[m][r] = run(m);
	printf("aio_sendfile: %d files x 1 MiB to a loopback TCP peer over %d connections\n",
	       NFILES, NCONN);
	printf("median of %d runs, 2 vCPUs (shared, noisy)\n\n", RUNS);
	printf("%-18s %8s %10s %10s\n", "mode", "MB/s", "vs loop", "vs pool");
	for (int m = 0; m < M_N; m++) {
		qsort(mbs[m], RUNS, sizeof(double), cmp_double);
		med[m] = mbs[m][RUNS / 2];
	}
	for (int m = 0; m < M_N; m++)
		printf("%-18s %8.0f %9.2fx %9.2fx\n", mode_name[m], med[m], med[m] / med[M_LOOP],
		       med[m] / med[M_POOL]);
	kevent_close(queue);
	return 0;
}
