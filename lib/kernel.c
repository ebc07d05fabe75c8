// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The kernel side, once per process: the embedded BPF object (loaded by the first queue,
 * released with the last), the slot allocator, and each queue's BPF ring buffer.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "internal.h"
#include "kevent.skel.h"

static struct {
	pthread_mutex_t lock;
	unsigned int users;
	struct kevent_bpf *skel;
	struct kev_slot *slots;	     /* kev_slots, mmapped */
	struct kev_qstat *qstats;    /* kev_qstats, mmapped */
	struct kev_timer_req *treqs; /* kev_timer_reqs, mmapped */
	struct kev_interest **owner; /* slot -> interest holding it */
	__u32 nslots;		     /* KEVENT_MAX_INTERESTS, or KEV_MAX_SLOTS */
	__u32 fresh;		     /* slots below it have been handed out at least once */
	__u32 *free;		     /* FIFO of freed slots: reuse as late as possible */
	__u32 free_head, nfree;
	__u64 queues;		     /* bit i: kev_rings[i] in use */
	bool attached[KEV_PROGS_NR]; /* kev_kernel_attach() */
} kk = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* A program of a group and where the skeleton keeps its link (destroyed with it). */
struct kev_prog_ref {
	struct bpf_program *prog;
	struct bpf_link **link;
};

#define KEV_PROG_REF(name) ((struct kev_prog_ref){ kk.skel->progs.name, &kk.skel->links.name })

static unsigned int kev_group(int group, struct kev_prog_ref *r)
{
	switch (group) {
	case KEV_PROGS_SOCKET:
		r[0] = KEV_PROG_REF(kev_sk_data_ready);
		r[1] = KEV_PROG_REF(kev_sk_error_report);
		r[2] = KEV_PROG_REF(kev_sk_set_state);
		return 3;
	case KEV_PROGS_INODE:
		r[0] = KEV_PROG_REF(kev_ctime_set);
		r[1] = KEV_PROG_REF(kev_ctime_xchg);
		r[2] = KEV_PROG_REF(kev_ctime_skip);
		return 3;
	}
	return 0;
}

#define KEV_GROUP_MAX 3

_Static_assert(KEV_MAX_QUEUES <= 64, "one bit per queue in kk.queues");

/* libbpf's own chatter is for developers; KEVENT_DEBUG=1 shows it. */
static int kev_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || !getenv("KEVENT_DEBUG"))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static void *kev_map_mmap(struct bpf_map *map, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(map), 0);

	return p == MAP_FAILED ? NULL : p;
}

static void kev_kernel_unload(void)
{
	if (kk.slots)
		munmap(kk.slots, sizeof(*kk.slots) * kk.nslots);
	if (kk.qstats)
		munmap(kk.qstats, sizeof(*kk.qstats) * KEV_MAX_QUEUES);
	if (kk.treqs)
		munmap(kk.treqs, sizeof(*kk.treqs) * KEV_TIMER_BATCH);
	kevent_bpf__destroy(kk.skel); /* detaches what kev_kernel_attach() attached */
	memset(kk.attached, 0, sizeof(kk.attached));
	free(kk.owner);
	free(kk.free);
	kk.skel = NULL;
	kk.slots = NULL;
	kk.qstats = NULL;
	kk.treqs = NULL;
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

static int kev_kernel_size(void)
{
	struct bpf_map *maps[] = { kk.skel->maps.kev_slots, kk.skel->maps.kev_sockets };
	int err = 0;

	kk.nslots = kev_kernel_capacity();
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]) && !err; i++)
		err = bpf_map__set_max_entries(maps[i], kk.nslots);
	return err;
}

