// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * KEVENT_INODE on real files (K18 with K10, K12, K13, K24, K25). Every scenario runs twice:
 * in a fresh directory on ext4 (/var/tmp, on the root file system) and on tmpfs
 * (/dev/shm). Child inode numbers are checked against stat(), names against the
 * entry log (kevent_inode_entries()).
 *
 * The suite runs on the path the process gets (K26): the BPF programs, or inotify (as
 * with KEVENT_BACKEND=syscall). Where inotify cannot give what the BPF side gives, the
 * scenario is in two tests named for their path (bpf, inotify), each of which skips
 * itself on the other path.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <unistd.h>

#include <kevent_inode.h>

#include "helpers.h"

TestSuite(inode, .timeout = KT_TEST_TIMEOUT);

#define ALL_EV                                                                                     \
	(KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE | KEVENT_INODE_MODIFY | KEVENT_INODE_ATTRIB)
#define BURST 1000

/* A fresh directory under base, which must be on the file system the test is about. */
static void make_tree(char *dir, const char *base, long magic)
{
	struct statfs sf;

	cr_assert_eq(statfs(base, &sf), 0, "statfs %s: %m", base);
	if (sf.f_type != magic) {
		if (getenv("CI") && !strcmp(getenv("CI"), "true"))
			cr_assert_fail("%s is not the file system this test is about", base);
		cr_skip_test("%s is not the file system this test is about", base);
	}
	snprintf(dir, PATH_MAX, "%s/kevent-inode-XXXXXX", base);
	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %m");
}

static int rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The test's directory: removed after the test even when an assertion ended it. */
static char tree[PATH_MAX];

static void rm_test_tree(void)
{
	if (tree[0])
		rm_tree(tree);
	tree[0] = 0;
}

/* Each scenario, on ext4 and on tmpfs. */
#define FS_TEST(name, desc)                                                                        \
	static void name(const char *dir);                                                         \
	static void name##_on(const char *base, long magic)                                        \
	{                                                                                          \
		make_tree(tree, base, magic);                                                      \
		name(tree);                                                                        \
	}                                                                                          \
	Test(inode, name##_ext4, .description = desc " (ext4)", .fini = rm_test_tree)              \
	{                                                                                          \
		name##_on("/var/tmp", EXT4_SUPER_MAGIC);                                           \
	}                                                                                          \
	Test(inode, name##_tmpfs, .description = desc " (tmpfs)", .fini = rm_test_tree)            \
	{                                                                                          \
		name##_on("/dev/shm", TMPFS_MAGIC);                                                \
	}                                                                                          \
	static void name(const char *dir)

static void path_of(char *out, const char *dir, const char *name)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);

	cr_assert(n > 0 && n < PATH_MAX, "path too long: %s/%s", dir, name);
}

static __u64 ino_of(const char *dir, const char *name)
{
	char p[PATH_MAX];
	struct stat sb;

	path_of(p, dir, name);
	cr_assert_eq(lstat(p, &sb), 0, "lstat %s: %m", p);
	return sb.st_ino;
}

static __u64 ret_ino(const struct ukevent *ev)
{
	return ev->ret_data[0] | (__u64)ev->ret_data[1] << 32;
}

static struct ukevent inode_ev(int fd, __u32 event, __u32 req_flags)
{
	return kt_fd_ev(KEVENT_INODE, fd, event, req_flags);
}

/* The path KEVENT_INODE takes in this process (K26). */
static int inode_path(int q)
{
	int b = kevent_backend(q, KEVENT_INODE);

	cr_assert(b == KEVENT_BACKEND_BPF || b == KEVENT_BACKEND_SYSCALL, "kevent_backend = %d", b);
	return b;
}

/* A test about one path's behaviour: the other path skips it (make test runs it there). */
static void require_path(int q, int want)
{
	if (inode_path(q) == want)
		return;
	rm_test_tree(); /* Criterion runs no .fini for a skipped test */
	kt_require_path(q, KEVENT_INODE, want); /* skips, or fails under CI=true */
}

/*
 * The child a REMOVE names: the BPF side sees the removed inode; inotify gives a name,
 * and a name that is gone has no inode left to look up (0).
 */
static __u64 removed_child(int q, __u64 ino)
{
	return inode_path(q) == KEVENT_BACKEND_BPF ? ino : 0;
}

/* Open path (a directory or a file under dir) and watch it; returns the registration. */
static struct ukevent watch(int q, const char *dir, const char *name, __u32 event, __u32 flags)
{
	char p[PATH_MAX];
	struct ukevent uk;
	int fd;

	if (name)
		path_of(p, dir, name);
	else
		snprintf(p, sizeof(p), "%s", dir);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %m", p);
	uk = inode_ev(fd, event, flags);
	kt_add(q, uk);
	return uk;
}

static void unwatch(int q, const struct ukevent *reg)
{
	kt_done(q, KEVENT_CTL_REMOVE, *reg);
	close((int)reg->id.raw[0]);
}

/* The one event of the interest reg; asserts there is exactly one. */
static struct ukevent one_event(int q, const struct ukevent *reg)
{
	return kt_next(q, KEVENT_INODE, reg->id.raw_u64);
}

/* The event of reg must be exactly `event`, about the child `ino` (0: none or several). */
static void expect(int q, const struct ukevent *reg, __u32 event, __u64 ino)
{
	struct ukevent got = one_event(q, reg);

	cr_assert_eq(got.event, event, "event %#x, want %#x", got.event, event);
	cr_assert_eq(got.ret_flags, 0, "ret_flags %#x", got.ret_flags);
	cr_assert_eq(ret_ino(&got), ino, "child %llu, want %llu", (unsigned long long)ret_ino(&got),
		     (unsigned long long)ino);
}

