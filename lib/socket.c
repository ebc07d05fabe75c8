// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * KEVENT_SOCKET (K17). RECV and ACCEPT come from the BPF programs in bpf/socket.bpf.c,
 * which find a socket's interests in the socket's own storage (kev_socks) and check, at
 * every event, that the descriptor each one registered still names the socket. SEND and
 * the close of an AF_UNIX peer have no tracepoint: the queue's epoll set covers them
 * (fdwatch.c).
 *
 * Registration is by descriptor: one update of the socket's storage, which fails with
 * EEXIST when the process already watches that socket (the watches then merge), and with
 * EBADF or ENOTSOCK for what is not a socket. What else the library must know (family,
 * state, pending error) comes, for every socket one kevent_ctl() call adds, from one run of
 * kev_sock_probe, with no system call per socket. A REMOVE touches nothing in the kernel:
 * freeing the slot moves its generation, which makes the watch inert, and the storage goes
 * with the socket.
 *
 * A socket stored afresh means the number names a socket the process did not watch: the
 * interests this queue still had on that number (closed without REMOVE) go at once.
 *
 * Classification (kev_sock_classify()) follows K17: while data remains the socket is
 * RECV-ready, even with an error or a hang-up pending; BROKEN, with the socket's own error,
 * only when nothing is left. The error comes from the kernel side or from kev_sock_probe,
 * never from SO_ERROR, which would clear it for the application.
 *
 * Operators read kev_sockets, a hash map keyed by slot that mirrors each interest; it is
 * written in batches, with the other changes of the call.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "internal.h"

#define KEV_SOCK_KERNEL (KEVENT_SOCKET_RECV | KEVENT_SOCKET_ACCEPT)
#define KEV_PROBED	0x80 /* it->probed holds the ADD probe's readiness */
#define KEV_TCP_LISTEN	10

/* Changes to kev_sockets not yet written: one batch of in-place updates. */
struct kev_view_batch {
	struct kev_sock_key *keys;
	struct kev_sock_view *vals;
	unsigned int n, cap;
};

static struct {
	pthread_mutex_t lock;
	struct kev_view_batch view;
	__u32 tgid;
} socks = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Sockets a kevent_ctl() call added, probed together at its end (kev_sock_flush()). */
struct kev_sock_batch {
	struct kev_interest *it[KEV_PROBE_BATCH];
	struct ukevent *entry[KEV_PROBE_BATCH];
	unsigned int nr;
};

/* fork() child (fork.c): the parent's pending view changes are not the child's. */
void kev_socket_forget(void)
{
	memset(&socks, 0, sizeof(socks));
	pthread_mutex_init(&socks.lock, NULL);
}

static __u8 kev_sock_watch_flags(const struct kev_interest *it)
{
	__u32 rf = it->uk.req_flags;

	return (rf & KEVENT_REQ_WAKEUP_ALL ? KEV_WATCH_WAKEUP_ALL : 0) |
	       (rf & (KEVENT_REQ_ET | KEVENT_REQ_ONESHOT) ? 0 : KEV_WATCH_LEVEL);
}

/* Room for one more update (keys and vals grow together). */
static bool kev_view_room(struct kev_view_batch *b)
{
	unsigned int cap = b->cap ? 2 * b->cap : 64;
	void *k, *v;

	if (b->n < b->cap)
		return true;
	k = realloc(b->keys, cap * sizeof(*b->keys));
	if (k)
		b->keys = k;
	v = k ? realloc(b->vals, cap * sizeof(*b->vals)) : NULL;
	if (v) {
		b->vals = v;
		b->cap = cap;
	}
	return v;
}

/* Queue the interest's view for writing (gone: its slot is free). Best effort: a view only. */
static void kev_view_put(const struct kev_queue *q, const struct kev_interest *it, bool gone)
{
	struct kev_view_batch *b = &socks.view;

	pthread_mutex_lock(&socks.lock);
	if (kev_view_room(b)) {
		b->keys[b->n] = (struct kev_sock_key){ it->slot };
		b->vals[b->n] = (struct kev_sock_view){
			.tgid = socks.tgid,
			.fd = gone ? -1 : it->fd,
			.queue = (__u16)q->qidx,
			.events = gone ? 0 : (__u8)(it->uk.event & KEV_SOCK_KERNEL),
			.flags = gone ? 0 : kev_sock_watch_flags(it),
		};
		__atomic_store_n(&b->n, b->n + 1, __ATOMIC_RELAXED); /* kev_view_flush() looks */
	}
	pthread_mutex_unlock(&socks.lock);
}

