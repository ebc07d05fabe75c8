// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * KEVENT_INODE (K18) from the inode timestamp tracepoints.
 *
 * No fsnotify, fentry or LSM hook is reachable on this kernel, but every change to a file
 * or a directory sets its ctime, and on ext4 and tmpfs that goes through
 * inode_set_ctime_to_ts, ctime_ns_xchg or ctime_xchg_skip (the last fires when the time
 * does not move, so a directory fires once for every entry it gains or loses). A firing
 * names one inode and nothing else; what happened is read from the system call being
 * served (the task's registers: its number, looked up in kev_inode_calls, and its paths;
 * kev_arch.h) and from the inode's dentry:
 *
 * - the inode is watched (kev_inodes): a directory gained or lost an entry, or a watched
 *   object's data or metadata changed;
 * - its dentry's parent is a watched directory: that entry was removed, renamed away,
 *   written or changed. Its inode number and name go to kev_inode_log;
 * - a creation or a link sets the child's ctime just before the directory's, in the same
 *   system call: the inode the task last created (or, for a link, the previous firing)
 *   is the child the directory gained; its name is the last component of the path the
 *   system call was given;
 * - a rename sets the new directory's ctime before the moved inode's, on both file
 *   systems: the new directory waits for the moved inode, recognised by its old name and
 *   old parent, to log what it gained. Which side of a rename a directory is on comes
 *   from the paths too.
 *
 * What the kernel cannot tell (was the inode deleted, or only unlinked once?) is flagged
 * KEV_PEND_HUP for the library to settle with fstat(). While the process watches nothing
 * a firing costs one load; otherwise unwatched activity costs two filter bit tests, the
 * inode's and its dentry parent's.
 */
#include "kevent.bpf.h"
#include "kev_arch.h"

/* Turns an address into a typed kernel pointer whose loads are fault-safe (no helper call). */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

#define S_IFMT	     00170000
#define S_IFDIR	     0040000
#define AT_FDCWD     -100
#define KEV_PATH_MAX 4096
#define KEV_NAME_SZ  (KEV_INODE_NAME_MAX + 1)
/* The moved inode of an armed rename fires in the same system call: within a few ticks. */
#define KEV_RENAME_JIFFIES 2

/* The watched files and directories: `bpftool map dump name kev_inodes`. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, KEV_MAX_SLOTS);
	__type(key, struct kev_inode_key);
	__type(value, struct kev_inode_val);
} kev_inodes SEC(".maps");

/* Private to the inode programs: the filter and the entry log (see kev_shared.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kev_inode_ctl);
} kev_inode_ctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, KEV_INODE_LOG_BYTES);
} kev_inode_log SEC(".maps");

/*
 * What each system call does (kev_shared.h), by number: the library writes it, before the
 * programs attach, from the numbers it was compiled with (lib/inode_calls.c).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_RDONLY_PROG);
	__uint(max_entries, KEV_INODE_CALLS);
	__type(key, __u32);
	__type(value, struct kev_call);
} kev_inode_calls SEC(".maps");

/* How a path names its parent directory. */
enum kev_parent_kind {
	KEV_PARENT_ANY,	 /* cannot tell ("..", "."): any directory may be it */
	KEV_PARENT_BASE, /* the descriptor's directory, the cwd or / */
	KEV_PARENT_NAME, /* the component before the last one */
};

struct kev_name {
	char s[KEV_NAME_SZ];
};

struct kev_path {
	__u32 len;  /* of name, the last component */
	__u32 plen; /* of parent (KEV_PARENT_NAME) */
	__u32 kind; /* enum kev_parent_kind */
	__u32 pad;
	__u64 base; /* the base directory's inode (KEV_PARENT_BASE), 0: unknown */
	struct kev_name name;
	struct kev_name parent;
};

