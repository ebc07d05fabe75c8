// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * keventctl stats [--json] [PID]: each queue's counters and libkevent's programs' run
 * statistics, for every process using libkevent or one.
 *
 * kevent_stats() answers only for the caller's own queues: most of its counters (delivered,
 * bpf_records, copy_failed) live in the process's memory. What another process can read is
 * in the maps: the ring buffer overflows of each queue (kev_qstats, by queue index, which
 * kevent_stats() reports as ring_overflows), how much of its ring buffer is unread (the
 * positions in the ring's first two pages), and the interests tied to it. The programs' run
 * counts and times are the kernel's: they grow only while statistics are on, which the
 * sysctl kernel.bpf_stats_enabled does (or a BPF_ENABLE_STATS descriptor, which the sysctl
 * does not show), and keep what they counted when they go off.
 */
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "keventctl.h"

/* Every record of a queue's ring is a struct ukevent behind the ring's 8-byte header. */
#define KC_RECORD_BYTES (BPF_RINGBUF_HDR_SZ + sizeof(struct ukevent))

struct kc_queue_stats {
	__u32 idx, ring_id;
	__u64 overflows;
	bool overflows_known;
	__u64 unread; /* bytes the kernel wrote and the process has not consumed */
	bool unread_known;
	unsigned int interests;
};

struct kc_prog_stats {
	__u32 id;
	char name[128]; /* the full name, from BTF; the kernel keeps 15 characters */
	const char *type;
	__u64 run_cnt, run_time_ns;
};

static bool kc_bpf_stats_enabled(void)
{
	FILE *f = fopen("/proc/sys/kernel/bpf_stats_enabled", "r");
	int on = 0;

	if (f) {
		if (fscanf(f, "%d", &on) != 1)
			on = 0;
		fclose(f);
	}
	return on;
}

/* Producer minus consumer position: the consumer's page, then the producer's. */
static bool kc_ring_unread(__u32 ring_id, __u64 *bytes)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	int fd = kc_map_fd(ring_id);
	void *cons, *prod;
	bool ok;

	if (fd < 0)
		return false;
	cons = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0);
	prod = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, (off_t)page);
	close(fd);
	ok = cons != MAP_FAILED && prod != MAP_FAILED;
	if (ok)
		*bytes = __atomic_load_n((__u64 *)prod, __ATOMIC_ACQUIRE) -
			 __atomic_load_n((__u64 *)cons, __ATOMIC_ACQUIRE);
	if (cons != MAP_FAILED)
		munmap(cons, page);
	if (prod != MAP_FAILED)
		munmap(prod, page);
	return ok;
}

static void kc_queue_read(const struct kc_proc *p, const struct kc_interests *in,
			  const struct kc_queue *q, struct kc_queue_stats *qs)
{
	memset(qs, 0, sizeof(*qs));
	qs->idx = q->idx;
	qs->ring_id = q->ring_id;
	qs->overflows_known = kc_queue_overflows(p, q->idx, &qs->overflows);
	qs->unread_known = kc_ring_unread(q->ring_id, &qs->unread);
	qs->interests = kc_interests_on(in, q->idx);
}

/* The program's own function's name in its BTF: bpf_prog_info.name is cut at 15. */
static void kc_prog_btf_name(int fd, const struct bpf_prog_info *info, char *name, size_t len)
{
	struct bpf_prog_info fi_info;
	struct bpf_func_info fi;
	const struct btf_type *t;
	__u32 l = sizeof(fi_info);
	struct btf *btf;

	snprintf(name, len, "%s", info->name);
	if (!info->btf_id || !info->nr_func_info)
		return;
	memset(&fi_info, 0, sizeof(fi_info));
	fi_info.nr_func_info = 1; /* the first is the program's entry */
	fi_info.func_info_rec_size = sizeof(fi);
	fi_info.func_info = (__u64)(unsigned long)&fi;
	if (bpf_obj_get_info_by_fd(fd, &fi_info, &l))
		return;
	btf = btf__load_from_kernel_by_id(info->btf_id);
	if (!btf)
		return;
	t = btf__type_by_id(btf, fi.type_id);
	if (t)
		snprintf(name, len, "%s", btf__name_by_offset(btf, t->name_off));
	btf__free(btf);
}

static bool kc_prog_read(__u32 id, struct kc_prog_stats *ps)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id);
	bool ok;

	if (fd < 0)
		return false;
	memset(&info, 0, sizeof(info));
	ok = !bpf_obj_get_info_by_fd(fd, &info, &len);
	if (ok) {
		ps->id = id;
		ps->type = libbpf_bpf_prog_type_str(info.type) ?: "?";
		ps->run_cnt = info.run_cnt;
		ps->run_time_ns = info.run_time_ns;
		kc_prog_btf_name(fd, &info, ps->name, sizeof(ps->name));
	}
	close(fd);
	return ok;
}

