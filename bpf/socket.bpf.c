// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * KEVENT_SOCKET from socket tracepoints (K17).
 *
 * The interests on a socket live in the socket's own BPF storage (kev_socks): a socket
 * nobody watches costs one load, and a socket closed without REMOVE takes the kernel side
 * of its interests with it. Each watch names the descriptor the process registered, and an
 * event is delivered only while that descriptor, in the owner's descriptor table, still
 * names this socket. Otherwise (a close that was not the last reference: dup, fork,
 * SCM_RIGHTS; or a reused number) the watch is reported dead instead (KEV_PEND_DEAD), so an
 * interest never follows a number to another object. A TCP socket changes state inside its
 * last close(), after the descriptor left the table: its interests go at once. A close has
 * no hook otherwise, so a record the table check let through before a close is checked
 * again by the library, unless it carries the epoch of the call that takes it (kev_epoch).
 *
 * RECV comes from sk_data_ready; on a listening socket RECV and ACCEPT are the same
 * readiness, as in the original. Errors, resets and the end of a TCP connection are
 * KEV_PEND_HUP, with the socket's error, for the library to classify. SEND and the close of
 * an AF_UNIX peer have no tracepoint: the library covers them with epoll.
 *
 * Level mode (K13) wants to know, after a delivery, whether the socket is still readable:
 * RECV sets KEV_PEND_LEVEL in the slot, and sock_recv_length, which follows every read,
 * clears it once the read left nothing to read. The library then needs no system call to
 * deliver again, or not.
 */
#include "kevent.bpf.h"
#include "kev_arch.h"

/*
 * Turns an address into a typed kernel pointer whose loads are fault-safe and need no
 * helper call. (Declared in this object only: libbpf 1.1's linker cannot join two objects
 * that declare the same kfunc.)
 */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

#define KEV_CAST(type, p) ((type *)bpf_rdonly_cast((void *)(p), bpf_core_type_id_kernel(type)))

#define TCP_LISTEN  10
#define TCP_CLOSE   7
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define RCV_SHUTDOWN 1
#define SEND_SHUTDOWN 2
#define MSG_PEEK    2
#define S_IFMT	    00170000
#define S_IFSOCK    0140000
#define EBADF	    9
#define ENOTSOCK    88

/* The interests on each watched socket, in the socket's own storage. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct kev_sock_val);
} kev_socks SEC(".maps");

/* The same, readable by operators: `bpftool map dump name kev_sockets`. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, KEV_MAX_SLOTS);
	__type(key, struct kev_sock_key);
	__type(value, struct kev_sock_view);
} kev_sockets SEC(".maps");

/* Requests of kev_sock_probe, written by the library through mmap. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, KEV_PROBE_BATCH);
	__type(key, __u32);
	__type(value, struct kev_probe);
} kev_probes SEC(".maps");

/*
 * The owner's descriptor table (struct files_struct *), recorded once by kev_owner and read
 * with fault-safe loads: the table outlives every program run that can reach it, but those
 * racing the process's own exit, whose events nobody reads.
 */
__u64 kev_owner_files;

/*
 * The owner's call in progress (odd, a new value at each kevent_get_events() and
 * kevent_wait()), written by the library through mmap as the call begins, after whatever
 * the calling thread closed before it. Read before the descriptor table and carried in the
 * record: a record with the value of the call that takes it was checked against a table
 * with those closes in it, and needs no second look (lib/ready.c, kev_on_record()).
 */
__u32 kev_epoch;

/* Run once at load, in the process that loads the object. */
SEC("syscall")
int kev_owner(void *ctx)
{
	kev_owner_files = (__u64)bpf_get_current_task_btf()->files;
	return 0;
}

/* The part of struct fdtable the lookup needs. */
struct kev_fdt {
	unsigned int max_fds;
	struct file **fd;
};

static __always_inline int kev_fdt_read(struct kev_fdt *t, const struct files_struct *files)
{
	const struct fdtable *fdt = files ? KEV_CAST(struct fdtable, files->fdt) : NULL;

	if (!fdt)
		return -1;
	t->max_fds = fdt->max_fds;
	t->fd = fdt->fd;
	return t->fd ? 0 : -1;
}

