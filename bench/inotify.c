// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * KEVENT_INODE against inotify (issue 3).
 *
 * 1. The same scripted workload runs in one directory watched by inotify and by libkevent
 *    at once: per round, create f, write f, chmod f, rename f to g, mkdir d, rmdir d,
 *    unlink g (7 operations; 250 rounds by default). A table gives, per kind of event, how
 *    many operations each reported, and how many inotify reported that libkevent did not
 *    (identical consecutive events may merge, as inotify merges them). libkevent's
 *    per-entry view is its entry log (kevent_inode_entries()), read after each event.
 *    Paced (the watchers asleep between operations): also the latency from the start of
 *    each operation to its event in userspace, p50 and p99. Bursts: counts only.
 *    Each run is made twice: libkevent on its BPF path in this process, then on its
 *    syscall fallback (inotify itself, K26) in a child process with KEVENT_BACKEND=syscall,
 *    each against the inotify watcher of its own process.
 * 2. What the inode programs cost per run on a busy tree nobody watches (kernel run-time
 *    statistics, on only while measured), and the wall time of that workload with a queue
 *    open in the process and with none.
 *
 *   build/bench/inotify [-r runs] [-n rounds] [-d directory on the file system to test]
 */
#include <pthread.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "bench.h"
#include "kevent_inode.h"

#define OPS_PER_ROUND 7
#define MAX_ROUNDS    10000
#define PACE_NS	      200000 /* between two operations of the paced workload */
#define STOP_NAME     "stop"

/* The script's operations, each reported as one event kind by each side. */
enum op_kind {
	OP_CREATE,
	OP_WRITE,
	OP_CHMOD,
	OP_MOVE_FROM,
	OP_MOVE_TO,
	OP_MKDIR,
	OP_RMDIR,
	OP_UNLINK,
	NR_OPS
};

static const struct {
	const char *what, *inotify, *kevent;
	uint32_t in_mask, kev_event;
	char prefix; /* the name the operation's event carries: f, g or d and the round */
} op_info[NR_OPS] = {
    [OP_CREATE] = {"create", "IN_CREATE", "CREATE", IN_CREATE, KEVENT_INODE_CREATE, 'f'},
    [OP_WRITE] = {"write", "IN_MODIFY", "MODIFY", IN_MODIFY, KEVENT_INODE_MODIFY, 'f'},
    [OP_CHMOD] = {"chmod", "IN_ATTRIB", "ATTRIB", IN_ATTRIB, KEVENT_INODE_ATTRIB, 'f'},
    [OP_MOVE_FROM] = {"rename (old name)", "IN_MOVED_FROM", "REMOVE", IN_MOVED_FROM,
		      KEVENT_INODE_REMOVE, 'f'},
    [OP_MOVE_TO] = {"rename (new name)", "IN_MOVED_TO", "CREATE", IN_MOVED_TO, KEVENT_INODE_CREATE,
		    'g'},
    [OP_MKDIR] = {"mkdir", "IN_CREATE", "CREATE", IN_CREATE, KEVENT_INODE_CREATE, 'd'},
    [OP_RMDIR] = {"rmdir", "IN_DELETE", "REMOVE", IN_DELETE, KEVENT_INODE_REMOVE, 'd'},
    [OP_UNLINK] = {"unlink", "IN_DELETE", "REMOVE", IN_DELETE, KEVENT_INODE_REMOVE, 'g'},
};

enum side { INOTIFY, KEVENT, NR_SIDES };

/* One run of the script: when each operation started, and when each side reported it. */
#define DIR_MAX 256 /* the test directories' paths; base is checked to fit */

struct run {
	char dir[DIR_MAX];
	unsigned int rounds;
	bool paced;
	uint64_t start[MAX_ROUNDS][NR_OPS];
	uint64_t seen[NR_SIDES][MAX_ROUNDS][NR_OPS]; /* 0: not reported */
	unsigned int extra[NR_SIDES];		     /* events that match no operation */
	unsigned int lost[NR_SIDES];		     /* overflows: IN_Q_OVERFLOW, log gaps */
	int backend;				     /* the path libkevent took: KEVENT_BACKEND_* */
};

static struct run run;

static unsigned int rounds = 250;
static const char *base = "/var/tmp";

static void path_of(char *out, const char *dir, char prefix, unsigned int round)
{
	snprintf(out, PATH_MAX, "%s/%c%05u", dir, prefix, round);
}

