// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * A source family's programs are loaded and attached by the first interest of its kind, not
 * by kevent_init(): a process pays for no verification and no hook it does not use, and
 * holds few descriptors (lib/kernel.c). A family that cannot load fails its interests, not
 * the queue.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "helpers.h"
#include "sk_storage_map.h"
#include "src_helpers.h"

TestSuite(bpf_attach, .init = kt_require_bpf, .timeout = KT_TEST_TIMEOUT);

/* The program a descriptor of this process is, or attaches (link); false for neither. */
static bool prog_of_fd(int fd, struct bpf_prog_info *info)
{
	char path[64], target[64];
	struct bpf_link_info link = {};
	__u32 len = sizeof(link);
	ssize_t n;
	int pfd;
	bool ok;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return false;
	target[n] = '\0';
	len = sizeof(*info);
	if (!strcmp(target, "anon_inode:bpf-prog"))
		return !bpf_obj_get_info_by_fd(fd, info, &len);
	len = sizeof(link);
	if (strcmp(target, "anon_inode:bpf_link") || bpf_obj_get_info_by_fd(fd, &link, &len))
		return false;
	pfd = bpf_prog_get_fd_by_id(link.prog_id);
	if (pfd < 0)
		return false;
	len = sizeof(*info);
	ok = !bpf_obj_get_info_by_fd(pfd, info, &len);
	close(pfd);
	return ok;
}

/*
 * How many descriptors of this process are the program called name (NULL: any program) or
 * a link attaching it. Programs the library loads and does not keep a descriptor of are
 * gone from the kernel, so this is what the process has loaded.
 */
static int own_progs(const char *name)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d))) {
		struct bpf_prog_info info = {};

		/* The kernel keeps 15 characters of a program's name. */
		if (de->d_name[0] != '.' && prog_of_fd(atoi(de->d_name), &info))
			n += !name || !strncmp(info.name, name, sizeof(info.name) - 1);
	}
	closedir(d);
	return n;
}

/* Is a link of this process attaching the program called name? */
static bool own_link(const char *name)
{
	char path[300], target[64];
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	bool found = false;

	cr_assert_not_null(d);
	while (!found && (de = readdir(d))) {
		struct bpf_prog_info info = {};
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		found = !strcmp(target, "anon_inode:bpf_link") &&
			prog_of_fd(atoi(de->d_name), &info) &&
			!strncmp(info.name, name, sizeof(info.name) - 1);
	}
	closedir(d);
	return found;
}

Test(bpf_attach, k26_k17_families_load_with_their_first_interest,
     .description = "K26, K17-K19: UNOTIFY and POLL load no program; the first socket, timer "
		    "and inode interest each load and attach their own family only")
{
	int q, p[2], rx, tx, dir;

	kt_require_bpf_source("socket");
	kt_require_bpf_source("inode");
	kt_require_bpf_source("timer");
	q = kt_queue();
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	kt_unotify_add(q, 1, 0);
	kt_add(q, kt_fd_ev(KEVENT_POLL, p[0], POLLIN, 0));
	cr_assert_eq(own_progs(NULL), 0, "a queue without kernel-fed interests loaded %d programs",
		     own_progs(NULL));

	kt_udp_pair(&rx, &tx);
	kt_add(q, kt_sock_ev(rx, KEVENT_SOCKET_RECV, 0));
	cr_assert(own_link("kev_sk_data_ready"), "a socket interest did not attach its programs");
	cr_assert(own_progs("kev_sock_probe"), "the socket family's probe is not loaded");
	cr_assert_eq(own_progs("kev_timer_arm"), 0, "a socket interest loaded the timer family");
	cr_assert_eq(own_progs("kev_ctime_set"), 0, "a socket interest loaded the inode family");

	kt_add(q, kt_fd_ev(KEVENT_TIMER, 1, KEVENT_TIMER_FIRED, 0));
	cr_assert(own_progs("kev_timer_arm"), "a timer did not load the timer family");
	cr_assert_eq(own_progs("kev_ctime_set"), 0, "a timer loaded the inode family");

	dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(dir, 0);
	kt_add(q, kt_fd_ev(KEVENT_INODE, dir, KEVENT_INODE_CREATE, 0));
	cr_assert(own_link("kev_ctime_set"), "an inode interest did not attach its programs");
	kt_close(q);
	cr_assert_eq(own_progs(NULL), 0, "programs left after the last queue closed");
	close(dir);
	close(p[0]);
	close(p[1]);
	close(rx);
	close(tx);
}

