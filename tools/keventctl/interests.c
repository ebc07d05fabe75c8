// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * What one process watches, as its maps show it (layouts: bpf/kev_shared.h):
 *
 * - sockets: kev_sockets, one entry per slot a socket interest holds, fd -1 for a free
 *   slot; the address through /proc/PID/fd/FD and /proc/PID/net (procnet.c);
 * - inodes: kev_inodes, keyed by (dev, ino), a watch per interest; the path through
 *   /proc/PID/fd/FD, checked against the key (the descriptor may name another file now);
 * - timers: kev_tslots, an mmapped array of armings by slot; KEV_TARM_ARMED marks a live
 *   timer. The period and the queue are not there (the kernel's tree node has them).
 *
 * Entries of another process (a map shared after fork()) are left out: each names its tgid.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "keventctl.h"

/*
 * Call fn for each element of a hash map. The library never deletes from these maps, but
 * a process can exit meanwhile: the walk stops at max_entries however the keys move.
 */
typedef void kc_entry_fn(struct kc_interests *in, pid_t pid, const void *k, const void *v);

static void kc_map_walk(__u32 id, __u32 ksize, __u32 vsize, kc_entry_fn *fn,
			struct kc_interests *in, pid_t pid)
{
	char key[64], next[64], val[512];
	struct bpf_map_info info;
	int fd = kc_map_open(id, ksize, vsize, &info);
	__u32 n;

	_Static_assert(sizeof(struct kev_inode_key) <= sizeof(key), "keys fit");
	_Static_assert(sizeof(struct kev_inode_val) <= sizeof(val), "values fit");
	in->foreign |= fd == -EPROTO;
	if (fd < 0)
		return;
	for (n = 0; n < info.max_entries; n++) {
		if (bpf_map_get_next_key(fd, n ? key : NULL, next))
			break;
		memcpy(key, next, ksize);
		if (!bpf_map_lookup_elem(fd, key, val))
			fn(in, pid, key, val);
	}
	close(fd);
}

static void kc_on_socket(struct kc_interests *in, pid_t pid, const void *k, const void *v)
{
	const struct kev_sock_view *view = v;
	struct kc_sock_row *r;

	if (view->fd < 0 || (pid_t)view->tgid != pid)
		return; /* a free slot, kept for its next owner; or another process's */
	in->sock = kc_grow(in->sock, in->nsock, sizeof(*in->sock));
	r = &in->sock[in->nsock++];
	r->slot = ((const struct kev_sock_key *)k)->slot;
	r->v = *view;
}

/* The path the descriptor names, and whether it still names the watched inode. */
static void kc_inode_path(pid_t pid, struct kc_inode_row *r)
{
	char proc[64];
	struct stat sb;
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/%d/fd/%d", pid, r->w.fd);
	n = readlink(proc, r->path, sizeof(r->path) - 1);
	r->path[n > 0 ? n : 0] = '\0';
	/* The key holds the kernel's s_dev (major << 20 | minor), not an st_dev. */
	if (!stat(proc, &sb))
		r->moved = sb.st_ino != r->key.ino || major(sb.st_dev) != r->key.dev >> 20 ||
			   minor(sb.st_dev) != (r->key.dev & 0xfffff);
}

static void kc_on_inode(struct kc_interests *in, pid_t pid, const void *k, const void *v)
{
	const struct kev_inode_val *val = v;
	struct kc_inode_row *r;

	if ((pid_t)val->tgid != pid)
		return;
	for (unsigned int i = 0; i < val->nr && i < KEV_INODE_WATCHES; i++) {
		in->inode = kc_grow(in->inode, in->ninode, sizeof(*in->inode));
		r = &in->inode[in->ninode++];
		r->key = *(const struct kev_inode_key *)k;
		r->w = val->w[i];
	}
}

/* kev_tslots is an mmapable array: one mapping reads it all, however many slots. */
static void kc_read_timers(__u32 id, struct kc_interests *in)
{
	const struct kev_tslot *ts;
	struct bpf_map_info info;
	int fd = kc_map_open(id, sizeof(__u32), sizeof(*ts), &info);
	size_t size;
	__u32 slot;

	in->foreign |= fd == -EPROTO;
	if (fd < 0)
		return;
	size = (size_t)info.value_size * info.max_entries;
	ts = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (ts == MAP_FAILED)
		return;
	for (slot = 0; slot < info.max_entries; slot++) {
		if (!(__atomic_load_n(&ts[slot].arm, __ATOMIC_RELAXED) & KEV_TARM_ARMED))
			continue;
		in->timer = kc_grow(in->timer, in->ntimer, sizeof(*in->timer));
		in->timer[in->ntimer].slot = slot;
		in->timer[in->ntimer++].t = ts[slot];
	}
	munmap((void *)ts, size);
}

static int kc_sock_cmp(const void *a, const void *b)
{
	const struct kc_sock_row *x = a, *y = b;

	return x->v.fd - y->v.fd;
}

static int kc_inode_cmp(const void *a, const void *b)
{
	const struct kc_inode_row *x = a, *y = b;

	return x->w.fd - y->w.fd;
}

void kc_interests_read(const struct kc_proc *p, struct kc_interests *in, bool describe)
{
	struct kc_netns *ns;

	memset(in, 0, sizeof(*in));
	if (p->map[KC_SOCKETS])
		kc_map_walk(p->map[KC_SOCKETS], sizeof(struct kev_sock_key),
			    sizeof(struct kev_sock_view), kc_on_socket, in, p->pid);
	if (p->map[KC_INODES])
		kc_map_walk(p->map[KC_INODES], sizeof(struct kev_inode_key),
			    sizeof(struct kev_inode_val), kc_on_inode, in, p->pid);
	if (p->map[KC_TSLOTS])
		kc_read_timers(p->map[KC_TSLOTS], in);
	if (in->nsock)
		qsort(in->sock, in->nsock, sizeof(*in->sock), kc_sock_cmp);
	if (in->ninode)
		qsort(in->inode, in->ninode, sizeof(*in->inode), kc_inode_cmp);
	if (describe && in->nsock) {
		for (unsigned int i = 0; i < in->nsock; i++)
			kc_netns_inode(p->pid, &in->sock[i]);
		ns = kc_netns_load(p->pid);
		for (unsigned int i = 0; i < in->nsock; i++)
			kc_netns_describe(ns, &in->sock[i]);
		kc_netns_free(ns);
	}
	for (unsigned int i = 0; describe && i < in->ninode; i++)
		kc_inode_path(p->pid, &in->inode[i]);
}

void kc_interests_free(struct kc_interests *in)
{
	free(in->sock);
	free(in->inode);
	free(in->timer);
	memset(in, 0, sizeof(*in));
}

unsigned int kc_interests_on(const struct kc_interests *in, __u32 idx)
{
	unsigned int n = 0, i;

	for (i = 0; i < in->nsock; i++)
		n += in->sock[i].v.queue == idx;
	for (i = 0; i < in->ninode; i++)
		n += in->inode[i].w.queue == idx;
	return n;
}

bool kc_queue_overflows(const struct kc_proc *p, __u32 idx, __u64 *overflows)
{
	struct kev_qstat st;
	struct bpf_map_info info;
	int fd = kc_map_open(p->map[KC_QSTATS], sizeof(idx), sizeof(st), &info);
	bool ok;

	if (fd < 0)
		return false;
	ok = !bpf_map_lookup_elem(fd, &idx, &st);
	close(fd);
	if (ok)
		*overflows = st.overflows;
	return ok;
}