/*
 * An entry logged from a child's own firing. tmpfs stamps some inodes twice in one call
 * (a chmod; the inode a rename replaces, with the moved one in between): an entry equal
 * to one of the last two, in the same call, is merged into it.
 */
struct kev_logged {
	__u64 task;
	__u64 switches;
	__u64 ino;
	__u64 parent;
	__u32 event;
	__u32 nr; /* the system call: unlink, then rename, of one reused inode number differ */
};

/*
 * Per CPU: the previous firing (a link's child fires just before the directory) and
 * scratch space too big for the stack. A firing that preempts another one on the same
 * CPU finds busy set and does without the scratch (entries it cannot log are counted as
 * lost).
 */
struct kev_inode_cpu {
	__u32 busy;
	__u32 pad;
	__u64 h_task;	  /* the previous firing: its task and context switch count (the */
	__u64 h_switches; /* same ones now: the same system call, most likely)... */
	__u64 h_ino;	  /* ...and its inode */
	struct kev_logged logged[2]; /* the last entries of a child's own firings */
	struct kev_path tmp;
	struct kev_name name; /* a dentry's name */
	char path[KEV_PATH_MAX];
	struct kev_inode_rec rec;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kev_inode_cpu);
} kev_inode_cpus SEC(".maps");

/*
 * Per task, so that a context switch or a migration in the middle of a system call loses
 * nothing: the inode the task last created (its ctime is set before its directory's),
 * and a rename into a watched directory waiting for its moved inode.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} kev_inode_born SEC(".maps");

struct kev_inode_rename {
	__u32 armed; /* waiting for the moved inode */
	__u32 ndir;  /* the watched directories it goes to */
	struct kev_inode_key dir[2];
	__u64 moved;	     /* the moved inode, once found */
	struct kev_path old; /* its old name and parent */
	struct kev_path new; /* its new name */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct kev_inode_rename);
} kev_inode_renames SEC(".maps");

/*
 * One firing, as the handlers see it. The handlers are global functions, verified once
 * each rather than once per call site, so they get scalars: the kernel pointers here are
 * only read through bpf_probe_read_kernel().
 */
struct kev_fire {
	__u64 x;      /* the inode that fired */
	__u64 alias;  /* its first dentry, 0: none (being created, or deleted) */
	__u64 parent; /* the dentry's parent directory */
	__u64 parent_ino;
	__u64 task;
	__u64 regs; /* the task's user registers: the system call and its arguments */
	__u64 ino;
	__u64 prev_ino; /* the task's previous firing in this system call, 0: none */
	__u64 born;	/* the inode the task created last, 0: none */
	__u64 switches;
	__u32 dev;
	__u32 nlink;
	__u32 pad;
	__u32 dir;
	__u32 nr;		 /* the system call */
	__u8 self, child, moved; /* watched, an entry of a watched directory, maybe moved */
	struct kev_call call;
};

/* What system call nr does; KEV_OP_OTHER outside one (-1) or past the table. */
static __always_inline struct kev_call kev_call_of(long nr)
{
	struct kev_call k = {KEV_OP_OTHER, -1, -1, -1, -1};
	__u32 key = (__u32)nr;
	struct kev_call *c;

	if (nr < 0 || nr >= KEV_INODE_CALLS)
		return k;
	c = bpf_map_lookup_elem(&kev_inode_calls, &key);
	return c ? *c : k;
}

/* System call argument i (0..3: kev_call names no more). */
static __always_inline __u64 kev_arg(const struct kev_fire *f, int i)
{
	return kev_syscall_arg((const struct pt_regs *)f->regs, i);
}

static __always_inline bool kev_filter(const struct kev_inode_ctl *ctl, __u32 dev, __u64 ino)
{
	return kev_filter_test(&ctl->filter, kev_inode_hash(dev, ino));
}

static __always_inline __u64 kev_first_alias(__u64 inode)
{
	struct hlist_node *first = BPF_CORE_READ((struct inode *)inode, i_dentry.first);

	return first ? (__u64)container_of(first, struct dentry, d_u.d_alias) : 0;
}