/* One event each for two interests of q (in one queue: a single wait may bring both). */
static void expect_pair(int q, const struct ukevent *ra, __u32 ea, __u64 ia,
			const struct ukevent *rb, __u32 eb, __u64 ib)
{
	struct ukevent ev[8], a, b;
	int n = 0, k;

	while (n < 2 && (k = kt_get(q, 1, (unsigned int)(8 - n), ev + n, KT_WAIT_MS)) > 0)
		n += k;
	a = kt_only(ev, n, KEVENT_INODE, ra->id.raw_u64);
	b = kt_only(ev, n, KEVENT_INODE, rb->id.raw_u64);
	cr_assert_eq(n, 2, "%d events, want one for each directory", n);
	cr_assert_eq(a.event, ea, "old side: event %#x, want %#x", a.event, ea);
	cr_assert_eq(ret_ino(&a), ia, "old side: child %llu", (unsigned long long)ret_ino(&a));
	cr_assert_eq(b.event, eb, "new side: event %#x, want %#x", b.event, eb);
	cr_assert_eq(ret_ino(&b), ib, "new side: child %llu", (unsigned long long)ret_ino(&b));
}

/* The next logged entry of reg must be (event, ino, name). */
static void expect_entry(int q, const struct ukevent *reg, __u32 event, __u64 ino, const char *name)
{
	struct kevent_inode_entry e;
	int n = kevent_inode_entries(q, reg, &e, 1);

	cr_assert_eq(n, 1, "kevent_inode_entries = %d, want the entry for %s", n, name);
	cr_assert_eq(e.event, event, "%s: entry event %#x, want %#x", name, e.event, event);
	cr_assert_eq(e.ino, ino, "%s: entry inode %llu, want %llu", name, (unsigned long long)e.ino,
		     (unsigned long long)ino);
	cr_assert_str_eq(e.name, name);
	cr_assert_eq(e.name_len, strlen(name));
}

/* The next n entries of reg must be exactly want[0..n), in any order. */
static void expect_entries(int q, const struct ukevent *reg, const struct kevent_inode_entry *want,
			   int n)
{
	struct kevent_inode_entry got[8];
	bool seen[8] = {false};
	int k = kevent_inode_entries(q, reg, got, (unsigned int)n);

	cr_assert_eq(k, n, "kevent_inode_entries = %d, want %d", k, n);
	for (int i = 0; i < n; i++) {
		int j;

		for (j = 0; j < n; j++)
			if (!seen[j] && got[j].event == want[i].event &&
			    got[j].ino == want[i].ino && !strcmp(got[j].name, want[i].name))
				break;
		cr_assert_lt(j, n, "no entry %#x %llu %s", want[i].event,
			     (unsigned long long)want[i].ino, want[i].name);
		seen[j] = true;
	}
}

static void expect_no_entry(int q, const struct ukevent *reg)
{
	struct kevent_inode_entry e;
	int n = kevent_inode_entries(q, reg, &e, 1);

	cr_assert_eq(n, 0, "kevent_inode_entries = %d (event %#x, %s), want none", n,
		     n > 0 ? e.event : 0, n > 0 ? e.name : "");
}

/* The end of a scenario: nothing more was logged for reg; unwatch it, close the queue. */
static void kt_done_watching(int q, const struct ukevent *reg)
{
	expect_no_entry(q, reg);
	unwatch(q, reg);
	kt_close(q);
}

/* The watched object is gone: BROKEN (-ENOENT) once, then the interest is gone too. */
static void kt_expect_broken_once(int q, const struct ukevent *reg)
{
	struct ukevent got = one_event(q, reg);

	cr_assert_eq(got.ret_flags, KEVENT_RET_BROKEN, "ret_flags %#x", got.ret_flags);
	cr_assert_eq((int)got.ret_data[1], -ENOENT, "ret_data[1] %d", (int)got.ret_data[1]);
	kt_expect_none(q);
	kt_assert_gone(q, *reg);
	close((int)reg->id.raw[0]);
}

static int create_file(const char *dir, const char *name)
{
	char p[PATH_MAX];
	int fd;

	path_of(p, dir, name);
	fd = open(p, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "create %s: %m", p);
	return fd;
}

static void touch(const char *dir, const char *name)
{
	close(create_file(dir, name));
}

FS_TEST(k18_create_gives_child, "K18: create, mkdir, mknod and symlink give CREATE with the "
				"child's inode and name")
{
	struct ukevent reg;
	char p[PATH_MAX];
	int q = kt_queue();

	reg = watch(q, dir, NULL, ALL_EV, KEVENT_REQ_ET);
	kt_expect_none(q);

	touch(dir, "file");
	expect(q, &reg, KEVENT_INODE_CREATE, ino_of(dir, "file"));
	expect_entry(q, &reg, KEVENT_INODE_CREATE, ino_of(dir, "file"), "file");

	path_of(p, dir, "sub");
	cr_assert_eq(mkdir(p, 0755), 0);
	expect(q, &reg, KEVENT_INODE_CREATE, ino_of(dir, "sub"));
	expect_entry(q, &reg, KEVENT_INODE_CREATE, ino_of(dir, "sub"), "sub");

	path_of(p, dir, "fifo");
	cr_assert_eq(mknod(p, S_IFIFO | 0644, 0), 0);
	expect(q, &reg, KEVENT_INODE_CREATE, ino_of(dir, "fifo"));
	expect_entry(q, &reg, KEVENT_INODE_CREATE, ino_of(dir, "fifo"), "fifo");

	/* A relative path, from a directory descriptor. */
	cr_assert_eq(symlinkat("file", (int)reg.id.raw[0], "link"), 0);
	expect(q, &reg, KEVENT_INODE_CREATE, ino_of(dir, "link"));
	expect_entry(q, &reg, KEVENT_INODE_CREATE, ino_of(dir, "link"), "link");

	kt_done_watching(q, &reg);
}

/* Watch dir for everything, create "file" in it, then link it as "hard". */
static struct ukevent link_in_watched(int q, const char *dir)
{
	char p[PATH_MAX], t[PATH_MAX];
	struct ukevent reg = watch(q, dir, NULL, ALL_EV, KEVENT_REQ_ET);

	touch(dir, "file");
	expect(q, &reg, KEVENT_INODE_CREATE, ino_of(dir, "file"));
	expect_entry(q, &reg, KEVENT_INODE_CREATE, ino_of(dir, "file"), "file");
	path_of(p, dir, "file");
	path_of(t, dir, "hard");
	cr_assert_eq(link(p, t), 0);
	return reg;
}