/* The operation an event names: (kind, name) is unique in the script. */
static void record(struct run *r, enum side s, uint32_t mask_or_event, const char *name,
		   uint64_t now)
{
	unsigned int round;
	char prefix;

	if (sscanf(name, "%c%5u", &prefix, &round) != 2 || round >= r->rounds)
		goto extra;
	for (int k = 0; k < NR_OPS; k++) {
		uint32_t want = s == INOTIFY ? op_info[k].in_mask : op_info[k].kev_event;

		if (op_info[k].prefix != prefix || !(mask_or_event & want))
			continue;
		if (!r->seen[s][round][k])
			r->seen[s][round][k] = now; /* later ones merge into the first */
		return;
	}
extra:
	r->extra[s]++;
}

struct ino_side {
	struct run *r;
	int fd;
};

static void *inotify_side(void *arg)
{
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct ino_side *is = arg;
	struct run *r = is->r;
	bool stop = false;

	while (!stop) {
		ssize_t n = read(is->fd, buf, sizeof(buf));
		uint64_t now = bench_now_ns();

		if (n <= 0)
			bench_die("inotify read: %s", strerror(errno));
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;

			if (e->mask & IN_Q_OVERFLOW)
				r->lost[INOTIFY]++;
			else if (e->len && !strcmp(e->name, STOP_NAME))
				stop = true;
			else if (e->len)
				record(r, INOTIFY, e->mask, e->name, now);
			p += sizeof(*e) + e->len;
		}
	}
	return NULL;
}

struct kev_side {
	struct run *r;
	int q;
	struct ukevent reg;
};

static void *kevent_side(void *arg)
{
	static struct kevent_inode_entry ent[256];
	struct kev_side *k = arg;
	struct ukevent ev[16];
	bool stop = false;

	while (!stop) {
		int n = kevent_get_events(k->q, 1, 16, (struct timespec){-1, 0}, ev, 0);
		uint64_t now = bench_now_ns();
		int m;

		if (n < 0)
			bench_die("kevent_get_events: %s", strerror(-n));
		while ((m = kevent_inode_entries(k->q, &k->reg, ent, 256)) > 0) {
			for (int i = 0; i < m; i++) {
				if (!ent[i].event)
					k->r->lost[KEVENT]++;
				else if (!strcmp(ent[i].name, STOP_NAME))
					stop = true;
				else
					record(k->r, KEVENT, ent[i].event, ent[i].name, now);
			}
		}
		if (m < 0)
			bench_die("kevent_inode_entries: %s", strerror(-m));
	}
	return NULL;
}