/* The directory a relative path starts from: dfd's, the cwd's, or the root. */
__noinline __u64 kev_inode_base(__u64 task, int dfd, int root)
{
	struct task_struct *t = (struct task_struct *)task;
	struct file **fds;
	struct file *f = NULL;
	struct fdtable *fdt;

	if (root)
		return (__u64)BPF_CORE_READ(t, fs, root.dentry, d_inode);
	if (dfd == AT_FDCWD)
		return (__u64)BPF_CORE_READ(t, fs, pwd.dentry, d_inode);
	fdt = BPF_CORE_READ(t, files, fdt);
	if (dfd < 0 || !fdt || (unsigned int)dfd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), fds + dfd) || !f)
		return 0;
	return (__u64)BPF_CORE_READ(f, f_inode);
}

/* Split c->path[0..n) into components: the last one and the one before it. */
struct kev_scan {
	struct kev_inode_cpu *c;
	__u32 n, cur, in, ncomp;
	__u32 ls, ll, ps, pl;
};

static int kev_scan_one(__u32 i, void *ctx)
{
	struct kev_scan *s = ctx;

	if (i >= s->n || i >= KEV_PATH_MAX)
		return 1;
	if (s->c->path[i] != '/') {
		if (!s->in)
			s->cur = i;
		s->in = 1;
		return 0;
	}
	if (s->in) {
		s->ps = s->ls;
		s->pl = s->ll;
		s->ls = s->cur;
		s->ll = i - s->cur;
		s->ncomp++;
	}
	s->in = 0;
	return 0;
}

static __always_inline void kev_copy_comp(struct kev_name *dst, const struct kev_inode_cpu *c,
					  __u32 start, __u32 len)
{
	bpf_probe_read_kernel(dst->s, len & KEV_INODE_NAME_MAX,
			      &c->path[start & (KEV_PATH_MAX - 1)]);
	dst->s[len & KEV_INODE_NAME_MAX] = 0;
}

/*
 * Read the path in argument `arg` (its directory descriptor in argument `dfd`) into p:
 * its last component, and how it names its parent. 0 when it cannot be read.
 */
__noinline int kev_inode_path(struct kev_inode_cpu *c, struct kev_path *p, const struct kev_fire *f,
			      int arg, int dfd)
{
	struct kev_scan s = {};
	long n;

	if (!c || !p || !f || arg < 0)
		return 0;
	n = bpf_probe_read_user_str(c->path, sizeof(c->path), (void *)kev_arg(f, arg));
	if (n <= 1)
		return 0;
	s.c = c;
	s.n = n - 1;
	bpf_loop(KEV_PATH_MAX, kev_scan_one, &s, 0);
	if (s.in) {
		s.ps = s.ls;
		s.pl = s.ll;
		s.ls = s.cur;
		s.ll = s.n - s.cur;
		s.ncomp++;
	}
	if (!s.ncomp || s.ll > KEV_INODE_NAME_MAX || s.pl > KEV_INODE_NAME_MAX)
		return 0;
	p->len = s.ll;
	kev_copy_comp(&p->name, c, s.ls, s.ll);
	p->plen = s.pl;
	kev_copy_comp(&p->parent, c, s.ps, s.pl);
	p->kind = KEV_PARENT_NAME;
	if (s.ncomp == 1 ||
	    (s.ncomp == 2 && s.pl == 1 && p->parent.s[0] == '.' && c->path[0] != '/')) {
		p->kind = KEV_PARENT_BASE;
		p->base = kev_inode_base(f->task, dfd < 0 ? AT_FDCWD : (int)kev_arg(f, dfd),
					 s.ncomp == 1 && c->path[0] == '/');
	} else if (p->parent.s[0] == '.' && (s.pl == 1 || (s.pl == 2 && p->parent.s[1] == '.'))) {
		p->kind = KEV_PARENT_ANY; /* "a/./b", "../b": no name to compare */
	}
	return 1;
}