FS_TEST(k18_link_gives_child_bpf, "K18 (BPF path): a hard link gives CREATE with the inode, "
				  "and ATTRIB for its link count")
{
	int q = kt_queue();
	struct ukevent reg;

	require_path(q, KEVENT_BACKEND_BPF);
	reg = link_in_watched(q, dir);
	/* A hard link: the new entry is an existing inode, whose link count changed too. */
	expect(q, &reg, KEVENT_INODE_CREATE | KEVENT_INODE_ATTRIB, ino_of(dir, "file"));
	{
		struct kevent_inode_entry e[2];

		/* The link count change is logged under one of the inode's names. */
		cr_assert_eq(kevent_inode_entries(q, &reg, e, 2), 2);
		cr_assert_eq(e[0].event, KEVENT_INODE_ATTRIB);
		cr_assert_eq(e[0].ino, ino_of(dir, "file"));
		cr_assert(!strcmp(e[0].name, "file") || !strcmp(e[0].name, "hard"), "%s",
			  e[0].name);
		cr_assert_eq(e[1].event, KEVENT_INODE_CREATE);
		cr_assert_eq(e[1].ino, ino_of(dir, "hard"));
		cr_assert_str_eq(e[1].name, "hard");
	}
	kt_done_watching(q, &reg);
}

FS_TEST(k18_link_gives_child_inotify, "K18 (inotify path): a hard link gives CREATE with the "
				      "inode; inotify says nothing of the link count to the "
				      "directory")
{
	int q = kt_queue();
	struct ukevent reg;

	require_path(q, KEVENT_BACKEND_SYSCALL);
	reg = link_in_watched(q, dir);
	expect(q, &reg, KEVENT_INODE_CREATE, ino_of(dir, "file"));
	expect_entry(q, &reg, KEVENT_INODE_CREATE, ino_of(dir, "hard"), "hard");
	kt_done_watching(q, &reg);
}

/*
 * Watch dir, then unlink "file" and rmdir "sub" in it: each gives REMOVE and is logged with
 * its name, and with its inode when the path knows it (known), else 0.
 */
static void remove_entries(int q, const char *dir, bool known)
{
	__u64 file, sub;
	struct ukevent reg;
	char p[PATH_MAX];

	touch(dir, "file");
	path_of(p, dir, "sub");
	cr_assert_eq(mkdir(p, 0755), 0);
	file = known ? ino_of(dir, "file") : 0;
	sub = known ? ino_of(dir, "sub") : 0;
	reg = watch(q, dir, NULL, KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE, KEVENT_REQ_ET);

	path_of(p, dir, "file");
	cr_assert_eq(unlink(p), 0);
	expect(q, &reg, KEVENT_INODE_REMOVE, file);
	expect_entry(q, &reg, KEVENT_INODE_REMOVE, file, "file");

	path_of(p, dir, "sub");
	cr_assert_eq(rmdir(p), 0);
	expect(q, &reg, KEVENT_INODE_REMOVE, sub);
	expect_entry(q, &reg, KEVENT_INODE_REMOVE, sub, "sub");
	kt_done_watching(q, &reg);
}

FS_TEST(k18_remove_gives_child_bpf, "K18 (BPF path): unlink and rmdir give REMOVE with the "
				    "child's inode and name")
{
	int q = kt_queue();

	require_path(q, KEVENT_BACKEND_BPF);
	remove_entries(q, dir, true);
}

FS_TEST(k18_remove_gives_name_inotify, "K18 (inotify path): unlink and rmdir give REMOVE and "
				       "the entry's name; its inode is gone, not known (0)")
{
	int q = kt_queue();

	require_path(q, KEVENT_BACKEND_SYSCALL);
	remove_entries(q, dir, false);
}

FS_TEST(k18_file_modify_attrib, "K18: a watched file gives MODIFY for writes and truncation, "
				"ATTRIB for chmod, chown, utimes and its link count")
{
	struct ukevent reg;
	char p[PATH_MAX], t[PATH_MAX];
	int q = kt_queue(), fd = create_file(dir, "file");

	reg = watch(q, dir, "file", ALL_EV, KEVENT_REQ_ET);
	kt_expect_none(q);
	/* Each delivery re-arms the watch: a second write right away is seen too. */
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(write(fd, "x", 1), 1);
		expect(q, &reg, KEVENT_INODE_MODIFY, 0);
	}
	cr_assert_eq(ftruncate(fd, 0), 0);
	expect(q, &reg, KEVENT_INODE_MODIFY, 0);

	cr_assert_eq(fchmod(fd, 0600), 0);
	expect(q, &reg, KEVENT_INODE_ATTRIB, 0);
	cr_assert_eq(fchown(fd, geteuid(), getegid()), 0); /* a change of ctime all the same */
	expect(q, &reg, KEVENT_INODE_ATTRIB, 0);
	cr_assert_eq(futimes(fd, NULL), 0);
	expect(q, &reg, KEVENT_INODE_ATTRIB, 0);
	path_of(p, dir, "file");
	path_of(t, dir, "second");
	cr_assert_eq(link(p, t), 0);
	expect(q, &reg, KEVENT_INODE_ATTRIB, 0);
	/* One name of two goes: the link count changed, the file lives on. */
	cr_assert_eq(unlink(t), 0);
	expect(q, &reg, KEVENT_INODE_ATTRIB, 0);
	expect_no_entry(q, &reg);
	close(fd);
	unwatch(q, &reg);
	kt_close(q);
}

FS_TEST(k18_dir_entries_modify_attrib, "K18: on a directory, MODIFY and ATTRIB report its "
				       "entries' changes (with their inode) and its own")
{
	struct ukevent reg;
	__u64 file;
	struct stat sb;
	int q = kt_queue(), fd = create_file(dir, "file");

	file = ino_of(dir, "file");
	reg = watch(q, dir, NULL, KEVENT_INODE_MODIFY | KEVENT_INODE_ATTRIB, KEVENT_REQ_ET);
	/*
	 * The kernel stamps a change with a coarse clock unless the times were read since
	 * the last one: without this stat() a write in the same tick as the creation leaves
	 * no trace at all (the library does it for the objects it watches itself).
	 */
	cr_assert_eq(fstat(fd, &sb), 0);
	cr_assert_eq(write(fd, "x", 1), 1);
	expect(q, &reg, KEVENT_INODE_MODIFY, file);
	expect_entry(q, &reg, KEVENT_INODE_MODIFY, file, "file");
	cr_assert_eq(fchmod(fd, 0600), 0);
	expect(q, &reg, KEVENT_INODE_ATTRIB, file);
	expect_entry(q, &reg, KEVENT_INODE_ATTRIB, file, "file");
	/* The directory's own metadata: no child. */
	cr_assert_eq(fchmod((int)reg.id.raw[0], 0700), 0);
	expect(q, &reg, KEVENT_INODE_ATTRIB, 0);
	close(fd);
	unwatch(q, &reg);
	kt_close(q);
}