static int kev_kernel_load(void)
{
	libbpf_print_fn_t old = libbpf_set_print(kev_libbpf_print);
	int err = -ENOMEM;

	kk.skel = kevent_bpf__open();
	if (!kk.skel)
		goto out;
	err = kev_kernel_size();
	for (int g = 0; g < KEV_PROGS_NR; g++) {
		struct kev_prog_ref r[KEV_GROUP_MAX];

		/* Attached on first use (kev_kernel_attach()). */
		for (unsigned int i = kev_group(g, r); i--;)
			bpf_program__set_autoattach(r[i].prog, false);
	}
	if (!err)
		err = kevent_bpf__load(kk.skel);
	if (err == -EPERM) {
		fprintf(stderr, "libkevent: loading BPF programs needs CAP_BPF and CAP_PERFMON "
				"(or root)\n");
		err = -EPERM;
		goto out;
	}
	if (err) {
		fprintf(stderr, "libkevent: cannot load BPF programs (%s); the kernel needs BTF "
				"and tp_btf tracepoints\n", strerror(-err));
		goto out;
	}
	err = -ENOMEM;
	kk.slots = kev_map_mmap(kk.skel->maps.kev_slots, sizeof(*kk.slots) * kk.nslots);
	kk.qstats = kev_map_mmap(kk.skel->maps.kev_qstats, sizeof(*kk.qstats) * KEV_MAX_QUEUES);
	kk.treqs = kev_map_mmap(kk.skel->maps.kev_timer_reqs, sizeof(*kk.treqs) * KEV_TIMER_BATCH);
	/* Untouched pages cost nothing: both grow with the slots actually used. */
	kk.owner = calloc(kk.nslots, sizeof(*kk.owner));
	kk.free = malloc(kk.nslots * sizeof(*kk.free));
	if (!kk.slots || !kk.qstats || !kk.treqs || !kk.owner || !kk.free)
		goto out;
	err = 0;
out:
	if (err)
		kev_kernel_unload();
	libbpf_set_print(old);
	return err;
}

