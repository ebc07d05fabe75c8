// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The kernel side, once per process. The first queue loads the core (bpf/maps.bpf.c): the
 * maps every queue needs, kev_slots, kev_qstats and kev_rings, and no program. Each source
 * family (socket, inode, timer) is an object of its own, loaded and attached by its first
 * interest (kev_kernel_attach()), its copies of the core's maps pointed at the core's
 * before it loads. A process pays the verifier only for the families it uses, and runs no
 * program on the machine's other sockets and files unless it watches some. Everything
 * goes with the last queue. Also here: the slot allocator and each queue's ring buffer.
 *
 * Paths (K26). What cannot load for good (no privilege, a kernel without a tracepoint or
 * kfunc, KEVENT_BACKEND=syscall) is remembered, with the line that says why: a core that
 * cannot load leaves the queues without a ring and every family failed; a family that
 * cannot load makes its sources take their syscall fallback (kev_kernel_backend()). The
 * line goes to stderr only for a caller that requires the BPF path (KEVENT_INIT_BPF). A
 * shortage of descriptors or memory is an error of the call, tried again by the next.
 *
 * Descriptors. Once an object is loaded the library keeps only what it still uses: a map
 * it updates with system calls, a SEC("syscall") program it runs, the link of each
 * attached program, and kev_tq, whose bpf_timer stops with the map's last user
 * reference. The arrays it shares with the programs are mmapped, and a mapping holds its
 * map without a descriptor. The rest (libbpf's object, the BTF, the other programs and
 * maps, which the programs and links hold in the kernel) is closed at once. The core's
 * kev_slots and kev_qstats stay open for the families still to load: handing a map to an
 * object takes a descriptor, and the kernel gives one back by id only to CAP_SYS_ADMIN.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "internal.h"
#include "inode_calls.h"
#include "kev_core.skel.h"
#include "kev_socket.skel.h"
#include "kev_inode.skel.h"
#include "kev_timer.skel.h"

/* The descriptors the library keeps (see the top); KEV_MAP_* index the first ones. */
enum {
	KEV_FD_RINGS = KEV_MAP_INODE_LOG + 1,
	KEV_FD_SLOTS,
	KEV_FD_QSTATS,
	KEV_FD_SOCK_PROBE,
	KEV_FD_SOCK_RECV, /* kev_sk_recv until its first level watch attaches it */
	KEV_FD_TQ,
	KEV_FD_TIMER_ARM,
	KEV_FD_NR
};

#define KEV_MMAPS_MAX 8

static struct {
	pthread_mutex_t lock;
	unsigned int users;
	int fd[KEV_FD_NR]; /* -1: none */
	int *links;	   /* of every attached program */
	unsigned int nlinks;
	struct {
		void *addr;
		size_t len;
	} mmaps[KEV_MMAPS_MAX]; /* what kev_keep_mmap() mapped */
	unsigned int nmmaps;
	bool ready[KEV_PROGS_NR];	 /* the family is loaded and attached */
	bool level_reads;		 /* kev_sk_recv is attached */
	int failed[KEV_PROGS_NR];	 /* why the family cannot load, remembered */
	char why[256];			 /* libbpf's first warning during a load */
	/* Why a family (or, at KEV_PROGS_NR, the core) cannot load: the line said when asked. */
	char said[KEV_PROGS_NR + 1][320];
	bool told[KEV_PROGS_NR + 1];	 /* that line went to stderr */
	int core_err;			 /* the core did not load: queues run without a ring */
	struct kev_slot *slots;		 /* kev_slots, mmapped */
	struct kev_qstat *qstats;	 /* kev_qstats, mmapped */
	struct kev_timer_req *treqs;	 /* kev_timer_reqs, mmapped */
	struct kev_probe *probes;	 /* kev_probes, mmapped */
	struct kev_tslot *tslots;	 /* kev_tslots, mmapped: the timers' armings */
	struct kev_timer_bpf__bss *tbss; /* the timer object's globals, mmapped */
	struct kev_socket_bpf__bss *sbss; /* the socket object's globals, mmapped */
	struct kev_interest **owner;	 /* slot -> interest holding it */
	__u32 nslots;			 /* KEVENT_MAX_INTERESTS, or KEV_MAX_SLOTS */
	__u32 fresh;			 /* slots below it have been handed out at least once */
	/*
	 * Freed slots, the last freed reused first: a queue that adds and removes keeps using
	 * the same few slots, whose pages stay warm (and the operators' view updates in place).
	 * A freed slot's generation has moved on, so no old watch or record reaches its next
	 * owner whenever it comes.
	 */
	__u32 *free;
	__u32 nfree;
	__u64 queues; /* bit i: kev_rings[i] in use */
} kk = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.fd = { [0 ... KEV_FD_NR - 1] = -1 },
};

_Static_assert(KEV_MAX_QUEUES <= 64, "one bit per queue in kk.queues, 6 in an epoch");

