// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Consumer side of a BPF ring buffer (BPF_MAP_TYPE_RINGBUF). libbpf 1.1 only offers it
 * behind an epoll of its own and a callback per ring; a queue needs the ring inside its
 * own epoll set, a drain it can run under its lock, and control over what it tells the
 * kernel it has consumed, so this is the small piece.
 *
 * Layout: page 0 holds consumer_pos (ours to write); page 1 producer_pos; then the data
 * area, mapped twice in a row so that a record never wraps.
 *
 * Wake-ups. The kernel wakes the ring's pollers (an irq_work, then the waitqueue) only
 * when it commits the record at consumer_pos, that is when the ring looked empty to the
 * consumer (kernel/bpf/ringbuf.c, bpf_ringbuf_commit()). A consumer that holds the last
 * record it processed back, publishing consumer_pos at that record's start rather than
 * past it, gets no wake-up for the records that follow: they all land behind it. `cons` is
 * how far we have processed, `held` the start of the last record processed; kev_rb_drain()
 * publishes `held` (hold back) or `cons`, and kev_rb_publish() catches up before a sleep.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/bpf.h>

#include "internal.h"

int kev_rb_open(struct kev_rb *rb, int map_fd, size_t size, bool hold)
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
	rb->cons = rb->held = __atomic_load_n(rb->consumer_pos, __ATOMIC_RELAXED);
	rb->hold = hold;
	return 0;
}

/*
 * No ring (a queue without the BPF side): both positions point at one word of the queue's
 * own, so that every function below finds nothing to read and writes only there.
 */
void kev_rb_none(struct kev_rb *rb)
{
	*rb = (struct kev_rb){ .map_fd = -1 };
	rb->consumer_pos = rb->producer_pos = &rb->none;
}

void kev_rb_close(struct kev_rb *rb)
{
	munmap(rb->consumer_pos, rb->page);
	munmap(rb->producer_pos, rb->page + 2 * (rb->mask + 1));
	kev_rb_drop_fd(rb);
}

/*
 * The descriptor is not needed once the ring is mapped and registered where it must be:
 * the mappings hold the file, and with it its epoll registrations, until kev_rb_close().
 * One descriptor less per queue.
 */
void kev_rb_drop_fd(struct kev_rb *rb)
{
	if (rb->map_fd >= 0)
		close(rb->map_fd);
	rb->map_fd = -1;
}

static inline size_t kev_rb_roundup(__u32 len)
{
	return (len + BPF_RINGBUF_HDR_SZ + 7) & ~7u;
}

/* The header of the record at pos. */
static inline __u32 *kev_rb_hdr(const struct kev_rb *rb, unsigned long pos)
{
	return (__u32 *)((char *)rb->data + (pos & rb->mask));
}

/*
 * Tell the kernel what we consumed: everything (all), or all but the last record processed.
 * Release: the records are consumed before the kernel may reuse their space (its reserve
 * reads consumer_pos with acquire).
 */
static void kev_rb_set_consumer(struct kev_rb *rb, bool all)
{
	__atomic_store_n(rb->consumer_pos, all ? rb->cons : rb->held, __ATOMIC_RELEASE);
}

unsigned int kev_rb_drain(struct kev_rb *rb, kev_rb_fn fn, void *ctx)
{
	unsigned long prod, start = rb->cons;
	unsigned int n = 0;

	/* Acquire: pairs with the kernel's release of producer_pos in bpf_ringbuf_reserve(). */
	while ((prod = __atomic_load_n(rb->producer_pos, __ATOMIC_ACQUIRE)) != rb->cons) {
		while (rb->cons < prod) {
			__u32 *hdr = kev_rb_hdr(rb, rb->cons);
			/* Acquire: pairs with the kernel's xchg clearing BUSY at submit. */
			__u32 len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);

			if (len & BPF_RINGBUF_BUSY_BIT)
				goto done;
			rb->held = rb->cons;
			rb->cons += kev_rb_roundup(len & ~BPF_RINGBUF_DISCARD_BIT);
			if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
				fn(ctx, hdr + 2, len);
				n++;
			}
		}
	}
done:
	if (rb->cons != start)
		kev_rb_set_consumer(rb, !rb->hold);
	return n;
}

/*
 * Catch up before sleeping: consumer_pos past every record processed, then the fence that
 * pairs with the kernel's xchg of the record header before it reads consumer_pos in
 * bpf_ringbuf_commit(). Either we see the next record committed (true: take it rather than
 * sleep), or the kernel sees consumer_pos at that record and wakes the ring's pollers.
 */
bool kev_rb_publish(struct kev_rb *rb)
{
	kev_rb_set_consumer(rb, true);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return kev_rb_ready(rb);
}

/* Catch up without looking further: a call that returns nothing leaves no readiness. */
void kev_rb_release(struct kev_rb *rb)
{
	kev_rb_set_consumer(rb, true);
}

/*
 * The kernel sees records we have not consumed (held back, or not processed): the ring's
 * epoll item is then on the queue's ready list, and the queue's descriptor polls readable.
 */
bool kev_rb_holding(const struct kev_rb *rb)
{
	return __atomic_load_n(rb->consumer_pos, __ATOMIC_RELAXED) !=
	       __atomic_load_n(rb->producer_pos, __ATOMIC_ACQUIRE);
}

/* Records not processed yet, committed or not. */
bool kev_rb_pending(const struct kev_rb *rb)
{
	return __atomic_load_n(rb->producer_pos, __ATOMIC_ACQUIRE) != rb->cons;
}

/* The next record is committed: a drain would take it now. */
bool kev_rb_ready(const struct kev_rb *rb)
{
	/* Acquire: as in kev_rb_drain(). */
	if (__atomic_load_n(rb->producer_pos, __ATOMIC_ACQUIRE) == rb->cons)
		return false;
	return !(__atomic_load_n(kev_rb_hdr(rb, rb->cons), __ATOMIC_ACQUIRE) & BPF_RINGBUF_BUSY_BIT);
}

/* The only record not processed yet, committed, or NULL: a look, nothing is consumed. */
const void *kev_rb_sole(const struct kev_rb *rb)
{
	/* Acquire: as in kev_rb_drain(). */
	unsigned long prod = __atomic_load_n(rb->producer_pos, __ATOMIC_ACQUIRE);
	__u32 *hdr, len;

	if (prod == rb->cons)
		return NULL;
	hdr = kev_rb_hdr(rb, rb->cons);
	len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
	if ((len & (BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT)) ||
	    rb->cons + kev_rb_roundup(len) != prod)
		return NULL;
	return hdr + 2;
}
