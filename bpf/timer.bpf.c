// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * KEVENT_TIMER on bpf_timer (K19): the expiry runs in the kernel and pushes the event from
 * the timer callback; no timerfd, no userspace thread. Expirations the application has not
 * collected yet are counted in the interest's slot (ret_data[1] at delivery).
 */
#include "kevent.bpf.h"

#define CLOCK_MONOTONIC 1
#define NSEC_PER_MSEC	1000000ULL
#define ENOENT		2
#define EINVAL		22

static int kev_timer_expired(void *map, struct kev_timer_key *key, struct kev_timer *t)
{
	struct kev_target tg = { .slot = t->slot, .gen = t->gen, .queue = t->queue };
	__u64 now = bpf_ktime_get_ns(), n = 1;

	/* Late by whole periods (a busy machine): those expirations merged into this one. */
	if (now > t->due_ns)
		n += (now - t->due_ns) / t->period_ns;
	kev_notify(&tg, KEVENT_TIMER, (__u32)n, true, (__u32)(now / NSEC_PER_MSEC));
	if (!(t->flags & KEV_TIMER_ONESHOT)) {
		/* Absolute re-arm: no drift, whatever this callback's own latency (K19). */
		t->due_ns += n * t->period_ns;
		bpf_timer_start(&t->timer, t->due_ns, BPF_F_TIMER_ABS);
	}
	return 0;
}

/*
 * Start the timer of one element the library has just created (a fresh element: creating
 * it over an armed one, for MODIFY, cancelled the old timer). The library creates the
 * elements from userspace: a burst of allocations inside one program run would drain the
 * map's allocation cache.
 */
static long kev_timer_arm_req(const struct kev_timer_req *r)
{
	struct kev_timer_key key = { .slot = r->slot };
	struct kev_timer *t = bpf_map_lookup_elem(&kev_timers, &key);
	long err;

	if (!t || t->gen != r->gen)
		return -ENOENT;
	t->due_ns = bpf_ktime_get_ns() + t->period_ns;
	err = bpf_timer_init(&t->timer, &kev_timers, CLOCK_MONOTONIC);
	if (!err)
		err = bpf_timer_set_callback(&t->timer, kev_timer_expired);
	if (!err)
		err = bpf_timer_start(&t->timer, t->due_ns, BPF_F_TIMER_ABS);
	if (err)
		bpf_map_delete_elem(&kev_timers, &key); /* the library forgets it too */
	return err;
}

static long kev_timer_arm_one(__u32 i, void *unused)
{
	struct kev_timer_req *r = bpf_map_lookup_elem(&kev_timer_reqs, &i);

	if (!r)
		return 1;
	if (!r->err) /* else the library could not create its element */
		r->err = (__s32)kev_timer_arm_req(r);
	return 0;
}

SEC("syscall")
int kev_timer_arm(struct kev_timer_arm_ctx *ctx)
{
	__u32 nr = ctx->nr;

	if (nr > KEV_TIMER_BATCH)
		return -EINVAL;
	bpf_loop(nr, kev_timer_arm_one, NULL, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
