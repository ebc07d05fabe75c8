/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
#ifndef KEV_INODE_CALLS_H
#define KEV_INODE_CALLS_H

/*
 * Write what each system call does into the inode object's kev_inode_calls (map_fd), once,
 * before its programs attach (lib/inode_calls.c). Sticky: nothing once *err is set.
 */
void kev_inode_calls_write(int map_fd, int *err);

#endif /* KEV_INODE_CALLS_H */
