// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * KEVENT_SOCKET (K17). RECV and ACCEPT come from the BPF programs in bpf/socket.bpf.c,
 * which find the socket by cookie in kev_sockets. SEND, and the close of an AF_UNIX peer,
 * have no tracepoint: the queue's epoll set covers them (fdwatch.c).
 *
 * kev_sockets is one map for the whole process, so the library keeps a mirror of it here
 * and writes whole values: no read-modify-write round trip through the kernel. Changed
 * entries are written at the end of the kevent_ctl() call, all in one system call, before
 * the call checks what is ready (ctl.c).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "internal.h"

#define KEV_SOCK_KERNEL (KEVENT_SOCKET_RECV | KEVENT_SOCKET_ACCEPT)

struct kev_sockrec {
	struct kev_hnode hnode;
	struct kev_sock_key key;
	struct kev_sock_val val;
	struct kev_sockrec *dirty_next; /* on socks.dirty: the kernel's copy is stale */
	bool dirty;
};

static struct {
	pthread_mutex_t lock;
	struct kev_htab tab;
	struct kev_sockrec *dirty;
	unsigned int ndirty;
	__u32 tgid;
	struct kev_filter filter; /* in use while the table holds a socket */
} socks = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* fork() child (fork.c): the socket table is the parent's; start again from nothing. */
void kev_socket_forget(void)
{
	memset(&socks, 0, sizeof(socks));
	pthread_mutex_init(&socks.lock, NULL);
}

static bool kev_sockrec_match(const struct kev_hnode *n, const void *key)
{
	return kev_container_of(n, struct kev_sockrec, hnode)->key.cookie == *(const __u64 *)key;
}

static struct kev_sockrec *kev_sockrec_get(__u64 cookie, bool create)
{
	struct kev_hnode *n;
	struct kev_sockrec *r;

	if (!socks.tab.buckets && kev_htab_init(&socks.tab))
		return NULL;
	if (!socks.tgid)
		socks.tgid = (__u32)getpid();
	n = kev_htab_find(&socks.tab, kev_hash64(cookie), kev_sockrec_match, &cookie);
	if (n || !create)
		return n ? kev_container_of(n, struct kev_sockrec, hnode) : NULL;
	if (!socks.filter.bits && kev_filter_init(&socks.filter, kev_kernel_sock_filter()))
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->key.cookie = cookie;
	r->val.tgid = socks.tgid;
	r->hnode.hash = kev_hash64(cookie);
	if (kev_htab_insert(&socks.tab, &r->hnode)) {
		free(r);
		return NULL;
	}
	/* Before the element reaches the kernel (kev_sock_flush()): no event is filtered out. */
	kev_filter_ref(&socks.filter, kev_filter_hash(cookie), 1);
	return r;
}

static void kev_sockrec_put(struct kev_sockrec *r)
{
	if (r->dirty)
		return;
	r->dirty = true;
	r->dirty_next = socks.dirty;
	socks.dirty = r;
	socks.ndirty++;
}

/*
 * One batch operation over keys[0..n) (vals NULL: delete). A failing element stops a batch:
 * it is skipped and the batch goes on after it (a delete of an entry that never reached the
 * kernel fails that way, harmlessly).
 */
static void kev_map_batch(int map, const struct kev_sock_key *keys,
			  const struct kev_sock_val *vals, unsigned int n)
{
	for (unsigned int i = 0, done; i < n; i += done + 1) {
		done = n - i;
		if (!(vals ? bpf_map_update_batch(map, keys + i, vals + i, &done, NULL)
			   : bpf_map_delete_batch(map, keys + i, &done, NULL)))
			break;
	}
}

