// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * libFuzzer harness: sequences of libkevent calls decoded from the input, made on real
 * objects (sockets, pipes, eventfds, files, directories, closed numbers, the queues
 * themselves), checking the API's own invariants after every call:
 *
 *  - every call returns >= 0 or a negative errno, and then errno says the same;
 *  - errors the header documents for an argument come back for it (-EINVAL, -EFAULT,
 *    -EBADF, -EOVERFLOW, -ENOSYS);
 *  - kevent_ctl (K7): each entry's ret_flags is 0, DONE or BROKEN|DONE, a BROKEN entry
 *    holds a negative errno, MODIFY / REMOVE / READY entries are DONE, the identity is
 *    left as it was, and an identity not registered on the queue (never added, or
 *    removed since) is -ENOENT (K8);
 *  - delivery: an event names an interest registered on that queue and not removed
 *    (K10), or one of its aio_sendfile transfers; its flags are BROKEN or COPY_FAILED,
 *    COPY_FAILED only with a ring; what get_events and wait put in the ring is what they
 *    returned, at ring_kidx, and the ring's indexes follow the model of K3 through every
 *    commit, whose result is computed in advance; kevent_stats() counts what the calls
 *    returned;
 *  - closing every queue gives back every descriptor the input's calls took.
 *
 * One queue stays open between inputs (the BPF object then stays loaded and attached, and
 * each input starts from the same state); each input closes what it made. A queue costs
 * two RCU grace periods (kev_rings is a map of maps), so an input runs in tens of
 * milliseconds: run several jobs (make fuzz FUZZ_JOBS=n) rather than one for long.
 *
 * A failed invariant aborts, so libFuzzer keeps the input. Nothing depends on timing: the
 * timeouts are at most a millisecond, and what arrives when is never asserted.
 * Signals are limited to ones that cannot disturb the fuzzer (SIGWINCH, SIGURG, real-time
 * ones). Timers go down to 1 ns periods, and relative timeouts up to LONG_MAX seconds (issue
 * 10 items 7 and 9, fixed since).
 *
 * Input: a sequence of operations, each an opcode byte and its argument bytes (fz_u8()...);
 * a short input reads zeroes. tests/fuzz/corpus holds seeds (made by tests/fuzz/seeds.py).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kevent.h"
#include "kevent_inode.h"

#define FZ_QUEUES  4
#define FZ_OBJS	   8
#define FZ_OPS_MAX 48	/* operations of one input: bounds its time */
#define FZ_REG	   128	/* identities remembered per queue */
#define FZ_BUF	   64	/* events of one get_events */
#define FZ_CLOSED  4000 /* descriptor numbers from here on are never open */

#define FZ_REQ_KNOWN 0x3f /* KEVENT_REQ_ONESHOT ... KEVENT_REQ_READY */
#define FZ_ERRNO_OK(v) ((int)(v) < 0 && (int)(v) >= -4095)

/* An invariant failed: say which, and abort so that libFuzzer keeps the input. */
#define FZ_CHECK(cond, ...)                                                   \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "fuzz: invariant failed: " __VA_ARGS__); \
			fputc('\n', stderr);                                  \
			abort();                                              \
		}                                                             \
	} while (0)

struct fz_in {
	const uint8_t *p;
	size_t n;
};

struct fz_ident {
	__u32 type;
	__u64 id, user;
};

/* A queue of the input, and the model of its ring (K3). */
struct fz_q {
	int fd; /* -1: the slot is free */
	struct kevent_ring *ring;
	unsigned int size;	/* 0: no ring */
	unsigned int uidx, used, over;
	uint64_t returned, copy_failed; /* what get_events / wait returned */
	/* What may be registered: ADD said 0 (or aio_sendfile a cookie), no REMOVE since. */
	struct fz_ident reg[FZ_REG];
	unsigned int nreg;
	bool reg_lost; /* more than FZ_REG at once: identities are not checked any more */
};

enum fz_kind {
	FZ_NONE,
	FZ_TCP,
	FZ_UDP,
	FZ_UNIX_STREAM,
	FZ_UNIX_DGRAM,
	FZ_PIPE, /* fd reads, peer writes */
	FZ_EVENTFD,
	FZ_FILE,
	FZ_DIR,
	FZ_LISTENER, /* peer: a client connected to it */
	FZ_KINDS,
};

struct fz_obj {
	enum fz_kind kind;
	int fd, peer;
};

/* What an input made; reset by each run. */
static struct {
	struct fz_q q[FZ_QUEUES];
	struct fz_obj obj[FZ_OBJS];
} fz;

/* What lives across inputs. */
static struct {
	int pq;	      /* a queue kept open: the BPF object stays loaded between inputs */
	int listener; /* for TCP pairs */
	struct sockaddr_in laddr;
	char dir[64]; /* files and directories of the objects */
	bool trace;   /* FUZZ_TRACE=1: print each call and its result (to read a reproducer) */
} fzg;

static uint8_t fz_u8(struct fz_in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static uint32_t fz_u32(struct fz_in *in)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v = v << 8 | fz_u8(in);
	return v;
}

static uint64_t fz_u64(struct fz_in *in)
{
	return (uint64_t)fz_u32(in) << 32 | fz_u32(in);
}