/* One run of a SEC("syscall") program with ctx; its return value, or -errno. */
static int kev_kernel_run(int prog_fd, void *ctx, size_t size)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = ctx, .ctx_size_in = (__u32)size);

	if (bpf_prog_test_run_opts(prog_fd, &opts))
		return -errno;
	return (int)opts.retval;
}

/*
 * libbpf's own chatter is for developers; KEVENT_DEBUG=1 shows it. Its first warning
 * during a load is kept: it names what the kernel lacks, for the one line we print.
 */
static int kev_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	va_list copy;

	if (level == LIBBPF_WARN && !kk.why[0]) {
		va_copy(copy, ap);
		vsnprintf(kk.why, sizeof(kk.why), fmt, copy);
		va_end(copy);
		kk.why[strcspn(kk.why, "\n")] = '\0';
		if (!strncmp(kk.why, "libbpf: ", 8))
			memmove(kk.why, kk.why + 8, strlen(kk.why + 8) + 1);
	}
	if (level == LIBBPF_DEBUG || !getenv("KEVENT_DEBUG"))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/*
 * Sticky errors: each step of keeping an object's parts does nothing once one failed, so
 * that a family's list of what it keeps reads as a list.
 */
static void kev_keep_fd(int fd, int which, int *err)
{
	if (*err)
		return;
	kk.fd[which] = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (kk.fd[which] < 0)
		*err = -errno;
}

static void *kev_keep_mmap(const struct bpf_map *map, int *err)
{
	size_t len = (size_t)bpf_map__value_size(map) * bpf_map__max_entries(map);
	void *p;

	if (*err)
		return NULL;
	if (kk.nmmaps == KEV_MMAPS_MAX) {
		*err = -E2BIG;
		return NULL;
	}
	p = kev_mmap(bpf_map__fd(map), len, PROT_READ | PROT_WRITE, 0);
	if (!p) {
		*err = -errno;
		return NULL;
	}
	kk.mmaps[kk.nmmaps].addr = p;
	kk.mmaps[kk.nmmaps++].len = len;
	return p;
}

static void kev_keep_run(const struct bpf_program *prog, int *err)
{
	if (!*err)
		*err = kev_kernel_run(bpf_program__fd(prog), NULL, 0);
}

/* Which of the core's maps an object's map is, by name: its KEV_FD_*, or -1. */
static int kev_core_map(const char *name)
{
	static const struct {
		const char *name;
		int fd;
	} core[] = {
		{ "kev_rings", KEV_FD_RINGS },
		{ "kev_slots", KEV_FD_SLOTS },
		{ "kev_qstats", KEV_FD_QSTATS },
	};

	for (size_t i = 0; i < sizeof(core) / sizeof(core[0]); i++)
		if (!strcmp(name, core[i].name))
			return core[i].fd;
	return -1;
}

/* What the library keeps of each object once it is loaded, before it is closed. */
static void kev_core_keep(struct kev_core_bpf *s, int *err)
{
	struct bpf_map *map;

	/* A map maps.bpf.c gains must be handed to the families too (kev_core_map()). */
	bpf_object__for_each_map(map, s->obj) {
		if (kev_core_map(bpf_map__name(map)) < 0) {
			snprintf(kk.why, sizeof(kk.why), "map %s is not shared",
				 bpf_map__name(map));
			*err = -EINVAL;
		}
	}
	kev_keep_fd(bpf_map__fd(s->maps.kev_rings), KEV_FD_RINGS, err);
	kev_keep_fd(bpf_map__fd(s->maps.kev_slots), KEV_FD_SLOTS, err);
	kev_keep_fd(bpf_map__fd(s->maps.kev_qstats), KEV_FD_QSTATS, err);
	kk.slots = kev_keep_mmap(s->maps.kev_slots, err);
	kk.qstats = kev_keep_mmap(s->maps.kev_qstats, err);
}

static void kev_socket_keep(struct kev_socket_bpf *s, int *err)
{
	/* Before the programs attach: they read the descriptor table it records. */
	kev_keep_run(s->progs.kev_owner, err);
	kev_keep_fd(bpf_map__fd(s->maps.kev_socks), KEV_MAP_SOCKS, err);
	kev_keep_fd(bpf_map__fd(s->maps.kev_sockets), KEV_MAP_SOCKETS, err);
	kev_keep_fd(bpf_program__fd(s->progs.kev_sock_probe), KEV_FD_SOCK_PROBE, err);
	kev_keep_fd(bpf_program__fd(s->progs.kev_sk_recv), KEV_FD_SOCK_RECV, err);
	kk.probes = kev_keep_mmap(s->maps.kev_probes, err);
	kk.sbss = kev_keep_mmap(s->maps.bss, err);
}

static void kev_inode_keep(struct kev_inode_bpf *s, int *err)
{
	kev_inode_calls_write(bpf_map__fd(s->maps.kev_inode_calls), err); /* before they attach */
	kev_keep_fd(bpf_map__fd(s->maps.kev_inodes), KEV_MAP_INODES, err);
	kev_keep_fd(bpf_map__fd(s->maps.kev_inode_ctl), KEV_MAP_INODE_CTL, err);
	kev_keep_fd(bpf_map__fd(s->maps.kev_inode_log), KEV_MAP_INODE_LOG, err);
}