/* Write what changed since the last flush: updates in one call, deletions in another. */
static void kev_sock_flush(struct kev_queue *q)
{
	struct kev_sock_key *keys, *gone;
	struct kev_sock_val *vals;
	unsigned int nk = 0, ng = 0;
	struct kev_sockrec *r, *next;
	int map;

	(void)q;
	if (!__atomic_load_n(&socks.dirty, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&socks.lock);
	map = kev_kernel_map_fd(KEV_MAP_SOCKETS);
	keys = malloc(socks.ndirty * sizeof(*keys));
	gone = malloc(socks.ndirty * sizeof(*gone));
	vals = malloc(socks.ndirty * sizeof(*vals));
	for (r = socks.dirty; r; r = next) {
		next = r->dirty_next;
		r->dirty = false;
		if (r->val.nr && keys && vals) {
			keys[nk] = r->key;
			vals[nk++] = r->val;
		} else if (r->val.nr) {
			bpf_map_update_elem(map, &r->key, &r->val, 0);
		} else {
			if (gone)
				gone[ng++] = r->key;
			else
				bpf_map_delete_elem(map, &r->key);
			kev_filter_ref(&socks.filter, kev_filter_hash(r->key.cookie), -1);
			kev_htab_remove(&socks.tab, &r->hnode);
			free(r);
		}
	}
	socks.dirty = NULL;
	socks.ndirty = 0;
	kev_map_batch(map, keys, vals, nk);
	kev_map_batch(map, gone, NULL, ng);
	if (!socks.tab.count)
		kev_filter_fini(&socks.filter); /* the BPF object may go, and its filter with it */
	pthread_mutex_unlock(&socks.lock);
	free(keys);
	free(gone);
	free(vals);
}

static struct kev_watch *kev_watch_find(struct kev_sockrec *r, __u32 slot)
{
	for (unsigned int i = 0; i < r->val.nr; i++)
		if (r->val.w[i].slot == slot)
			return &r->val.w[i];
	return NULL;
}

/* Make the kernel's view of this interest match it->uk.event / req_flags. */
static int kev_sock_watch(struct kev_queue *q, struct kev_interest *it)
{
	__u8 events = it->uk.event & KEV_SOCK_KERNEL;
	struct kev_sockrec *r;
	struct kev_watch *w;
	int err = 0;

	if (!events && it->slot == KEV_NO_SLOT)
		return 0;
	if (events && it->slot == KEV_NO_SLOT && (err = kev_slot_alloc(it)))
		return err;
	pthread_mutex_lock(&socks.lock);
	r = kev_sockrec_get(it->cookie, events != 0);
	w = r ? kev_watch_find(r, it->slot) : NULL;
	if (events && !w) {
		if (!r)
			err = -ENOMEM;
		else if (r->val.nr == KEV_SOCK_WATCHES)
			err = -ENOSPC;
		else
			w = &r->val.w[r->val.nr++];
	}
	if (w && events) {
		*w = (struct kev_watch){
			.slot = it->slot,
			.gen = it->gen,
			.fd = it->fd,
			.queue = (__u16)q->qidx,
			.events = events,
			.flags = it->uk.req_flags & KEVENT_REQ_WAKEUP_ALL ? KEV_WATCH_WAKEUP_ALL : 0,
		};
	} else if (w) {
		*w = r->val.w[--r->val.nr]; /* no kernel events any more: drop the watch */
	}
	if (r)
		kev_sockrec_put(r);
	pthread_mutex_unlock(&socks.lock);
	if (!events || err)
		kev_slot_free(it);
	return err;
}

static int kev_sock_opt(int fd, int opt, void *val, socklen_t len)
{
	return getsockopt(fd, SOL_SOCKET, opt, val, &len) ? -errno : 0;
}

/*
 * Is the socket listening? Asked only when the interest wants both RECV and ACCEPT: with
 * one of them, a readable socket means that one. Each question is a system call.
 */
static int kev_sock_listening(struct kev_interest *it)
{
	__u32 both = KEVENT_SOCKET_RECV | KEVENT_SOCKET_ACCEPT;
	int listening = 0, err = 0;

	if ((it->uk.event & both) == both)
		err = kev_sock_opt(it->fd, SO_ACCEPTCONN, &listening, sizeof(listening));
	else
		listening = !!(it->uk.event & KEVENT_SOCKET_ACCEPT);
	it->listening = listening;
	return err;
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

static int kev_sock_apply(struct kev_queue *q, struct kev_interest *it)
{
	int err = kev_sock_listening(it);

	if (!err)
		err = kev_sock_watch(q, it);
	return err ? err : kev_fdwatch_set(q, it, kev_sock_epoll_events(it));
}

static void kev_sock_del(struct kev_queue *q, struct kev_interest *it)
{
	__u32 event = it->uk.event;

	it->uk.event = 0;
	kev_sock_watch(q, it);
	kev_fdwatch_del(q, it);
	it->uk.event = event;
}

static int kev_sock_add(struct kev_queue *q, struct kev_interest *it)
{
	int fd = (int)it->uk.id.raw[0], proto = 0, err;

	err = kev_sock_opt(fd, SO_COOKIE, &it->cookie, sizeof(it->cookie));
	if (!err)
		err = kev_sock_opt(fd, SO_PROTOCOL, &proto, sizeof(proto));
	/* TCP and UDP are inet sockets: the domain is only asked of the others. */
	it->domain = proto == IPPROTO_TCP || proto == IPPROTO_UDP ? AF_INET : AF_UNSPEC;
	if (!err && it->domain == AF_UNSPEC)
		err = kev_sock_opt(fd, SO_DOMAIN, &it->domain, sizeof(it->domain));
	if (!err && it->domain != AF_INET && it->domain != AF_INET6 && it->domain != AF_UNIX)
		err = -EINVAL;
	/* After the checks: attaching opens descriptors, which could take a closed fd's number. */
	if (!err)
		err = kev_kernel_attach(KEV_PROGS_SOCKET);
	if (err)
		return err;
	it->fd = fd;
	/* TCP changes state inside close(): the BPF side sees it (socket.bpf.c, x86-64). */
#if defined(__x86_64__)
	it->kernel_sees_close = proto == IPPROTO_TCP;
#endif
	err = kev_sock_apply(q, it);
	if (err)
		kev_sock_del(q, it);
	return err;
}

static short kev_sock_pollmask(const struct kev_interest *it)
{
	short ev = POLLRDHUP;

	if (it->uk.event & KEV_SOCK_KERNEL)
		ev |= POLLIN;
	if (it->uk.event & KEVENT_SOCKET_SEND)
		ev |= POLLOUT;
	return ev;
}

static void kev_sock_broken(struct kev_interest *it, int err)
{
	it->ret_flags |= KEVENT_RET_BROKEN;
	it->ret_data[1] = (__u32)err;
}

/*
 * K17: an error or a reset is BROKEN; so is a hang-up in both directions with nothing
 * left to read. A peer that only shut its side down makes the socket readable: RECV.
 */
static __u32 kev_sock_classify(struct kev_interest *it, short revents)
{
	__u32 bits = 0;
	int avail = 0, soerr = 0;

	if (revents & POLLNVAL)
		return 0;
	if (revents & POLLERR) {
		/* Reading SO_ERROR clears it: the application learns it from ret_data[1]. */
		kev_sock_opt(it->fd, SO_ERROR, &soerr, sizeof(soerr));
		kev_sock_broken(it, soerr ? -soerr : -EIO);
		return 0;
	}
	if ((revents & POLLHUP) && !it->listening &&
	    (ioctl(it->fd, FIONREAD, &avail) || !avail)) {
		kev_sock_broken(it, -EPIPE);
		return 0;
	}
	if (revents & (POLLIN | POLLRDHUP | POLLHUP))
		bits |= it->listening ? KEVENT_SOCKET_ACCEPT : KEVENT_SOCKET_RECV;
	if (revents & POLLOUT)
		bits |= KEVENT_SOCKET_SEND;
	return bits & it->uk.event;
}

/* The descriptor may have been closed, and its number reused, since the ADD. */
static bool kev_sock_alive(const struct kev_interest *it)
{
	__u64 cookie;

	return !kev_sock_opt(it->fd, SO_COOKIE, &cookie, sizeof(cookie)) && cookie == it->cookie;
}

const struct kev_source kev_socket_source = {
	.events = KEVENT_SOCKET_RECV | KEVENT_SOCKET_ACCEPT | KEVENT_SOCKET_SEND,
	.add = kev_sock_add,
	.del = kev_sock_del,
	.modify = kev_sock_apply,
	.pollmask = kev_sock_pollmask,
	.classify = kev_sock_classify,
	.alive = kev_sock_alive,
	.flush = kev_sock_flush,
};
