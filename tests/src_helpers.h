/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * Helpers of the KEVENT_POLL, KEVENT_PIPE, KEVENT_SIGNAL and aio_sendfile tests (poll.c,
 * pipe.c, signal.c, aio.c, mixed.c): ukevent builders, pattern files whose every byte can
 * be checked, and a reader thread that checks them.
 */
#ifndef KT_SRC_HELPERS_H
#define KT_SRC_HELPERS_H

#include <stdbool.h>
#include <sys/types.h>

#include "helpers.h"

/* Hang guard for transfers that move tens of MiB (not a measurement). */
#define KT_AIO_WAIT_MS 30000

struct ukevent kt_poll_ev(int fd, __u32 event, __u32 req_flags);
struct ukevent kt_pipe_ev(int fd, __u32 event, __u32 req_flags);
struct ukevent kt_signal_ev(int sig, bool nomask, __u32 req_flags);

/* kevent_get_events() that starts again when a signal ends the wait (K16). */
int kt_get_nointr(int q, unsigned int min_nr, unsigned int max_nr, struct ukevent *buf,
		  long ms);

/* A nonblocking pipe. */
void kt_pipe(int p[2]);
/* A queue watching the read end of a fresh kt_pipe() as (type, event, req_flags). */
int kt_pipe_watched(int p[2], __u32 type, __u32 event, __u32 req_flags);

/*
 * Scenarios KEVENT_PIPE and KEVENT_POLL share, on a fresh pipe whose read end is watched as
 * (type, event) in level mode. Each returns its first event, for the checks of that type.
 */
/* K13: data is delivered, delivered again while unread, and no more once read dry. */
struct ukevent kt_pipe_level(__u32 type, __u32 event);
/* K21: the writer closes on an empty pipe: BROKEN (-EPIPE) once, then the interest is gone. */
struct ukevent kt_pipe_hangup(__u32 type, __u32 event);

/* An eventfd (nonblocking) and writing / reading its counter. */
int kt_eventfd(void);
void kt_eventfd_write(int fd);
void kt_eventfd_read(int fd);

/* Read a nonblocking descriptor (pipe, FIFO) until EAGAIN or end of file. */
void kt_read_dry(int fd);

/* Byte `off` of every pattern file; the period (251, prime) shows misplaced blocks. */
static inline unsigned char kt_pattern(unsigned long long off)
{
	return (unsigned char)(off % 251 + (off >> 20));
}

/* An unlinked temporary file of `size` pattern bytes, open read-only. */
int kt_pattern_file(size_t size);

/* Raise the descriptor limit to at least n (the 1,000-transfer tests need thousands). */
void kt_want_fds(unsigned long n);

/*
 * A thread that reads fd until end of file or `want` bytes, checking each byte against the
 * pattern from offset `from`. Results are read after kt_sink_join().
 */
struct kt_sink {
	pthread_t th;
	int fd;
	unsigned long long from, want, got;
	long long bad_at; /* first wrong byte, -1: none */
};

void kt_sink_start(struct kt_sink *s, int fd, unsigned long long from, unsigned long long want);
void kt_sink_join(struct kt_sink *s);

#endif /* KT_SRC_HELPERS_H */