static void kev_timer_keep(struct kev_timer_bpf *s, int *err)
{
	kev_keep_fd(bpf_map__fd(s->maps.kev_tq), KEV_FD_TQ, err);
	kev_keep_fd(bpf_program__fd(s->progs.kev_timer_arm), KEV_FD_TIMER_ARM, err);
	kk.treqs = kev_keep_mmap(s->maps.kev_timer_reqs, err);
	kk.tslots = kev_keep_mmap(s->maps.kev_tslots, err);
	kk.tbss = kev_keep_mmap(s->maps.bss, err);
}

/*
 * Before an object loads: its copies of the core's maps become the core's (once the core
 * is there), and every map declared with one entry per possible interest gets one per
 * slot of this process.
 */
static int kev_object_prepare(struct bpf_object *obj)
{
	struct bpf_program *prog;
	struct bpf_map *map;
	int err = 0;

	/* Outside any SEC() is kev_notify(), which the families call: never a program itself. */
	bpf_object__for_each_program(prog, obj)
		if (!strcmp(bpf_program__section_name(prog), ".text"))
			bpf_program__set_autoload(prog, false);
	bpf_object__for_each_map(map, obj) {
		int core = kev_core_map(bpf_map__name(map));

		if (core >= 0 && kk.fd[core] >= 0)
			err = bpf_map__reuse_fd(map, kk.fd[core]);
		else if (bpf_map__max_entries(map) == KEV_MAX_SLOTS)
			err = bpf_map__set_max_entries(map, kk.nslots);
		if (err)
			break;
	}
	return err;
}

/*
 * Below this RLIMIT_NOFILE the BPF side is not for this process (a family keeps up to 7
 * descriptors and needs about 15 more while it loads): its sources take their fallback,
 * which needs none (K26), rather than fail (event-loop suites run under a limit of 20).
 */
#define KEV_FDS_BPF 64

static unsigned long kev_fd_limit(void)
{
	struct rlimit rl;

	return getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY ? ~0UL
									      : rl.rlim_cur;
}

/* Are n (at most 32) descriptors free? 0, or -EMFILE (-ENFILE, ...). */
static int kev_fds_free(unsigned int n)
{
	int fds[32], err = 0;
	unsigned int got = 0;

	if (n > sizeof(fds) / sizeof(fds[0]))
		n = sizeof(fds) / sizeof(fds[0]);
	while (got < n) {
		fds[got] = got ? fcntl(fds[0], F_DUPFD_CLOEXEC, 0) : open("/", O_PATH | O_CLOEXEC);
		if (fds[got] < 0) {
			err = -errno;
			break;
		}
		got++;
	}
	while (got--)
		close(fds[got]);
	return err;
}

/*
 * A load holds a descriptor for the object's BTF and each of its maps and programs at
 * once, and briefly one or two more (the kernel's BTF file, a feature probe). libbpf meets
 * a shortage with fallbacks (an object without BTF, a map created without it) that end in
 * errors that do not say so: look for room first, and a shortage is -EMFILE. What keeping
 * and attaching take after the load fails with EMFILE itself.
 */
static int kev_object_room(struct bpf_object *obj)
{
	struct bpf_program *prog;
	struct bpf_map *map;
	unsigned int n = 3;

	bpf_object__for_each_map(map, obj)
		n++;
	bpf_object__for_each_program(prog, obj)
		n += bpf_program__autoload(prog);
	return kev_fds_free(n);
}

static int kev_object_load(struct bpf_object *obj)
{
	int err;

	if (!obj)
		return -errno;
	err = kev_object_prepare(obj);
	if (!err)
		err = kev_object_room(obj);
	return err ? err : bpf_object__load(obj);
}

/* Keep a link's descriptor: closing it (kev_kernel_unload()) detaches the program. */
static int kev_keep_link_fd(int fd)
{
	int *links = realloc(kk.links, (kk.nlinks + 1) * sizeof(*links));

	if (!links)
		return -ENOMEM;
	kk.links = links;
	kk.links[kk.nlinks++] = fd;
	return 0;
}

static int kev_keep_link(struct bpf_link *link)
{
	/* Disconnected, the link's descriptor outlives libbpf's struct: it is ours to close. */
	int err = kev_keep_link_fd(bpf_link__fd(link));

	if (!err) {
		bpf_link__disconnect(link);
		bpf_link__destroy(link);
	}
	return err;
}

/*
 * Programs attached on demand, not with their family: kev_sk_recv runs after every read of
 * every socket on the machine, and only level-mode watches need it (kev_kernel_level_reads()).
 */
static bool kev_prog_lazy(const struct bpf_program *prog)
{
	return !strcmp(bpf_program__name(prog), "kev_sk_recv");
}