/* The file descriptor fd names in t now, or NULL. */
static __always_inline struct file *kev_fd_file(const struct kev_fdt *t, __s32 fd)
{
	struct file *f = NULL;

	if (fd < 0 || (__u32)fd >= t->max_fds)
		return NULL;
	bpf_probe_read_kernel(&f, sizeof(f), t->fd + fd);
	return f;
}

/* Readiness to read, for a watch in level mode: the slot keeps it as a state (K13). */
static __always_inline __u32 kev_level(const struct kev_watch *w, __u32 bits)
{
	return (w->flags & KEV_WATCH_LEVEL) && (bits & (KEVENT_SOCKET_RECV | KEVENT_SOCKET_ACCEPT))
		       ? KEV_PEND_LEVEL
		       : 0;
}

/*
 * Deliver bits to the socket's watches. probe: the event may be its owner's last close
 * (a state change), so every watch, even one that wants none of the bits, is checked.
 */
static __always_inline void kev_sock_event(const struct sock *sk, __u32 bits, bool probe)
{
	struct socket *sock = sk->sk_socket;
	struct file *file = sock ? sock->file : NULL;
	struct kev_fdt fdt = {};
	struct kev_sock_val *v;
	struct kev_target t;
	__u32 nr, start, i;
	int chosen = 0;

	/* Cheapest miss: a socket with no BPF storage at all. */
	if (!sk->sk_bpf_storage)
		return;
	v = bpf_sk_storage_get(&kev_socks, (void *)sk, 0, 0);
	if (!v)
		return;
	nr = v->nr;
	if (nr > KEV_SOCK_WATCHES)
		nr = KEV_SOCK_WATCHES;
	if (!nr)
		return;
	if ((bits & KEVENT_SOCKET_RECV) && sk->__sk_common.skc_state == TCP_LISTEN)
		bits |= KEVENT_SOCKET_ACCEPT;
	/* Before the table (kev_epoch): the check below then sees what the call's thread closed. */
	t.epoch = KEV_LOAD_ORDERED(&kev_epoch);
	if (file && kev_owner_files)
		kev_fdt_read(&fdt, KEV_CAST(struct files_struct, kev_owner_files));
	/*
	 * Rotate the starting watch so that single delivery spreads across queues (K15). A
	 * socket with one watch (nearly all) leaves its storage unwritten.
	 */
	start = v->rr;
	if (nr > 1)
		v->rr = start + 1;
	for (i = 0; i < KEV_SOCK_WATCHES; i++) {
		__u32 k = (start + i) % nr;
		const struct kev_watch *w;
		__u32 mine;

		if (i >= nr || k >= KEV_SOCK_WATCHES)
			break;
		w = &v->w[k];
		/* Breakage concerns every interest; readiness goes to one queue unless WAKEUP_ALL. */
		mine = bits & KEV_PEND_HUP ? bits : bits & w->events;
		if (!mine && !probe)
			continue;
		t.slot = w->slot;
		t.gen = w->gen;
		t.queue = w->queue;
		if (!file || kev_fd_file(&fdt, w->fd) != file)
			kev_notify(&t, KEVENT_SOCKET, KEV_PEND_DEAD, false, 0);
		else if (mine && (mine != (bits & w->events) || (w->flags & KEV_WATCH_WAKEUP_ALL) ||
				  !chosen++))
			kev_notify(&t, KEVENT_SOCKET, mine | kev_level(w, mine), false, 0);
	}
}

SEC("tp_btf/sk_data_ready")
int BPF_PROG(kev_sk_data_ready, const struct sock *sk)
{
	kev_sock_event(sk, KEVENT_SOCKET_RECV, false);
	return 0;
}

static __always_inline __u32 kev_sock_hup(const struct sock *sk)
{
	return KEV_PEND_HUP | KEV_PEND_ERR(sk->sk_err);
}

