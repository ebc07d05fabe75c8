// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * KEVENT_SIGNAL (K23): real signals, with and without KEVENT_SIGNAL_NOMASK, from this
 * thread and from others, merging (K12), ONESHOT (K13), REMOVE restoring the disposition
 * and the mask, and bad signal numbers (K25). Criterion runs each test in its own process,
 * so dispositions changed here do not leak into other tests.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src_helpers.h"

TestSuite(signal, .timeout = KT_TEST_TIMEOUT);

static volatile sig_atomic_t handled;

static void count_handler(int sig)
{
	(void)sig;
	handled++;
}

static void install_counter(int sig)
{
	struct sigaction sa = { .sa_handler = count_handler };

	handled = 0;
	cr_assert_eq(sigaction(sig, &sa, NULL), 0, "sigaction: %m");
}

/* Block sig in this thread, as a program that has not handed it to the queue would. */
static void kt_block(int sig)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, sig);
	cr_assert_eq(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
}

/* A queue watching sig (NOMASK or not). */
static int kt_signal_queue(int sig, bool nomask, __u32 req_flags)
{
	int q = kt_queue();

	kt_add(q, kt_signal_ev(sig, nomask, req_flags));
	return q;
}

static struct ukevent signal_event(int q, int sig, bool nomask)
{
	struct ukevent ev[8];
	__u64 id = (__u32)sig | (nomask ? KEVENT_SIGNAL_NOMASK : 0);
	int n = kt_get_nointr(q, 1, 8, ev, KT_WAIT_MS);

	cr_assert_geq(n, 1, "kevent_get_events = %d, want the signal", n);
	return kt_only(ev, n, KEVENT_SIGNAL, id);
}

Test(signal, k23_nomask_queue_only, .description = "K23: with NOMASK the signal is reported through the queue and the handler does not run")
{
	struct ukevent got;
	int q;

	install_counter(SIGUSR1);
	q = kt_signal_queue(SIGUSR1, true, 0);
	kt_expect_none(q);
	cr_assert_eq(raise(SIGUSR1), 0);
	got = signal_event(q, SIGUSR1, true);
	cr_assert_eq(got.event, KEVENT_SIGNAL_DELIVERY);
	cr_assert_eq(got.ret_flags, 0);
	cr_assert_eq(got.ret_data[0], 1, "arrivals %u", got.ret_data[0]);
	cr_assert_eq(handled, 0, "the process's handler ran");
	kt_expect_none(q); /* no level state: delivered once */
	kt_close(q);
}

Test(signal, k23_without_nomask_both, .description = "K23: without NOMASK both the handler and the queue see the signal")
{
	int q;

	install_counter(SIGUSR2);
	q = kt_signal_queue(SIGUSR2, false, 0);
	cr_assert_eq(raise(SIGUSR2), 0);
	cr_assert_eq(signal_event(q, SIGUSR2, false).event, KEVENT_SIGNAL_DELIVERY);
	cr_assert_eq(handled, 1, "handler ran %d times", (int)handled);
	kt_close(q);
}

Test(signal, k23_nomask_survives_sigterm, .description = "K23: NOMASK on SIGTERM: reported, and the default action (terminate) does not happen")
{
	int q;

	q = kt_signal_queue(SIGTERM, true, 0);
	cr_assert_eq(kill(getpid(), SIGTERM), 0);
	cr_assert_eq(signal_event(q, SIGTERM, true).event, KEVENT_SIGNAL_DELIVERY);
	kt_close(q);
}

Test(signal, k23_without_nomask_default_terminates, .signal = SIGTERM, .description = "K23: without NOMASK the default action still happens: SIGTERM ends the process")
{
	kt_signal_queue(SIGTERM, false, 0); /* never closed: SIGTERM must end the process first */
	raise(SIGTERM);
	cr_assert_fail("still alive after SIGTERM");
}

Test(signal, k23_default_ignore_kept, .description = "K23: without NOMASK a signal whose default is to be ignored (SIGWINCH) is only reported")
{
	int q;

	q = kt_signal_queue(SIGWINCH, false, 0);
	cr_assert_eq(raise(SIGWINCH), 0);
	cr_assert_eq(signal_event(q, SIGWINCH, false).event, KEVENT_SIGNAL_DELIVERY);
	kt_close(q);
}