/* Read the name of a dentry into c->name; its length, or -1. */
__noinline int kev_inode_dname(struct kev_inode_cpu *c, __u64 dentry)
{
	struct dentry *d = (struct dentry *)dentry;
	__u32 len;

	if (!c || !d)
		return -1;
	len = BPF_CORE_READ(d, d_name.len);
	if (len > KEV_INODE_NAME_MAX || bpf_probe_read_kernel(c->name.s, len & KEV_INODE_NAME_MAX,
							      BPF_CORE_READ(d, d_name.name)))
		return -1;
	c->name.s[len & KEV_INODE_NAME_MAX] = 0;
	return len;
}

struct kev_cmp {
	struct kev_name *a, *b;
	__u32 len, eq;
};

static int kev_cmp_one(__u32 i, void *ctx)
{
	struct kev_cmp *k = ctx;

	if (i >= k->len || i >= KEV_NAME_SZ)
		return 1;
	if (k->a->s[i] == k->b->s[i])
		return 0;
	k->eq = 0;
	return 1;
}

__noinline int kev_inode_eq(struct kev_name *a, struct kev_name *b, __u32 len)
{
	struct kev_cmp k = {a, b, len, 1};

	if (!a || !b)
		return 0;
	bpf_loop(KEV_NAME_SZ, kev_cmp_one, &k, 0);
	return k.eq;
}

/* Can the directory dir be the parent p names? */
__noinline int kev_inode_parent_may_be(struct kev_inode_cpu *c, struct kev_path *p, __u64 dir)
{
	int len;

	if (!c || !p)
		return 0;
	if (p->kind == KEV_PARENT_ANY)
		return 1;
	if (p->kind == KEV_PARENT_BASE)
		return !p->base || p->base == dir;
	len = kev_inode_dname(c, kev_first_alias(dir));
	return len < 0 || ((__u32)len == p->plen && kev_inode_eq(&c->name, &p->parent, len));
}

/* Is this dentry (under parent) the one p names? */
__noinline int kev_inode_is_named(struct kev_inode_cpu *c, struct kev_path *p, __u64 dentry,
				  __u64 parent)
{
	int len = kev_inode_dname(c, dentry);

	return c && p && len >= 0 && (__u32)len == p->len &&
	       kev_inode_eq(&c->name, &p->name, len) && kev_inode_parent_may_be(c, p, parent);
}

/* Fill c->rec for an entry, named src (len bytes; NULL or len 0: name not known). */
static __always_inline void kev_entry(struct kev_inode_cpu *c, __u32 event, __u64 ino,
				      struct kev_name *src, int len)
{
	struct kev_inode_rec *r = &c->rec;

	r->event = event;
	r->ino = ino;
	r->len = 0;
	r->name[0] = 0;
	if (src && len > 0 && len <= KEV_INODE_NAME_MAX &&
	    !bpf_probe_read_kernel(r->name, len & KEV_INODE_NAME_MAX, src->s)) {
		r->len = len;
		r->name[len & KEV_INODE_NAME_MAX] = 0;
	}
}

/*
 * Hand bits (and the entry in c->rec, when rec) to the watches of the inode key: every
 * watch for a breakage or with WAKEUP_ALL, else one, rotating (K15). The entry is logged
 * before the bits are set, so the delivery the bits cause finds it.
 */
__noinline int kev_inode_deliver(struct kev_inode_cpu *c, struct kev_inode_ctl *ctl,
				 struct kev_inode_key *key, __u32 bits, int rec)
{
	struct kev_inode_rec *r;
	struct kev_inode_val *v;
	struct kev_target t = {};
	__u32 nr, start, i, size;
	int chosen = 0;

