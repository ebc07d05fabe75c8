// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Consumer side of a BPF ring buffer (BPF_MAP_TYPE_RINGBUF). libbpf 1.1 only offers it
 * behind an epoll of its own and a callback per ring; a queue needs the ring inside its
 * own epoll set and a drain it can run under its lock, so this is the small piece.
 *
 * Layout: page 0 holds consumer_pos (ours to write); page 1 producer_pos; then the data
 * area, mapped twice in a row so that a record never wraps.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/bpf.h>

#include "internal.h"

int kev_rb_open(struct kev_rb *rb, int map_fd, size_t size)
{
	void *p;

	rb->page = (size_t)sysconf(_SC_PAGESIZE);
	rb->mask = size - 1;
	p = kev_mmap(map_fd, rb->page, PROT_READ | PROT_WRITE, 0);
	if (!p)
		return -errno;
	rb->consumer_pos = p;
	p = kev_mmap(map_fd, rb->page + 2 * size, PROT_READ, (off_t)rb->page);
	if (!p) {
		int err = -errno;

		munmap(rb->consumer_pos, rb->page);
		return err;
	}
	rb->producer_pos = p;
	rb->data = (char *)p + rb->page;
	rb->map_fd = map_fd;
	return 0;
}

void kev_rb_close(struct kev_rb *rb)
{
	munmap(rb->consumer_pos, rb->page);
	munmap(rb->producer_pos, rb->page + 2 * (rb->mask + 1));
	close(rb->map_fd);
	rb->map_fd = -1;
}

static inline size_t kev_rb_roundup(__u32 len)
{
	return (len + BPF_RINGBUF_HDR_SZ + 7) & ~7u;
}

unsigned int kev_rb_drain(struct kev_rb *rb, kev_rb_fn fn, void *ctx)
{
	/* Only we write consumer_pos, and under the queue lock: a plain load would do. */
	unsigned long cons = __atomic_load_n(rb->consumer_pos, __ATOMIC_ACQUIRE), prod;
	unsigned int n = 0;

	/* Acquire: pairs with the kernel's release of producer_pos in bpf_ringbuf_reserve(). */
	while ((prod = __atomic_load_n(rb->producer_pos, __ATOMIC_ACQUIRE)) != cons) {
		while (cons < prod) {
			__u32 *hdr = (__u32 *)((char *)rb->data + (cons & rb->mask));
			/* Acquire: pairs with the kernel's xchg clearing BUSY at submit. */
			__u32 len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);

			if (len & BPF_RINGBUF_BUSY_BIT)
				goto done;
			cons += kev_rb_roundup(len & ~BPF_RINGBUF_DISCARD_BIT);
			if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
				fn(ctx, hdr + 2, len);
				n++;
			}
			/*
			 * Release: the record is consumed before the kernel may reuse its
			 * space (its reserve reads consumer_pos with acquire).
			 */
			__atomic_store_n(rb->consumer_pos, cons, __ATOMIC_RELEASE);
		}
	}
done:
	return n;
}

bool kev_rb_empty(const struct kev_rb *rb)
{
	return __atomic_load_n(rb->consumer_pos, __ATOMIC_RELAXED) ==
	       __atomic_load_n(rb->producer_pos, __ATOMIC_ACQUIRE);
}

/* The ring's only record, committed, or NULL: a look, nothing is consumed. */
const void *kev_rb_sole(const struct kev_rb *rb)
{
	unsigned long cons = __atomic_load_n(rb->consumer_pos, __ATOMIC_RELAXED);
	/* Acquire: as in kev_rb_drain(). */
	unsigned long prod = __atomic_load_n(rb->producer_pos, __ATOMIC_ACQUIRE);
	__u32 *hdr = (__u32 *)((char *)rb->data + (cons & rb->mask));
	__u32 len;

	if (prod == cons)
		return NULL;
	len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
	if ((len & (BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT)) ||
	    cons + kev_rb_roundup(len) != prod)
		return NULL;
	return hdr + 2;
}