/* Attach every program of the object that has a hook: all but the SEC("syscall") ones. */
static int kev_object_attach(struct bpf_object *obj)
{
	struct bpf_program *prog;
	struct bpf_link *link;
	int err = 0;

	bpf_object__for_each_program(prog, obj) {
		if (!bpf_program__autoload(prog) ||
		    bpf_program__type(prog) == BPF_PROG_TYPE_SYSCALL || kev_prog_lazy(prog))
			continue;
		link = bpf_program__attach(prog);
		err = link ? kev_keep_link(link) : -errno;
		if (err) {
			if (!link)
				snprintf(kk.why, sizeof(kk.why), "cannot attach %s (%s)",
					 bpf_program__section_name(prog), strerror(-err));
			bpf_link__destroy(link);
			break;
		}
	}
	return err;
}

/*
 * Load an object from its skeleton, keep what the library needs of it (fam##_keep()),
 * attach its programs, and close the rest. The skeletons differ only in type.
 */
#define KEV_OBJECT_LOADER(fam)							\
	static int kev_##fam##_load(void)					\
	{									\
		struct kev_##fam##_bpf *s = kev_##fam##_bpf__open();		\
		int err = kev_object_load(s ? s->obj : NULL);			\
										\
		if (!err)							\
			kev_##fam##_keep(s, &err);				\
		if (!err)							\
			err = kev_object_attach(s->obj);			\
		kev_##fam##_bpf__destroy(s);					\
		return err;							\
	}

KEV_OBJECT_LOADER(core)
KEV_OBJECT_LOADER(socket)
KEV_OBJECT_LOADER(inode)
KEV_OBJECT_LOADER(timer)

static const struct {
	const char *what; /* in messages */
	int (*load)(void);
} kev_families[KEV_PROGS_NR] = {
	[KEV_PROGS_SOCKET] = { "socket events", kev_socket_load },
	[KEV_PROGS_INODE] = { "inode events", kev_inode_load },
	[KEV_PROGS_TIMER] = { "timer events", kev_timer_load },
};

/*
 * A load failed: the errno its caller gets, and the line that says what is missing (kept in
 * *line, printed by kev_say() when someone needs the BPF side). No privilege is -EPERM, a
 * shortage of descriptors or memory itself, anything else (no BTF, a missing tracepoint or
 * kfunc, the verifier's refusal) -EOPNOTSUPP.
 */
static int kev_load_failed(const char *what, int err, char *line, size_t len)
{
	if (err == -EPERM) {
		snprintf(line, len, "%s: the BPF side needs CAP_BPF and CAP_PERFMON (or root)", what);
		return err;
	}
	if (err == -EMFILE || err == -ENFILE || err == -ENOMEM) {
		snprintf(line, len, "%s: %s", what, strerror(-err));
		return err;
	}
	snprintf(line, len, "%s: the kernel cannot run the BPF programs: %s", what,
		 kk.why[0] ? kk.why : strerror(-err));
	return -EOPNOTSUPP;
}

/* Is a load's failure for good (the fallback serves), or a shortage worth trying again? */
static bool kev_for_good(int err)
{
	return err != -EMFILE && err != -ENFILE && err != -ENOMEM;
}

/* Say once on stderr why a family (KEV_PROGS_NR: the core) has no BPF side. */
static void kev_say(int which)
{
	if (kk.told[which] || !kk.said[which][0])
		return;
	kk.told[which] = true;
	fprintf(stderr, "libkevent: %s\n", kk.said[which]);
}

/* How far the kept parts went before a load: what a failed load undoes. */
struct kev_mark {
	unsigned int nlinks, nmmaps;
	bool had[KEV_FD_NR];
};

static void kev_undo(const struct kev_mark *m)
{
	while (kk.nlinks > m->nlinks)
		close(kk.links[--kk.nlinks]);
	while (kk.nmmaps > m->nmmaps) {
		kk.nmmaps--;
		munmap(kk.mmaps[kk.nmmaps].addr, kk.mmaps[kk.nmmaps].len);
	}
	for (int i = 0; i < KEV_FD_NR; i++) {
		if (!m->had[i] && kk.fd[i] >= 0)
			close(kk.fd[i]);
		if (!m->had[i])
			kk.fd[i] = -1;
	}
}

/*
 * Run load() with libbpf's messages caught. A failure leaves nothing of it behind, and
 * its error is as kev_load_failed() says it.
 */
