// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * fork(), posix_spawn() and system() (K6, and K23 for the signal handlers a child inherits).
 * A queue belongs to the process that made it: whatever a child does with an inherited
 * queue, the parent keeps every event and registration, and the child can make its own.
 *
 * A child cannot assert through Criterion: it reports the line of its first failed check
 * in its exit status (0: every check held), and the parent asserts on that.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src_helpers.h"

TestSuite(fork, .timeout = KT_TEST_TIMEOUT);

extern char **environ;

/* In a child: exit with the failing line, so that the parent's assertion names it. */
#define KT_CHILD_CHECK(cond)                                                                 \
	do {                                                                                   \
		if (!(cond))                                                                   \
			_exit(__LINE__ & 0xff ? __LINE__ & 0xff : 1);                          \
	} while (0)

/* Wait up to KT_WAIT_MS for pid; returns its wait status, killing it if it hangs. */
static int kt_reap(pid_t pid)
{
	int status = 0;

	for (int i = 0; i < KT_WAIT_MS; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		kt_sleep_ms(1);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	cr_assert_fail("child %d did not finish within %d ms", (int)pid, KT_WAIT_MS);
	return status;
}

static void kt_child_ok(pid_t pid)
{
	int status = kt_reap(pid);

	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "child failed its check at line %d (mod 256) (status %#x)",
		  WIFEXITED(status) ? WEXITSTATUS(status) : -1, status);
}

/* Over KT_QUIET_MS, nothing is delivered for (type, id); other events may come. */
static void kt_assert_no_event_for(int q, __u32 type, __u64 id)
{
	struct ukevent ev[16];
	int n = kt_get(q, 16, 16, ev, KT_QUIET_MS);

	cr_assert_eq(kt_count(ev, n < 0 ? 0 : n, type, id), 0,
		     "an event for type %u id %llu reached the parent", type,
		     (unsigned long long)id);
}

/* A parent queue with a TCP, a UDP, a pipe and a timer interest, all registered. */
struct kt_family {
	int q, a, b, urx, utx, p[2];
};

static void kt_family_open(struct kt_family *f)
{
	struct ukevent t = { .type = KEVENT_TIMER, .event = KEVENT_TIMER_FIRED };

	f->q = kt_queue();
	kt_tcp_pair(&f->a, &f->b);
	kt_udp_pair(&f->urx, &f->utx);
	kt_pipe(f->p);
	kt_add(f->q, kt_sock_ev(f->a, KEVENT_SOCKET_RECV, KEVENT_REQ_ET));
	kt_add(f->q, kt_sock_ev(f->urx, KEVENT_SOCKET_RECV, KEVENT_REQ_ET));
	kt_add(f->q, kt_poll_ev(f->p[0], POLLIN, KEVENT_REQ_ET));
	t.id.raw[1] = 20 * 1000 * 1000; /* 20 ms, periodic */
	t.user_u64 = 77;
	kt_add(f->q, t);
}

/* Every source of the family fires, and the parent gets each one. */
static void kt_family_fires(struct kt_family *f)
{
	bool tcp = false, udp = false, pipe = false, timer = false;
	struct ukevent ev[16];

	kt_send(f->b, 1);
	kt_send(f->utx, 1);
	cr_assert_eq(write(f->p[1], "x", 1), 1);
	for (int tries = 0; tries < 20 && !(tcp && udp && pipe && timer); tries++) {
		int n = kt_get(f->q, 1, 16, ev, KT_WAIT_MS);

		for (int i = 0; i < n; i++) {
			tcp |= ev[i].type == KEVENT_SOCKET && ev[i].id.raw[0] == (__u32)f->a;
			udp |= ev[i].type == KEVENT_SOCKET && ev[i].id.raw[0] == (__u32)f->urx;
			pipe |= ev[i].type == KEVENT_POLL;
			timer |= ev[i].type == KEVENT_TIMER;
		}
	}
	cr_assert(tcp && udp && pipe && timer, "parent lost events: tcp %d udp %d pipe %d timer %d",
		  tcp, udp, pipe, timer);
}

static void kt_family_close(struct kt_family *f)
{
	close(f->a);
	close(f->b);
	close(f->urx);
	close(f->utx);
	close(f->p[0]);
	close(f->p[1]);
	kt_close(f->q);
}

