// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Which processes use libkevent, and which of their maps and programs are libkevent's.
 *
 * The kernel lists every BPF map by id (bpf_map_get_next_id(), CAP_SYS_ADMIN); libkevent's
 * have fixed names (in bpf/). A process holds the maps it
 * keeps a descriptor for, which /proc/PID/fdinfo names ("map_id:"), and its programs, held
 * directly or through the links that attach them ("prog_id:"). A map the library keeps only
 * mmapped (kev_tslots) has no descriptor: it is found among the maps its programs use.
 *
 * A libkevent process keeps descriptors for its core maps (kev_rings, kev_slots, kev_qstats)
 * as long as it has a queue, and its queues are the ring buffers stored in its kev_rings. A
 * tool that reads the maps (bpftool, another keventctl) holds one of them at a time, for a
 * moment: it is not listed.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "keventctl.h"

#define KC_PROG_MAPS 64 /* maps a program uses, as many as bpf_prog_info gives us */

static const char *const kc_kind_names[KC_KINDS] = {
	[KC_RINGS] = "kev_rings",     [KC_SLOTS] = "kev_slots",	  [KC_QSTATS] = "kev_qstats",
	[KC_SOCKETS] = "kev_sockets", [KC_INODES] = "kev_inodes", [KC_TSLOTS] = "kev_tslots",
};

/* libkevent's maps on the machine, by id (ascending: bpf_map_get_next_id()'s order). */
struct kc_maps {
	struct {
		__u32 id;
		int kind;
	} *v;
	unsigned int n;
};

/*
 * Not BPF_F_RDONLY: the kernel refuses to mmap a read-only descriptor of an array or a ring
 * buffer (EINVAL). This tool only reads: lookups, and PROT_READ mappings.
 */
int kc_map_fd(__u32 id)
{
	return bpf_map_get_fd_by_id(id);
}

int kc_map_open(__u32 id, __u32 ksize, __u32 vsize, struct bpf_map_info *info)
{
	__u32 len = sizeof(*info);
	int fd = kc_map_fd(id);

	if (fd < 0)
		return fd;
	memset(info, 0, sizeof(*info));
	if (bpf_obj_get_info_by_fd(fd, info, &len) || info->key_size != ksize ||
	    info->value_size != vsize) {
		close(fd);
		return -EPROTO;
	}
	return fd;
}

int kc_scan_failed(int err)
{
	if (err == -EPERM)
		kc_err("reading the kernel's BPF maps needs root (CAP_SYS_ADMIN)");
	else
		kc_err("cannot list the kernel's BPF maps: %s", strerror(-err));
	return KC_EXIT_ERROR;
}

static int kc_kind_of_name(const char *name)
{
	for (int k = 0; k < KC_KINDS; k++)
		if (!strcmp(name, kc_kind_names[k]))
			return k;
	return -1;
}

