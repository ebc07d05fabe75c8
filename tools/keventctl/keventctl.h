/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * keventctl: watch events from the shell, and see what every process using libkevent
 * watches. `watch` is a client of the public API (kevent.h, kevent_inode.h); `ls` and `stats`
 * read the BPF maps the kernel holds for each such process, through libbpf, with the layouts
 * of bpf/kev_shared.h: a change there breaks this build rather than the output.
 */
#ifndef KEVENTCTL_H
#define KEVENTCTL_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <kevent.h>
#include <kevent_inode.h>

#include "kev_shared.h"

/* Exit statuses, as inotifywait's: an event seen, an error, the timeout with none seen. */
#define KC_EXIT_OK	0
#define KC_EXIT_ERROR	1
#define KC_EXIT_TIMEOUT 2

/* One line on stderr, prefixed "keventctl: ". */
void kc_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Room for element n of an array of n (zeroed); out of memory ends the program. */
void *kc_grow(void *array, unsigned int n, size_t size);

/* CLOCK_MONOTONIC now, in ns: deadlines, and the clock of the timers' armings. */
__u64 kc_mono_ns(void);

/* The commands; each returns the exit status. */
int kc_watch(int argc, char **argv);
int kc_ls(int argc, char **argv);
int kc_stats(int argc, char **argv);

/*
 * Options of a command: getopt_long with messages of one line. shorts must begin with ':'.
 * Returns the option, -1 at the end, or '?' after printing what was wrong (an unknown
 * option, a missing value).
 */
struct option;
int kc_getopt(int argc, char **argv, const char *shorts, const struct option *opts,
	      const char *cmd);
/* Options of ls and stats: --json and nothing else. 0, or -1 after saying what was wrong. */
int kc_json_flag(int argc, char **argv, const char *cmd, bool *json);

/* parse.c: command-line values. Each returns 0, or -EINVAL for malformed input. */
int kc_parse_duration(const char *s, __u64 *ns);
int kc_parse_count(const char *s, unsigned long *n);
int kc_parse_signal(const char *s, int *sig);
int kc_parse_pid(const char *s, pid_t *pid);
int kc_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len);
/* "127.0.0.1:80", "[::1]:80". */
const char *kc_addr_str(const struct sockaddr *sa, char *buf, size_t len);

/* names.c: names of types and bits, for both output formats. */
struct kc_bit {
	__u32 bit;
	const char *name;
};

const char *kc_type_name(__u32 type);
const struct kc_bit *kc_event_bits(__u32 type);
extern const struct kc_bit kc_ret_bits[];
extern const struct kc_bit kc_watch_bits[];
/* "CREATE,REMOVE" ("-" for none); a bit without a name is written in hex. */
const char *kc_bits_str(const struct kc_bit *t, __u32 mask, char *buf, size_t len);
/* Signal names without "SIG": "USR1". */
const char *kc_signal_name(int sig, char *buf, size_t len);

/* json.c: a streaming writer of compact JSON, one document a line. */
#define KC_JSON_DEPTH 8

struct kc_json {
	FILE *f;
	unsigned int depth;
	bool more[KC_JSON_DEPTH + 1]; /* something was written at this depth: a comma first */
};

void kc_json_init(struct kc_json *j, FILE *f);
/* key: the member's name inside an object, NULL for an element of an array. */
void kc_json_open(struct kc_json *j, const char *key, char bracket);
void kc_json_close(struct kc_json *j, char bracket);
void kc_json_str(struct kc_json *j, const char *key, const char *s);
void kc_json_u64(struct kc_json *j, const char *key, unsigned long long v);
void kc_json_i64(struct kc_json *j, const char *key, long long v);
void kc_json_bool(struct kc_json *j, const char *key, bool v);
void kc_json_null(struct kc_json *j, const char *key);
/* A string member, or null when it is empty (not known). */
void kc_json_known(struct kc_json *j, const char *key, const char *s);
/* An array of the names of the bits set in mask. */
void kc_json_bits(struct kc_json *j, const char *key, const struct kc_bit *t, __u32 mask);
/* Ends the document: a newline, flushed. */
void kc_json_end(struct kc_json *j);