Test(fork, k6_inherited_queue_is_ebadf_in_child,
     .description = "K6: in a fork() child every call on an inherited queue is -EBADF; "
		    "kevent_close() closes the child's descriptor and nothing else")
{
	struct kt_family f;
	struct ukevent uk = kt_unotify_ev(1, 0), ev[4];
	struct kevent_stats st;
	pid_t pid;

	kt_family_open(&f);
	kt_unotify_queued(f.q, 5); /* ready in userspace at the fork */
	kt_send(f.b, 1);	   /* and a record in the kernel ring */
	kt_wait_readable(f.q);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		KT_CHILD_CHECK(kevent_get_events(f.q, 0, 4, kt_ts(0), ev, 0) == -EBADF);
		KT_CHILD_CHECK(kevent_ctl(f.q, KEVENT_CTL_ADD, 1, &uk) == -EBADF);
		KT_CHILD_CHECK(kevent_ctl(f.q, KEVENT_CTL_READY, 0, NULL) == -EBADF);
		KT_CHILD_CHECK(kevent_stats(f.q, &st) == -EBADF);
		KT_CHILD_CHECK(kevent_commit(f.q, 0, 0) == -EBADF);
		KT_CHILD_CHECK(kevent_close(f.q) == 0);
		KT_CHILD_CHECK(fcntl(f.q, F_GETFD) < 0);
		_exit(0);
	}
	kt_child_ok(pid);
	cr_assert_eq(kevent_stats(f.q, &st), 0);
	cr_assert_eq(st.interests, 5, "the child's calls changed the parent's interests: %llu",
		     (unsigned long long)st.interests);
	kt_next(f.q, KEVENT_UNOTIFY, 5);
	kt_family_fires(&f);
	kt_family_close(&f);
}

/*
 * In this process: descriptors of the kinds the library opens (an eventfd kick, a timerfd,
 * an inotify instance, BPF maps, programs and links), whatever their number.
 */
static int kt_library_fds(void)
{
	static const char *const kinds[] = { "[eventfd]", "[timerfd]", "inotify", "bpf-map",
					     "bpf-prog", "bpf_link" };
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char path[300], target[128];
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = 0;
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
			n += strstr(target, kinds[k]) != NULL;
	}
	closedir(d);
	return n;
}

Test(fork, k6_child_holds_none_of_the_parents_library_descriptors,
     .description = "K6: a fork() child closes the library's descriptors of the parent's "
		    "queues (kick, timerfd, inotify, BPF objects): only the queue descriptor stays")
{
	int before = kt_library_fds(); /* the test runner's own (eventfds) */
	char tmp[] = "/tmp/kt-fork-XXXXXX";
	struct kt_family f;
	int dir;
	pid_t pid;

	kt_family_open(&f);
	cr_assert_not_null(mkdtemp(tmp));
	dir = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(dir, 0);
	kt_add(f.q, kt_fd_ev(KEVENT_INODE, dir, KEVENT_INODE_CREATE, 0)); /* inotify, or BPF */
	cr_assert_gt(kt_library_fds(), before, "the parent holds no library descriptor to check");
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		KT_CHILD_CHECK(kt_library_fds() == before);
		KT_CHILD_CHECK(fcntl(f.q, F_GETFD) >= 0);
		_exit(0);
	}
	kt_child_ok(pid);
	kt_family_fires(&f);
	kt_family_close(&f);
	close(dir);
	rmdir(tmp);
}

Test(fork, k6_child_close_keeps_parent_registrations,
     .description = "K6: a child that releases its inherited queue (event_reinit) takes "
		    "nothing from the parent: sockets, pipes and timers keep firing")
{
	struct kt_family f;
	pid_t pid;

	kt_family_open(&f);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		KT_CHILD_CHECK(kevent_close(f.q) == 0);
		close(f.a); /* the child lets go of its copies too, as a child would */
		close(f.urx);
		close(f.p[0]);
		_exit(0);
	}
	kt_child_ok(pid);
	kt_family_fires(&f);
	kt_family_close(&f);
}