static int kc_kind_of(const struct kc_maps *m, __u32 id)
{
	unsigned int lo = 0, hi = m->n;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;

		if (m->v[mid].id == id)
			return m->v[mid].kind;
		if (m->v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static int kc_scan_maps(struct kc_maps *m)
{
	struct bpf_map_info info;
	__u32 id = 0, len;
	int err, fd, kind;

	while (!(err = bpf_map_get_next_id(id, &id))) {
		fd = kc_map_fd(id);
		if (fd < 0)
			continue; /* gone meanwhile */
		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		err = bpf_obj_get_info_by_fd(fd, &info, &len);
		close(fd);
		kind = err ? -1 : kc_kind_of_name(info.name);
		if (kind < 0)
			continue;
		m->v = kc_grow(m->v, m->n, sizeof(*m->v));
		m->v[m->n].id = id;
		m->v[m->n++].kind = kind;
	}
	return err == -ENOENT ? 0 : err;
}

/* The number after key in /proc/PID/fdinfo/FD ("map_id:", "prog_id:"), 0 if none. */
static __u32 kc_fdinfo(pid_t pid, const char *fd, const char *key)
{
	char path[64], line[128];
	size_t klen = strlen(key);
	unsigned long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", pid, fd);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen)) {
			v = strtoul(line + klen, NULL, 10);
			break;
		}
	fclose(f);
	return (__u32)v;
}

static void kc_proc_add_map(struct kc_proc *p, const struct kc_maps *m, __u32 id)
{
	int kind = kc_kind_of(m, id);

	if (kind >= 0 && !p->map[kind])
		p->map[kind] = id;
}

static void kc_proc_add_prog(struct kc_proc *p, __u32 id)
{
	for (unsigned int i = 0; i < p->nprogs; i++)
		if (p->progs[i] == id)
			return; /* a program and its link, or several links */
	p->progs = kc_grow(p->progs, p->nprogs, sizeof(*p->progs));
	p->progs[p->nprogs++] = id;
}

/* Every BPF map and program the process holds a descriptor for. */
static void kc_proc_fds(struct kc_proc *p, const struct kc_maps *m)
{
	char path[64], link[64];
	struct dirent *de;
	ssize_t n;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", p->pid);
	d = opendir(path);
	if (!d)
		return; /* gone, or a kernel thread */
	while ((de = readdir(d))) {
		n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (!strcmp(link, "anon_inode:bpf-map"))
			kc_proc_add_map(p, m, kc_fdinfo(p->pid, de->d_name, "map_id:"));
		else if (!strcmp(link, "anon_inode:bpf-prog") ||
			 !strcmp(link, "anon_inode:bpf_link"))
			kc_proc_add_prog(p, kc_fdinfo(p->pid, de->d_name, "prog_id:"));
	}
	closedir(d);
}

/* Is the program libkevent's? The maps it uses (kev_tslots among them) go to the process. */
static bool kc_prog_ours(struct kc_proc *p, const struct kc_maps *m, __u32 id)
{
	__u32 maps[KC_PROG_MAPS], len, i;
	struct bpf_prog_info info;
	bool ours = false;
	int fd = bpf_prog_get_fd_by_id(id);

	if (fd < 0)
		return false;
	memset(&info, 0, sizeof(info));
	info.nr_map_ids = KC_PROG_MAPS;
	info.map_ids = (__u64)(unsigned long)maps;
	len = sizeof(info);
	if (!bpf_obj_get_info_by_fd(fd, &info, &len)) {
		for (i = 0; i < info.nr_map_ids && i < KC_PROG_MAPS; i++) {
			ours |= kc_kind_of(m, maps[i]) >= 0;
			kc_proc_add_map(p, m, maps[i]);
		}
		ours |= !strncmp(info.name, "kev_", 4);
	}
	close(fd);
	return ours;
}

/* Keep only libkevent's programs. */
static void kc_proc_progs(struct kc_proc *p, const struct kc_maps *m)
{
	unsigned int i, n = 0;

	for (i = 0; i < p->nprogs; i++)
		if (kc_prog_ours(p, m, p->progs[i]))
			p->progs[n++] = p->progs[i];
	p->nprogs = n;
}

/* The queues: the indexes of kev_rings holding a ring buffer. */
static void kc_proc_queues(struct kc_proc *p)
{
	struct bpf_map_info info;
	int fd = kc_map_open(p->map[KC_RINGS], sizeof(__u32), sizeof(__u32), &info);
	__u32 idx, inner;

	if (fd < 0)
		return;
	for (idx = 0; idx < KEV_MAX_QUEUES; idx++) {
		/* An array of maps answers a lookup from userspace with the inner map's id. */
		if (bpf_map_lookup_elem(fd, &idx, &inner))
			continue;
		p->queue[p->nqueues].idx = idx;
		p->queue[p->nqueues++].ring_id = inner;
	}
	close(fd);
}

static void kc_proc_comm(struct kc_proc *p)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", p->pid);
	f = fopen(path, "r");
	if (!f || !fgets(p->comm, sizeof(p->comm), f))
		snprintf(p->comm, sizeof(p->comm), "?");
	p->comm[strcspn(p->comm, "\n")] = '\0';
	if (f)
		fclose(f);
}

static void kc_proc_free(struct kc_proc *p)
{
	free(p->progs);
}

/* Does it hold, itself, kev_rings and another core map? (See the top.) */
static bool kc_proc_is_user(const struct kc_proc *p)
{
	return p->map[KC_RINGS] && (p->map[KC_SLOTS] || p->map[KC_QSTATS]);
}

static void kc_scan_pid(struct kc_scan *s, const struct kc_maps *m, pid_t pid)
{
	struct kc_proc p = { .pid = pid };

	kc_proc_fds(&p, m);
	if (kc_proc_is_user(&p)) {
		kc_proc_progs(&p, m);
		kc_proc_queues(&p);
	}
	if (!p.nqueues) {
		kc_proc_free(&p);
		return;
	}
	kc_proc_comm(&p);
	s->proc = kc_grow(s->proc, s->n, sizeof(*s->proc));
	s->proc[s->n++] = p;
}

int kc_scan(struct kc_scan *s, pid_t only)
{
	struct kc_maps m = { 0 };
	struct dirent *de;
	DIR *d;
	int err;

	memset(s, 0, sizeof(*s));
	err = kc_scan_maps(&m);
	if (err || !m.n) {
		free(m.v);
		return err;
	}
	if (only) {
		kc_scan_pid(s, &m, only);
		free(m.v);
		return 0;
	}
	d = opendir("/proc");
	if (!d) {
		err = -errno;
		free(m.v);
		return err;
	}
	while ((de = readdir(d))) {
		if (isdigit((unsigned char)de->d_name[0]))
			kc_scan_pid(s, &m, (pid_t)strtol(de->d_name, NULL, 10));
	}
	closedir(d);
	free(m.v);
	return 0;
}

void kc_scan_free(struct kc_scan *s)
{
	for (unsigned int i = 0; i < s->n; i++)
		kc_proc_free(&s->proc[i]);
	free(s->proc);
	memset(s, 0, sizeof(*s));
}
