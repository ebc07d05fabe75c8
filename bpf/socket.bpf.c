// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * KEVENT_SOCKET from socket tracepoints (K17): the socket is found by its cookie in
 * kev_sockets, behind a filter; RECV / ACCEPT come from sk_data_ready, and errors, resets
 * and the final close of a TCP connection are flagged KEV_PEND_HUP for the library to
 * classify.
 * SEND and the AF_UNIX peer close have no tracepoint: the library covers them with epoll.
 */
#include "kevent.bpf.h"

#define TCP_LISTEN 10
#define TCP_CLOSE  7

/*
 * The cookie filter in front of kev_sockets (kev_shared.h). A global, not a map of its own:
 * its address is a constant in the program, so a miss does not even pay a map lookup.
 * The library writes it through the skeleton's mapping of this section.
 */
struct kev_sock_ctl kev_sock_ctl SEC(".data.kev_sock_ctl");

static __always_inline void kev_sock_event(const struct sock *sk, __u32 bits)
{
	/* Cheapest miss: a socket nobody asked the cookie of cannot be watched. */
	__u64 cookie = sk->__sk_common.skc_cookie.counter;
	struct kev_target t;
	struct kev_sock_val *v;
	__u32 nr, start, i;
	int chosen = 0;

	if (!cookie)
		return;
	/* Next cheapest: one load says no watched socket has this cookie's hash. */
	if (!kev_filter_test(&kev_sock_ctl.filter, kev_filter_hash(cookie)))
		return;
	v = bpf_map_lookup_elem(&kev_sockets, &cookie);
	if (!v)
		return;
	/* Orphaned: its owner closed it, which removes its interests silently (K17). */
	if (!sk->sk_socket)
		return;
	nr = v->nr;
	if (nr > KEV_SOCK_WATCHES)
		nr = KEV_SOCK_WATCHES;
	if (!nr)
		return;
	/* Rotate the starting watch so that single delivery spreads across queues (K15). */
	start = v->rr++;
	for (i = 0; i < KEV_SOCK_WATCHES; i++) {
		__u32 k = (start + i) % nr;
		const struct kev_watch *w;
		__u32 mine;

		if (i >= nr || k >= KEV_SOCK_WATCHES)
			break;
		w = &v->w[k];
		t.slot = w->slot;
		t.gen = w->gen;
		t.queue = w->queue;
		/* Breakage concerns every interest; readiness goes to one queue unless WAKEUP_ALL. */
		mine = bits & (KEV_PEND_HUP | KEV_PEND_DEAD) ?: bits & w->events;
		if (mine && (mine != (bits & w->events) || (w->flags & KEV_WATCH_WAKEUP_ALL) ||
			     !chosen++))
			kev_notify(&t, KEVENT_SOCKET, mine, false, 0);
	}
}

SEC("tp_btf/sk_data_ready")
int BPF_PROG(kev_sk_data_ready, const struct sock *sk)
{
	__u8 state = sk->__sk_common.skc_state;

	kev_sock_event(sk, state == TCP_LISTEN ? KEVENT_SOCKET_ACCEPT : KEVENT_SOCKET_RECV);
	return 0;
}

SEC("tp_btf/inet_sk_error_report")
int BPF_PROG(kev_sk_error_report, const struct sock *sk)
{
	kev_sock_event(sk, KEV_PEND_HUP);
	return 0;
}

/*
 * Is the task closing a descriptor? A TCP socket changes state inside close() (FIN, RST,
 * or the end of a listener), which is the one moment the kernel shows that the owner
 * let go of it: its interests must go without a word (K17), and the library need not ask
 * the socket at every delivery whether its descriptor still names it.
 */
static __always_inline bool kev_task_closing(const struct sock *sk)
{
#ifdef __TARGET_ARCH_x86
	struct pt_regs *regs;
	long nr;

	/*
	 * close() holds the socket (lock_sock). A softirq changing the state of some other
	 * socket finds it unowned, whatever syscall the task it interrupted was in.
	 */
	if (!sk->sk_lock.owned)
		return false;
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	nr = BPF_CORE_READ(regs, orig_ax);
	/* close, dup2, exit, exit_group, dup3, close_range */
	return nr == 3 || nr == 33 || nr == 60 || nr == 231 || nr == 292 || nr == 436;
#else
	return false;
#endif
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(kev_sk_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	if (kev_task_closing(sk))
		kev_sock_event(sk, KEV_PEND_DEAD);
	else if (newstate == TCP_CLOSE)
		kev_sock_event(sk, KEV_PEND_HUP);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