static void pace(uint64_t *next, bool paced)
{
	struct timespec ts;

	if (!paced)
		return;
	*next += PACE_NS;
	ts.tv_sec = (time_t)(*next / NSEC_PER_SEC);
	ts.tv_nsec = (long)(*next % NSEC_PER_SEC);
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

/* Run one operation of the script; its start time is what latency is measured from. */
static void do_op(struct run *r, unsigned int i, enum op_kind k)
{
	char p[PATH_MAX], t[PATH_MAX];
	int fd, ret = 0;

	path_of(p, r->dir, op_info[k].prefix, i);
	r->start[i][k] = bench_now_ns();
	switch (k) {
	case OP_CREATE:
		fd = open(p, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
		ret = fd < 0 ? -1 : close(fd);
		break;
	case OP_WRITE:
		fd = open(p, O_WRONLY | O_CLOEXEC);
		ret = fd < 0 || write(fd, "data", 4) != 4 ? -1 : close(fd);
		break;
	case OP_CHMOD:
		ret = chmod(p, 0600);
		break;
	case OP_MOVE_FROM:
		path_of(t, r->dir, 'g', i);
		ret = rename(p, t);
		r->start[i][OP_MOVE_TO] = r->start[i][k];
		break;
	case OP_MOVE_TO:
		break; /* the same rename */
	case OP_MKDIR:
		ret = mkdir(p, 0755);
		break;
	case OP_RMDIR:
		ret = rmdir(p);
		break;
	case OP_UNLINK:
		ret = unlink(p);
		break;
	case NR_OPS:
		break;
	}
	if (ret)
		bench_die("%s %s: %s", op_info[k].what, p, strerror(errno));
}

/* One run: both watchers on a fresh directory, the script, then the stop file. */
static void run_script(struct run *r, bool paced)
{
	static const enum op_kind order[OPS_PER_ROUND] = {
	    OP_CREATE, OP_WRITE, OP_CHMOD, OP_MOVE_FROM, OP_MKDIR, OP_RMDIR, OP_UNLINK};
	struct kev_side k = {.r = r};
	struct ino_side is = {.r = r};
	pthread_t ti, tk;
	uint64_t next;
	char p[PATH_MAX];
	int fd;

	memset(r->seen, 0, sizeof(r->seen));
	memset(r->extra, 0, sizeof(r->extra));
	memset(r->lost, 0, sizeof(r->lost));
	r->rounds = rounds;
	r->paced = paced;
	snprintf(r->dir, sizeof(r->dir), "%s/kevent-inotify-XXXXXX", base);
	if (!mkdtemp(r->dir))
		bench_die("mkdtemp in %s: %s", base, strerror(errno));
	k.q = bench_kevent_init();
	fd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	k.reg = (struct ukevent){.type = KEVENT_INODE,
				 .req_flags = KEVENT_REQ_ET,
				 .event = KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE |
					  KEVENT_INODE_MODIFY | KEVENT_INODE_ATTRIB};
	k.reg.id.raw[0] = (__u32)fd;
	if (fd < 0 || kevent_ctl(k.q, KEVENT_CTL_ADD, 1, &k.reg) != 1 || k.reg.ret_flags)
		bench_die("KEVENT_INODE watch on %s: %s", r->dir, strerror(errno));
	r->backend = kevent_backend(k.q, KEVENT_INODE);
	is.fd = inotify_init1(IN_CLOEXEC);
	if (is.fd < 0 || inotify_add_watch(is.fd, r->dir,
					   IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
					       IN_MODIFY | IN_ATTRIB) < 0)
		bench_die("inotify on %s: %s", r->dir, strerror(errno));
	pthread_create(&ti, NULL, inotify_side, &is);
	pthread_create(&tk, NULL, kevent_side, &k);
	usleep(20000); /* both watchers asleep before the first operation */

	next = bench_now_ns();
	for (unsigned int i = 0; i < r->rounds; i++)
		for (int j = 0; j < OPS_PER_ROUND; j++) {
			do_op(r, i, order[j]);
			pace(&next, paced);
		}
	snprintf(p, sizeof(p), "%s/%s", r->dir, STOP_NAME);
	close(open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
	pthread_join(ti, NULL);
	pthread_join(tk, NULL);
	close(is.fd);
	unlink(p);
	kevent_close(k.q);
	close(fd);
	rmdir(r->dir);
}

/* Latency percentile (us) over every operation the side reported. */
static double latency_us(const struct run *r, enum side s, double pct)
{
	static double v[MAX_ROUNDS * NR_OPS];
	size_t n = 0;

	for (unsigned int i = 0; i < r->rounds; i++)
		for (int k = 0; k < NR_OPS; k++)
			if (r->seen[s][i][k])
				v[n++] = (double)(r->seen[s][i][k] - r->start[i][k]) / 1e3;
	return bench_percentile(v, n, pct);
}

static void print_counts(const struct run *r)
{
	unsigned int tot[NR_SIDES] = {0}, missed_all = 0;

	printf("\n# %s workload, %u rounds (%u operations) in %s, libkevent on its %s\n",
	       r->paced ? "paced" : "burst", r->rounds, r->rounds * OPS_PER_ROUND, base,
	       r->backend == KEVENT_BACKEND_BPF ? "BPF path" : "syscall fallback (inotify)");
	printf("%-18s %-14s %-8s %8s %8s %8s %18s\n", "operation", "inotify", "kevent", "script",
	       "inotify", "kevent", "inotify, not kev");
	for (int k = 0; k < NR_OPS; k++) {
		unsigned int n[NR_SIDES] = {0}, missed = 0;

		for (unsigned int i = 0; i < r->rounds; i++) {
			for (int s = 0; s < NR_SIDES; s++)
				n[s] += !!r->seen[s][i][k];
			missed += r->seen[INOTIFY][i][k] && !r->seen[KEVENT][i][k];
		}
		printf("%-18s %-14s %-8s %8u %8u %8u %18u\n", op_info[k].what, op_info[k].inotify,
		       op_info[k].kevent, r->rounds, n[INOTIFY], n[KEVENT], missed);
		for (int s = 0; s < NR_SIDES; s++)
			tot[s] += n[s];
		missed_all += missed;
	}
	printf("%-42s %8u %8u %8u %18u\n", "all", r->rounds * NR_OPS, tot[INOTIFY], tot[KEVENT],
	       missed_all);
	printf("unmatched events: inotify %u, kevent %u; overflows: inotify %u, kevent log gaps "
	       "%u\n\n",
	       r->extra[INOTIFY], r->extra[KEVENT], r->lost[INOTIFY], r->lost[KEVENT]);
}

/* The inode programs of this process, summed: run time and runs. */
static void prog_stats(const int *progs, double *ns, double *cnt)
{
	*ns = *cnt = 0;
	for (int i = 0; i < 3; i++) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);

		if (bpf_obj_get_info_by_fd(progs[i], &info, &len))
			bench_die("bpf_obj_get_info_by_fd: %s", strerror(errno));
		*ns += (double)info.run_time_ns;
		*cnt += (double)info.run_cnt;
	}
}

/* A busy tree: per file, create, write, chmod, rename, unlink. Returns ns per operation. */
static double busy_tree(const char *dir, unsigned int files)
{
	char p[PATH_MAX], t[PATH_MAX];
	uint64_t t0 = bench_now_ns();

	for (unsigned int i = 0; i < files; i++) {
		int fd;

		path_of(p, dir, 'u', i);
		path_of(t, dir, 'v', i);
		fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, "data", 4) != 4 || fchmod(fd, 0600) || close(fd) ||
		    rename(p, t) || unlink(t))
			bench_die("busy tree %s: %s", p, strerror(errno));
	}
	return (double)(bench_now_ns() - t0) / (files * 5.0);
}