	if (!c || !ctl || !key)
		return 0;
	v = bpf_map_lookup_elem(&kev_inodes, key);
	if (!v)
		return 0;
	r = &c->rec;
	nr = v->nr;
	if (nr > KEV_INODE_WATCHES)
		nr = KEV_INODE_WATCHES;
	if (!nr)
		return 0;
	/* Entries are spread by inode number: everything logged about one inode lands together. */
	start = rec && r->ino ? (__u32)r->ino : v->rr++;
	for (i = 0; i < KEV_INODE_WATCHES; i++) {
		__u32 k = (start + i) % nr;
		const struct kev_watch *w;
		__u32 mine;

		if (i >= nr || k >= KEV_INODE_WATCHES)
			break;
		w = &v->w[k];
		mine = bits & (w->events | KEV_PEND_HUP);
		if (!mine ||
		    !((mine & KEV_PEND_HUP) || (w->flags & KEV_WATCH_WAKEUP_ALL) || !chosen++))
			continue;
		if (rec && (r->event & w->events)) {
			r->slot = w->slot;
			r->gen = w->gen;
			size = (offsetof(struct kev_inode_rec, name) + r->len + 8) & ~7U;
			if (size > sizeof(*r))
				size = sizeof(*r);
			if (bpf_ringbuf_output(&kev_inode_log, r, size, BPF_RB_NO_WAKEUP))
				__sync_fetch_and_add(&ctl->log_lost, 1);
		}
		t.slot = w->slot;
		t.gen = w->gen;
		t.queue = w->queue;
		kev_notify(&t, KEVENT_INODE, mine, false, 0);
	}
	return 0;
}

static __always_inline void kev_deliver(struct kev_inode_cpu *c, struct kev_inode_ctl *ctl,
					__u32 dev, __u64 ino, __u32 bits, int rec)
{
	struct kev_inode_key key = {.ino = ino, .dev = dev};

	kev_inode_deliver(c, ctl, &key, bits, rec);
}

static __always_inline void kev_rename_arm(struct kev_inode_ctl *ctl, struct kev_inode_rename *r,
					   bool arm)
{
	/*
	 * ctl->renames counts armed renames: while there are some, every firing looks. One
	 * left armed (its task died) would keep them all looking: the deadline ends that.
	 */
	if (arm && !r->armed)
		__sync_fetch_and_add(&ctl->renames, 1);
	else if (!arm && r->armed)
		__sync_fetch_and_sub(&ctl->renames, 1);
	if (arm)
		ctl->rename_until = bpf_jiffies64() + KEV_RENAME_JIFFIES;
	r->armed = arm;
}

/*
 * A rename fired on a watched directory. Which side it is on comes from the paths: the
 * old parent loses an entry, the new one gains one (when that cannot be told, both). The
 * moved inode fires after the new directory (ext4, tmpfs): the new side waits for it.
 */
__noinline int kev_inode_rename_dir(struct kev_inode_cpu *c, struct kev_inode_ctl *ctl,
				    const struct kev_fire *f, struct kev_inode_rename *r)
{
	bool is_old = true, is_new = true;
	__u32 n, bits;

	if (!c || !ctl || !f || !r)
		return 0;
	if (!kev_inode_path(c, &r->old, f, f->call.opath, f->call.odfd)) {
		r->old.len = 0; /* nothing will match it */
	} else if (!(is_old = kev_inode_parent_may_be(c, &r->old, f->x)) && f->alias &&
		   kev_inode_is_named(c, &r->old, f->alias, f->parent)) {
		/* The watched directory itself moves: its own metadata changed. */
		kev_deliver(c, ctl, f->dev, f->ino, KEVENT_INODE_ATTRIB, 0);
		return 0;
	}
	if (!kev_inode_path(c, &r->new, f, f->call.path, f->call.dfd))
		r->new.len = 0;
	else
		is_new = kev_inode_parent_may_be(c, &r->new, f->x);
	bits = (is_old ? KEVENT_INODE_REMOVE : 0) | (is_new ? KEVENT_INODE_CREATE : 0);
	kev_deliver(c, ctl, f->dev, f->ino, bits ? bits : KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE,
		    0);
	/*
	 * Every firing of a watched directory in a rename arms or disarms, so nothing is left
	 * armed from an earlier one. ext4 stamps the directory of a rename within it once more
	 * after the moved inode: that one disarms too.
	 */
	if (!is_new || (r->moved && r->moved == f->prev_ino)) {
		kev_rename_arm(ctl, r, false);
		r->moved = 0;
		return 0;
	}
	n = r->armed ? r->ndir : 0;
	if (n == 1 && r->dir[0].ino == f->ino)
		return 0;
	if (n < 2) {
		r->dir[n & 1].ino = f->ino;
		r->dir[n & 1].dev = f->dev;
		r->ndir = n + 1;
	}
	r->moved = 0;
	kev_rename_arm(ctl, r, true);
	return 0;
}

