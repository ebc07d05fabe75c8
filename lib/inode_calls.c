// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * What each system call does to the inodes it timestamps, for the inode programs: they read
 * the number of the call a task is in from its registers and look it up in kev_inode_calls
 * (bpf/inode.bpf.c), which this writes once, before they attach. The numbers are those of
 * <sys/syscall.h>, the architecture's the library is compiled for; in a 64-bit build they
 * are the kernel's own, and the BPF code holds none. A call the architecture lacks (open,
 * mkdir, rename... on arm64, which has only the *at forms) is left out by its #ifdef.
 */
#include <errno.h>
#include <sys/syscall.h>

#include <bpf/bpf.h>

#include "internal.h"
#include "inode_calls.h"

/*
 * From 424 on, a new system call has the same number on every architecture but alpha; the
 * C library may not know the recent ones yet (glibc 2.36 does not).
 */
#if !defined(__alpha__)
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef SYS_setxattrat
#define SYS_setxattrat 463
#endif
#ifndef SYS_removexattrat
#define SYS_removexattrat 466
#endif
#endif

/* One line a call: clang-format would spread each initializer over several. */
/* clang-format off */

/* Which arguments hold the paths: (new) path, its directory descriptor, old path, its. */
#define KEV_WRITE { KEV_OP_WRITE, -1, -1, -1, -1, { 0 } }
#define KEV_ATTR  { KEV_OP_ATTR, -1, -1, -1, -1, { 0 } }
#define KEV_CALL(op, path, dfd, opath, odfd) { op, path, dfd, opath, odfd, { 0 } }

/*
 * Indexed by number: a number past KEV_INODE_CALLS does not build, one listed twice warns
 * (-Woverride-init). A 32-bit library may run on a 64-bit kernel, whose numbers are not
 * its own: it lists nothing, and its inode events come coarser and unnamed, not wrong.
 */
static const struct kev_call kev_calls[KEV_INODE_CALLS] = {
#if defined(__LP64__)
	/* Data: written, truncated, allocated. */
	[SYS_write] = KEV_WRITE,
	[SYS_pwrite64] = KEV_WRITE,
	[SYS_writev] = KEV_WRITE,
	[SYS_pwritev] = KEV_WRITE,
	[SYS_pwritev2] = KEV_WRITE,
	[SYS_sendfile] = KEV_WRITE,
	[SYS_splice] = KEV_WRITE,
	[SYS_copy_file_range] = KEV_WRITE,
	[SYS_truncate] = KEV_WRITE,
	[SYS_ftruncate] = KEV_WRITE,
	[SYS_fallocate] = KEV_WRITE,

	/* Metadata: mode, owner, times, extended attributes, flags (ioctl: chattr). */
	[SYS_ioctl] = KEV_ATTR,
	[SYS_fchmod] = KEV_ATTR,
	[SYS_fchmodat] = KEV_ATTR,
	[SYS_fchmodat2] = KEV_ATTR,
	[SYS_fchown] = KEV_ATTR,
	[SYS_fchownat] = KEV_ATTR,
	[SYS_utimensat] = KEV_ATTR,
	[SYS_setxattr] = KEV_ATTR,
	[SYS_lsetxattr] = KEV_ATTR,
	[SYS_fsetxattr] = KEV_ATTR,
	[SYS_setxattrat] = KEV_ATTR,
	[SYS_removexattr] = KEV_ATTR,
	[SYS_lremovexattr] = KEV_ATTR,
	[SYS_fremovexattr] = KEV_ATTR,
	[SYS_removexattrat] = KEV_ATTR,
#ifdef SYS_chmod
	[SYS_chmod] = KEV_ATTR,
#endif
#ifdef SYS_chown
	[SYS_chown] = KEV_ATTR,
#endif
#ifdef SYS_lchown
	[SYS_lchown] = KEV_ATTR,
#endif
#ifdef SYS_utime
	[SYS_utime] = KEV_ATTR,
#endif
#ifdef SYS_utimes
	[SYS_utimes] = KEV_ATTR,
#endif
#ifdef SYS_futimesat
	[SYS_futimesat] = KEV_ATTR,
#endif

	/* An entry made: (dfd, path), (target, dfd, path). */
	[SYS_openat] = KEV_CALL(KEV_OP_CREATE, 1, 0, -1, -1),
	[SYS_openat2] = KEV_CALL(KEV_OP_CREATE, 1, 0, -1, -1),
	[SYS_mkdirat] = KEV_CALL(KEV_OP_CREATE, 1, 0, -1, -1),
	[SYS_mknodat] = KEV_CALL(KEV_OP_CREATE, 1, 0, -1, -1),
	[SYS_symlinkat] = KEV_CALL(KEV_OP_CREATE, 2, 1, -1, -1),
#ifdef SYS_open
	[SYS_open] = KEV_CALL(KEV_OP_CREATE, 0, -1, -1, -1),
#endif
#ifdef SYS_creat
	[SYS_creat] = KEV_CALL(KEV_OP_CREATE, 0, -1, -1, -1),
#endif
#ifdef SYS_mkdir
	[SYS_mkdir] = KEV_CALL(KEV_OP_CREATE, 0, -1, -1, -1),
#endif
#ifdef SYS_mknod
	[SYS_mknod] = KEV_CALL(KEV_OP_CREATE, 0, -1, -1, -1),
#endif
#ifdef SYS_symlink
	[SYS_symlink] = KEV_CALL(KEV_OP_CREATE, 1, -1, -1, -1), /* (target, path) */
#endif

	/* A name added to an existing inode: (odfd, old, dfd, new), (old, new). */
	[SYS_linkat] = KEV_CALL(KEV_OP_LINK, 3, 2, -1, -1),
#ifdef SYS_link
	[SYS_link] = KEV_CALL(KEV_OP_LINK, 1, -1, -1, -1),
#endif

	/* An entry removed: (dfd, path), (path). */
	[SYS_unlinkat] = KEV_CALL(KEV_OP_REMOVE, 1, 0, -1, -1),
#ifdef SYS_unlink
	[SYS_unlink] = KEV_CALL(KEV_OP_REMOVE, 0, -1, -1, -1),
#endif
#ifdef SYS_rmdir
	[SYS_rmdir] = KEV_CALL(KEV_OP_REMOVE, 0, -1, -1, -1),
#endif

	/* An entry moved: (odfd, old, dfd, new), (old, new). */
	[SYS_renameat2] = KEV_CALL(KEV_OP_RENAME, 3, 2, 1, 0),
#ifdef SYS_renameat
	[SYS_renameat] = KEV_CALL(KEV_OP_RENAME, 3, 2, 1, 0),
#endif
#ifdef SYS_rename
	[SYS_rename] = KEV_CALL(KEV_OP_RENAME, 1, -1, 0, -1),
#endif
#endif /* __LP64__ */
};

/* clang-format on */

void kev_inode_calls_write(int map_fd, int *err)
{
	static const struct kev_call other = KEV_CALL(KEV_OP_OTHER, -1, -1, -1, -1);
	struct kev_call calls[KEV_INODE_CALLS];
	__u32 keys[KEV_INODE_CALLS], n = KEV_INODE_CALLS;

	if (*err)
		return;
	for (__u32 i = 0; i < n; i++) {
		keys[i] = i;
		/* Zero is KEV_OP_OTHER with argument 0: a number not listed reads no argument. */
		calls[i] = kev_calls[i].op == KEV_OP_OTHER ? other : kev_calls[i];
	}
	/* One system call for the whole table. */
	if (bpf_map_update_batch(map_fd, keys, calls, &n, NULL))
		*err = -errno;
}