static int kev_load(int (*load)(void), const char *what, int which)
{
	struct kev_mark m = { .nlinks = kk.nlinks, .nmmaps = kk.nmmaps };
	libbpf_print_fn_t old;
	int err;

	for (int i = 0; i < KEV_FD_NR; i++)
		m.had[i] = kk.fd[i] >= 0;
	kk.why[0] = '\0';
	old = libbpf_set_print(kev_libbpf_print);
	err = load();
	libbpf_set_print(old);
	if (!err)
		return 0;
	kev_undo(&m);
	/*
	 * Out of descriptors, libbpf's fallbacks end in errors that do not say so (and what a
	 * load needs varies with the kernel): a failure while none are left is a shortage,
	 * never a reason to give the BPF path up for good.
	 */
	if (err != -EPERM && kev_fds_free(8) == -EMFILE)
		err = -EMFILE;
	if (err == -EMFILE && kev_fd_limit() < KEV_FDS_BPF) {
		/* Not a shortage of the moment: the process's limit leaves no room, for good. */
		snprintf(kk.said[which], sizeof(kk.said[which]),
			 "%s: RLIMIT_NOFILE (%lu) leaves no room for the BPF side (%u descriptors)",
			 what, kev_fd_limit(), KEV_FDS_BPF);
		kk.told[which] = false;
		return -EOPNOTSUPP;
	}
	err = kev_load_failed(what, err, kk.said[which], sizeof(kk.said[which]));
	kk.told[which] = false;
	if (getenv("KEVENT_DEBUG") || !kev_for_good(err))
		kev_say(which); /* a shortage fails the call: say why */
	return err;
}

static void kev_kernel_unload(void)
{
	for (unsigned int i = 0; i < kk.nlinks; i++)
		close(kk.links[i]); /* detaches the program */
	for (unsigned int i = 0; i < kk.nmmaps; i++)
		munmap(kk.mmaps[i].addr, kk.mmaps[i].len);
	for (int i = 0; i < KEV_FD_NR; i++) {
		if (kk.fd[i] >= 0)
			close(kk.fd[i]);
		kk.fd[i] = -1;
	}
	free(kk.links);
	free(kk.owner);
	free(kk.free);
	kk.links = NULL;
	kk.nlinks = kk.nmmaps = 0;
	memset(kk.ready, 0, sizeof(kk.ready));
	kk.level_reads = false;
	memset(kk.failed, 0, sizeof(kk.failed));
	kk.core_err = 0;
	kk.slots = NULL;
	kk.qstats = NULL;
	kk.treqs = NULL;
	kk.probes = NULL;
	kk.tslots = NULL;
	kk.tbss = NULL;
	kk.sbss = NULL;
	kk.owner = NULL;
	kk.free = NULL;
	kk.nfree = 0;
	kk.fresh = 0;
	kk.queues = 0;
}

/*
 * How many interests the kernel side can track (all queues of the process): the slots,
 * and the capacity of the per-object maps. KEVENT_MAX_INTERESTS overrides the default.
 */
static __u32 kev_kernel_capacity(void)
{
	const char *s = getenv("KEVENT_MAX_INTERESTS");
	unsigned long n = s ? strtoul(s, NULL, 0) : 0;

	return n >= 1 && n <= (1UL << 24) ? (__u32)n : KEV_MAX_SLOTS;
}

/*
 * KEVENT_BACKEND in the environment: "syscall" keeps the BPF side out (the fallback of every
 * source, for testing it), "bpf" makes every queue require it (KEVENT_INIT_BPF), anything
 * else leaves the choice to what loads.
 */
static bool kev_env_backend(const char *want)
{
	const char *s = getenv("KEVENT_BACKEND");

	return s && !strcmp(s, want);
}

/*
 * The core. Without it (no privilege, no BPF in the kernel, KEVENT_BACKEND=syscall) queues
 * run without a kernel ring and every family on its fallback: kk.core_err says why, and is
 * every family's failure. A shortage fails kevent_init() itself.
 */
static int kev_kernel_load(void)
{
	char *line = kk.said[KEV_PROGS_NR];
	int err;

	kk.nslots = kev_kernel_capacity();
	if (kev_env_backend("syscall")) {
		snprintf(line, sizeof(kk.said[0]), "KEVENT_BACKEND=syscall: the BPF side is off");
		kk.told[KEV_PROGS_NR] = false;
		err = -EOPNOTSUPP;
	} else {
		err = kev_load(kev_core_load, "kevent_init", KEV_PROGS_NR);
	}
	/* Untouched pages cost nothing: both grow with the slots actually used. */
	if (!err) {
		kk.owner = calloc(kk.nslots, sizeof(*kk.owner));
		kk.free = malloc(kk.nslots * sizeof(*kk.free));
		if (!kk.owner || !kk.free)
			err = -ENOMEM;
	}
	if (err)
		kev_kernel_unload();
	if (err && kev_for_good(err)) {
		kk.core_err = err;
		for (int i = 0; i < KEV_PROGS_NR; i++) {
			__atomic_store_n(&kk.failed[i], err, __ATOMIC_RELAXED);
			memcpy(kk.said[i], line, sizeof(kk.said[i]));
			kk.told[i] = false;
		}
		err = 0;
	}
	return err;
}

/*
 * A queue's hold on the kernel side. need_bpf (KEVENT_INIT_BPF): the caller refuses the
 * fallback, and a core that cannot load fails it, said on stderr.
 */
int kev_kernel_get(bool need_bpf)
{
	int err = 0;

	kev_fork_init();
	pthread_mutex_lock(&kk.lock);
	if (!kk.users)
		err = kev_kernel_load();
	if (!err && kk.core_err && (need_bpf || kev_env_backend("bpf"))) {
		kev_say(KEV_PROGS_NR);
		err = kk.core_err;
	}
	if (!err)
		kk.users++;
	else if (!kk.users)
		kev_kernel_unload();
	pthread_mutex_unlock(&kk.lock);
	return err;
}