/* A firing during an armed rename: if it is the moved inode, log what the new side gained. */
__noinline int kev_inode_rename_moved(struct kev_inode_cpu *c, struct kev_inode_ctl *ctl,
				      const struct kev_fire *f, struct kev_inode_rename *r)
{
	__u32 i, n;

	if (!c || !ctl || !f || !r || !r->armed || !f->alias ||
	    !kev_inode_is_named(c, &r->old, f->alias, f->parent))
		return 0;
	kev_rename_arm(ctl, r, false);
	r->moved = f->ino;
	n = r->ndir;
	for (i = 0; i < 2 && i < n; i++) {
		kev_entry(c, KEVENT_INODE_CREATE, f->ino, &r->new.name, r->new.len);
		kev_inode_deliver(c, ctl, &r->dir[i], KEVENT_INODE_CREATE, 1);
	}
	return 0;
}

/* The watched inode itself fired. */
__noinline int kev_inode_on_self(struct kev_inode_cpu *c, struct kev_inode_ctl *ctl,
				 const struct kev_fire *f, int scratch, struct kev_inode_rename *r)
{
	__u32 bits = KEVENT_INODE_MODIFY, op;
	__u64 child = 0;

	if (!c || !f)
		return 0;
	op = f->call.op;
	if (!f->dir) {
		/* A file: written, changed, or one of its names went (maybe its last). */
		if (op == KEV_OP_ATTR)
			bits = KEVENT_INODE_ATTRIB;
		else if (op == KEV_OP_LINK || op == KEV_OP_REMOVE || op == KEV_OP_RENAME)
			bits = KEVENT_INODE_ATTRIB | KEV_PEND_HUP;
		kev_deliver(c, ctl, f->dev, f->ino, bits, 0);
		return 0;
	}
	/* A live directory has two links at least: fewer means it was removed. */
	if ((op == KEV_OP_REMOVE || op == KEV_OP_RENAME) && f->nlink < 2)
		bits = KEV_PEND_HUP;
	else if (op == KEV_OP_ATTR)
		bits = KEVENT_INODE_ATTRIB;
	else if (op == KEV_OP_REMOVE)
		bits = KEVENT_INODE_REMOVE; /* the removed entry logs itself (on_child) */
	else if (op == KEV_OP_RENAME && scratch && r)
		return kev_inode_rename_dir(c, ctl, f, r);
	else if (op == KEV_OP_RENAME)
		bits = KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE;
	else if (op != KEV_OP_CREATE && op != KEV_OP_LINK) /* io_uring, a kernel thread... */
		bits = KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE | KEVENT_INODE_ATTRIB;
	if (op != KEV_OP_CREATE && op != KEV_OP_LINK) {
		kev_deliver(c, ctl, f->dev, f->ino, bits, 0);
		return 0;
	}
	/* An entry was added: the child fired just before, new (creation) or not (link). */
	child = op == KEV_OP_CREATE ? f->born : f->prev_ino;
	if (!scratch)
		kev_deliver(c, ctl, f->dev, f->ino, KEVENT_INODE_CREATE, 0);
	else if (kev_inode_path(c, &c->tmp, f, f->call.path, f->call.dfd))
		kev_entry(c, KEVENT_INODE_CREATE, child, &c->tmp.name, c->tmp.len);
	else
		kev_entry(c, KEVENT_INODE_CREATE, child, NULL, 0);
	if (scratch)
		kev_deliver(c, ctl, f->dev, f->ino, KEVENT_INODE_CREATE, 1);
	return 0;
}

