/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * The kevent ABI: struct ukevent, struct kevent_ring and their constants.
 *
 * This header is shared verbatim by the BPF programs (which build against vmlinux.h) and by
 * userspace, so it uses fixed-width kernel types only and pulls in no libc header.
 * The values are those of the last published kevent ABI; the ones marked "libkevent" are
 * this project's additions.
 */
#ifndef UKEVENT_H
#define UKEVENT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Event types (struct ukevent.type). */
#define KEVENT_SOCKET	     0	/* id.raw[0] = socket fd (TCP, UDP, AF_UNIX) */
#define KEVENT_INODE	     1	/* id.raw[0] = fd of a watched file or directory */
#define KEVENT_TIMER	     2	/* id.raw[0] = seconds, id.raw[1] = nanoseconds */
#define KEVENT_POLL	     3	/* id.raw[0] = any pollable fd, event = POLL* mask */
#define KEVENT_NAIO	     4	/* reserved: network AIO of the historic patches */
#define KEVENT_AIO	     5	/* aio_sendfile() completions, ptr = cookie */
#define KEVENT_PIPE	     6	/* id.raw[0] = pipe or FIFO fd, SOCKET_RECV / SOCKET_SEND */
#define KEVENT_SIGNAL	     7	/* id.raw[0] = signal number */
#define KEVENT_POSIX_TIMER   8	/* reserved */
#define KEVENT_UNOTIFY	     9	/* libkevent: user notification, any id */
#define KEVENT_MAX	     10 /* number of types; every type is below it */

/* Socket and pipe events. */
#define KEVENT_SOCKET_RECV   0x1 /* data, end of file or a datagram to read */
#define KEVENT_SOCKET_ACCEPT 0x2 /* a connection waits on a listening socket */
#define KEVENT_SOCKET_SEND   0x4 /* room to write */

/* Inode events. */
#define KEVENT_INODE_CREATE  0x1 /* an entry was added to the watched directory */
#define KEVENT_INODE_REMOVE  0x2 /* an entry was removed from the watched directory */
#define KEVENT_INODE_MODIFY  0x4 /* libkevent: the watched file's data changed */
#define KEVENT_INODE_ATTRIB  0x8 /* libkevent: the watched file's metadata changed */

/* Timer events. */
#define KEVENT_TIMER_FIRED   0x1

/* AIO events. */
#define KEVENT_AIO_BIO	     0x1

/* Signal events; NOMASK is a flag in the id, not in the event mask. */
#define KEVENT_SIGNAL_DELIVERY 0x1
#define KEVENT_SIGNAL_NOMASK   (1ULL << 63) /* in id.raw_u64: report through the queue only */

/* KEVENT_POLL events are the kernel's POLL* bits (POLLIN 0x1 ... POLLRDHUP 0x2000). */

/* Event masks. */
#define KEVENT_MASK_ALL	  0xffffffff
#define KEVENT_MASK_EMPTY 0x0

/* Request flags (struct ukevent.req_flags), set by the caller. */
#define KEVENT_REQ_ONESHOT	0x1  /* deliver once, then remove the interest */
#define KEVENT_REQ_WAKEUP_ALL	0x2  /* every interested queue and every waiter gets it */
#define KEVENT_REQ_ET		0x4  /* edge triggered: deliver again only on new activity */
#define KEVENT_REQ_LAST_CHECK	0x8  /* confirm readiness when taking it off the ready queue */
#define KEVENT_REQ_ALWAYS_QUEUE 0x10 /* ready at ADD: queue it instead of returning DONE */
#define KEVENT_REQ_READY	0x20 /* libkevent: mark ready at ADD (KEVENT_UNOTIFY) */

/* Return flags (struct ukevent.ret_flags), set by the library. */
#define KEVENT_RET_BROKEN      0x1 /* failed; ret_data[1] holds the negative errno */
#define KEVENT_RET_DONE	       0x2 /* processing finished (ready at ADD, MODIFY, REMOVE) */
#define KEVENT_RET_COPY_FAILED 0x4 /* returned in buf but not placed in the full ring */

/* kevent_ctl() commands. */
#define KEVENT_CTL_ADD	  0
#define KEVENT_CTL_REMOVE 1
#define KEVENT_CTL_MODIFY 2
#define KEVENT_CTL_READY  3 /* mark interests ready; with num == 0 wake every waiter */

/* kevent_get_events() / kevent_wait() flags. */
#define KEVENT_FLAGS_ABSTIME 0x1 /* the timeout is an absolute CLOCK_REALTIME time */

/* The object an interest watches. */
struct kevent_id {
	union {
		__u32 raw[2];
		__u64 raw_u64 __attribute__((aligned(8)));
	};
};

/*
 * One event request or one returned event: 40 bytes, 8-byte aligned.
 * An interest is identified by (type, id, user).
 */
struct ukevent {
	struct kevent_id id; /* 0: the watched object, per type */
	__u32 type;	     /* 8: KEVENT_SOCKET ... KEVENT_UNOTIFY */
	__u32 event;	     /* 12: requested event mask; on return, the events that fired */
	__u32 req_flags;     /* 16: KEVENT_REQ_* */
	__u32 ret_flags;     /* 20: KEVENT_RET_* */
	__u32 ret_data[2];   /* 24: per type; on BROKEN, ret_data[1] = negative errno */
	union {		     /* 32: the caller's data, copied back untouched */
		__u32 user[2];
		void *ptr;
		__u64 user_u64; /* keeps the union 8 bytes on 32-bit builds */
	};
};

/*
 * The ring the caller hands to kevent_init(): kevent_wait() and kevent_get_events() copy
 * events to event[ring_kidx] and advance it; kevent_commit() frees them.
 */
struct kevent_ring {
	unsigned int ring_kidx; /* where the library puts the next event */
	unsigned int ring_over; /* how many times the committed index has wrapped */
	struct ukevent event[];
};

_Static_assert(sizeof(struct ukevent) == 40, "struct ukevent is 40 bytes");
_Static_assert(_Alignof(struct ukevent) == 8, "struct ukevent is 8-byte aligned");
_Static_assert(__builtin_offsetof(struct ukevent, type) == 8, "type at 8");
_Static_assert(__builtin_offsetof(struct ukevent, event) == 12, "event at 12");
_Static_assert(__builtin_offsetof(struct ukevent, req_flags) == 16, "req_flags at 16");
_Static_assert(__builtin_offsetof(struct ukevent, ret_flags) == 20, "ret_flags at 20");
_Static_assert(__builtin_offsetof(struct ukevent, ret_data) == 24, "ret_data at 24");
_Static_assert(__builtin_offsetof(struct ukevent, user) == 32, "user at 32");
_Static_assert(__builtin_offsetof(struct kevent_ring, event) == 8, "events start at 8");

#endif /* UKEVENT_H */