void kev_kernel_put(void)
{
	pthread_mutex_lock(&kk.lock);
	if (!--kk.users)
		kev_kernel_unload();
	pthread_mutex_unlock(&kk.lock);
}

/*
 * fork() child (fork.c): the objects are the parent's. Closing the child's descriptors of
 * them lets them go when the parent does (attached programs included); the mappings were
 * never inherited (MADV_DONTFORK), so there is nothing to unmap.
 */
void kev_kernel_forget(void)
{
	pthread_mutex_init(&kk.lock, NULL);
	kk.nmmaps = 0;
	kk.users = 0;
	kev_kernel_unload();
}

/*
 * Load and attach a source family's programs: its first interest does it, and they stay
 * until the last queue goes. A process that watches no socket then neither verifies the
 * socket programs nor runs them on every socket of the machine. A family that cannot load
 * (-EPERM, -EOPNOTSUPP) is not tried again while the process keeps a queue: its sources
 * take their fallback (kev_kernel_backend()). A shortage of descriptors or memory is
 * returned, and the next interest tries again. fd: a descriptor the caller is about to
 * use, or -1. A load opens descriptors, which could take its number if it is closed: it
 * is checked first (-EBADF).
 */
int kev_kernel_attach_fd(int group, int fd)
{
	int err;

	/* Acquire: pairs with the release below; what the load kept is in place. */
	if (__atomic_load_n(&kk.ready[group], __ATOMIC_ACQUIRE))
		return 0;
	/* Failed for good: the fallback's every interest comes here, with no system call. */
	err = __atomic_load_n(&kk.failed[group], __ATOMIC_RELAXED);
	if (err)
		return err;
	if (fd >= 0 && fcntl(fd, F_GETFD) < 0)
		return -errno;
	pthread_mutex_lock(&kk.lock);
	err = kk.failed[group];
	if (!err && !kk.ready[group])
		err = kev_load(kev_families[group].load, kev_families[group].what, group);
	if (!err)
		__atomic_store_n(&kk.ready[group], true, __ATOMIC_RELEASE);
	else if (kev_for_good(err))
		__atomic_store_n(&kk.failed[group], err, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&kk.lock);
	return err;
}

int kev_kernel_attach(int group)
{
	return kev_kernel_attach_fd(group, -1);
}

/*
 * The path a family's sources take (K26): KEVENT_BACKEND_BPF once its programs are
 * attached (the first call loads them), else KEVENT_BACKEND_SYSCALL. need_bpf: the caller
 * refuses the fallback (KEVENT_INIT_BPF, KEVENT_BACKEND=bpf, or a source without one) and
 * gets the load's error instead, its reason said once on stderr.
 */
int kev_kernel_backend(int group, int fd, bool need_bpf)
{
	int err = kev_kernel_attach_fd(group, fd);

	if (!err)
		return KEVENT_BACKEND_BPF;
	if (err != -EPERM && err != -EOPNOTSUPP)
		return err;
	if (!need_bpf && !kev_env_backend("bpf"))
		return KEVENT_BACKEND_SYSCALL;
	pthread_mutex_lock(&kk.lock);
	kev_say(group);
	pthread_mutex_unlock(&kk.lock);
	return err;
}

/*
 * Level mode's reads (K13): attach kev_sk_recv, which clears a socket's level state when a
 * read leaves it empty, before the first level-mode watch is stored. Until then no read on
 * the machine runs it. It stays attached with its family; its program descriptor, which
 * the link now holds, goes.
 */