FS_TEST(k18_rename_within, "K18: a rename within a watched directory counts as both REMOVE "
			   "and CREATE, of the same inode")
{
	struct ukevent reg;
	char p[PATH_MAX], t[PATH_MAX];
	__u64 ino;
	int q = kt_queue();

	touch(dir, "old");
	ino = ino_of(dir, "old");
	reg = watch(q, dir, NULL, KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE, KEVENT_REQ_ET);
	path_of(p, dir, "old");
	path_of(t, dir, "new");
	cr_assert_eq(rename(p, t), 0);
	cr_assert_eq(ino_of(dir, "new"), ino);
	expect(q, &reg, KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE, ino);
	expect_entry(q, &reg, KEVENT_INODE_REMOVE, ino, "old");
	expect_entry(q, &reg, KEVENT_INODE_CREATE, ino, "new");
	kt_done_watching(q, &reg);
}

FS_TEST(k18_rename_across, "K18: a rename across watched directories is REMOVE on the old "
			   "side, CREATE on the new one, both naming the moved inode")
{
	char a[PATH_MAX], b[PATH_MAX], p[PATH_MAX], t[PATH_MAX];
	struct ukevent ra, rb;
	__u64 ino;
	int q = kt_queue();

	path_of(a, dir, "a");
	path_of(b, dir, "b");
	cr_assert_eq(mkdir(a, 0755), 0);
	cr_assert_eq(mkdir(b, 0755), 0);
	touch(a, "x");
	ino = ino_of(a, "x");
	ra = watch(q, a, NULL, KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE, KEVENT_REQ_ET);
	rb = watch(q, b, NULL, KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE, KEVENT_REQ_ET);

	path_of(p, a, "x");
	path_of(t, b, "y");
	cr_assert_eq(rename(p, t), 0);
	expect_pair(q, &ra, KEVENT_INODE_REMOVE, ino, &rb, KEVENT_INODE_CREATE, ino);
	expect_entry(q, &ra, KEVENT_INODE_REMOVE, ino, "x");
	expect_entry(q, &rb, KEVENT_INODE_CREATE, ino, "y");
	expect_no_entry(q, &ra);
	expect_no_entry(q, &rb);
	unwatch(q, &ra);
	unwatch(q, &rb);
	kt_close(q);
}

/* b/y renamed over a/z. */
struct rename_over {
	struct ukevent ra, rb; /* watching the target directory a, the source b */
	__u64 ino, victim;     /* the moved inode, the one it replaces */
};

/*
 * Watch a and b, create b/y and a/z, then rename b/y over a/z. As in k18_rename_across,
 * every entry is made while watched.
 */
static void rename_over(int q, const char *dir, struct rename_over *r)
{
	char a[PATH_MAX], b[PATH_MAX], p[PATH_MAX], t[PATH_MAX];

	path_of(a, dir, "a");
	path_of(b, dir, "b");
	cr_assert_eq(mkdir(a, 0755), 0);
	cr_assert_eq(mkdir(b, 0755), 0);
	r->ra = watch(q, a, NULL, KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE, KEVENT_REQ_ET);
	r->rb = watch(q, b, NULL, KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE, KEVENT_REQ_ET);
	touch(b, "y");
	r->ino = ino_of(b, "y");
	expect(q, &r->rb, KEVENT_INODE_CREATE, r->ino);
	expect_entry(q, &r->rb, KEVENT_INODE_CREATE, r->ino, "y");
	touch(a, "z");
	r->victim = ino_of(a, "z");
	expect(q, &r->ra, KEVENT_INODE_CREATE, r->victim);
	expect_entry(q, &r->ra, KEVENT_INODE_CREATE, r->victim, "z");
	path_of(t, a, "z");
	path_of(p, b, "y");
	cr_assert_eq(rename(p, t), 0);
}

static void rename_over_done(int q, struct rename_over *r)
{
	expect_no_entry(q, &r->ra);
	expect_no_entry(q, &r->rb);
	unwatch(q, &r->ra);
	unwatch(q, &r->rb);
	kt_close(q);
}

FS_TEST(k18_rename_over_bpf, "K18 (BPF path): a rename over an existing entry is REMOVE on the "
			     "old side, and both CREATE and REMOVE on the new one")
{
	struct rename_over r;
	int q = kt_queue();

	require_path(q, KEVENT_BACKEND_BPF);
	rename_over(q, dir, &r);
	/* The target lost one inode and gained another: no single child to name. */
	expect_pair(q, &r.rb, KEVENT_INODE_REMOVE, r.ino, &r.ra,
		    KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE, 0);
	expect_entry(q, &r.rb, KEVENT_INODE_REMOVE, r.ino, "y");
	/* Which of the two the file system timestamps first varies (ext4, tmpfs). */
	expect_entries(q, &r.ra,
		       (struct kevent_inode_entry[]){
			   {.event = KEVENT_INODE_REMOVE, .ino = r.victim, .name = "z"},
			   {.event = KEVENT_INODE_CREATE, .ino = r.ino, .name = "z"}},
		       2);
	rename_over_done(q, &r);
}

FS_TEST(k18_rename_over_inotify, "K18 (inotify path): a rename over an existing entry is "
				 "REMOVE on the old side, CREATE on the new one; inotify does "
				 "not report the entry replaced")
{
	struct rename_over r;
	int q = kt_queue();

	require_path(q, KEVENT_BACKEND_SYSCALL);
	rename_over(q, dir, &r);
	expect_pair(q, &r.rb, KEVENT_INODE_REMOVE, r.ino, &r.ra, KEVENT_INODE_CREATE, r.ino);
	expect_entry(q, &r.rb, KEVENT_INODE_REMOVE, r.ino, "y");
	expect_entry(q, &r.ra, KEVENT_INODE_CREATE, r.ino, "z");
	rename_over_done(q, &r);
}