Test(signal, k12_k23_arrivals_merge, .description = "K12/K23: three signals before delivery merge into one event counting three")
{
	struct ukevent got;
	int q;

	q = kt_signal_queue(SIGUSR1, true, 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(raise(SIGUSR1), 0);
	got = signal_event(q, SIGUSR1, true);
	cr_assert_eq(got.ret_data[0], 3, "arrivals %u", got.ret_data[0]);
	kt_expect_none(q);
	cr_assert_eq(raise(SIGUSR1), 0);
	cr_assert_eq(signal_event(q, SIGUSR1, true).ret_data[0], 4, "counted since ADD");
	kt_close(q);
}

struct killer {
	pthread_t th;
	int sig;
};

static void *killer_main(void *arg)
{
	struct killer *k = arg;

	kt_sleep_ms(50);
	kill(getpid(), k->sig);
	return NULL;
}

Test(signal, k23_from_another_thread, .description = "K23: a process-directed signal sent while the queue's thread waits is reported")
{
	struct killer k = { .sig = SIGUSR1 };
	int q;

	q = kt_signal_queue(SIGUSR1, true, 0);
	kt_thread_start(&k.th, killer_main, &k);
	cr_assert_eq(signal_event(q, SIGUSR1, true).event, KEVENT_SIGNAL_DELIVERY);
	cr_assert(kt_join_within(k.th, KT_WAIT_MS));
	kt_close(q);
}

Test(signal, k23_two_queues, .description = "K23: every queue watching a signal gets it")
{
	int a, b;

	a = kt_queue();
	b = kt_queue();
	kt_add(a, kt_signal_ev(SIGUSR1, true, 0));
	kt_add(b, kt_signal_ev(SIGUSR1, true, 0));
	cr_assert_eq(raise(SIGUSR1), 0);
	cr_assert_eq(signal_event(a, SIGUSR1, true).ret_data[0], 1);
	cr_assert_eq(signal_event(b, SIGUSR1, true).ret_data[0], 1);
	kt_close(a);
	kt_close(b);
}

Test(signal, k23_remove_restores, .description = "K23: REMOVE restores the previous handler and the thread's mask")
{
	struct sigaction now;
	sigset_t cur;
	int q;

	install_counter(SIGUSR1);
	kt_block(SIGUSR1);
	q = kt_signal_queue(SIGUSR1, true, 0);
	sigaction(SIGUSR1, NULL, &now);
	cr_assert_neq(now.sa_handler, count_handler, "the library's handler is not in place");
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	cr_assert_not(sigismember(&cur, SIGUSR1), "ADD did not unblock the signal");
	cr_assert_eq(raise(SIGUSR1), 0);
	cr_assert_eq(signal_event(q, SIGUSR1, true).event, KEVENT_SIGNAL_DELIVERY);
	kt_done(q, KEVENT_CTL_REMOVE, kt_signal_ev(SIGUSR1, true, 0));
	sigaction(SIGUSR1, NULL, &now);
	cr_assert_eq(now.sa_handler, count_handler, "previous handler not restored");
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	cr_assert(sigismember(&cur, SIGUSR1), "previous mask not restored");
	cr_assert_eq(handled, 0);
	kt_close(q);
}

Test(signal, k23_pending_reported_at_add, .description = "K23: a signal pending while blocked is reported once ADD unblocks it")
{
	int q;

	kt_block(SIGUSR2);
	cr_assert_eq(raise(SIGUSR2), 0); /* pending */
	q = kt_signal_queue(SIGUSR2, true, 0);
	cr_assert_eq(signal_event(q, SIGUSR2, true).ret_data[0], 1);
	kt_close(q);
}

Test(signal, k13_k23_oneshot_restores, .description = "K13/K23: ONESHOT: one event, then the interest and the library's handler are gone")
{
	struct sigaction now;
	int q;

	install_counter(SIGUSR1);
	q = kt_signal_queue(SIGUSR1, true, KEVENT_REQ_ONESHOT);
	cr_assert_eq(raise(SIGUSR1), 0);
	cr_assert_eq(signal_event(q, SIGUSR1, true).event, KEVENT_SIGNAL_DELIVERY);
	kt_assert_gone(q, kt_signal_ev(SIGUSR1, true, 0));
	sigaction(SIGUSR1, NULL, &now);
	cr_assert_eq(now.sa_handler, count_handler);
	cr_assert_eq(raise(SIGUSR1), 0);
	cr_assert_eq(handled, 1);
	kt_expect_none(q);
	kt_close(q);
}

Test(signal, k23_close_restores, .description = "K23/K2: closing the queue restores the disposition")
{
	struct sigaction now;
	int q;

	install_counter(SIGUSR1);
	q = kt_signal_queue(SIGUSR1, true, 0);
	kt_close(q);
	sigaction(SIGUSR1, NULL, &now);
	cr_assert_eq(now.sa_handler, count_handler);
}

Test(signal, k25_bad_numbers,
     .description = "K25/K23: SIGKILL, SIGSTOP, 0, numbers past the last signal, the C "
		    "library's own, stray id bits, NOMASK on a synchronous fault: EINVAL")
{
	static const __u64 ids[] = { SIGKILL, SIGSTOP, 0, 65, 1000, 32, SIGUSR1 | (1ULL << 40),
				     SIGKILL | KEVENT_SIGNAL_NOMASK, SIGSEGV | KEVENT_SIGNAL_NOMASK,
				     SIGBUS | KEVENT_SIGNAL_NOMASK, SIGFPE | KEVENT_SIGNAL_NOMASK,
				     SIGILL | KEVENT_SIGNAL_NOMASK };
	enum { N = sizeof(ids) / sizeof(ids[0]) };
	struct ukevent uk[N];
	int q;

	q = kt_queue();
	for (int i = 0; i < N; i++) {
		uk[i] = kt_signal_ev(0, false, 0);
		uk[i].id.raw_u64 = ids[i];
	}
	cr_assert_eq(kevent_ctl(q, KEVENT_CTL_ADD, N, uk), N);
	for (int i = 0; i < N; i++)
		kt_assert_failed(&uk[i], EINVAL);
	kt_close(q);
}

Test(signal, k23_sigchld_ignored_children_reaped,
     .description = "K23: watching SIGCHLD where it was ignored keeps the kernel reaping the "
		    "children (no zombies), and the queue still reports them")
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	int q = kt_queue(), status;
	struct ukevent ev[4];
	pid_t pid;

	cr_assert_eq(sigaction(SIGCHLD, &ign, &old), 0);
	kt_add(q, kt_signal_ev(SIGCHLD, false, 0));
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid)
		_exit(0);
	cr_assert_eq(kt_get_nointr(q, 1, 4, ev, KT_WAIT_MS), 1);
	cr_assert_eq(kt_only(ev, 1, KEVENT_SIGNAL, SIGCHLD).ret_data[0], 1);
	/* Reaped already: no child is left to wait for. */
	cr_assert_eq(waitpid(pid, &status, 0), -1, "a zombie was left");
	cr_assert_eq(errno, ECHILD);
	kt_close(q);
	sigaction(SIGCHLD, &old, NULL);
}