int kev_kernel_level_reads(void)
{
	int fd, err = 0;

	/* Acquire: pairs with the release below; the link is in place. */
	if (__atomic_load_n(&kk.level_reads, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&kk.lock);
	if (!kk.level_reads) {
		/* tp_btf: the tracepoint is the program's own, named at load. */
		fd = bpf_raw_tracepoint_open(NULL, kk.fd[KEV_FD_SOCK_RECV]);
		err = fd < 0 ? -errno : kev_keep_link_fd(fd);
		if (fd >= 0 && err) {
			close(fd);
		} else if (!err) {
			close(kk.fd[KEV_FD_SOCK_RECV]);
			kk.fd[KEV_FD_SOCK_RECV] = -1;
			__atomic_store_n(&kk.level_reads, true, __ATOMIC_RELEASE);
		}
	}
	pthread_mutex_unlock(&kk.lock);
	return err;
}

/* A map of a family its first interest loaded (kev_kernel_attach()): -EBADF before. */
int kev_kernel_map_fd(int which)
{
	if (which < 0 || which > KEV_MAP_INODE_LOG)
		return -EINVAL;
	return kk.fd[which] >= 0 ? kk.fd[which] : -EBADF;
}

/*
 * Arm reqs[0..nr): one run of kev_timer_arm, the requests passed through the mmapped
 * kev_timer_reqs. Results come back in reqs[i].err.
 */
int kev_kernel_arm_timers(struct kev_timer_req *reqs, unsigned int nr)
{
	struct kev_timer_arm_ctx ctx = { .nr = nr };
	int err;

	pthread_mutex_lock(&kk.lock);
	memcpy(kk.treqs, reqs, nr * sizeof(*reqs));
	err = kev_kernel_run(kk.fd[KEV_FD_TIMER_ARM], &ctx, sizeof(ctx));
	memcpy(reqs, kk.treqs, nr * sizeof(*reqs));
	pthread_mutex_unlock(&kk.lock);
	return err;
}

/*
 * Probe the sockets at p[0..nr).fd (kev_sock_probe); the answers come back in p.
 * -EOPNOTSUPP while the socket family is not loaded.
 */
int kev_kernel_probe(struct kev_probe *p, unsigned int nr, bool names)
{
	struct kev_probe_ctx ctx = { .nr = nr, .names = names };
	int err;

	/* Acquire: pairs with the release that publishes the loaded family. */
	if (!__atomic_load_n(&kk.ready[KEV_PROGS_SOCKET], __ATOMIC_ACQUIRE))
		return -EOPNOTSUPP;
	pthread_mutex_lock(&kk.lock);
	memcpy(kk.probes, p, nr * sizeof(*p));
	err = kev_kernel_run(kk.fd[KEV_FD_SOCK_PROBE], &ctx, sizeof(ctx));
	memcpy(p, kk.probes, nr * sizeof(*p));
	pthread_mutex_unlock(&kk.lock);
	return err;
}

/* A slot's timer arming (timer.c); the slot is the caller's. */
struct kev_tslot *kev_kernel_tslot(__u32 slot)
{
	return &kk.tslots[slot];
}

/* Nodes in the kernel's timer tree: one per armed timer of the process. */
__u64 kev_kernel_timers(void)
{
	/* Acquire: pairs with the release that publishes the loaded family. */
	if (!__atomic_load_n(&kk.ready[KEV_PROGS_TIMER], __ATOMIC_ACQUIRE))
		return 0;
	return __atomic_load_n(&kk.tbss->kev_tnodes, __ATOMIC_RELAXED);
}

/*
 * Give the queue a ring buffer of its own, at a free index of kev_rings. Its size is
 * KEV_RINGBUF_BYTES, or KEVENT_RINGBUF_KB (a power of two, at least a page): a small ring
 * lets the stress harness overflow it at will (K24, tests/stress/). Without the core, the
 * queue reads an empty ring that never fills (kev_rb_none()).
 */
int kev_kernel_queue_open(struct kev_queue *q)
{
	int outer = kk.fd[KEV_FD_RINGS], fd = -1, err, idx;
	const char *env = getenv("KEVENT_RINGBUF_KB");
	unsigned long kb = env ? strtoul(env, NULL, 0) : 0;
	size_t bytes = KEV_RINGBUF_BYTES;

	if (kb && !(kb & (kb - 1)) && kb <= (1UL << 20) && kb * 1024 >= (size_t)getpagesize())
		bytes = kb * 1024;

	if (outer < 0) {
		kev_rb_none(&q->rb);
		return 0;
	}
	pthread_mutex_lock(&kk.lock);
	idx = ~kk.queues ? __builtin_ctzll(~kk.queues) : -1;
	if (idx < 0 || idx >= KEV_MAX_QUEUES) {
		err = -EMFILE;
		goto out;
	}
	fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "kev_ring", 0, 0, bytes, NULL);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	err = kev_rb_open(&q->rb, fd, bytes, true);
	if (err)
		goto out;
	memset(&kk.qstats[idx], 0, sizeof(kk.qstats[idx]));
	if (bpf_map_update_elem(outer, &idx, &fd, BPF_ANY)) {
		err = -errno;
		kev_rb_close(&q->rb);
		goto out;
	}
	kk.queues |= 1ULL << idx;
	q->qidx = idx;
	q->seen_overflows = 0;
	fd = -1; /* the ring buffer now belongs to q->rb */
out:
	pthread_mutex_unlock(&kk.lock);
	if (fd >= 0)
		close(fd);
	return err;
}

void kev_kernel_queue_close(struct kev_queue *q)
{
	int outer = kk.fd[KEV_FD_RINGS];

	if (q->qidx < 0)
		return;
	pthread_mutex_lock(&kk.lock);
	bpf_map_delete_elem(outer, &q->qidx);
	kk.queues &= ~(1ULL << q->qidx);
	pthread_mutex_unlock(&kk.lock);
	kev_rb_close(&q->rb);
}

/*
 * A call on q begins (kevent_get_events(), kevent_wait(); q->lock held): a new odd value
 * in the socket programs' kev_epoch, which every record they push from now on carries.
 * The value is the queue's and the call's own (q->calls is bumped under the lock), so two
 * calls never share one; a record another call let through is checked. The store releases
 * what the calling thread closed before the call: socket.bpf.c loads the value before the
 * descriptor table, in that order (message passing: no full barrier is needed).
 */
