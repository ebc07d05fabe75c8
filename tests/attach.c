// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * A source's programs are attached by the first interest of its kind, not by kevent_init():
 * a process pays for no hook it does not use (lib/kernel.c, kev_kernel_attach()).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "helpers.h"

TestSuite(attach, .init = kt_require_root, .timeout = KT_TEST_TIMEOUT);

/* The id of this process's own copy of the program called name (0: none). */
static __u32 own_prog_id(const char *name)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	__u32 id = 0;

	cr_assert_not_null(d);
	while (!id && (de = readdir(d))) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		char path[300], target[64];
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		/* The kernel keeps 15 characters of a program's name. */
		if (!strcmp(target, "anon_inode:bpf-prog") &&
		    !bpf_obj_get_info_by_fd(atoi(de->d_name), &info, &len) &&
		    !strncmp(info.name, name, sizeof(info.name) - 1))
			id = info.id;
	}
	closedir(d);
	cr_assert_neq(id, 0, "%s is not loaded in this process", name);
	return id;
}

/* Is any BPF link of the machine attaching program prog_id? */
static bool attached(__u32 prog_id)
{
	bool found = false;

	for (__u32 id = 0; !found && !bpf_link_get_next_id(id, &id);) {
		struct bpf_link_info info = {};
		__u32 len = sizeof(info);
		int fd = bpf_link_get_fd_by_id(id);

		if (fd < 0)
			continue; /* gone meanwhile */
		found = !bpf_obj_get_info_by_fd(fd, &info, &len) && info.prog_id == prog_id;
		close(fd);
	}
	return found;
}

Test(attach, k17_k18_programs_attach_with_their_first_interest,
     .description = "K17, K18: socket and inode programs run only once an interest of their kind exists")
{
	int q = kt_queue(), rx, tx, dir;
	__u32 sock = own_prog_id("kev_sk_data_ready"), ino = own_prog_id("kev_ctime_set");

	cr_assert_not(attached(sock), "socket programs attached by kevent_init alone");
	cr_assert_not(attached(ino), "inode programs attached by kevent_init alone");
	kt_udp_pair(&rx, &tx);
	kt_add(q, kt_sock_ev(rx, KEVENT_SOCKET_RECV, 0));
	cr_assert(attached(sock), "a socket interest did not attach the socket programs");
	cr_assert_not(attached(ino), "a socket interest attached the inode programs");
	dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(dir, 0);
	kt_add(q, kt_fd_ev(KEVENT_INODE, dir, KEVENT_INODE_CREATE, 0));
	cr_assert(attached(ino), "an inode interest did not attach the inode programs");
	close(dir);
	kt_close_pair(q, rx, tx);
}