Test(fork, k6_child_makes_its_own_queue,
     .description = "K6: a child makes a queue of its own and gets its events; the parent "
		    "sees none of them and keeps its own")
{
	struct kt_family f;
	int sv[2];
	pid_t pid;

	kt_family_open(&f);
	kt_unix_pair(SOCK_STREAM, sv);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		int q = kevent_init(NULL, 0, 0);
		struct ukevent uk = kt_sock_ev(sv[0], KEVENT_SOCKET_RECV, 0), ev[4];
		int n;

		KT_CHILD_CHECK(q >= 0);
		KT_CHILD_CHECK(kevent_ctl(q, KEVENT_CTL_ADD, 1, &uk) == 1 && uk.ret_flags == 0);
		KT_CHILD_CHECK(write(sv[1], "x", 1) == 1);
		n = kevent_get_events(q, 1, 4, kt_ts(KT_WAIT_MS), ev, 0);
		KT_CHILD_CHECK(n == 1 && ev[0].id.raw[0] == (__u32)sv[0]);
		KT_CHILD_CHECK(kevent_close(q) == 0);
		_exit(0);
	}
	kt_child_ok(pid);
	kt_family_fires(&f);
	kt_assert_no_event_for(f.q, KEVENT_SOCKET, (__u64)sv[0]);
	close(sv[0]);
	close(sv[1]);
	kt_family_close(&f);
}

/* Descriptors this process has open, as a bitmap over the first 1024 numbers. */
static void kt_open_fds(unsigned char open[1024])
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	cr_assert_not_null(d);
	memset(open, 0, 1024);
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] != '.' && fd != dirfd(d) && fd < 1024)
			open[fd] = 1;
	}
	closedir(d);
}

Test(fork, k6_every_library_descriptor_is_close_on_exec,
     .description = "K6: every descriptor the library opens (queue, BPF object, rings, the "
		    "inode log, the signal eventfd) is close-on-exec, so exec'd children get none")
{
	unsigned char before[1024], after[1024];
	struct ukevent ino = kt_fd_ev(KEVENT_INODE, -1, KEVENT_INODE_CREATE, 0);
	int q, sv[2], dir, p[2];

	kt_open_fds(before);
	q = kt_queue();
	kt_unix_pair(SOCK_STREAM, sv);
	kt_pipe(p);
	dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(dir, 0);
	ino.id.raw[0] = (__u32)dir;
	kt_add(q, ino);
	kt_add(q, kt_sock_ev(sv[0], KEVENT_SOCKET_RECV | KEVENT_SOCKET_SEND,
			     KEVENT_REQ_ALWAYS_QUEUE));
	kt_add(q, kt_poll_ev(p[0], POLLIN, 0));
	kt_add(q, kt_signal_ev(SIGUSR2, false, 0));
	kt_open_fds(after);
	for (int fd = 0; fd < 1024; fd++) {
		if (!after[fd] || before[fd] || fd == sv[0] || fd == sv[1] || fd == p[0] ||
		    fd == p[1])
			continue;
		cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC, "descriptor %d is not close-on-exec",
			  fd);
	}
	cr_assert_eq(system("exit 0"), 0, "system() with a queue open");
	close(dir);
	close(p[0]);
	close(p[1]);
	kt_close_pair(q, sv[0], sv[1]);
}

Test(fork, k23_nomask_handler_not_inherited,
     .description = "K23/K6: a fork() child does not inherit the library's handler: SIGUSR1 "
		    "watched with NOMASK in the parent still terminates the child")
{
	int q = kt_queue(), status;
	pid_t pid;

	signal(SIGUSR1, SIG_DFL); /* terminate: what the child must get back */
	kt_add(q, kt_signal_ev(SIGUSR1, true, 0));
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		for (;;)
			pause();
	}
	kill(pid, SIGUSR1);
	status = kt_reap(pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGUSR1,
		  "the child survived SIGUSR1 (status %#x): it kept the parent's NOMASK handler",
		  status);
	kt_expect_none(q);
	kt_close(q);
}

Test(fork, k6_posix_spawn_parent_unaffected,
     .description = "K6: posix_spawn() and system() children leave the parent's queue, "
		    "registrations and pending events as they were")
{
	char *argv[] = { "sh", "-c", "exit 3", NULL };
	struct ukevent uk;
	int a, b, q = kt_queue(), status;
	pid_t pid;

	kt_tcp_pair(&a, &b);
	kt_add(q, kt_sock_ev(a, KEVENT_SOCKET_RECV, 0));
	kt_send(b, 1);
	cr_assert_eq(posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ), 0);
	status = kt_reap(pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 3);
	cr_assert_eq(WEXITSTATUS(system("exit 4")), 4);
	uk = kt_next(q, KEVENT_SOCKET, (__u64)a);
	cr_assert_eq(uk.event, KEVENT_SOCKET_RECV);
	kt_close_pair(q, a, b);
}
