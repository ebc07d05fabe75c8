/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * libkevent extension to KEVENT_INODE: which entries of a watched directory changed.
 *
 * A ukevent has room for one inode number and no name, and events merge (K12): a burst
 * of 1,000 creations is one CREATE event. Every change to an entry of a watched
 * directory is also logged, with the entry's inode number and name; this call reads that
 * log for one interest, oldest first.
 */
#ifndef KEVENT_INODE_H
#define KEVENT_INODE_H

#include <stdint.h>

#include "kevent.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KEVENT_INODE_NAME_MAX 255

struct kevent_inode_entry {
	uint64_t ino;	   /* the entry's inode number, 0: not known */
	uint32_t event;	   /* one KEVENT_INODE_* bit; 0: entries were lost here, rescan */
	uint32_t name_len; /* 0: the name is not known */
	char name[KEVENT_INODE_NAME_MAX + 1]; /* NUL-terminated */
};

/*
 * Take up to max logged entries of the KEVENT_INODE interest that ev names (its type, id
 * and user, as registered or delivered) into buf. Returns how many, 0 when none is
 * logged; -ENOENT when no such interest is registered, -EINVAL for a bad argument,
 * -EBADF / -EINVAL when kevent_fd is closed / not a queue. An interest keeps up to 1,024
 * entries; older ones are dropped and an entry with event 0 marks the gap.
 */
int kevent_inode_entries(int kevent_fd, const struct ukevent *ev, struct kevent_inode_entry *buf,
			 unsigned int max);

#ifdef __cplusplus
}
#endif

#endif /* KEVENT_INODE_H */
