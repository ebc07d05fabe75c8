// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * keventctl ls [--json]: every process using libkevent, its queues and what they watch
 * (scan.c finds them, interests.c reads their maps). Text for people, or one JSON array.
 */
#include <string.h>
#include <unistd.h>

#include "keventctl.h"

#define NSEC_PER_MSEC 1000000LL

/* The kernel's s_dev: major << 20 | minor. */
#define KC_DEV_MAJOR(d) ((d) >> 20)
#define KC_DEV_MINOR(d) ((d)&0xfffff)

/* How far the timer's node is from now (negative: due, being served); false: no node. */
static bool kc_timer_due(const struct kc_timer_row *t, __u64 now, long long *ns)
{
	if (!(t->t.arm & KEV_TARM_NODE))
		return false;
	*ns = (long long)(t->t.pos_ns - now);
	return true;
}

static void kc_ls_text_socket(const struct kc_sock_row *r)
{
	char ev[64];

	printf("  socket fd %d queue %u %s", r->v.fd, r->v.queue,
	       kc_bits_str(kc_event_bits(KEVENT_SOCKET), r->v.events, ev, sizeof(ev)));
	if (r->v.flags & KEV_WATCH_WAKEUP_ALL)
		printf(" WAKEUP_ALL");
	if (r->object[0])
		printf(" %s\n", r->object);
	else if (r->remote[0] && !strstr(r->state, "LISTEN"))
		printf(" %s %s %s -> %s\n", r->proto, r->state, r->local, r->remote);
	else
		printf(" %s %s %s\n", r->proto, r->state, r->local[0] ? r->local : "(unnamed)");
}

static void kc_ls_text_inode(const struct kc_inode_row *r)
{
	char ev[64];

	printf("  inode fd %d queue %u %s %s%s (dev %u:%u ino %llu)\n", r->w.fd, r->w.queue,
	       kc_bits_str(kc_event_bits(KEVENT_INODE), r->w.events, ev, sizeof(ev)),
	       r->path[0] ? r->path : "(closed)", r->moved ? " (now another file)" : "",
	       KC_DEV_MAJOR(r->key.dev), KC_DEV_MINOR(r->key.dev),
	       (unsigned long long)r->key.ino);
}

static void kc_ls_text_timer(const struct kc_timer_row *t, __u64 now)
{
	long long due;

	printf("  timer slot %u %s", t->slot, t->t.arm & KEV_TARM_ONESHOT ? "oneshot" : "periodic");
	if (t->t.arm & KEV_TARM_FIRED)
		printf(" fired\n");
	else if (kc_timer_due(t, now, &due) && due >= 0)
		printf(" next in %lld ms\n", due / NSEC_PER_MSEC);
	else if (kc_timer_due(t, now, &due))
		printf(" due %lld ms ago (being served)\n", -due / NSEC_PER_MSEC);
	else
		printf(" (being armed)\n");
}

static void kc_ls_text(const struct kc_proc *p, const struct kc_interests *in)
{
	__u64 now = kc_mono_ns();
	unsigned int i;

	printf("%d %s: %u queue%s, %u socket%s, %u inode%s, %u timer%s\n", p->pid, p->comm,
	       p->nqueues, p->nqueues == 1 ? "" : "s", in->nsock, in->nsock == 1 ? "" : "s",
	       in->ninode, in->ninode == 1 ? "" : "s", in->ntimer, in->ntimer == 1 ? "" : "s");
	if (in->foreign)
		printf("  (maps of another libkevent version, whose layout differs: not shown)\n");
	for (i = 0; i < p->nqueues; i++)
		printf("  queue %u: ring map %u, %u socket and inode interests\n", p->queue[i].idx,
		       p->queue[i].ring_id, kc_interests_on(in, p->queue[i].idx));
	for (i = 0; i < in->nsock; i++)
		kc_ls_text_socket(&in->sock[i]);
	for (i = 0; i < in->ninode; i++)
		kc_ls_text_inode(&in->inode[i]);
	for (i = 0; i < in->ntimer; i++)
		kc_ls_text_timer(&in->timer[i], now);
}

static void kc_ls_json_socket(struct kc_json *j, const struct kc_sock_row *r)
{
	kc_json_open(j, NULL, '{');
	kc_json_u64(j, "slot", r->slot);
	kc_json_i64(j, "fd", r->v.fd);
	kc_json_u64(j, "queue", r->v.queue);
	kc_json_bits(j, "events", kc_event_bits(KEVENT_SOCKET), r->v.events);
	kc_json_bits(j, "flags", kc_watch_bits, r->v.flags);
	kc_json_known(j, "proto", r->proto);
	kc_json_known(j, "state", r->state);
	kc_json_known(j, "local", r->local);
	kc_json_known(j, "remote", r->remote);
	if (r->object[0])
		kc_json_str(j, "object", r->object);
	kc_json_close(j, '}');
}