/*
 * scan.c: the processes that use libkevent, found through the BPF maps the kernel holds
 * (by name) and the descriptors each process holds (/proc/PID/fdinfo: map_id, prog_id).
 */
enum kc_kind {
	KC_RINGS,   /* kev_rings: the queues' ring buffers, by queue index */
	KC_SLOTS,   /* kev_slots: the interests' pending bits */
	KC_QSTATS,  /* kev_qstats: per-queue overflow counts */
	KC_SOCKETS, /* kev_sockets: the operators' view of the socket interests */
	KC_INODES,  /* kev_inodes: the watched inodes */
	KC_TSLOTS,  /* kev_tslots: the timers' armings, by slot */
	KC_KINDS
};

struct kc_queue {
	__u32 idx;     /* the queue's index: kev_rings, kev_qstats, the interests' queue */
	__u32 ring_id; /* its ring buffer's map id */
};

struct kc_proc {
	pid_t pid;
	char comm[32];
	__u32 map[KC_KINDS]; /* the map id of each kind it holds, 0: none */
	__u32 *progs; /* libkevent's programs it holds, directly or through links */
	unsigned int nprogs;
	struct kc_queue queue[KEV_MAX_QUEUES];
	unsigned int nqueues;
};

struct kc_scan {
	struct kc_proc *proc;
	unsigned int n;
};

/* Fill s: every process with a queue (only: that pid, or 0). 0, or -errno (-EPERM). */
int kc_scan(struct kc_scan *s, pid_t only);
void kc_scan_free(struct kc_scan *s);
/* A map by id; -errno when it is gone. */
int kc_map_fd(__u32 id);
/*
 * The same, when its key and value have the sizes this build knows (info filled): -EPROTO
 * when not (the layout of another libkevent version), -errno when it is gone.
 */
struct bpf_map_info;
int kc_map_open(__u32 id, __u32 ksize, __u32 vsize, struct bpf_map_info *info);
/* The one line said when the kernel refuses to show its maps; returns the exit status. */
int kc_scan_failed(int err);

/* interests.c: what one process watches, read from its maps. */
struct kc_sock_row {
	__u32 slot;
	struct kev_sock_view v;
	char proto[8];	   /* "tcp", "udp6", "unix", or "" when not resolved */
	char state[16];	   /* TCP state, unix socket type, or "" */
	char local[80];	   /* address, or "" */
	char remote[80];   /* address, or "" */
	char object[64];   /* what the descriptor names now, when it is not a known socket */
	unsigned long ino; /* the socket's inode number, 0: not a socket (any more) */
};

struct kc_inode_row {
	struct kev_inode_key key;
	struct kev_watch w;
	char path[4096]; /* through /proc/PID/fd/FD, or "" */
	bool moved;	 /* the descriptor now names another file */
};

struct kc_timer_row {
	__u32 slot;
	struct kev_tslot t;
};

struct kc_interests {
	struct kc_sock_row *sock;
	unsigned int nsock;
	struct kc_inode_row *inode;
	unsigned int ninode;
	struct kc_timer_row *timer;
	unsigned int ntimer;
	bool foreign; /* a map has another layout (another libkevent version): not read */
};

/* describe: resolve the sockets' addresses and the inodes' paths too (what ls shows). */
void kc_interests_read(const struct kc_proc *p, struct kc_interests *in, bool describe);
void kc_interests_free(struct kc_interests *in);
/* Interests of queue idx the maps tie to a queue (sockets and inodes; not timers). */
unsigned int kc_interests_on(const struct kc_interests *in, __u32 idx);
/* kev_qstats[idx].overflows; false when the map cannot be read. */
bool kc_queue_overflows(const struct kc_proc *p, __u32 idx, __u64 *overflows);

/* procnet.c: a socket's protocol, state and addresses, from /proc/PID/net. */
struct kc_netns;
struct kc_netns *kc_netns_load(pid_t pid);
void kc_netns_free(struct kc_netns *ns);
/* What the row's descriptor names now (its ino, or its object: "(closed)", a file). */
void kc_netns_inode(pid_t pid, struct kc_sock_row *r);
/* Then the row's proto, state, local and remote, when the tables know its socket. */
void kc_netns_describe(struct kc_netns *ns, struct kc_sock_row *r);

#endif /* KEVENTCTL_H */