static void kc_stats_text(const struct kc_proc *p, const struct kc_interests *in)
{
	struct kc_queue_stats qs;
	struct kc_prog_stats ps;
	unsigned int i;

	printf("%d %s\n", p->pid, p->comm);
	for (i = 0; i < p->nqueues; i++) {
		kc_queue_read(p, in, &p->queue[i], &qs);
		printf("  queue %u: ", qs.idx);
		if (qs.overflows_known)
			printf("%llu overflows, ", (unsigned long long)qs.overflows);
		else
			printf("overflows unknown, ");
		if (qs.unread_known)
			printf("%llu unread records",
			       (unsigned long long)(qs.unread / KC_RECORD_BYTES));
		else
			printf("unread records unknown");
		printf(", %u socket and inode interests (ring map %u)\n", qs.interests, qs.ring_id);
	}
	for (i = 0; i < p->nprogs; i++) {
		if (!kc_prog_read(p->progs[i], &ps))
			continue;
		printf("  program %s (%s, id %u): ", ps.name, ps.type, ps.id);
		if (!ps.run_cnt)
			printf("0 runs counted\n");
		else
			printf("%llu runs, %llu ns/run\n", (unsigned long long)ps.run_cnt,
			       (unsigned long long)(ps.run_time_ns / ps.run_cnt));
	}
}

static void kc_stats_json(struct kc_json *j, const struct kc_proc *p,
			  const struct kc_interests *in)
{
	struct kc_queue_stats qs;
	struct kc_prog_stats ps;
	unsigned int i;

	kc_json_open(j, NULL, '{');
	kc_json_i64(j, "pid", p->pid);
	kc_json_str(j, "comm", p->comm);
	kc_json_open(j, "queues", '[');
	for (i = 0; i < p->nqueues; i++) {
		kc_queue_read(p, in, &p->queue[i], &qs);
		kc_json_open(j, NULL, '{');
		kc_json_u64(j, "queue", qs.idx);
		kc_json_u64(j, "ring_map_id", qs.ring_id);
		if (qs.overflows_known)
			kc_json_u64(j, "ring_overflows", qs.overflows);
		else
			kc_json_null(j, "ring_overflows");
		if (qs.unread_known)
			kc_json_u64(j, "unread_records", qs.unread / KC_RECORD_BYTES);
		else
			kc_json_null(j, "unread_records");
		kc_json_u64(j, "interests", qs.interests);
		kc_json_close(j, '}');
	}
	kc_json_close(j, ']');
	kc_json_open(j, "programs", '[');
	for (i = 0; i < p->nprogs; i++) {
		if (!kc_prog_read(p->progs[i], &ps))
			continue;
		kc_json_open(j, NULL, '{');
		kc_json_u64(j, "id", ps.id);
		kc_json_str(j, "name", ps.name);
		kc_json_str(j, "type", ps.type);
		kc_json_u64(j, "run_cnt", ps.run_cnt);
		kc_json_u64(j, "run_time_ns", ps.run_time_ns);
		kc_json_close(j, '}');
	}
	kc_json_close(j, ']');
	kc_json_close(j, '}');
}

static int kc_stats_args(int argc, char **argv, bool *json, pid_t *pid)
{
	if (kc_json_flag(argc, argv, "stats", json))
		return -1;
	if (optind < argc && kc_parse_pid(argv[optind], pid)) {
		kc_err("stats: '%s' is not a process id", argv[optind]);
		return -1;
	}
	if (optind + 1 < argc) {
		kc_err("stats: unexpected argument '%s' (keventctl --help)", argv[optind + 1]);
		return -1;
	}
	return 0;
}

int kc_stats(int argc, char **argv)
{
	bool json = false, on = kc_bpf_stats_enabled();
	struct kc_interests in;
	struct kc_scan s;
	struct kc_json j;
	pid_t pid = 0;
	int err;

	if (kc_stats_args(argc, argv, &json, &pid))
		return KC_EXIT_ERROR;
	err = kc_scan(&s, pid);
	if (err)
		return kc_scan_failed(err);
	if (pid && !s.n) {
		kc_err("stats: process %d has no libkevent queue", pid);
		kc_scan_free(&s);
		return KC_EXIT_ERROR;
	}
	kc_json_init(&j, stdout);
	if (json) {
		kc_json_open(&j, NULL, '{');
		kc_json_bool(&j, "bpf_stats_enabled", on);
		kc_json_open(&j, "processes", '[');
	} else if (!on) {
		printf("kernel.bpf_stats_enabled is 0: programs' runs are counted only while "
		       "statistics are on (sysctl -w kernel.bpf_stats_enabled=1)\n");
	}
	for (unsigned int i = 0; i < s.n; i++) {
		kc_interests_read(&s.proc[i], &in, false);
		if (json)
			kc_stats_json(&j, &s.proc[i], &in);
		else
			kc_stats_text(&s.proc[i], &in);
		kc_interests_free(&in);
	}
	if (json) {
		kc_json_close(&j, ']');
		kc_json_close(&j, '}');
		kc_json_end(&j);
	}
	kc_scan_free(&s);
	return KC_EXIT_OK;
}