/* An entry of a watched directory (f->parent) fired: log what happened to it. */
__noinline int kev_inode_on_child(struct kev_inode_cpu *c, struct kev_inode_ctl *ctl,
				  const struct kev_fire *f)
{
	__u32 event;
	int len;

	if (!c || !f)
		return 0;
	switch (f->call.op) {
	case KEV_OP_REMOVE:
		/* A directory that keeps two links is the parent of what went, not it. */
		if (f->dir && f->nlink >= 2)
			return 0;
		event = KEVENT_INODE_REMOVE;
		break;
	case KEV_OP_RENAME:
		/* The moved inode, or the one the rename replaced: gone from here. */
		if ((!kev_inode_path(c, &c->tmp, f, f->call.opath, f->call.odfd) ||
		     !kev_inode_is_named(c, &c->tmp, f->alias, f->parent)) &&
		    (!kev_inode_path(c, &c->tmp, f, f->call.path, f->call.dfd) ||
		     !kev_inode_is_named(c, &c->tmp, f->alias, f->parent)))
			return 0;
		event = KEVENT_INODE_REMOVE;
		break;
	case KEV_OP_ATTR:
	case KEV_OP_LINK:
		event = KEVENT_INODE_ATTRIB;
		break;
	default:
		/* Written, or truncated by open(): a directory is neither. */
		if (f->dir)
			return 0;
		event = KEVENT_INODE_MODIFY;
	}
	for (int i = 0; i < 2; i++) {
		struct kev_logged *l = &c->logged[i];

		if (l->task == f->task && l->switches == f->switches && l->ino == f->ino &&
		    l->parent == f->parent_ino && l->event == event && l->nr == f->nr)
			return 0;
	}
	c->logged[1] = c->logged[0];
	c->logged[0] =
	    (struct kev_logged){f->task, f->switches, f->ino, f->parent_ino, event, f->nr};
	len = kev_inode_dname(c, f->alias);
	kev_entry(c, event, f->ino, len >= 0 ? &c->name : NULL, len);
	kev_deliver(c, ctl, f->dev, f->parent_ino, event, 1);
	return 0;
}

/* Past the filter: which system call this is, and what it did to whom. */
static __noinline void kev_inode_slow(struct inode *x, struct task_struct *task,
				      struct kev_inode_ctl *ctl, struct kev_inode_cpu *c,
				      struct kev_fire *f)
{
	struct kev_inode_rename *r = NULL;
	bool self = f->self, child = f->child;
	__u64 *born;
	int scratch;

	f->regs = (__u64)bpf_task_pt_regs(task);
	f->nr = kev_syscall_nr((struct pt_regs *)f->regs);
	f->call = kev_call_of((int)f->nr);
	if (!self && !child && f->call.op != KEV_OP_RENAME)
		return;
	f->dir = (x->i_mode & S_IFMT) == S_IFDIR;
	f->nlink = x->__i_nlink;
	if (self && f->dir && f->call.op == KEV_OP_CREATE) {
		born = bpf_task_storage_get(&kev_inode_born, task, 0, 0);
		if (born) {
			f->born = *born;
			*born = 0;
		}
	}
	if (f->call.op == KEV_OP_RENAME)
		r = bpf_task_storage_get(&kev_inode_renames, task, 0,
					 self && f->dir ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);