FS_TEST(k18_unwatched_sibling_is_silent, "K18: nothing is delivered for activity in an "
					 "unwatched sibling directory")
{
	char a[PATH_MAX], s[PATH_MAX], p[PATH_MAX], t[PATH_MAX];
	struct ukevent reg;
	int q = kt_queue(), fd;

	path_of(a, dir, "watched");
	path_of(s, dir, "sibling");
	cr_assert_eq(mkdir(a, 0755), 0);
	cr_assert_eq(mkdir(s, 0755), 0);
	reg = watch(q, a, NULL, ALL_EV, 0);
	fd = create_file(s, "f");
	cr_assert_eq(write(fd, "data", 4), 4);
	cr_assert_eq(fchmod(fd, 0600), 0);
	close(fd);
	path_of(p, s, "f");
	path_of(t, s, "g");
	cr_assert_eq(rename(p, t), 0);
	cr_assert_eq(unlink(t), 0);
	path_of(p, s, "d");
	cr_assert_eq(mkdir(p, 0755), 0);
	cr_assert_eq(rmdir(p), 0);
	kt_expect_none(q);
	kt_done_watching(q, &reg);
}

/* Read dir: how many entries, and does every one appear in log[0..n) as a CREATE? */
static int rescan_matches(const char *dir, const struct kevent_inode_entry *log, int n)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int found = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d))) {
		int i;

		if (de->d_name[0] == '.')
			continue;
		for (i = 0; i < n; i++)
			if (log[i].event == KEVENT_INODE_CREATE && log[i].ino == de->d_ino &&
			    !strcmp(log[i].name, de->d_name))
				break;
		cr_assert_lt(i, n, "%s (inode %llu) is in the directory but not in the log",
			     de->d_name, (unsigned long long)de->d_ino);
		found++;
	}
	closedir(d);
	return found;
}

static void burst(const char *dir, const char *prefix, int n)
{
	char name[32];

	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s%04d", prefix, i);
		touch(dir, name);
	}
}

/* Collect events of q until it stays quiet; returns how many, OR of their bits in *bits. */
static int drain(int q, __u32 *bits)
{
	struct ukevent ev[16];
	int n, total = 0;

	*bits = 0;
	while ((n = kt_get(q, 1, 16, ev, KT_QUIET_MS)) > 0) {
		for (int i = 0; i < n; i++)
			*bits |= ev[i].event;
		total += n;
	}
	cr_assert_eq(n, 0, "kevent_get_events: %d", n);
	return total;
}

FS_TEST(k12_k13_burst_et_level_oneshot, "K12, K13, K18: 1,000 creations merge into one "
					"event in ET, level and ONESHOT modes; the log and a "
					"rescan agree")
{
	static struct kevent_inode_entry log[BURST + 8];
	struct ukevent re, rl, ro;
	int qe = kt_queue(), ql = kt_queue(), qo = kt_queue(), n;
	__u32 bits;

	/* WAKEUP_ALL: each queue sees every creation, not a share of them (K15). */
	re = watch(qe, dir, NULL, KEVENT_INODE_CREATE, KEVENT_REQ_ET | KEVENT_REQ_WAKEUP_ALL);
	rl = watch(ql, dir, NULL, KEVENT_INODE_CREATE, KEVENT_REQ_WAKEUP_ALL);
	ro = watch(qo, dir, NULL, KEVENT_INODE_CREATE, KEVENT_REQ_ONESHOT | KEVENT_REQ_WAKEUP_ALL);
	burst(dir, "f", BURST);

	/* K12: one event each, for 1,000 creations; no child named, there are many. */
	cr_assert_eq(drain(qe, &bits), 1, "ET: want the burst merged into one event");
	cr_assert_eq(bits, KEVENT_INODE_CREATE);
	cr_assert_eq(drain(ql, &bits), 1, "level: want one event (no level state to re-check)");
	cr_assert_eq(drain(qo, &bits), 1, "ONESHOT: want one event");
	kt_assert_gone(qo, ro);

	/* Nothing lost: every entry the directory has now was logged, once. */
	n = kevent_inode_entries(qe, &re, log, BURST + 8);
	cr_assert_eq(n, BURST, "ET: %d entries logged, want %d", n, BURST);
	cr_assert_eq(rescan_matches(dir, log, n), BURST);
	n = kevent_inode_entries(ql, &rl, log, BURST + 8);
	cr_assert_eq(n, BURST, "level: %d entries logged, want %d", n, BURST);
	cr_assert_eq(rescan_matches(dir, log, n), BURST);

	/* K13: new activity re-arms ET and level; ONESHOT is gone. */
	touch(dir, "more");
	expect(qe, &re, KEVENT_INODE_CREATE, ino_of(dir, "more"));
	expect(ql, &rl, KEVENT_INODE_CREATE, ino_of(dir, "more"));
	kt_expect_none(qo);
	unwatch(qe, &re);
	unwatch(ql, &rl);
	close((int)ro.id.raw[0]);
	kt_close(qe);
	kt_close(ql);
	kt_close(qo);
}

FS_TEST(k18_deleted_dir_broken_once, "K18: removing the watched directory delivers BROKEN "
				     "once, then the interest is gone")
{
	char sub[PATH_MAX];
	struct ukevent reg;
	int q = kt_queue();

	path_of(sub, dir, "doomed");
	cr_assert_eq(mkdir(sub, 0755), 0);
	reg = watch(q, sub, NULL, KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE, KEVENT_REQ_ET);
	cr_assert_eq(rmdir(sub), 0);
	kt_expect_broken_once(q, &reg);
	kt_close(q);
}

FS_TEST(k18_deleted_file_broken_once, "K18: unlinking the watched file's last name delivers "
				      "BROKEN once")
{
	char p[PATH_MAX];
	struct ukevent reg;
	int q = kt_queue();

	touch(dir, "doomed");
	reg = watch(q, dir, "doomed", ALL_EV, 0);
	path_of(p, dir, "doomed");
	cr_assert_eq(unlink(p), 0);
	kt_expect_broken_once(q, &reg);
	kt_close(q);
}