__u32 kev_kernel_epoch(const struct kev_queue *q)
{
	__u32 e;

	if (q->qidx < 0)
		return 0; /* no ring, no record */
	e = ((q->calls << 6 | (__u32)q->qidx) << 1) | 1;
	/* Acquire: pairs with the release of kev_kernel_attach_fd(); kk.sbss is in place. */
	if (__atomic_load_n(&kk.ready[KEV_PROGS_SOCKET], __ATOMIC_ACQUIRE))
		__atomic_store_n(&kk.sbss->kev_epoch, e, __ATOMIC_RELEASE);
	return e;
}

__u64 kev_kernel_overflows(const struct kev_queue *q)
{
	if (q->qidx < 0)
		return 0;
	/* Acquire: pairs with the BPF side's atomic add after it set the pending bits. */
	return __atomic_load_n(&kk.qstats[q->qidx].overflows, __ATOMIC_ACQUIRE);
}

int kev_slot_alloc(struct kev_interest *it)
{
	__u32 s;

	pthread_mutex_lock(&kk.lock);
	if (kk.nfree) {
		s = kk.free[--kk.nfree]; /* the last freed: its generation moved on when it was */
	} else if (kk.fresh < kk.nslots) {
		s = kk.fresh++; /* never used: its generation is 0, nothing pending */
	} else {
		pthread_mutex_unlock(&kk.lock);
		return -ENOSPC;
	}
	pthread_mutex_unlock(&kk.lock);

	it->slot = s;
	it->gen = KEV_SLOT_GEN(__atomic_load_n(&kk.slots[s].word, __ATOMIC_RELAXED));
	__atomic_store_n(&kk.owner[s], it, __ATOMIC_RELAXED);
	return 0;
}

void kev_slot_free(struct kev_interest *it)
{
	__u32 s = it->slot;

	if (s == KEV_NO_SLOT)
		return;
	/*
	 * A new generation with nothing pending: the BPF side's compare-and-swap fails for
	 * any watch that still carries the old generation (kev_notify()).
	 */
	__atomic_store_n(&kk.slots[s].word, (__u64)(it->gen + 1) << 32, __ATOMIC_RELEASE);
	__atomic_store_n(&kk.owner[s], NULL, __ATOMIC_RELAXED);
	it->slot = KEV_NO_SLOT;

	pthread_mutex_lock(&kk.lock);
	kk.free[kk.nfree++] = s;
	pthread_mutex_unlock(&kk.lock);
}

/*
 * The interest keeps its slot under a new generation with nothing pending: records and
 * BPF programs holding the old one are ignored from now on (K10), as after a free.
 */
void kev_slot_renew(struct kev_interest *it)
{
	it->gen++;
	__atomic_store_n(&kk.slots[it->slot].word, (__u64)it->gen << 32, __ATOMIC_RELEASE);
}

/*
 * The interest a record names, or NULL when the slot has moved to another generation
 * since (the interest was removed: K10). Only the queue the record came through can free
 * this slot, and the caller holds its lock, so the owner cannot change under it.
 */
struct kev_interest *kev_slot_owner(__u32 slot, __u32 gen)
{
	__u64 w;

	if (slot >= kk.nslots)
		return NULL;
	w = __atomic_load_n(&kk.slots[slot].word, __ATOMIC_ACQUIRE);
	if (KEV_SLOT_GEN(w) != gen)
		return NULL;
	return __atomic_load_n(&kk.owner[slot], __ATOMIC_RELAXED);
}

/* The slot's pending bits (or count), a look: nothing is taken. */
__u32 kev_slot_pending(const struct kev_interest *it)
{
	if (it->slot == KEV_NO_SLOT)
		return 0;
	return KEV_SLOT_PENDING(__atomic_load_n(&kk.slots[it->slot].word, __ATOMIC_ACQUIRE));
}

/* OR state bits into the slot (the level state a probe saw), unless it changed hands. */
void kev_slot_set(const struct kev_interest *it, __u32 bits)
{
	__u64 *word, old;

	if (it->slot == KEV_NO_SLOT)
		return;
	word = &kk.slots[it->slot].word;
	old = __atomic_load_n(word, __ATOMIC_RELAXED);
	while (KEV_SLOT_GEN(old) == it->gen && !__atomic_compare_exchange_n(
		word, &old, old | bits, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		;
}

/*
 * Take the pending bits (a count: all of it), keep the generation and the level state.
 * After this the BPF side sees nothing pending and pushes a record for the next event
 * (pairs with its compare-and-swap).
 */
__u32 kev_slot_clear(const struct kev_interest *it)
{
	__u64 keep = it->src->counts ? 0 : KEV_PEND_LEVEL;
	__u64 old;

	if (it->slot == KEV_NO_SLOT)
		return 0;
	old = __atomic_fetch_and(&kk.slots[it->slot].word, ~0xffffffffULL | keep, __ATOMIC_ACQ_REL);
	return KEV_SLOT_PENDING(old) & ~(__u32)keep;
}