Test(bpf_attach, k13_level_reads_attach_with_first_level_watch,
     .description = "K13: the read hook (sock_recv_length) runs for no read on the machine "
		    "while the process watches sockets edge-triggered only; the first level-mode "
		    "watch (here a MODIFY from ET) attaches it, and level delivery then stops "
		    "exactly when a read empties the socket")
{
	struct ukevent uk, ev[8];
	int q, rx, tx;

	kt_require_bpf_source("socket");
	q = kt_udp_watched(&rx, &tx, KEVENT_REQ_ET);
	cr_assert(own_link("kev_sk_data_ready"), "a socket interest did not attach its programs");
	cr_assert_not(own_link("kev_sk_recv"), "an edge-triggered watch attached the read hook");

	uk = kt_sock_ev(rx, KEVENT_SOCKET_RECV, 0);
	kt_done(q, KEVENT_CTL_MODIFY, uk);
	cr_assert(own_link("kev_sk_recv"), "a level-mode watch did not attach the read hook");

	kt_send(tx, 8);
	kt_send(tx, 8);
	kt_next(q, KEVENT_SOCKET, (__u64)rx);
	cr_assert_eq(recv(rx, ev, sizeof(ev), 0), 8);
	/* One datagram left: level mode delivers it again, with no new edge. */
	kt_next(q, KEVENT_SOCKET, (__u64)rx);
	cr_assert_eq(recv(rx, ev, sizeof(ev), 0), 8);
	kt_expect_none(q);
	kt_close(q);
	cr_assert_not(own_link("kev_sk_recv"), "the read hook stayed after the last queue");
	close(rx);
	close(tx);
}

Test(bpf_attach, k2_first_queue_descriptors,
     .description = "K2 (descriptor footprint): the first kevent_init holds 5 descriptors, a "
		    "further queue 2, and nothing stays after the last kevent_close")
{
	int base = kt_fd_count(), q, q2;

	q = kt_queue();
	cr_assert_leq(kt_fd_count() - base, 5, "the first queue holds %d descriptors",
		      kt_fd_count() - base);
	q2 = kt_queue();
	cr_assert_eq(kt_fd_count() - base, 5 + 2, "a further queue holds %d descriptors",
		     kt_fd_count() - base - 5);
	kt_close(q2);
	kt_close(q);
	cr_assert_eq(kt_fd_count(), base);
}

/*
 * A shortage of the moment: every descriptor but `room` taken (by duplicates of stdin),
 * under a limit far above what the BPF side needs. Returns how many; fd_free() gives them
 * back. (A low RLIMIT_NOFILE is another matter: k26_low_descriptor_limit_takes_fallback.)
 */
static int fd_fill[4096];

static int fd_take_all_but(int room)
{
	struct rlimit rl = { 1024, 1024 };
	int n = 0;

	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur > 1024)
		rl.rlim_cur = 1024; /* as many as fit in fd_fill */
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0, "setrlimit: %m");
	while (n < 4096 && (fd_fill[n] = fcntl(0, F_DUPFD_CLOEXEC, 0)) >= 0)
		n++;
	cr_assert_gt(n, room, "too few descriptors to take");
	while (room-- > 0)
		close(fd_fill[--n]);
	return n;
}

static void fd_free(int n)
{
	while (n > 0)
		close(fd_fill[--n]);
}