FS_TEST(k10_remove_stops_delivery, "K10: a removed inode interest is never delivered, not "
				   "even an event already pending")
{
	struct ukevent reg;
	int q = kt_queue();

	reg = watch(q, dir, NULL, KEVENT_INODE_CREATE, KEVENT_REQ_ET);
	touch(dir, "pending");
	kt_done(q, KEVENT_CTL_REMOVE, reg);
	kt_expect_none(q);
	touch(dir, "after");
	kt_expect_none(q);
	cr_assert_eq(kevent_inode_entries(q, &reg, NULL, 0), -ENOENT);
	close((int)reg.id.raw[0]);
	kt_close(q);
}

FS_TEST(k8_modify_changes_mask, "K8: MODIFY replaces an inode interest's event mask in the "
				"kernel")
{
	struct ukevent reg;
	char p[PATH_MAX];
	int q = kt_queue();
	__u64 ino;

	touch(dir, "old");
	reg = watch(q, dir, NULL, KEVENT_INODE_CREATE, KEVENT_REQ_ET);
	path_of(p, dir, "old");
	cr_assert_eq(unlink(p), 0);
	kt_expect_none(q);
	reg.event = KEVENT_INODE_REMOVE;
	kt_done(q, KEVENT_CTL_MODIFY, reg);
	touch(dir, "new");
	kt_expect_none(q);
	path_of(p, dir, "new");
	ino = ino_of(dir, "new");
	cr_assert_eq(unlink(p), 0);
	expect(q, &reg, KEVENT_INODE_REMOVE, removed_child(q, ino));
	unwatch(q, &reg);
	kt_close(q);
}

FS_TEST(k24_log_overflow_is_reported, "K24: entries the log had no room for are reported as "
				      "a gap, and the event still comes")
{
	static struct kevent_inode_entry log[2048];
	struct ukevent reg;
	int q = kt_queue(), n, i;
	__u32 bits;

	/* More than an interest keeps (1,024) and than the kernel log holds. */
	reg = watch(q, dir, NULL, KEVENT_INODE_CREATE, KEVENT_REQ_ET);
	burst(dir, "overflowing-entry-name-", 8000);
	cr_assert_eq(drain(q, &bits), 1);
	cr_assert_eq(bits, KEVENT_INODE_CREATE);
	n = kevent_inode_entries(q, &reg, log, 2048);
	cr_assert_gt(n, 0);
	cr_assert_eq(log[0].event, 0, "want a gap marker first, got event %#x", log[0].event);
	for (i = 1; i < n; i++)
		cr_assert_eq(log[i].event, KEVENT_INODE_CREATE);
	cr_assert_eq(kevent_inode_entries(q, &reg, log, 2048), 0);
	unwatch(q, &reg);
	kt_close(q);
}

FS_TEST(k25_closed_descriptor_ends_watch, "K25: closing the watched descriptor ends the watch "
					  "silently; its number can be watched anew")
{
	char a[PATH_MAX];
	struct ukevent reg, again;
	int q = kt_queue(), fd;

	reg = watch(q, dir, NULL, KEVENT_INODE_CREATE, KEVENT_REQ_ET);
	close((int)reg.id.raw[0]);
	touch(dir, "f");
	kt_expect_none(q);
	path_of(a, dir, "other");
	cr_assert_eq(mkdir(a, 0755), 0);
	fd = open(a, O_RDONLY | O_CLOEXEC);
	cr_assert_eq(fd, (int)reg.id.raw[0], "the descriptor number was not reused");
	again = inode_ev(fd, KEVENT_INODE_CREATE, KEVENT_REQ_ET);
	kt_add(q, again);
	touch(a, "g");
	expect(q, &again, KEVENT_INODE_CREATE, ino_of(a, "g"));
	unwatch(q, &again);
	kt_close(q);
}

FS_TEST(k18_unlinked_open_entry_reported, "K18: an entry unlinked but still open is still "
					  "reported on its directory when it is written or "
					  "changed")
{
	struct ukevent reg;
	struct stat sb;
	char p[PATH_MAX];
	int q = kt_queue(), fd = create_file(dir, "gone");
	__u64 ino = ino_of(dir, "gone");

	reg = watch(q, dir, NULL, KEVENT_INODE_MODIFY | KEVENT_INODE_ATTRIB, KEVENT_REQ_ET);
	path_of(p, dir, "gone");
	cr_assert_eq(unlink(p), 0);
	kt_expect_none(q);		 /* a REMOVE, not asked for */
	cr_assert_eq(fstat(fd, &sb), 0); /* as in k18_dir_entries_modify_attrib */
	cr_assert_eq(write(fd, "x", 1), 1);
	cr_assert_eq(fchmod(fd, 0600), 0);
	/* Its name is gone: the inotify path cannot look its inode up (removed_child()). */
	expect(q, &reg, KEVENT_INODE_MODIFY | KEVENT_INODE_ATTRIB, removed_child(q, ino));
	close(fd);
	unwatch(q, &reg);
	kt_close(q);
}

FS_TEST(k18_renamed_file_stays_watched, "K18: renaming the watched file is ATTRIB, not a "
					"deletion; it stays watched until its last name goes")
{
	char p[PATH_MAX], t[PATH_MAX];
	struct ukevent reg;
	int q = kt_queue(), fd = create_file(dir, "file");

	reg = watch(q, dir, "file", ALL_EV, KEVENT_REQ_ET);
	path_of(p, dir, "file");
	path_of(t, dir, "moved");
	cr_assert_eq(rename(p, t), 0);
	expect(q, &reg, KEVENT_INODE_ATTRIB, 0);
	cr_assert_eq(write(fd, "x", 1), 1);
	expect(q, &reg, KEVENT_INODE_MODIFY, 0);
	cr_assert_eq(unlink(t), 0);
	kt_expect_broken_once(q, &reg);
	close(fd);
	kt_close(q);
}