int kev_kernel_get(void)
{
	int err = 0;

	pthread_mutex_lock(&kk.lock);
	if (!kk.users)
		err = kev_kernel_load();
	if (!err)
		kk.users++;
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
 * Attach a group of programs: the first interest of a kind does it, and they stay until
 * the object goes. A process that watches no socket then does not run the socket programs
 * on every socket of the machine, nor one without inode interests the inode programs on
 * every change of a timestamp. Needs the object loaded (a queue open).
 */
int kev_kernel_attach(int group)
{
	struct kev_prog_ref r[KEV_GROUP_MAX];
	int err = 0;

	/* Acquire: pairs with the release below; the links are in place once this reads true. */
	if (__atomic_load_n(&kk.attached[group], __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&kk.lock);
	for (unsigned int i = kev_group(group, r); i-- && !err;) {
		if (*r[i].link)
			continue;
		*r[i].link = bpf_program__attach(r[i].prog);
		if (!*r[i].link) {
			err = -errno;
			fprintf(stderr, "libkevent: cannot attach %s to its tracepoint: %s\n",
				bpf_program__name(r[i].prog), strerror(errno));
		}
	}
	if (!err)
		__atomic_store_n(&kk.attached[group], true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&kk.lock);
	return err;
}

int kev_kernel_map_fd(int which)
{
	switch (which) {
	case KEV_MAP_SOCKETS:
		return bpf_map__fd(kk.skel->maps.kev_sockets);
	case KEV_MAP_INODES:
		return bpf_map__fd(kk.skel->maps.kev_inodes);
	case KEV_MAP_INODE_CTL:
		return bpf_map__fd(kk.skel->maps.kev_inode_ctl);
	case KEV_MAP_INODE_LOG:
		return bpf_map__fd(kk.skel->maps.kev_inode_log);
	}
	return -EINVAL;
}

/* socket.bpf.c's cookie filter, in the skeleton's mapping of its data section. */
struct kev_filter_bits *kev_kernel_sock_filter(void)
{
	return &kk.skel->data_kev_sock_ctl->kev_sock_ctl.filter;
}

/*
 * Arm reqs[0..nr): one run of kev_timer_arm, the requests passed through the mmapped
 * kev_timer_reqs. Results come back in reqs[i].err.
 */
int kev_kernel_arm_timers(struct kev_timer_req *reqs, unsigned int nr)
{
	struct kev_timer_arm_ctx ctx = { .nr = nr };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &ctx, .ctx_size_in = sizeof(ctx));
	int err;

	pthread_mutex_lock(&kk.lock);
	memcpy(kk.treqs, reqs, nr * sizeof(*reqs));
	err = bpf_prog_test_run_opts(bpf_program__fd(kk.skel->progs.kev_timer_arm), &opts);
	err = err ? -errno : (int)opts.retval;
	memcpy(reqs, kk.treqs, nr * sizeof(*reqs));
	pthread_mutex_unlock(&kk.lock);
	return err;
}

/* Timers the kernel holds for this process (removed ones until they come due). */
__u64 kev_kernel_timers(void)
{
	return __atomic_load_n(&kk.skel->bss->kev_tnodes, __ATOMIC_RELAXED);
}

/*
 * Give the queue a ring buffer of its own, at a free index of kev_rings. Its size is
 * KEV_RINGBUF_BYTES, or KEVENT_RINGBUF_KB (a power of two, at least a page): a small ring
 * lets the stress harness overflow it at will (K24, tests/stress/).
 */
int kev_kernel_queue_open(struct kev_queue *q)
{
	int outer = bpf_map__fd(kk.skel->maps.kev_rings), fd = -1, err, idx;
	const char *env = getenv("KEVENT_RINGBUF_KB");
	unsigned long kb = env ? strtoul(env, NULL, 0) : 0;
	size_t bytes = KEV_RINGBUF_BYTES;

	if (kb && !(kb & (kb - 1)) && kb <= (1UL << 20) && kb * 1024 >= (size_t)getpagesize())
		bytes = kb * 1024;

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
	err = kev_rb_open(&q->rb, fd, bytes);
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
	q->awake = &kk.qstats[idx].awake;
	fd = -1; /* the ring buffer now belongs to q->rb */
out:
	pthread_mutex_unlock(&kk.lock);
	if (fd >= 0)
		close(fd);
	return err;
}

void kev_kernel_queue_close(struct kev_queue *q)
{
	int outer = bpf_map__fd(kk.skel->maps.kev_rings);

	pthread_mutex_lock(&kk.lock);
	bpf_map_delete_elem(outer, &q->qidx);
	kk.queues &= ~(1ULL << q->qidx);
	pthread_mutex_unlock(&kk.lock);
	kev_rb_close(&q->rb);
}

__u64 kev_kernel_overflows(const struct kev_queue *q)
{
	/* Acquire: pairs with the BPF side's atomic add after it set the pending bits. */
	return __atomic_load_n(&kk.qstats[q->qidx].overflows, __ATOMIC_ACQUIRE);
}

int kev_slot_alloc(struct kev_interest *it)
{
	__u32 s;

	pthread_mutex_lock(&kk.lock);
	if (kk.fresh < kk.nslots) {
		s = kk.fresh++; /* never used: its generation is 0, nothing pending */
	} else if (kk.nfree) {
		s = kk.free[kk.free_head];
		kk.free_head = (kk.free_head + 1) % kk.nslots;
		kk.nfree--;
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
	kk.free[(kk.free_head + kk.nfree) % kk.nslots] = s;
	kk.nfree++;
	pthread_mutex_unlock(&kk.lock);
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

/*
 * Take the pending bits, keep the generation. After this the BPF side sees nothing
 * pending and pushes a record for the next event (pairs with its compare-and-swap).
 */
__u32 kev_slot_pending(const struct kev_interest *it)
{
	if (it->slot == KEV_NO_SLOT)
		return 0;
	return KEV_SLOT_PENDING(__atomic_load_n(&kk.slots[it->slot].word, __ATOMIC_ACQUIRE));
}

__u32 kev_slot_clear(const struct kev_interest *it)
{
	__u64 old;

	if (it->slot == KEV_NO_SLOT)
		return 0;
	old = __atomic_fetch_and(&kk.slots[it->slot].word, ~0xffffffffULL, __ATOMIC_ACQ_REL);
	return KEV_SLOT_PENDING(old);
}