static void kev_view_flush(void)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_F_LOCK);
	struct kev_view_batch *b = &socks.view;
	int map;

	/* A look without the lock: most calls have nothing to write. */
	if (!__atomic_load_n(&b->n, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&socks.lock);
	map = kev_kernel_map_fd(KEV_MAP_SOCKETS);
	/* A failing element stops a batch: it is skipped and the batch goes on after it. */
	for (unsigned int i = 0, done; i < b->n; i += done + 1) {
		done = b->n - i;
		if (!bpf_map_update_batch(map, b->keys + i, b->vals + i, &done, &opts))
			break;
	}
	__atomic_store_n(&b->n, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&socks.lock);
}

static struct kev_watch kev_sock_watch_of(const struct kev_queue *q, const struct kev_interest *it)
{
	return (struct kev_watch){
		.slot = it->slot,
		.gen = it->gen,
		.fd = it->fd,
		.queue = (__u16)q->qidx,
		.events = (__u8)(it->uk.event & KEV_SOCK_KERNEL),
		.flags = kev_sock_watch_flags(it),
	};
}

/* A level-mode watch needs the kernel side's reads (kev_kernel_level_reads()) first. */
static int kev_sock_level_ready(const struct kev_watch *w)
{
	return w->flags & KEV_WATCH_LEVEL ? kev_kernel_level_reads() : 0;
}

/* What the kernel side now has for the interest: MODIFY writes only when it changes. */
static void kev_sock_written(struct kev_interest *it, const struct kev_watch *w)
{
	it->wevents = w->events;
	it->wflags = w->flags;
}

/* The index of the interest's watch in v, or -1. */
static int kev_watch_index(const struct kev_sock_val *v, const struct kev_interest *it)
{
	for (unsigned int i = 0; i < v->nr && i < KEV_SOCK_WATCHES; i++)
		if (v->w[i].slot == it->slot && v->w[i].gen == it->gen)
			return (int)i;
	return -1;
}

/* Keep the watches whose interest still holds its slot (a freed slot's watch is inert). */
static void kev_watch_prune(struct kev_sock_val *v)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < v->nr && i < KEV_SOCK_WATCHES; i++)
		if (kev_slot_owner(v->w[i].slot, v->w[i].gen))
			v->w[n++] = v->w[i];
	v->nr = (__u16)n;
}

/*
 * The socket at it->fd already carries the process's storage: merge this interest's watch
 * into it (add: a new watch; otherwise replace its own, which must be there: -ENOENT when
 * the number no longer names the socket the interest was made for).
 */
static int kev_sock_merge(int map, const struct kev_queue *q, const struct kev_interest *it,
			  bool add)
{
	struct kev_sock_val v;
	int i;

	if (bpf_map_lookup_elem(map, &it->fd, &v))
		return errno == ENOENT || errno == EBADF ? -ENOENT : -errno;
	i = kev_watch_index(&v, it);
	if (!add && i < 0)
		return -ENOENT;
	if (i < 0) {
		kev_watch_prune(&v);
		if (v.nr == KEV_SOCK_WATCHES)
			return -ENOSPC;
		i = v.nr++;
	}
	v.w[i] = kev_sock_watch_of(q, it);
	return bpf_map_update_elem(map, &it->fd, &v, BPF_EXIST) ? -errno : 0;
}

/* The interests this queue had on the number, whose socket is gone from it (K17). */
static void kev_sock_reused(struct kev_queue *q, struct kev_interest *it)
{
	struct kev_interest *stale[KEV_SOCK_WATCHES * 4];
	unsigned int n = kev_fdwatch_others(q, it, &kev_socket_source, stale,
					    sizeof(stale) / sizeof(stale[0]));

	for (unsigned int i = 0; i < n; i++)
		kev_interest_free(q, stale[i]);
}

/*
 * A storage update meeting the teardown of the socket's storage (another map's last element
 * on it going, in another process or a map being freed), or another first storage made on
 * the socket at the same moment, fails with EAGAIN: the kernel leaves the retry to the
 * caller. The teardown unhooks the storage from the socket under the lock the update waited
 * on, so the next attempt makes a fresh one (or merges, EEXIST).
 */