SEC("tp_btf/inet_sk_error_report")
int BPF_PROG(kev_sk_error_report, const struct sock *sk)
{
	kev_sock_event(sk, kev_sock_hup(sk), false);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(kev_sk_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	kev_sock_event(sk, newstate == TCP_CLOSE ? kev_sock_hup(sk) : 0, true);
	return 0;
}

/* Anything to read (or an end of file, or an error, which a read reports)? */
static __always_inline bool kev_sock_readable(const struct sock *sk)
{
	const struct tcp_sock *tp;

	if (sk->sk_err || (sk->sk_shutdown & RCV_SHUTDOWN))
		return true;
	switch (sk->sk_protocol) {
	case IPPROTO_TCP:
		tp = KEV_CAST(struct tcp_sock, sk);
		return tp->rcv_nxt != tp->copied_seq;
	case IPPROTO_UDP:
		if (KEV_CAST(struct udp_sock, sk)->reader_queue.qlen)
			return true;
		/* fallthrough */
	default:
		return sk->sk_receive_queue.qlen;
	}
}

/* A read left the socket with nothing to read: level mode stops delivering it (K13). */
SEC("tp_btf/sock_recv_length")
int BPF_PROG(kev_sk_recv, struct sock *sk, int ret, int flags)
{
	struct kev_sock_val *v;
	int readable = -1;
	__u32 nr, i;

	if (!sk->sk_bpf_storage || (flags & MSG_PEEK))
		return 0;
	v = bpf_sk_storage_get(&kev_socks, sk, 0, 0);
	if (!v)
		return 0;
	nr = v->nr;
	for (i = 0; i < KEV_SOCK_WATCHES && i < nr; i++) {
		__u32 slot = v->w[i].slot;
		struct kev_slot *s;

		/* Edge-triggered watches keep no level state: nothing to look at. */
		if (!(v->w[i].flags & KEV_WATCH_LEVEL))
			continue;
		if (readable < 0)
			readable = kev_sock_readable(sk);
		if (readable)
			break;
		s = bpf_map_lookup_elem(&kev_slots, &slot);
		/* A slot that moved on to another interest is not ours to clear. */
		if (s && KEV_SLOT_GEN(*(volatile __u64 *)&s->word) == v->w[i].gen &&
		    (*(volatile __u64 *)&s->word & KEV_PEND_LEVEL))
			__sync_fetch_and_and(&s->word, ~(__u64)KEV_PEND_LEVEL);
	}
	return 0;
}

/* For the K9 check of an ADD, without a poll(): readable now, or a hang-up to classify? */
static __always_inline __u8 kev_probe_ready(const struct sock *sk, __u8 state, __u16 protocol,
					    __u32 err)
{
	__u8 shut = sk->sk_shutdown;

	if (err || shut == (RCV_SHUTDOWN | SEND_SHUTDOWN))
		return KEV_PROBE_HANGUP;
	if (state == TCP_LISTEN && protocol == IPPROTO_TCP)
		return sk->sk_ack_backlog ? KEV_PROBE_READABLE : 0;
	return kev_sock_readable(sk) ? KEV_PROBE_READABLE : 0;
}

/* kev_sock_probe: what the library asks of the sockets at the descriptors in kev_probes. */
struct kev_probe_run {
	struct kev_fdt fdt;
	bool names;
};

static long kev_probe_one(__u32 i, struct kev_probe_run *run)
{
	struct kev_probe *p = bpf_map_lookup_elem(&kev_probes, &i);
	struct socket *sock;
	struct file *f;
	struct sock *sk;

	if (!p)
		return 1;
	p->err = -EBADF;
	f = KEV_CAST(struct file, kev_fd_file(&run->fdt, p->fd));
	if (!f)
		return 0;
	p->err = -ENOTSOCK;
	if ((f->f_inode->i_mode & S_IFMT) != S_IFSOCK)
		return 0;
	if (run->names) { /* a delivery's check (K17): the socket's own lines stay cold */
		p->ino = f->f_inode->i_ino;
		p->err = 0;
		return 0;
	}
	sock = KEV_CAST(struct socket, f->private_data);
	sk = sock->sk;
	if (!sk)
		return 0;
	p->family = sk->__sk_common.skc_family;
	p->type = sk->sk_type;
	p->protocol = sk->sk_protocol;
	p->state = sk->__sk_common.skc_state;
	p->sk_err = (__u32)sk->sk_err;
	p->ino = f->f_inode->i_ino;
	p->ready = kev_probe_ready(sk, p->state, p->protocol, p->sk_err);
	p->err = 0;
	return 0;
}

SEC("syscall")
int kev_sock_probe(struct kev_probe_ctx *ctx)
{
	struct kev_probe_run run;
	__u32 nr = ctx->nr;

	if (nr > KEV_PROBE_BATCH || kev_fdt_read(&run.fdt, bpf_get_current_task_btf()->files))
		return -1;
	run.names = ctx->names;
	bpf_loop(nr, kev_probe_one, &run, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