	/* The scratch is this firing's, unless it preempted another one on this CPU. */
	scratch = !__sync_lock_test_and_set(&c->busy, 1);
	if (self)
		kev_inode_on_self(c, ctl, f, scratch, r);
	if (child && scratch)
		kev_inode_on_child(c, ctl, f);
	else if (child)
		__sync_fetch_and_add(&ctl->log_lost, 1);
	if (f->moved && scratch && r && r->armed)
		kev_inode_rename_moved(c, ctl, f, r);
	if (scratch)
		__sync_lock_test_and_set(&c->busy, 0);
}

static __always_inline void kev_inode_event(struct inode *x)
{
	__u64 ino, switches, prev = 0, parent_ino = 0;
	struct dentry *d = NULL;
	struct inode *p = NULL;
	struct kev_inode_ctl *ctl;
	struct kev_inode_cpu *c;
	struct task_struct *task;
	bool self, child = false, moved;
	struct hlist_node *first;
	__u32 zero = 0, dev;
	__u64 *born;

	ctl = bpf_map_lookup_elem(&kev_inode_ctl, &zero);
	if (!ctl || !ctl->watched)
		return; /* the process watches no inode: the common case costs one load */
	c = bpf_map_lookup_elem(&kev_inode_cpus, &zero);
	if (!c)
		return;
	dev = x->i_sb->s_dev;
	ino = x->i_ino;
	self = kev_filter(ctl, dev, ino);

	/* Remember this firing: a directory's, next in the same call, may need it. */
	task = bpf_get_current_task_btf();
	switches = task->nvcsw + task->nivcsw;
	if (c->h_task == (__u64)task && c->h_switches == switches)
		prev = c->h_ino;
	c->h_task = (__u64)task;
	c->h_switches = switches;
	c->h_ino = ino;

	first = x->i_dentry.first;
	if (!first) {
		/* No dentry yet: being created. Its directory fires next and names it. */
		born =
		    bpf_task_storage_get(&kev_inode_born, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (born)
			*born = ino;
	} else {
		/* Plain loads, not bpf_probe_read_kernel() calls: this is every firing's path. */
		d = bpf_rdonly_cast(
		    (void *)((__u64)first - bpf_core_field_offset(struct dentry, d_u.d_alias)),
		    bpf_core_type_id_kernel(struct dentry));
		p = d->d_parent->d_inode;
		if (p && p != x) {
			parent_ino = p->i_ino;
			child = kev_filter(ctl, dev, parent_ino);
		} else {
			p = NULL;
		}
	}
	/* Any firing may be the moved inode of an armed rename: rare, and short-lived. */
	moved = first && ctl->renames && bpf_jiffies64() <= ctl->rename_until;
	if (self || child || moved) {
		struct kev_fire f = {
		    .x = (__u64)x,
		    .alias = (__u64)d,
		    .parent = (__u64)p,
		    .parent_ino = parent_ino,
		    .task = (__u64)task,
		    .ino = ino,
		    .prev_ino = prev,
		    .switches = switches,
		    .dev = dev,
		    .self = self,
		    .child = child,
		    .moved = moved,
		};

		kev_inode_slow(x, task, ctl, c, &f);
	}
}

SEC("tp_btf/inode_set_ctime_to_ts")
int BPF_PROG(kev_ctime_set, struct inode *inode, struct timespec64 *ts)
{
	kev_inode_event(inode);
	return 0;
}

SEC("tp_btf/ctime_ns_xchg")
int BPF_PROG(kev_ctime_xchg, struct inode *inode, u32 old, u32 new, u32 cur)
{
	kev_inode_event(inode);
	return 0;
}

SEC("tp_btf/ctime_xchg_skip")
int BPF_PROG(kev_ctime_skip, struct inode *inode, struct timespec64 *ctime)
{
	kev_inode_event(inode);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