static void kc_ls_json_inode(struct kc_json *j, const struct kc_inode_row *r)
{
	char dev[32];

	snprintf(dev, sizeof(dev), "%u:%u", KC_DEV_MAJOR(r->key.dev), KC_DEV_MINOR(r->key.dev));
	kc_json_open(j, NULL, '{');
	kc_json_u64(j, "slot", r->w.slot);
	kc_json_i64(j, "fd", r->w.fd);
	kc_json_u64(j, "queue", r->w.queue);
	kc_json_bits(j, "events", kc_event_bits(KEVENT_INODE), r->w.events);
	kc_json_bits(j, "flags", kc_watch_bits, r->w.flags);
	kc_json_str(j, "dev", dev);
	kc_json_u64(j, "ino", r->key.ino);
	kc_json_known(j, "path", r->path);
	kc_json_bool(j, "moved", r->moved);
	kc_json_close(j, '}');
}

static void kc_ls_json_timer(struct kc_json *j, const struct kc_timer_row *t, __u64 now)
{
	long long due;

	kc_json_open(j, NULL, '{');
	kc_json_u64(j, "slot", t->slot);
	kc_json_u64(j, "gen", KEV_TARM_GEN(t->t.arm));
	kc_json_bool(j, "oneshot", t->t.arm & KEV_TARM_ONESHOT);
	kc_json_bool(j, "fired", t->t.arm & KEV_TARM_FIRED);
	if (kc_timer_due(t, now, &due))
		kc_json_i64(j, "next_in_ns", due);
	else
		kc_json_null(j, "next_in_ns");
	kc_json_close(j, '}');
}

static void kc_ls_json(struct kc_json *j, const struct kc_proc *p, const struct kc_interests *in)
{
	__u64 now = kc_mono_ns();
	unsigned int i;

	kc_json_open(j, NULL, '{');
	kc_json_i64(j, "pid", p->pid);
	kc_json_str(j, "comm", p->comm);
	kc_json_bool(j, "foreign_layout", in->foreign);
	kc_json_open(j, "queues", '[');
	for (i = 0; i < p->nqueues; i++) {
		kc_json_open(j, NULL, '{');
		kc_json_u64(j, "queue", p->queue[i].idx);
		kc_json_u64(j, "ring_map_id", p->queue[i].ring_id);
		kc_json_u64(j, "interests", kc_interests_on(in, p->queue[i].idx));
		kc_json_close(j, '}');
	}
	kc_json_close(j, ']');
	kc_json_open(j, "sockets", '[');
	for (i = 0; i < in->nsock; i++)
		kc_ls_json_socket(j, &in->sock[i]);
	kc_json_close(j, ']');
	kc_json_open(j, "inodes", '[');
	for (i = 0; i < in->ninode; i++)
		kc_ls_json_inode(j, &in->inode[i]);
	kc_json_close(j, ']');
	kc_json_open(j, "timers", '[');
	for (i = 0; i < in->ntimer; i++)
		kc_ls_json_timer(j, &in->timer[i], now);
	kc_json_close(j, ']');
	kc_json_close(j, '}');
}

int kc_ls(int argc, char **argv)
{
	struct kc_interests in;
	struct kc_scan s;
	struct kc_json j;
	bool json = false;
	int err;

	if (kc_json_flag(argc, argv, "ls", &json))
		return KC_EXIT_ERROR;
	if (optind < argc) {
		kc_err("ls: unexpected argument '%s' (keventctl --help)", argv[optind]);
		return KC_EXIT_ERROR;
	}
	err = kc_scan(&s, 0);
	if (err)
		return kc_scan_failed(err);
	kc_json_init(&j, stdout);
	if (json)
		kc_json_open(&j, NULL, '[');
	for (unsigned int i = 0; i < s.n; i++) {
		kc_interests_read(&s.proc[i], &in, true);
		if (json)
			kc_ls_json(&j, &s.proc[i], &in);
		else
			kc_ls_text(&s.proc[i], &in);
		kc_interests_free(&in);
	}
	if (json) {
		kc_json_close(&j, ']');
		kc_json_end(&j);
	}
	kc_scan_free(&s);
	return KC_EXIT_OK;
}