enum cost_case { NOTHING_WATCHED, OTHER_WATCHED, WATCHED, NR_COSTS };

static void cost(const struct bench_opts *o)
{
	static const char *const name[NR_COSTS] = {
	    "inode BPF run, no watch left",
	    "inode BPF run, busy unwatched tree",
	    "inode BPF run, watched dir (reference)",
	};
	static const char *const prog_name[3] = {"kev_ctime_set", "kev_ctime_xchg",
						 "kev_ctime_skip"};
	struct bench_series ns[NR_COSTS] = {0}, with = {0}, without = {0};
	char tree[DIR_MAX], watched[DIR_MAX];
	struct ukevent ev[16], reg = {.type = KEVENT_INODE,
				      .req_flags = KEVENT_REQ_ET,
				      .event = KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE |
					       KEVENT_INODE_MODIFY | KEVENT_INODE_ATTRIB};
	int progs[3], stats, q, fd;
	const unsigned int files = 4000;

	snprintf(tree, sizeof(tree), "%s/kevent-tree-XXXXXX", base);
	snprintf(watched, sizeof(watched), "%s/kevent-watched-XXXXXX", base);
	if (!mkdtemp(tree) || !mkdtemp(watched))
		bench_die("mkdtemp: %s", strerror(errno));
	q = bench_kevent_init();
	fd = open(watched, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	reg.id.raw[0] = (__u32)fd;
	/*
	 * A process that never watched an inode has no inode program at all (they load and
	 * attach with the first inode interest); one whose watches are all gone runs them until
	 * its last queue closes: that is the "no watch left" case.
	 */
	if (kevent_ctl(q, KEVENT_CTL_ADD, 1, &reg) != 1 ||
	    kevent_ctl(q, KEVENT_CTL_REMOVE, 1, &reg) != 1)
		bench_die("KEVENT_INODE watch: %s", strerror(errno));
	for (int i = 0; i < 3; i++)
		if ((progs[i] = bench_own_prog(prog_name[i])) < 0)
			bench_die("%s is not loaded in this process", prog_name[i]);
	stats = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats < 0)
		bench_die("BPF_ENABLE_STATS: %s", strerror(errno));
	for (unsigned int r = 0; r < o->runs; r++) {
		for (int c = 0; c < NR_COSTS; c++) {
			double ns0, n0, ns1, n1;

			if (c == OTHER_WATCHED && kevent_ctl(q, KEVENT_CTL_ADD, 1, &reg) != 1)
				bench_die("KEVENT_INODE watch: %s", strerror(errno));
			prog_stats(progs, &ns0, &n0);
			busy_tree(c == WATCHED ? watched : tree, files);
			prog_stats(progs, &ns1, &n1);
			bench_series_add(&ns[c], n1 > n0 ? (ns1 - ns0) / (n1 - n0) : NAN);
			/* Drain what the watched case queued; nothing else may be there. */
			while (kevent_get_events(q, 0, 16, (struct timespec){0, 0}, ev, 0) > 0)
				;
			while (kevent_inode_entries(q, &reg, (struct kevent_inode_entry[8]){}, 8) >
			       0)
				;
			if (c == WATCHED)
				kevent_ctl(q, KEVENT_CTL_REMOVE, 1, &reg);
		}
	}
	close(stats);
	for (int i = 0; i < 3; i++)
		close(progs[i]);
	kevent_close(q);

	/* Wall time of the unwatched workload, with a queue open (one watch) and with none. */
	for (unsigned int r = 0; r < o->runs; r++) {
		q = bench_kevent_init();
		reg.ret_flags = 0;
		kevent_ctl(q, KEVENT_CTL_ADD, 1, &reg);
		bench_series_add(&with, busy_tree(tree, files));
		kevent_close(q);
		bench_series_add(&without, busy_tree(tree, files));
	}
	close(fd);
	rmdir(tree);
	rmdir(watched);
	for (int c = 0; c < NR_COSTS; c++)
		bench_reference(name[c], "ns/run", &ns[c], false,
				"absolute cost: with no program it is 0");
	bench_report(&(struct bench_row){"busy unwatched tree, per operation", "ns", "no libkevent",
					 &with, &without, false});
}