Test(bpf_attach, k26_emfile_fails_only_the_family,
     .description = "K26, K25: out of descriptors, kevent_init is -EMFILE; a family that "
		    "cannot load fails its interest with -EMFILE, the queue stays usable, and "
		    "the next interest of the family loads it")
{
	struct ukevent uk;
	int q, rx, tx, taken;

	kt_require_bpf_source("socket");
	taken = fd_take_all_but(1);
	cr_assert_eq(kevent_init(NULL, 0, 0), -EMFILE);
	cr_assert_eq(errno, EMFILE);
	fd_free(taken);

	q = kt_queue();
	kt_udp_pair(&rx, &tx);
	taken = fd_take_all_but(2);
	uk = kt_sock_ev(rx, KEVENT_SOCKET_RECV, 0);
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_ADD, 1, &uk), 1);
	kt_assert_failed(&uk, EMFILE);
	cr_assert_eq(own_progs(NULL), 0, "a failed load left programs behind");
	kt_unotify_add(q, 7, 0);
	kt_unotify_ready(q, 7);
	kt_next(q, KEVENT_UNOTIFY, 7);

	fd_free(taken);
	kt_add(q, kt_sock_ev(rx, KEVENT_SOCKET_RECV, 0));
	cr_assert_eq(kevent_backend(q, KEVENT_SOCKET), KEVENT_BACKEND_BPF,
		     "a shortage of the moment made sockets give the BPF path up");
	kt_send(tx, 1);
	kt_next(q, KEVENT_SOCKET, (__u32)rx);
	kt_close_pair(q, rx, tx);
}

/*
 * The kernel answers EAGAIN to a storage update that meets the teardown of the socket's
 * storage: here another map's element, the only one on each socket, going as that map is
 * freed by a kernel worker while the ADDs run on the same sockets. The rounds make the
 * meeting likely: before the library retried, 1 to 6 of the 96,000 ADDs failed with -EAGAIN
 * in each of five runs.
 */
Test(bpf_attach, k17_add_while_another_storage_goes,
     .description = "K17: ADD of sockets whose storage from another map is being torn down "
		    "at that moment registers every one of them",
     .timeout = 60)
{
	enum { N = 12000, ROUNDS = 8, BATCH = 1000 };
	int *fd = calloc(N, sizeof(*fd)), q = kt_queue(), failed = 0, err = 0, s;
	struct ukevent *uk = calloc(N, sizeof(*uk));
	char val[64] = { 0 };

	cr_assert(fd && uk);
	kt_want_fds(N + 256);
	/* The socket family loads first, so that the ADDs follow the map's close at once. */
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	kt_add(q, kt_sock_ev(s, KEVENT_SOCKET_RECV, 0));
	for (int r = 0; r < ROUNDS; r++) {
		int map = kt_sk_storage_map("kt_foreign", sizeof(val));

		cr_assert_geq(map, 0, "a socket storage map: %s", strerror(-map));

		for (int i = 0; i < N; i++) {
			fd[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			cr_assert_geq(fd[i], 0, "socket: %m");
			cr_assert_eq(bpf_map_update_elem(map, &fd[i], val, BPF_NOEXIST), 0, "%m");
			uk[i] = kt_sock_ev(fd[i], KEVENT_SOCKET_RECV, 0);
		}
		close(map);
		for (int i = 0; i < N; i += BATCH)
			cr_assert_eq(kevent_ctl(q, KEVENT_CTL_ADD, BATCH, uk + i), BATCH);
		for (int i = 0; i < N; i++) {
			if (uk[i].ret_flags) {
				failed++;
				err = (int)uk[i].ret_data[1];
			}
		}
		for (int i = 0; i < N; i += BATCH)
			kevent_ctl(q, KEVENT_CTL_REMOVE, BATCH, uk + i);
		for (int i = 0; i < N; i++)
			close(fd[i]);
	}
	cr_assert_eq(failed, 0, "%d of %d ADDs failed (the last with %d)", failed, N * ROUNDS, err);
	close(s);
	kt_close(q);
	free(uk);
	free(fd);
}