/* Every call returns >= 0, or a negative errno with errno set to the same value. */
static long fz_ret(const char *call, long r)
{
	if (fzg.trace)
		fprintf(stderr, "fuzz:   %s = %ld\n", call, r);
	FZ_CHECK(r >= 0 || (FZ_ERRNO_OK(r) && errno == -r), "%s = %ld with errno %d", call, r,
		 errno);
	return r;
}

/* A result that must be exactly err, when the arguments say so. */
static void fz_expect(const char *call, long r, int err)
{
	FZ_CHECK(r == err, "%s = %ld, expected %d", call, r, err);
}

/* ---- objects ---- */

static long fz_fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	long n = -1; /* the directory's own descriptor */

	FZ_CHECK(d, "/proc/self/fd: %s", strerror(errno));
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void fz_nonblock(int fd)
{
	if (fd >= 0)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static int fz_tcp_client(const struct sockaddr_in *to)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && connect(fd, (const struct sockaddr *)to, sizeof(*to))) {
		close(fd);
		fd = -1;
	}
	fz_nonblock(fd);
	return fd;
}

static int fz_listener(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	*addr = (struct sockaddr_in){ .sin_family = AF_INET,
				      .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (fd >= 0 && (bind(fd, (struct sockaddr *)addr, len) || listen(fd, 64) ||
			getsockname(fd, (struct sockaddr *)addr, &len))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void fz_udp_pair(struct fz_obj *o)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in b = a;
	socklen_t len = sizeof(a);

	o->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	o->peer = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (o->fd < 0 || o->peer < 0)
		return;
	bind(o->fd, (struct sockaddr *)&a, len);
	bind(o->peer, (struct sockaddr *)&b, len);
	getsockname(o->fd, (struct sockaddr *)&a, &len);
	getsockname(o->peer, (struct sockaddr *)&b, &len);
	connect(o->fd, (struct sockaddr *)&b, len);
	connect(o->peer, (struct sockaddr *)&a, len);
}

static void fz_path(char *buf, size_t len, const char *what, unsigned int slot)
{
	snprintf(buf, len, "%s/%s%u", fzg.dir, what, slot);
}

static void fz_open_file(struct fz_obj *o, unsigned int slot, bool dir)
{
	char path[128];
	static const char page[4096];

	fz_path(path, sizeof(path), dir ? "d" : "f", slot);
	if (dir) {
		mkdir(path, 0700);
		o->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		return;
	}
	o->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (o->fd >= 0 && pwrite(o->fd, page, sizeof(page), 0) < 0) {
		close(o->fd);
		o->fd = -1;
	}
}

static void fz_obj_close(struct fz_obj *o)
{
	if (o->fd >= 0)
		close(o->fd);
	if (o->peer >= 0)
		close(o->peer);
	*o = (struct fz_obj){ .kind = FZ_NONE, .fd = -1, .peer = -1 };
}

static void fz_obj_open(struct fz_obj *o, enum fz_kind kind, unsigned int slot)
{
	int sv[2] = { -1, -1 };

	fz_obj_close(o);
	o->kind = kind;
	switch (kind) {
	case FZ_TCP:
		o->peer = fz_tcp_client(&fzg.laddr);
		o->fd = o->peer >= 0 ? accept4(fzg.listener, NULL, NULL, SOCK_CLOEXEC) : -1;
		fz_nonblock(o->fd);
		break;
	case FZ_UDP:
		fz_udp_pair(o);
		break;
	case FZ_UNIX_STREAM:
	case FZ_UNIX_DGRAM:
		socketpair(AF_UNIX, (kind == FZ_UNIX_STREAM ? SOCK_STREAM : SOCK_DGRAM) |
					    SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv);
		o->fd = sv[0];
		o->peer = sv[1];
		break;
	case FZ_PIPE:
		if (!pipe2(sv, O_NONBLOCK | O_CLOEXEC)) {
			o->fd = sv[0];
			o->peer = sv[1];
		}
		break;
	case FZ_EVENTFD:
		o->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		break;
	case FZ_FILE:
	case FZ_DIR:
		fz_open_file(o, slot, kind == FZ_DIR);
		break;
	case FZ_LISTENER: {
		struct sockaddr_in a;

		o->fd = fz_listener(&a);
		fz_nonblock(o->fd);
		break;
	}
	default:
		break;
	}
}

/* What a write or read to make something happen returns does not matter. */
static void fz_io(ssize_t r)
{
	(void)r;
}

/* Create or remove an entry of a watched directory. */
static void fz_dir_entry(const char *path, bool remove)
{
	int fd;

	if (remove) {
		unlink(path);
		return;
	}
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
}

/* Make something happen on an object: data, a hang-up, a change of a file or directory. */
static void fz_poke(struct fz_obj *o, unsigned int slot, unsigned int what, unsigned int len)
{
	static const char data[256];
	char path[128], sink[4096];
	uint64_t one = 1;
	int w = what & 1 && o->peer >= 0 ? o->peer : o->fd;

	if (what % 8 == 7) {
		/* A signal the process ignores by default, so an unwatched one does nothing. */
		raise(len & 1 ? SIGWINCH : SIGURG);
		return;
	}
	if (o->fd < 0)
		return;
	switch (what % 8) {
	case 0:
	case 1:
		if (o->kind == FZ_EVENTFD)
			fz_io(write(w, &one, sizeof(one)));
		else if (o->kind == FZ_FILE)
			fz_io(pwrite(w, data, len, len));
		else if (o->kind != FZ_DIR && o->kind != FZ_LISTENER)
			fz_io(write(w, data, len));
		break;
	case 2:
		fz_io(read(o->fd, sink, sizeof(sink)));
		break;
	case 3:
		shutdown(o->fd, len & 1 ? SHUT_RDWR : SHUT_WR);
		break;
	case 4:
		if (o->peer >= 0)
			close(o->peer);
		o->peer = -1;
		break;
	case 5:
		fz_path(path, sizeof(path), "d", slot);
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "/e%u", len % 4);
		if (o->kind == FZ_DIR) {
			fz_dir_entry(path, len & 4);
		} else if (o->kind == FZ_FILE && (len & 2)) {
			fz_path(path, sizeof(path), "f", slot);
			unlink(path); /* the watched inode goes: BROKEN (K18) */
		} else if (o->kind == FZ_FILE) {
			fchmod(o->fd, len & 1 ? 0600 : 0640);
		}
		break;
	case 6:
		if (o->kind == FZ_LISTENER) {
			struct sockaddr_in a;
			socklen_t alen = sizeof(a);

			getsockname(o->fd, (struct sockaddr *)&a, &alen);
			if (o->peer >= 0)
				close(o->peer);
			o->peer = fz_tcp_client(&a);
		}
		break;
	default:
		break;
	}
}

/* ---- what a call is made on ---- */

/* The descriptor a call is made on, its queue when it is one of the input's, else the error. */
struct fz_target {
	int fd;
	struct fz_q *q;
	int err; /* what any call must return for a descriptor that is not a queue */
};

static struct fz_target fz_target(struct fz_in *in)
{
	uint8_t b = fz_u8(in);
	struct fz_target t = { .fd = -1, .err = -EBADF };
	struct fz_obj *o = &fz.obj[b % FZ_OBJS];

	switch (b >> 5) {
	case 5: /* an object: open, it is not a queue */
		t.fd = b & 1 ? o->peer : o->fd;
		t.err = t.fd >= 0 ? -EINVAL : -EBADF;
		break;
	case 6:
		t.fd = FZ_CLOSED + b;
		break;
	case 7:
		t.fd = b & 1 ? -1 : INT32_MIN + b;
		break;
	default:
		t.q = &fz.q[b % FZ_QUEUES];
		t.fd = t.q->fd;
		t.err = 0;
		if (t.fd < 0) {
			t.q = NULL;
			t.err = -EBADF;
		}
		break;
	}
	return t;
}

/* A descriptor to watch: any object end, a queue (the persistent one too), closed, stdio. */
static int fz_watch_fd(struct fz_in *in)
{
	uint8_t b = fz_u8(in);
	const struct fz_obj *o = &fz.obj[(b >> 3) % FZ_OBJS];

	switch (b % 8) {
	case 4:
		return o->peer;
	case 5:
		return fz.q[(b >> 3) % FZ_QUEUES].fd;
	case 6:
		return b & 8 ? fzg.pq : FZ_CLOSED + b;
	case 7:
		return (b >> 3) % 4 - 1; /* -1, stdin, stdout, stderr */
	default:
		return o->fd;
	}
}

/* ---- identities registered on a queue ---- */

static bool fz_same(const struct fz_ident *a, __u32 type, __u64 id, __u64 user)
{
	return a->type == type && a->id == id && a->user == user;
}

static int fz_reg_find(const struct fz_q *q, __u32 type, __u64 id, __u64 user)
{
	for (unsigned int i = 0; i < q->nreg; i++)
		if (fz_same(&q->reg[i], type, id, user))
			return (int)i;
	return -1;
}

/* May e's interest be registered on q? (true once the set overflowed: no more checks) */
static bool fz_reg_has(const struct fz_q *q, const struct ukevent *e)
{
	return q->reg_lost || fz_reg_find(q, e->type, e->id.raw_u64, e->user_u64) >= 0;
}

static void fz_reg_add(struct fz_q *q, __u32 type, __u64 id, __u64 user)
{
	if (fz_reg_find(q, type, id, user) >= 0)
		return;
	if (q->nreg == FZ_REG)
		q->reg_lost = true;
	else
		q->reg[q->nreg++] = (struct fz_ident){ type, id, user };
}

/* The interest is certainly gone (REMOVE said DONE, or a ctl said ENOENT). */
static void fz_reg_del(struct fz_q *q, const struct ukevent *e)
{
	int i = fz_reg_find(q, e->type, e->id.raw_u64, e->user_u64);

	if (i >= 0)
		q->reg[i] = q->reg[--q->nreg];
}

/* ---- ukevents ---- */

static __u64 fz_timer_id(struct fz_in *in)
{
	/* 1 ns and 1 us too: a short period merges its expirations (issue 10 item 7). */
	static const __u32 ns[] = { 0, 1000000, 2000000, 500000000, 999999999, 1000000000,
				    0xffffffff, 1, 1000 };
	uint8_t b = fz_u8(in);
	__u32 sec = b & 0x80 ? fz_u32(in) : b % 4, nsec = ns[(b >> 2) % 9];

	return (__u64)nsec << 32 | sec;
}

static __u64 fz_signal_id(struct fz_in *in)
{
	/* Signals the fuzzer does not use, numbers the C library keeps, and invalid ones. */
	static const int sig[] = { SIGWINCH, SIGURG, 34 + 3, 34 + 4, 34 + 5, 0, SIGKILL, SIGSTOP,
				   32, 33, 65, 1000 };
	uint8_t b = fz_u8(in);

	return (__u64)sig[b % 12] | (b & 0x80 ? KEVENT_SIGNAL_NOMASK : 0);
}

static __u64 fz_id(struct fz_in *in, __u32 type, const struct fz_q *q)
{
	switch (type) {
	case KEVENT_SOCKET:
	case KEVENT_INODE:
	case KEVENT_POLL:
	case KEVENT_PIPE: {
		__u32 fd = (__u32)fz_watch_fd(in), b = fz_u8(in);

		return (__u64)(b & 0x80 ? b : 0) << 32 | fd;
	}
	case KEVENT_TIMER:
		return fz_timer_id(in);
	case KEVENT_SIGNAL:
		return fz_signal_id(in);
	case KEVENT_AIO:
		/* A cookie of this queue, to cancel a transfer, or anything. */
		if (q && q->nreg && fz_u8(in) & 1)
			return q->reg[q->nreg - 1].id;
		return fz_u64(in);
	default:
		return fz_u64(in);
	}
}

static __u32 fz_event(struct fz_in *in, __u32 type)
{
	static const __u32 bits[KEVENT_MAX] = { 0x7, 0xf, 0x1, 0x3fff, 0x1, 0x1, 0x7, 0x1, 0x1,
						0xffffffff };
	uint8_t b = fz_u8(in);

	switch (b % 4) {
	case 0:
		return 0;
	case 1:
		return KEVENT_MASK_ALL;
	case 2:
		return (b >> 2 | 1) & (type < KEVENT_MAX ? bits[type] : 0xff);
	default:
		return fz_u32(in);
	}
}

static struct ukevent fz_ukevent(struct fz_in *in, const struct fz_q *q)
{
	struct ukevent e;
	uint8_t t = fz_u8(in), f = fz_u8(in);

	e.type = t < 240 ? t % (KEVENT_MAX + 2) : fz_u32(in);
	e.id.raw_u64 = fz_id(in, e.type, q);
	e.event = fz_event(in, e.type);
	e.req_flags = f & 0x80 ? fz_u32(in) : f & FZ_REQ_KNOWN;
	/* Whatever the caller left in the output fields, the library overwrites. */
	e.ret_flags = 0xdeadbeef;
	e.ret_data[0] = e.ret_data[1] = 0xdeadbeef;
	e.user_u64 = fz_u8(in) % 4; /* few values: the same identity comes back (K8) */
	return e;
}

/* ---- checks ---- */

static bool fz_known_type(__u32 type)
{
	return type < KEVENT_MAX && type != KEVENT_NAIO && type != KEVENT_POSIX_TIMER;
}

/* K7, K8: the fate of one kevent_ctl() entry. */
static void fz_check_entry(const struct fz_q *q, unsigned int cmd, const struct ukevent *in,
			   const struct ukevent *out)
{
	__u32 f = out->ret_flags, done = KEVENT_RET_DONE, broken = done | KEVENT_RET_BROKEN;
	int err = (int)out->ret_data[1];

	FZ_CHECK(out->type == in->type && out->id.raw_u64 == in->id.raw_u64 &&
		 out->user_u64 == in->user_u64 && out->req_flags == in->req_flags,
		 "ctl %u changed the identity of an entry (type %u)", cmd, in->type);
	FZ_CHECK(f == 0 || f == done || f == broken, "ctl %u: ret_flags %#x (K7)", cmd, f);
	FZ_CHECK(f != broken || FZ_ERRNO_OK(err), "ctl %u: BROKEN with ret_data[1] %d", cmd, err);
	FZ_CHECK(cmd == KEVENT_CTL_ADD || f, "ctl %u: entry not DONE (K8)", cmd);
	if (cmd == KEVENT_CTL_ADD && !fz_known_type(in->type))
		FZ_CHECK(f == broken && err == -ENOSYS, "ADD of type %u: %#x %d, not ENOSYS",
			 in->type, f, err);
	else if (cmd == KEVENT_CTL_ADD && (in->req_flags & ~FZ_REQ_KNOWN))
		FZ_CHECK(f == broken && err == -EINVAL,
			 "ADD with req_flags %#x: %#x %d, not EINVAL", in->req_flags, f, err);
	if (cmd != KEVENT_CTL_ADD && !fz_reg_has(q, in))
		FZ_CHECK(f == broken && err == -ENOENT,
			 "ctl %u of type %u not registered: %#x %d (K8)", cmd, in->type, f, err);
}

/* A delivered event: a known interest of this queue, only the flags delivery can set. */
static void fz_check_event(const struct fz_q *q, const struct ukevent *e, __u32 allowed)
{
	FZ_CHECK(e->type < KEVENT_MAX, "delivered type %u", e->type);
	FZ_CHECK(!(e->ret_flags & ~allowed), "delivered ret_flags %#x (allowed %#x)", e->ret_flags,
		 allowed);
	FZ_CHECK(!(e->ret_flags & KEVENT_RET_BROKEN) || FZ_ERRNO_OK(e->ret_data[1]),
		 "delivered BROKEN with ret_data[1] %d", (int)e->ret_data[1]);
	FZ_CHECK(fz_reg_has(q, e), "delivered type %u id %#llx user %llu: not registered (K10)",
		 e->type, (unsigned long long)e->id.raw_u64, (unsigned long long)e->user_u64);
}

/* The ring's index is where the model says (K3). */
static void fz_check_kidx(const struct fz_q *q, const char *call)
{
	unsigned int kidx = (q->uidx + q->used) % q->size;

	FZ_CHECK(q->used <= q->size, "%s: %u events in a ring of %u", call, q->used, q->size);
	FZ_CHECK(q->ring->ring_kidx == kidx, "%s: ring_kidx %u, model %u", call,
		 q->ring->ring_kidx, kidx);
	FZ_CHECK(q->ring->ring_over == q->over, "%s: ring_over %u, model %u", call,
		 q->ring->ring_over, q->over);
}

/*
 * get_events returned buf[0..n): each event is checked, and those not COPY_FAILED are
 * the ones placed in the ring, in order, at the model's kidx (K4: only when it is full).
 */
static void fz_check_got(struct fz_q *q, const struct ukevent *buf, unsigned int n)
{
	unsigned int placed = 0, at = q->size ? (q->uidx + q->used) % q->size : 0;

	for (unsigned int i = 0; i < n; i++) {
		fz_check_event(q, &buf[i], KEVENT_RET_BROKEN |
						   (q->size ? KEVENT_RET_COPY_FAILED : 0));
		if (!q->size || (buf[i].ret_flags & KEVENT_RET_COPY_FAILED))
			continue;
		FZ_CHECK(placed == i, "an event placed in the ring after one that did not fit");
		FZ_CHECK(!memcmp(&q->ring->event[(at + i) % q->size], &buf[i], sizeof(buf[i])),
			 "ring entry %u differs from the event returned", (at + i) % q->size);
		placed++;
	}
	q->returned += n;
	if (!q->size)
		return;
	q->used += placed;
	q->copy_failed += n - placed;
	FZ_CHECK(placed == n || q->used == q->size, "COPY_FAILED with room in the ring (K4)");
	fz_check_kidx(q, "kevent_get_events");
}

/* kevent_wait placed n events in the ring at the model's kidx. */
static void fz_check_waited(struct fz_q *q, unsigned int n)
{
	unsigned int at = (q->uidx + q->used) % q->size;

	for (unsigned int i = 0; i < n; i++)
		fz_check_event(q, &q->ring->event[(at + i) % q->size], KEVENT_RET_BROKEN);
	q->returned += n;
	q->used += n;
	fz_check_kidx(q, "kevent_wait");
}

/*
 * What kevent_commit must return (K3, include/kevent.h); *alt: a second acceptable answer,
 * for a commit back to the committed index of a full ring (issue 10 item 4 changes it).
 */
static int fz_commit_expect(const struct fz_q *q, unsigned int to, unsigned int over, int *alt)
{
	unsigned int d;

	*alt = INT32_MIN;
	if (!q->size || to >= q->size)
		return -EINVAL;
	if (q->over && over == q->over - 1)
		return 0;
	if (over != q->over)
		return -EOVERFLOW;
	d = (to + q->size - q->uidx) % q->size;
	if (!d && q->used == q->size) {
		*alt = 0;
		return (int)q->size;
	}
	return d > q->used ? -EINVAL : (int)d;
}

/* A timeout, and flags; *bad: the pair is invalid (K16: -EINVAL). */
static struct timespec fz_timeout(struct fz_in *in, unsigned int min, unsigned int *flags,
				  bool *bad)
{
	uint8_t m = fz_u8(in);
	struct timespec ts = { 0, 0 };

	*flags = m & 0x80 ? (m & 0x40 ? fz_u32(in) : KEVENT_FLAGS_ABSTIME) : 0;
	switch (m % 8) {
	case 1:
		ts.tv_nsec = fz_u8(in) * 4000L; /* up to a millisecond */
		break;
	case 2:
		ts.tv_sec = min ? 0 : -1; /* forever, when nothing needs to arrive */
		break;
	case 3:
		ts.tv_sec = -2;
		break;
	case 4:
		ts.tv_nsec = -1;
		break;
	case 5:
		ts.tv_nsec = 1000000000;
		break;
	case 6:
		ts.tv_sec = min ? 0 : (long)fz_u32(in); /* far: only when it cannot block */
		break;
	case 7:
		/* LONG_MAX relative is forever (issue 10 item 9): only when it cannot block. */
		ts.tv_sec = min ? 0 : LONG_MAX;
		break;
	default:
		break;
	}
	*bad = (*flags & ~KEVENT_FLAGS_ABSTIME) || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000 ||
	       ts.tv_sec < -1;
	return ts;
}

/* ---- operations ---- */

static void fz_q_close(struct fz_q *q)
{
	if (q->fd >= 0)
		fz_expect("kevent_close", fz_ret("kevent_close", kevent_close(q->fd)), 0);
	free(q->ring);
	memset(q, 0, sizeof(*q));
	q->fd = -1;
}

static void fz_op_init(struct fz_in *in)
{
	struct fz_q *q = &fz.q[fz_u8(in) % FZ_QUEUES];
	uint8_t mode = fz_u8(in);
	unsigned int size = fz_u8(in), flags = mode & 0x80 ? fz_u32(in) : 0;
	bool ring = mode & 1, valid;
	int r;

	fz_q_close(q);
	if (mode & 2)
		size += KEVENT_MAX_BATCH + 1; /* too large: the ring is never touched */
	if (ring) {
		size_t n = size <= 255 ? size : 1;

		q->ring = malloc(sizeof(*q->ring) + n * sizeof(struct ukevent));
		FZ_CHECK(q->ring, "out of memory");
		memset(q->ring, 0xa5, sizeof(*q->ring) + n * sizeof(struct ukevent));
	}
	valid = !(flags & ~KEVENT_INIT_BPF) && (ring ? size >= 2 && size <= KEVENT_MAX_BATCH : !size);
	r = (int)fz_ret("kevent_init", kevent_init(ring ? q->ring : NULL, size, flags));
	if (!valid)
		fz_expect("kevent_init(bad arguments)", r, -EINVAL);
	if (r < 0) {
		FZ_CHECK(!valid || r != -EINVAL, "kevent_init(%u) = -EINVAL", size);
		fz_q_close(q);
		return;
	}
	q->fd = r;
	q->size = ring ? size : 0;
	if (ring)
		fz_check_kidx(q, "kevent_init");
}

/* One entry of a kevent_ctl() that returned: check its fate, follow what q may hold. */
static void fz_ctl_entry(struct fz_q *q, unsigned int cmd, const struct ukevent *in,
			 const struct ukevent *out)
{
	bool gone = (out->ret_flags & KEVENT_RET_BROKEN) && (int)out->ret_data[1] == -ENOENT;

	if (fzg.trace)
		fprintf(stderr, "fuzz:     cmd %u type %u id %#llx: ret_flags %#x data %d\n", cmd,
			out->type, out->id.raw_u64, out->ret_flags, (int)out->ret_data[1]);
	fz_check_entry(q, cmd, in, out);
	/* After a REMOVE, whatever it said, and any ENOENT, the interest is not there. */
	if (cmd == KEVENT_CTL_ADD && !out->ret_flags)
		fz_reg_add(q, out->type, out->id.raw_u64, out->user_u64);
	else if (cmd == KEVENT_CTL_REMOVE || (cmd != KEVENT_CTL_ADD && gone))
		fz_reg_del(q, out);
}

static void fz_op_ctl(struct fz_in *in)
{
	struct fz_target t = fz_target(in);
	uint8_t c = fz_u8(in), m = fz_u8(in);
	unsigned int cmd = c < 250 ? c % 5 : fz_u32(in), num = m % 9, i;
	struct ukevent uk[8], before[8];
	bool null = (m & 0xf0) == 0xf0;
	int r, want = t.err;

	for (i = 0; i < num; i++)
		uk[i] = fz_ukevent(in, t.q);
	memcpy(before, uk, sizeof(uk));
	if (m == 0xff)
		num = KEVENT_MAX_BATCH + 1;
	r = (int)fz_ret("kevent_ctl", kevent_ctl(t.fd, cmd, num, null ? NULL : uk));
	if (cmd > KEVENT_CTL_READY || num > KEVENT_MAX_BATCH)
		want = -EINVAL;
	else if (null && num)
		want = -EFAULT;
	fz_expect("kevent_ctl", r, want ? want : (int)num);
	if (!t.q || want)
		return;
	for (i = 0; i < num; i++)
		fz_ctl_entry(t.q, cmd, &before[i], &uk[i]);
}

static void fz_op_get(struct fz_in *in)
{
	struct fz_target t = fz_target(in);
	uint8_t mode = fz_u8(in);
	unsigned int max = fz_u8(in) % (FZ_BUF + 1), min = fz_u8(in) % 4, flags;
	struct ukevent buf[FZ_BUF];
	struct timespec ts;
	bool bad;
	int r, want = t.err;

	if (mode & 1)
		min = max + 1;
	ts = fz_timeout(in, min, &flags, &bad);
	if (mode & 2)
		max = KEVENT_MAX_BATCH + 1; /* refused before the buffer is looked at */
	r = (int)fz_ret("kevent_get_events",
			kevent_get_events(t.fd, min, max, ts, mode & 4 ? NULL : buf, flags));
	if (max > KEVENT_MAX_BATCH || min > max)
		want = -EINVAL;
	else if ((mode & 4) && max)
		want = -EFAULT;
	else if (bad)
		want = -EINVAL;
	if (want)
		fz_expect("kevent_get_events", r, want);
	if (!t.q || r < 0)
		return;
	FZ_CHECK((unsigned int)r <= max, "kevent_get_events(max %u) = %d", max, r);
	fz_check_got(t.q, buf, (unsigned int)r);
}

static void fz_op_wait(struct fz_in *in)
{
	struct fz_target t = fz_target(in);
	uint8_t mode = fz_u8(in);
	unsigned int num = fz_u8(in) % 70, old = t.q ? t.q->uidx : 0, flags;
	bool bad;
	struct timespec ts = fz_timeout(in, 1, &flags, &bad);
	int r, want = t.err;

	if (mode & 1)
		old = fz_u32(in);
	if (mode & 2)
		num = KEVENT_MAX_BATCH + 1;
	r = (int)fz_ret("kevent_wait", kevent_wait(t.fd, num, old, ts, flags));
	if (num > KEVENT_MAX_BATCH || bad)
		want = -EINVAL;
	else if (!want && t.q && !t.q->size)
		want = -EINVAL; /* no ring */
	if (want)
		fz_expect("kevent_wait", r, want);
	if (!t.q || r < 0)
		return;
	FZ_CHECK((unsigned int)r <= num, "kevent_wait(num %u) = %d", num, r);
	fz_check_waited(t.q, (unsigned int)r);
}

static void fz_op_commit(struct fz_in *in)
{
	struct fz_target t = fz_target(in);
	struct fz_q *q = t.q;
	uint8_t mode = fz_u8(in), k = fz_u8(in);
	unsigned int to = fz_u32(in), over = mode & 0x10 ? fz_u32(in) : 0;
	int r, want, alt = INT32_MIN;

	if (q && q->size) {
		unsigned int at[] = { q->uidx + q->used, q->uidx + k, to, q->uidx };
		unsigned int ov[] = { q->over, q->over, q->over - 1, over };

		to = mode & 4 ? to : at[mode % 4] % q->size;
		over = ov[(mode >> 4) % 4];
	}
	want = q ? fz_commit_expect(q, to, over, &alt) : t.err;
	r = (int)fz_ret("kevent_commit", kevent_commit(t.fd, to, over));
	if (!q) {
		fz_expect("kevent_commit", r, want);
		return;
	}
	FZ_CHECK(r == want || r == alt, "kevent_commit(%u, over %u) = %d, expected %d (uidx %u "
		 "used %u over %u)", to, over, r, want, q->uidx, q->used, q->over);
	if (r <= 0)
		return;
	if (q->uidx + (unsigned int)r >= q->size)
		q->over++;
	q->uidx = (q->uidx + (unsigned int)r) % q->size;
	q->used -= (unsigned int)r;
	fz_check_kidx(q, "kevent_commit");
}

static void fz_op_close(struct fz_in *in)
{
	struct fz_target t = fz_target(in);

	if (t.q)
		fz_q_close(t.q);
	else
		fz_expect("kevent_close", fz_ret("kevent_close", kevent_close(t.fd)), t.err);
}

static void fz_op_obj(struct fz_in *in)
{
	unsigned int slot = fz_u8(in) % FZ_OBJS;

	fz_obj_open(&fz.obj[slot], fz_u8(in) % FZ_KINDS, slot);
}

static void fz_op_poke(struct fz_in *in)
{
	unsigned int slot = fz_u8(in) % FZ_OBJS, what = fz_u8(in);

	fz_poke(&fz.obj[slot], slot, what, 1 + fz_u8(in));
}

static void fz_op_aio(struct fz_in *in)
{
	static const uint64_t counts[] = { 0, 1, 4096, 1 << 20, UINT64_MAX };
	struct fz_target t = fz_target(in);
	int sock = fz_watch_fd(in), file = fz_watch_fd(in);
	uint8_t m = fz_u8(in);
	off_t off = m & 0x80 ? (off_t)fz_u64(in) : (off_t)(m & 0x7f) * 64;
	long r;

	r = fz_ret("aio_sendfile", aio_sendfile(t.fd, sock, file, off, counts[fz_u8(in) % 5]));
	FZ_CHECK(r < 0 || t.q, "aio_sendfile on fd %d (not a queue) = %ld", t.fd, r);
	if (r > 0)
		fz_reg_add(t.q, KEVENT_AIO, (__u64)r, (__u64)r);
}

/* kevent_stats (which must count what the calls returned), spin and deferred wake-ups. */
static void fz_op_misc(struct fz_in *in)
{
	static const unsigned int spin[] = { 0, 1, 10, KEVENT_MAX_SPIN_US + 1 };
	struct fz_target t = fz_target(in);
	uint8_t m = fz_u8(in);
	struct kevent_stats st;
	int r;

	if (m % 3 == 1) {
		r = (int)fz_ret("kevent_set_spin", kevent_set_spin(t.fd, spin[(m >> 2) % 4]));
		fz_expect("kevent_set_spin", r, spin[(m >> 2) % 4] > KEVENT_MAX_SPIN_US ? -EINVAL
											 : t.err);
		return;
	}
	if (m % 3 == 2) {
		r = (int)fz_ret("kevent_set_defer_wakeup",
				kevent_set_defer_wakeup(t.fd, (m >> 2) % 3));
		fz_expect("kevent_set_defer_wakeup", r, (m >> 2) % 3 > 1 ? -EINVAL : t.err);
		return;
	}
	r = (int)fz_ret("kevent_stats", kevent_stats(t.fd, m & 4 ? NULL : &st));
	fz_expect("kevent_stats", r, m & 4 ? -EFAULT : t.err);
	if (!r && t.q)
		FZ_CHECK(st.delivered == t.q->returned && st.copy_failed == t.q->copy_failed,
			 "kevent_stats: delivered %llu copy_failed %llu, the calls returned %llu "
			 "and %llu COPY_FAILED", (unsigned long long)st.delivered,
			 (unsigned long long)st.copy_failed, (unsigned long long)t.q->returned,
			 (unsigned long long)t.q->copy_failed);
}

static void fz_op_entries(struct fz_in *in)
{
	struct fz_target t = fz_target(in);
	struct ukevent e = fz_ukevent(in, t.q);
	struct kevent_inode_entry buf[4];
	uint8_t m = fz_u8(in);
	unsigned int max = m % 5;
	int r;

	if (m & 0x80)
		e.type = KEVENT_INODE;
	r = (int)fz_ret("kevent_inode_entries", kevent_inode_entries(t.fd, m & 0x40 ? NULL : &e,
								     m & 0x20 ? NULL : buf, max));
	FZ_CHECK(r <= (int)max, "kevent_inode_entries(max %u) = %d", max, r);
}

static void (*const fz_ops[])(struct fz_in *) = {
	fz_op_init, fz_op_ctl,	 fz_op_ctl,  fz_op_get, fz_op_get,  fz_op_wait,	   fz_op_commit,
	fz_op_close, fz_op_obj, fz_op_poke, fz_op_aio, fz_op_misc, fz_op_entries,
};

static const char *const fz_op_names[] = {
	"init", "ctl", "ctl", "get", "get", "wait", "commit", "close", "obj", "poke", "aio", "misc",
	"entries",
};

#define FZ_NOPS (sizeof(fz_ops) / sizeof(fz_ops[0]))

/* ---- the input's life ---- */

static void fz_rm_files(void)
{
	char path[128];

	for (unsigned int s = 0; s < FZ_OBJS; s++) {
		fz_path(path, sizeof(path), "f", s);
		unlink(path);
		for (unsigned int e = 0; e < 4; e++) {
			fz_path(path, sizeof(path), "d", s);
			snprintf(path + strlen(path), sizeof(path) - strlen(path), "/e%u", e);
			unlink(path);
		}
		fz_path(path, sizeof(path), "d", s);
		rmdir(path);
	}
}

static void fz_reset(void)
{
	for (unsigned int i = 0; i < FZ_QUEUES; i++)
		fz_q_close(&fz.q[i]);
	for (unsigned int i = 0; i < FZ_OBJS; i++)
		fz_obj_close(&fz.obj[i]);
	fz_rm_files();
}

static void fz_at_exit(void)
{
	fz_reset();
	rmdir(fzg.dir);
}

/* Loaded and attached once, so that each input starts from the same state. */
static void fz_warm_up(void)
{
	struct ukevent uk[2] = {
		{ .type = KEVENT_SOCKET, .event = KEVENT_SOCKET_RECV },
		{ .type = KEVENT_INODE, .event = KEVENT_INODE_CREATE },
	};
	int sv[2], dir = open(fzg.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	FZ_CHECK(dir >= 0 && !socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
		 "warm-up objects: %s", strerror(errno));
	uk[0].id.raw[0] = (__u32)sv[0];
	uk[1].id.raw[0] = (__u32)dir;
	FZ_CHECK(kevent_ctl(fzg.pq, KEVENT_CTL_ADD, 2, uk) == 2 && !uk[0].ret_flags &&
		 !uk[1].ret_flags, "warm-up ADD: %d %d", (int)uk[0].ret_data[1],
		 (int)uk[1].ret_data[1]);
	FZ_CHECK(kevent_ctl(fzg.pq, KEVENT_CTL_REMOVE, 2, uk) == 2, "warm-up REMOVE");
	/* The timer family too: a family loads with its first interest, and stays. */
	FZ_CHECK(kevent_backend(fzg.pq, KEVENT_TIMER) > 0, "warm-up timers");
	close(sv[0]);
	close(sv[1]);
	close(dir);
}

static bool fz_env(const char *name)
{
	const char *v = getenv(name);

	return v && !strcmp(v, "1");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* A write to a socket or pipe whose other end is closed must fail, not end the run. */
	signal(SIGPIPE, SIG_IGN);
	fzg.trace = fz_env("FUZZ_TRACE");
	snprintf(fzg.dir, sizeof(fzg.dir), "/tmp/kevent-fuzz-XXXXXX");
	FZ_CHECK(mkdtemp(fzg.dir), "mkdtemp: %s", strerror(errno));
	fzg.listener = fz_listener(&fzg.laddr);
	FZ_CHECK(fzg.listener >= 0, "listener: %s", strerror(errno));
	fzg.pq = kevent_init(NULL, 0, 0);
	FZ_CHECK(fzg.pq >= 0, "kevent_init = %d: the fuzzer needs root (BPF)", fzg.pq);
	fz_warm_up();
	for (unsigned int i = 0; i < FZ_QUEUES; i++)
		fz.q[i].fd = -1;
	for (unsigned int i = 0; i < FZ_OBJS; i++)
		fz.obj[i] = (struct fz_obj){ .kind = FZ_NONE, .fd = -1, .peer = -1 };
	atexit(fz_at_exit);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	long fds = fz_fd_count();

	for (unsigned int n = 0; in.n && n < FZ_OPS_MAX; n++) {
		unsigned int op = fz_u8(&in) % FZ_NOPS;

		if (fzg.trace)
			fprintf(stderr, "fuzz: op %u (%s)\n", op, fz_op_names[op]);
		fz_ops[op](&in);
	}
	fz_reset();
	FZ_CHECK(fz_fd_count() == fds, "%ld descriptors before the input, %ld after closing "
		 "everything it made", fds, fz_fd_count());
	return 0;
}