FS_TEST(k18_moved_dir_removed_broken_once, "K18: a watched directory moved to another parent, "
					   "then removed, delivers BROKEN once, whether the "
					   "move was seen first or not")
{
	char a[PATH_MAX], b[PATH_MAX], p[PATH_MAX], t[PATH_MAX];
	struct ukevent reg;
	int q = kt_queue();

	path_of(a, dir, "a");
	path_of(b, dir, "b");
	cr_assert_eq(mkdir(a, 0755), 0);
	cr_assert_eq(mkdir(b, 0755), 0);
	for (int seen = 1; seen >= 0; seen--) {
		path_of(p, a, seen ? "seen" : "unseen");
		path_of(t, b, seen ? "seen" : "unseen");
		cr_assert_eq(mkdir(p, 0755), 0);
		reg = watch(q, p, NULL, KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE, KEVENT_REQ_ET);
		cr_assert_eq(rename(p, t), 0);
		if (seen)
			kt_expect_none(q); /* its own metadata changed: not asked for */
		cr_assert_eq(rmdir(t), 0);
		kt_expect_broken_once(q, &reg);
	}
	kt_close(q);
}

FS_TEST(k8_two_descriptors_one_inode, "K8, K17: interests on one directory through two "
				      "descriptors each get what they ask; a REMOVE or a close "
				      "ends only its own")
{
	struct ukevent ra, rb;
	int q = kt_queue();
	char p[PATH_MAX];
	__u64 ino;

	ra = watch(q, dir, NULL, KEVENT_INODE_CREATE, KEVENT_REQ_ET);
	rb = watch(q, dir, NULL, KEVENT_INODE_REMOVE, KEVENT_REQ_ET);
	touch(dir, "x");
	ino = ino_of(dir, "x");
	expect(q, &ra, KEVENT_INODE_CREATE, ino);
	expect_entry(q, &ra, KEVENT_INODE_CREATE, ino, "x");
	path_of(p, dir, "x");
	cr_assert_eq(unlink(p), 0);
	expect(q, &rb, KEVENT_INODE_REMOVE, removed_child(q, ino));
	expect_entry(q, &rb, KEVENT_INODE_REMOVE, removed_child(q, ino), "x");

	kt_done(q, KEVENT_CTL_REMOVE, ra);
	touch(dir, "y");
	kt_expect_none(q);
	close((int)rb.id.raw[0]); /* without REMOVE (K17) */
	path_of(p, dir, "y");
	cr_assert_eq(unlink(p), 0);
	kt_expect_none(q);
	kt_assert_gone(q, rb);
	close((int)ra.id.raw[0]);
	kt_close(q);
}

/* Events of q until it stays quiet: how many of them are for reg's id. */
static int count_for(int q, const struct ukevent *reg)
{
	struct ukevent ev[16];
	int n, total = 0;

	while ((n = kt_get(q, 1, 16, ev, KT_QUIET_MS)) > 0)
		total += kt_count(ev, n, KEVENT_INODE, reg->id.raw_u64);
	cr_assert_eq(n, 0, "kevent_get_events: %d", n);
	return total;
}