#define KEV_STORE_TRIES 8

/* One attempt: a fresh storage, or a merge into the one the process already has there. */
static int kev_sock_put(int map, struct kev_queue *q, struct kev_interest *it,
			const struct kev_sock_val *v)
{
	if (!bpf_map_update_elem(map, &it->fd, v, BPF_NOEXIST)) {
		kev_sock_reused(q, it);
		return 0;
	}
	return errno == EEXIST ? kev_sock_merge(map, q, it, true) : -errno;
}

/* Store the interest's watch on its socket. */
static int kev_sock_store(struct kev_queue *q, struct kev_interest *it)
{
	int map = kev_kernel_map_fd(KEV_MAP_SOCKS), err, tries = 0;
	struct kev_sock_val v = { .tgid = socks.tgid, .nr = 1 };

	v.w[0] = kev_sock_watch_of(q, it);
	err = kev_sock_level_ready(&v.w[0]);
	if (err)
		return err;
	kev_sock_written(it, &v.w[0]);
	do
		err = kev_sock_put(map, q, it, &v);
	while (err == -EAGAIN && ++tries < KEV_STORE_TRIES);
	/* A closed number is ENOTSOCK to the map, ENOENT when it closed between two calls. */
	if (err == -ENOENT || (err == -ENOTSOCK && fcntl(it->fd, F_GETFD) < 0))
		err = -EBADF;
	return err;
}

static void kev_sock_flush(struct kev_queue *q);

static struct kev_sock_batch *kev_sock_batch(struct kev_queue *q)
{
	if (!q->sockb)
		q->sockb = calloc(1, sizeof(*q->sockb));
	return q->sockb;
}

static int kev_sock_add(struct kev_queue *q, struct kev_interest *it)
{
	struct kev_sock_batch *b;
	int err;

	it->fd = (int)it->uk.id.raw[0];
	if (it->fd < 0)
		return -EBADF;
	if (!socks.tgid)
		socks.tgid = (__u32)getpid();
	b = kev_sock_batch(q);
	if (!b)
		return -ENOMEM;
	err = kev_slot_alloc(it);
	if (!err)
		err = kev_fdwatch_add(q, it, 0);
	if (!err)
		err = kev_sock_store(q, it);
	if (err) {
		kev_fdwatch_del(q, it);
		return err;
	}
	if (b->nr == KEV_PROBE_BATCH)
		kev_sock_flush(q);
	it->batched = (int)b->nr;
	b->it[b->nr] = it;
	b->entry[b->nr++] = q->ctl_entry;
	return 0;
}

/* epoll covers what has no tracepoint: send space, and an AF_UNIX peer hanging up. */
static __u32 kev_sock_epoll_events(const struct kev_interest *it)
{
	__u32 ev = 0;

	if (it->uk.event & KEVENT_SOCKET_SEND)
		ev |= EPOLLOUT;
	if (it->domain == AF_UNIX && (it->uk.event & KEVENT_SOCKET_RECV))
		ev |= EPOLLRDHUP;
	return ev;
}

/* What the probe says of a socket just added: is it one we watch, and how. */
static int kev_sock_probed(struct kev_queue *q, struct kev_interest *it, const struct kev_probe *p)
{
	if (p->err)
		return p->err;
	if (p->family != AF_INET && p->family != AF_INET6 && p->family != AF_UNIX)
		return -EINVAL;
	it->domain = p->family;
	it->listening = p->state == KEV_TCP_LISTEN;
	it->sock_err = p->sk_err;
	it->sock_ino = p->ino;
	it->probed = p->ready | KEV_PROBED;
	/* Readable before the store: no record set the level state; the probe does (K13). */
	if (p->ready & KEV_PROBE_READABLE)
		kev_slot_set(it, KEV_PEND_LEVEL);
	kev_view_put(q, it, false);
	return kev_fdwatch_set(q, it, kev_sock_epoll_events(it));
}