static void usage(void)
{
	fprintf(stderr, "usage: inotify [-r runs] [-n rounds (<= %d)] [-d directory]\n",
		MAX_ROUNDS);
	exit(2);
}

/* What a run on the syscall fallback brings back from its child process. */
struct fallback_res {
	double p50[NR_SIDES], p99[NR_SIDES];
	int backend;
};

struct fallback_arg {
	bool paced, print; /* print: the counts of this run */
};

/*
 * The path is chosen once per process, by its first queue: a child process that has made
 * none runs libkevent on its syscall fallback, against an inotify watcher of its own.
 */
static void fallback_child(int out, void *arg)
{
	const struct fallback_arg *a = arg;
	struct fallback_res res;

	setenv("KEVENT_BACKEND", "syscall", 1);
	run_script(&run, a->paced);
	res.backend = run.backend;
	for (int s = 0; s < NR_SIDES; s++) {
		res.p50[s] = latency_us(&run, s, 50);
		res.p99[s] = latency_us(&run, s, 99);
	}
	if (a->print)
		print_counts(&run);
	fflush(stdout);
	if (write(out, &res, sizeof(res)) != sizeof(res))
		_exit(1);
}

static void fallback_run(bool paced, bool print, struct fallback_res *res)
{
	struct fallback_arg a = {.paced = paced, .print = print};

	if (!bench_child(fallback_child, &a, res, sizeof(*res), 120))
		bench_die("the syscall fallback's run did not finish");
	if (res->backend != KEVENT_BACKEND_SYSCALL)
		bench_die("KEVENT_BACKEND=syscall: KEVENT_INODE took path %d", res->backend);
}

int main(int argc, char **argv)
{
	struct bench_series p50[NR_SIDES] = {0}, p99[NR_SIDES] = {0};
	struct bench_series fp50[NR_SIDES] = {0}, fp99[NR_SIDES] = {0};
	struct fallback_res fres;
	struct bench_opts o;
	int c;

	bench_opts_init(&o, 0);
	while ((c = getopt(argc, argv, BENCH_OPTS "n:d:")) != -1) {
		if (bench_opt(&o, c, optarg))
			continue;
		if (c == 'n')
			rounds = (unsigned int)strtoul(optarg, NULL, 0);
		else if (c == 'd')
			base = optarg;
		else
			usage();
	}
	if (rounds < 1 || rounds > MAX_ROUNDS || strlen(base) > DIR_MAX - 32)
		usage();
	bench_begin("inotify", &o);

	/*
	 * 1. Paced: counts and latency, every run, the BPF path and the fallback alternating;
	 * then one burst each for counts under load.
	 */
	for (unsigned int r = 0; r < o.runs; r++) {
		bool last = r + 1 == o.runs;

		run_script(&run, true);
		for (int s = 0; s < NR_SIDES; s++) {
			bench_series_add(&p50[s], latency_us(&run, s, 50));
			bench_series_add(&p99[s], latency_us(&run, s, 99));
		}
		if (last)
			print_counts(&run);
		fallback_run(true, last, &fres);
		for (int s = 0; s < NR_SIDES; s++) {
			bench_series_add(&fp50[s], fres.p50[s]);
			bench_series_add(&fp99[s], fres.p99[s]);
		}
	}
	run_script(&run, false);
	print_counts(&run);
	fallback_run(false, true, &fres);
	bench_report(&(struct bench_row){"inode event latency p50", "us", "inotify", &p50[KEVENT],
					 &p50[INOTIFY], false});
	bench_report(&(struct bench_row){"inode event latency p99", "us", "inotify", &p99[KEVENT],
					 &p99[INOTIFY], false});
	bench_report(&(struct bench_row){"inode event latency p50, syscall fallback", "us",
					 "inotify", &fp50[KEVENT], &fp50[INOTIFY], false});
	bench_report(&(struct bench_row){"inode event latency p99, syscall fallback", "us",
					 "inotify", &fp99[KEVENT], &fp99[INOTIFY], false});

	/* 2. Cost on activity nobody watches. */
	cost(&o);
	return 0;
}