FS_TEST(k15_one_interest_per_activity, "K15: without WAKEUP_ALL a creation is delivered to one "
				       "of a queue's interests on the directory; with it, to "
				       "each")
{
	struct ukevent a, b;
	int q = kt_queue(), fd;

	fd = open(dir, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	a = inode_ev(fd, KEVENT_INODE_CREATE, KEVENT_REQ_ET);
	b = a;
	a.user[0] = 1;
	b.user[0] = 2;
	kt_add(q, a);
	kt_add(q, b);
	touch(dir, "one");
	cr_assert_eq(count_for(q, &a), 1, "want one event for one creation");
	a.req_flags = b.req_flags = KEVENT_REQ_ET | KEVENT_REQ_WAKEUP_ALL;
	kt_done(q, KEVENT_CTL_MODIFY, a);
	kt_done(q, KEVENT_CTL_MODIFY, b);
	touch(dir, "two");
	cr_assert_eq(count_for(q, &a), 2, "WAKEUP_ALL: want an event for each interest");
	kt_done(q, KEVENT_CTL_REMOVE, a);
	kt_done(q, KEVENT_CTL_REMOVE, b);
	close(fd);
	kt_close(q);
}

/* Two queues watch dir for CREATE without WAKEUP_ALL; one creation: how many events. */
static int two_queues_one_creation(const char *dir, int want_path)
{
	struct ukevent ra, rb;
	int qa = kt_queue(), qb = kt_queue(), n;

	require_path(qa, want_path);
	ra = watch(qa, dir, NULL, KEVENT_INODE_CREATE, KEVENT_REQ_ET);
	rb = watch(qb, dir, NULL, KEVENT_INODE_CREATE, KEVENT_REQ_ET);
	touch(dir, "one");
	n = count_for(qa, &ra) + count_for(qb, &rb);
	unwatch(qa, &ra);
	unwatch(qb, &rb);
	kt_close(qa);
	kt_close(qb);
	return n;
}

FS_TEST(k15_queues_share_activity_bpf, "K15 (BPF path): without WAKEUP_ALL a creation is "
				       "delivered to one of the queues watching the directory")
{
	cr_assert_eq(two_queues_one_creation(dir, KEVENT_BACKEND_BPF), 1);
}

FS_TEST(k15_every_queue_sees_activity_inotify, "K15 (inotify path): every queue watching the "
					       "directory gets a creation, as with WAKEUP_ALL: "
					       "each has an inotify instance of its own")
{
	cr_assert_eq(two_queues_one_creation(dir, KEVENT_BACKEND_SYSCALL), 2);
}

FS_TEST(k18_entries_read_before_the_wait, "K18, K2: reading the log before the event is taken "
					  "hides it from no waiting thread")
{
	struct kt_getter g;
	struct ukevent reg;
	int q = kt_queue();

	reg = watch(q, dir, NULL, KEVENT_INODE_CREATE, KEVENT_REQ_ET);
	kt_getter_start(&g, q, 1, KT_WAIT_MS);
	kt_getter_parked(&g);
	touch(dir, "f");
	expect_entry(q, &reg, KEVENT_INODE_CREATE, ino_of(dir, "f"), "f");
	cr_assert(kt_join_within(g.th, KT_WAIT_MS), "the waiting thread never returned");
	cr_assert_eq(g.ret, 1, "kevent_get_events = %d", g.ret);
	cr_assert_eq(g.buf[0].event, KEVENT_INODE_CREATE);
	cr_assert_eq(ret_ino(&g.buf[0]), ino_of(dir, "f"));
	kt_done_watching(q, &reg);
}

static unsigned int inotify_queue_max(void)
{
	FILE *f = fopen("/proc/sys/fs/inotify/max_queued_events", "r");
	unsigned int n = 0;

	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%u", &n), 1);
	fclose(f);
	return n;
}

FS_TEST(k24_queue_overflow_reported_inotify, "K24 (inotify path): an overflow of the kernel's "
					     "event queue gives every interest of the queue its "
					     "events and a gap in its log")
{
	static struct kevent_inode_entry log[2048];
	char a[PATH_MAX], b[PATH_MAX];
	struct ukevent ev[16], ra, rb;
	int q = kt_queue(), n, got_a = 0, got_b = 0;
	unsigned int max;

	require_path(q, KEVENT_BACKEND_SYSCALL);
	max = inotify_queue_max();
	if (max > 100000) {
		rm_test_tree();
		cr_skip_test("fs.inotify.max_queued_events is %u: too many files to fill it", max);
	}
	path_of(a, dir, "a");
	path_of(b, dir, "b");
	cr_assert_eq(mkdir(a, 0755), 0);
	cr_assert_eq(mkdir(b, 0755), 0);
	ra = watch(q, a, NULL, KEVENT_INODE_CREATE, KEVENT_REQ_ET);
	rb = watch(q, b, NULL, KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE, KEVENT_REQ_ET);
	/* Nobody reads meanwhile: the queue fills, then the kernel drops what comes. */
	burst(a, "f", (int)max + 16);
	touch(b, "lost");
	while ((n = kt_get(q, 1, 16, ev, KT_QUIET_MS)) > 0) {
		for (int i = 0; i < n; i++) {
			bool is_b = ev[i].id.raw_u64 == rb.id.raw_u64;

			got_a += !is_b;
			got_b += is_b;
			cr_assert_eq(ev[i].event, is_b ? rb.event : ra.event, "event %#x",
				     ev[i].event);
			cr_assert_eq(ev[i].ret_flags, 0);
			/* What was lost is not known: no child is named. */
			cr_assert_eq(ret_ino(&ev[i]), 0);
		}
	}
	cr_assert_eq(got_a, 1, "%d events for the overflowing directory", got_a);
	cr_assert_eq(got_b, 1, "%d events for the quiet one, want the overflow's", got_b);
	n = kevent_inode_entries(q, &rb, log, 8);
	cr_assert_eq(n, 1, "%d entries, want only the gap marker", n);
	cr_assert_eq(log[0].event, 0);
	n = kevent_inode_entries(q, &ra, log, 2048);
	cr_assert_gt(n, 1);
	cr_assert_eq(log[0].event, 0, "want a gap marker first, got event %#x", log[0].event);
	/* It goes on. */
	touch(b, "after");
	expect(q, &rb, KEVENT_INODE_CREATE, ino_of(b, "after"));
	expect_entry(q, &rb, KEVENT_INODE_CREATE, ino_of(b, "after"), "after");
	unwatch(q, &ra);
	unwatch(q, &rb);
	kt_close(q);
}

FS_TEST(k26_instance_goes_with_last_interest_inotify, "K26 (inotify path): a queue holds one "
						      "inotify instance while it has inode "
						      "interests, and none after")
{
	char a[PATH_MAX];
	struct ukevent ra, rb;
	int q = kt_queue(), base;

	require_path(q, KEVENT_BACKEND_SYSCALL);
	path_of(a, dir, "a");
	cr_assert_eq(mkdir(a, 0755), 0);
	base = kt_fd_count();
	ra = watch(q, dir, NULL, KEVENT_INODE_CREATE, KEVENT_REQ_ET);
	rb = watch(q, a, NULL, KEVENT_INODE_CREATE, KEVENT_REQ_ET);
	/* The two descriptors watched, and the instance. */
	cr_assert_eq(kt_fd_count(), base + 3);
	unwatch(q, &ra);
	cr_assert_eq(kt_fd_count(), base + 2);
	unwatch(q, &rb);
	cr_assert_eq(kt_fd_count(), base);
	kt_close(q);
}

Test(inode, k25_bad_input,
     .description = "K25: pipes, sockets, closed descriptors, bad masks "
		    "and bad kevent_inode_entries() arguments fail cleanly")
{
	struct ukevent uk;
	struct kevent_inode_entry e;
	int q, p[2], s;

	q = kt_queue();
	cr_assert_eq(pipe(p), 0);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	kt_ctl_fails(q, KEVENT_CTL_ADD, inode_ev(p[0], KEVENT_INODE_CREATE, 0), EINVAL);
	kt_ctl_fails(q, KEVENT_CTL_ADD, inode_ev(s, KEVENT_INODE_CREATE, 0), EINVAL);
	kt_ctl_fails(q, KEVENT_CTL_ADD, inode_ev(kt_closed_fd(), KEVENT_INODE_CREATE, 0), EBADF);
	/* Not an inode event, and no event at all. */
	kt_ctl_fails(q, KEVENT_CTL_ADD, inode_ev(p[0], 0x100, 0), EINVAL);
	kt_ctl_fails(q, KEVENT_CTL_ADD, inode_ev(p[0], 0, 0), EINVAL);

	uk = inode_ev(p[0], KEVENT_INODE_CREATE, 0);
	cr_assert_eq(kevent_inode_entries(q, NULL, &e, 1), -EINVAL);
	cr_assert_eq(kevent_inode_entries(q, &uk, NULL, 1), -EINVAL);
	cr_assert_eq(kevent_inode_entries(q, &uk, &e, 1), -ENOENT);
	uk.type = KEVENT_SOCKET;
	cr_assert_eq(kevent_inode_entries(q, &uk, &e, 1), -EINVAL);
	uk.type = KEVENT_INODE;
	cr_assert_eq(kevent_inode_entries(kt_closed_fd(), &uk, &e, 1), -EBADF);
	cr_assert_eq(kevent_inode_entries(p[0], &uk, &e, 1), -EINVAL);
	close(p[0]);
	close(p[1]);
	close(s);
	kt_close(q);
}