/* End of a kevent_ctl() call: probe the sockets it added, write the operators' view. */
static void kev_sock_flush(struct kev_queue *q)
{
	struct kev_sock_batch *b = q->sockb;
	struct kev_probe p[KEV_PROBE_BATCH];
	unsigned int i, n = 0;
	int err;

	for (i = 0; b && i < b->nr; i++) {
		if (!b->it[i])
			continue;
		b->it[n] = b->it[i];
		b->entry[n] = b->entry[i];
		p[n++] = (struct kev_probe){ .fd = b->it[i]->fd };
	}
	if (b)
		b->nr = 0;
	err = n ? kev_kernel_probe(p, n, false) : 0;
	for (i = 0; i < n; i++) {
		struct kev_interest *it = b->it[i];
		int e = err ? err : kev_sock_probed(q, it, &p[i]);

		it->batched = -1;
		if (e) {
			kev_fail(b->entry[i], e);
			kev_interest_free(q, it);
		}
	}
	kev_view_flush();
}

static void kev_sock_del(struct kev_queue *q, struct kev_interest *it)
{
	if (it->batched >= 0)
		q->sockb->it[it->batched] = NULL; /* never probed: never in the view either */
	else if (it->slot != KEV_NO_SLOT)
		kev_view_put(q, it, true);
	it->batched = -1;
	kev_fdwatch_del(q, it);
}

/*
 * MODIFY (K8): the watch in the socket's storage when what the kernel side does for it
 * changed (SEND alone is epoll's), the view, and the epoll registration.
 */
static int kev_sock_modify(struct kev_queue *q, struct kev_interest *it)
{
	struct kev_watch w = kev_sock_watch_of(q, it);
	int err;

	if (w.events != it->wevents || w.flags != it->wflags) {
		err = kev_sock_level_ready(&w);
		if (!err)
			err = kev_sock_merge(kev_kernel_map_fd(KEV_MAP_SOCKS), q, it, false);
		if (err)
			return err;
		/* The kernel kept no level state while the watch was not in level mode. */
		if ((w.flags & ~it->wflags) & KEV_WATCH_LEVEL)
			it->level_unsure = true;
		kev_sock_written(it, &w);
		if (it->batched < 0)
			kev_view_put(q, it, false);
	}
	return kev_fdwatch_set(q, it, kev_sock_epoll_events(it));
}

/* Readiness a probe asks poll() about: only what the interest can be told. */
short kev_sock_pollmask(const struct kev_interest *it)
{
	short ev = 0;

	if (it->uk.event & KEV_SOCK_KERNEL)
		ev |= POLLIN | POLLRDHUP;
	if (it->uk.event & KEVENT_SOCKET_SEND)
		ev |= POLLOUT;
	return ev;
}

/*
 * Readiness without a system call: at ADD (K9), what the probe saw after the store; in level
 * mode (K13), the slot's level state, cleared by the kernel when a read leaves the socket
 * with nothing to read. A hang-up to classify, a listener's second look (accept is not a
 * read) and SEND are poll()ed instead.
 */
static bool kev_sock_level(struct kev_interest *it, __u32 *bits)
{
	__u8 probed = it->probed;

	it->probed = 0;
	if (it->uk.event & KEVENT_SOCKET_SEND)
		return false; /* send space: poll() */
	if (probed & KEV_PROBED) {
		/* The K9 check of an ADD: the probe, made after the store, saw it. */
		if (probed & KEV_PROBE_HANGUP)
			return false; /* to be classified */
		*bits = probed & KEV_PROBE_READABLE ? it->uk.event & KEV_SOCK_KERNEL : 0;
		return true;
	}
	if (it->listening)
		return false; /* accept is not a read: the level state does not clear */
	if (kev_slot_pending(it) & KEV_PEND_LEVEL) {
		it->level_unsure = false; /* kept from now on */
		*bits = it->uk.event & KEV_SOCK_KERNEL;
		return true;
	}
	*bits = 0;
	return !it->level_unsure;
}

/*
 * Does the descriptor still name the socket the interest was made for? A socket's inode
 * number is its own while it lives (sockfs numbers every socket afresh): one fstat(), the
 * cheapest question with that answer.
 */
static bool kev_sock_named(const struct kev_interest *it)
{
	struct stat st;

	if (it->batched >= 0)
		return true; /* added by this very call: probed at its end */
	return !fstat(it->fd, &st) && S_ISSOCK(st.st_mode) && st.st_ino == it->sock_ino;
}

/*
 * named() for many: below KEV_PROBE_MIN one fstat() each, else one run of kev_sock_probe
 * for all of them. A run costs more CPU than two fstat() calls, but it is one system call:
 * under the HTTP bench, where records pushed between calls are checked (ready.c), two and
 * up gave the same system calls per request as epoll and no more CPU than four and up.
 */
#define KEV_PROBE_MIN 2

static void kev_sock_named_many(struct kev_interest *const *its, unsigned int n, bool *ok)
{
	struct kev_probe p[KEV_PROBE_BATCH];
	unsigned int i;

	if (n < KEV_PROBE_MIN || n > KEV_PROBE_BATCH) {
		for (i = 0; i < n; i++)
			ok[i] = kev_sock_named(its[i]);
		return;
	}
	for (i = 0; i < n; i++)
		p[i] = (struct kev_probe){ .fd = its[i]->fd };
	if (kev_kernel_probe(p, n, true)) {
		for (i = 0; i < n; i++)
			ok[i] = kev_sock_named(its[i]);
		return;
	}
	for (i = 0; i < n; i++)
		ok[i] = its[i]->batched >= 0 || (!p[i].err && p[i].ino == its[i]->sock_ino);
}

/* Is there anything left to read? Asked only once an error or a hang-up is pending. */
static bool kev_sock_readable(const struct kev_interest *it)
{
	int avail = 0;

	return !ioctl(it->fd, FIONREAD, &avail) && avail > 0;
}

/* The error the socket broke with (positive), without reading SO_ERROR. */
static __u32 kev_sock_error(struct kev_interest *it)
{
	struct kev_probe p = { .fd = it->fd };

	if (!it->sock_err && !kev_kernel_probe(&p, 1, false) && !p.err)
		it->sock_err = p.sk_err;
	return it->sock_err;
}

/*
 * An error or a hang-up is pending (K17): BROKEN, with the socket's error (or EPIPE for a
 * plain hang-up), once nothing is left to read; while data remains, KEV_PEND_HUP, which
 * has the core look again after the call, whatever the mode. KEV_PEND_DEAD: the number no
 * longer names the socket, and must not be asked more.
 */
static __u32 kev_sock_hangup(struct kev_interest *it, short revents)
{
	__u32 err;

	if (!it->src->named(it))
		return KEV_PEND_DEAD;
	if (kev_sock_readable(it))
		return KEV_PEND_HUP;
	err = kev_sock_error(it);
	it->ret_flags |= KEVENT_RET_BROKEN;
	it->ret_data[1] = (__u32)-(int)(err ? err : revents & POLLERR ? EIO : EPIPE);
	return 0;
}

/*
 * poll() bits to event bits (K17). A peer that only shut its side down leaves the socket
 * readable: RECV; on a listener, RECV and ACCEPT are the same readiness.
 */
__u32 kev_sock_classify(struct kev_interest *it, short revents)
{
	__u32 bits = 0;

	if (revents & POLLNVAL)
		return 0;
	if ((revents & (POLLERR | POLLHUP)) && !it->listening) {
		bits = kev_sock_hangup(it, revents);
		if ((bits & KEV_PEND_DEAD) || (it->ret_flags & KEVENT_RET_BROKEN))
			return bits;
	}
	if (revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR))
		bits |= KEVENT_SOCKET_RECV | (it->listening ? KEVENT_SOCKET_ACCEPT : 0);
	if (revents & POLLOUT)
		bits |= KEVENT_SOCKET_SEND;
	return bits & (it->uk.event | KEV_PEND_HUP);
}

static void kev_sock_release(struct kev_queue *q)
{
	free(q->sockb);
	q->sockb = NULL;
}

const struct kev_source kev_socket_source = {
	.events = KEVENT_SOCKET_RECV | KEVENT_SOCKET_ACCEPT | KEVENT_SOCKET_SEND,
	.add = kev_sock_add,
	.del = kev_sock_del,
	.modify = kev_sock_modify,
	.pollmask = kev_sock_pollmask,
	.classify = kev_sock_classify,
	.named = kev_sock_named,
	.named_many = kev_sock_named_many,
	.kernel_checks_fd = true,
	.level = kev_sock_level,
	.flush = kev_sock_flush,
	.release = kev_sock_release,
};
