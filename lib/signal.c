// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * KEVENT_SIGNAL (K23): id.raw[0] = signal number, event KEVENT_SIGNAL_DELIVERY.
 *
 * A disposition belongs to the process but a mask to each thread, and a process-directed
 * signal lands in any thread that does not block it. signalfd only sees signals that every
 * thread blocks, which a library cannot arrange (it does not own the other threads). So the
 * library catches a watched signal with its own handler, whichever thread it lands in: the
 * handler counts the arrival and writes an eventfd (async-signal-safe, no lock) that sits in
 * the epoll set of every queue holding a signal interest. Each interest compares the count
 * with what it has reported; arrivals before a delivery merge into one event (K12), and
 * ret_data[0] is the number of arrivals since the ADD. There is no level state: each
 * arrival is delivered once (like KEVENT_UNOTIFY), and a signal waking a thread asleep in
 * kevent_get_events() ends that wait with -EINTR (K16): the event is there for the next call.
 *
 * Without KEVENT_SIGNAL_NOMASK the previous disposition runs after the handler (a handler,
 * or the default action, or nothing for SIG_IGN); while any interest in the process has
 * NOMASK, it does not run. The first interest in a signal saves its disposition, and
 * unblocks the signal in the calling thread if that thread blocked it (else it could never
 * arrive there); the last one restores both, the mask only when the same thread removes it,
 * since no thread can change another's mask.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

#define KEV_NSIG _NSIG

struct kev_sig {
	unsigned int users;   /* interests in this signal, in every queue */
	unsigned int nomask;  /* of which with KEVENT_SIGNAL_NOMASK */
	struct sigaction old; /* the disposition before the first interest */
	bool unblocked;	      /* the first ADD unblocked it in its thread */
	pthread_t unblocker;
};

static struct {
	pthread_mutex_t lock;
	unsigned int users; /* signal interests in the process: the eventfd lives while > 0 */
	struct kev_sig sig[KEV_NSIG];
} hub = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* What the handler touches: words read and written atomically, never under a lock. */
static __u64 kev_sig_count[KEV_NSIG]; /* arrivals since the process started */
static int kev_sig_chain[KEV_NSIG];   /* run the previous disposition too */
static int kev_sig_fd = -1;	      /* the eventfd every watching queue polls */
static pid_t kev_sig_pid;	      /* the process the handlers work for (not a fork child) */
static int kev_sig_active;	      /* handlers between reading kev_sig_fd and writing it */

/* The default action, from inside the handler: ignore, stop, or end the process. */
static void kev_sig_default(int sig)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t set;

	if (sig == SIGCHLD || sig == SIGCONT || sig == SIGURG || sig == SIGWINCH)
		return;
	if (sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
		kill(getpid(), SIGSTOP);
		return;
	}
	/* Terminate (or dump core) as the kernel would have: raise it again undisturbed. */
	sigaction(sig, &dfl, NULL);
	raise(sig);
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static void kev_sig_previous(int sig, siginfo_t *si, void *uc)
{
	const struct sigaction *old = &hub.sig[sig].old;

	if (old->sa_flags & SA_SIGINFO)
		old->sa_sigaction(sig, si, uc);
	else if (old->sa_handler == SIG_DFL)
		kev_sig_default(sig);
	else if (old->sa_handler != SIG_IGN)
		old->sa_handler(sig);
}

static void kev_sig_handler(int sig, siginfo_t *si, void *uc)
{
	int saved = errno, fd;
	__u64 one = 1;

	/*
	 * A fork() child, between the fork and the moment its fork handler restored the old
	 * dispositions (kev_signal_forget()): the signal is the child's own, as before the ADD.
	 */
	if (getpid() != __atomic_load_n(&kev_sig_pid, __ATOMIC_RELAXED)) {
		kev_sig_previous(sig, si, uc);
		errno = saved;
		return;
	}
	__atomic_add_fetch(&kev_sig_active, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&kev_sig_count[sig], 1, __ATOMIC_SEQ_CST);
	fd = __atomic_load_n(&kev_sig_fd, __ATOMIC_SEQ_CST);
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
		/* Cannot fail short of a full counter; the count is what queues read anyway. */
	}
	__atomic_sub_fetch(&kev_sig_active, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&kev_sig_chain[sig], __ATOMIC_ACQUIRE))
		kev_sig_previous(sig, si, uc);
	errno = saved;
}

/*
 * A fault a thread raises on itself (SIGSEGV, SIGBUS, SIGFPE, SIGILL) cannot be kept from
 * the process: the instruction runs again and faults again. NOMASK on them is refused.
 */
static bool kev_sig_synchronous(__u64 sig)
{
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL;
}

static int kev_sig_number(const struct kev_interest *it)
{
	__u64 id = it->uk.id.raw_u64 & ~KEVENT_SIGNAL_NOMASK;

	if (id < 1 || id >= KEV_NSIG || id == SIGKILL || id == SIGSTOP)
		return -EINVAL;
	if ((it->uk.id.raw_u64 & KEVENT_SIGNAL_NOMASK) && kev_sig_synchronous(id))
		return -EINVAL;
	return (int)id;
}

static bool kev_sig_nomask(const struct kev_interest *it)
{
	return it->uk.id.raw_u64 & KEVENT_SIGNAL_NOMASK;
}

/* Unblock sig in this thread, remembering whether it was blocked. */
static void kev_sig_unblock(struct kev_sig *s, int sig)
{
	sigset_t set, old;

	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_UNBLOCK, &set, &old);
	s->unblocked = sigismember(&old, sig);
	s->unblocker = pthread_self();
}

/* The first interest in sig: save the disposition and install the handler. */
static int kev_sig_catch(int sig)
{
	struct kev_sig *s = &hub.sig[sig];
	struct sigaction sa = { .sa_sigaction = kev_sig_handler };
	bool handler;

	if (sigaction(sig, NULL, &s->old))
		return -EINVAL; /* a number the C library keeps for itself */
	handler = (s->old.sa_flags & SA_SIGINFO) ||
		  (s->old.sa_handler != SIG_DFL && s->old.sa_handler != SIG_IGN);
	sa.sa_mask = s->old.sa_mask;
	/*
	 * Interrupt system calls only where the application's own handler did. Children of a
	 * process that ignored SIGCHLD (or asked SA_NOCLDWAIT) are still reaped by the kernel,
	 * and SA_NOCLDSTOP still holds: watching SIGCHLD must not leave zombies.
	 */
	sa.sa_flags = SA_SIGINFO | (s->old.sa_flags & (SA_ONSTACK | SA_NODEFER | SA_NOCLDSTOP)) |
		      (!handler || (s->old.sa_flags & SA_RESTART) ? SA_RESTART : 0);
	if (sig == SIGCHLD && (s->old.sa_handler == SIG_IGN || (s->old.sa_flags & SA_NOCLDWAIT)))
		sa.sa_flags |= SA_NOCLDWAIT;
	if (sigaction(sig, &sa, NULL))
		return -errno;
	kev_sig_unblock(s, sig);
	return 0;
}

/* The last interest in sig has gone: the disposition and the mask as they were. */
static void kev_sig_restore(int sig)
{
	struct kev_sig *s = &hub.sig[sig];
	sigset_t set;

	sigaction(sig, &s->old, NULL);
	if (s->unblocked && pthread_equal(s->unblocker, pthread_self())) {
		sigemptyset(&set);
		sigaddset(&set, sig);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
	}
	s->unblocked = false;
}

static void kev_sig_update_chain(int sig)
{
	const struct kev_sig *s = &hub.sig[sig];

	__atomic_store_n(&kev_sig_chain[sig], s->users && !s->nomask, __ATOMIC_RELEASE);
}

/* The eventfd lives while the process has signal interests. */
static int kev_hub_get(void)
{
	int fd;

	if (hub.users++)
		return 0;
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0) {
		hub.users--;
		return -errno;
	}
	__atomic_store_n(&kev_sig_pid, getpid(), __ATOMIC_RELAXED);
	__atomic_store_n(&kev_sig_fd, fd, __ATOMIC_SEQ_CST);
	return 0;
}

static void kev_hub_put(void)
{
	int fd = kev_sig_fd;

	if (--hub.users)
		return;
	/* No handler is ours any more; wait out one that read the descriptor before this. */
	__atomic_store_n(&kev_sig_fd, -1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&kev_sig_active, __ATOMIC_SEQ_CST))
		sched_yield();
	close(fd);
}

static int kev_sig_join(int sig, bool nomask)
{
	struct kev_sig *s = &hub.sig[sig];
	int err = kev_hub_get();

	if (err)
		return err;
	if (!s->users && (err = kev_sig_catch(sig))) {
		kev_hub_put();
		return err;
	}
	s->users++;
	s->nomask += nomask;
	kev_sig_update_chain(sig);
	return 0;
}

static void kev_sig_leave(int sig, bool nomask)
{
	struct kev_sig *s = &hub.sig[sig];

	s->users--;
	s->nomask -= nomask;
	kev_sig_update_chain(sig);
	if (!s->users)
		kev_sig_restore(sig);
	kev_hub_put();
}

/*
 * fork() child (fork.c): the handlers the parent's interests installed go back to what
 * they replaced, so that NOMASK in the parent never swallows a signal sent to the child.
 * sigaction() and close() are async-signal-safe, as a fork handler must be.
 */
void kev_signal_forget(void)
{
	for (int sig = 1; sig < KEV_NSIG; sig++) {
		if (hub.sig[sig].users)
			sigaction(sig, &hub.sig[sig].old, NULL);
		__atomic_store_n(&kev_sig_chain[sig], 0, __ATOMIC_RELAXED);
	}
	if (hub.users)
		close(kev_sig_fd);
	__atomic_store_n(&kev_sig_fd, -1, __ATOMIC_SEQ_CST);
	memset(&hub, 0, sizeof(hub));
	pthread_mutex_init(&hub.lock, NULL);
}

static int kev_signal_add(struct kev_queue *q, struct kev_interest *it)
{
	int sig = kev_sig_number(it), err;

	if (sig < 0)
		return sig;
	/* Counted before the handler goes in: a signal pending while blocked is reported. */
	it->priv_u64 = __atomic_load_n(&kev_sig_count[sig], __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&hub.lock);
	err = kev_sig_join(sig, kev_sig_nomask(it));
	if (!err) {
		it->fd = kev_sig_fd;
		err = kev_fdwatch_add(q, it, EPOLLIN);
		if (err)
			kev_sig_leave(sig, kev_sig_nomask(it));
	}
	pthread_mutex_unlock(&hub.lock);
	return err;
}

static void kev_signal_del(struct kev_queue *q, struct kev_interest *it)
{
	kev_fdwatch_del(q, it);
	pthread_mutex_lock(&hub.lock);
	kev_sig_leave(kev_sig_number(it), kev_sig_nomask(it));
	pthread_mutex_unlock(&hub.lock);
}

/* The eventfd was written: report the arrivals this interest has not reported yet. */
static __u32 kev_signal_classify(struct kev_interest *it, short revents)
{
	int sig = kev_sig_number(it);
	__u32 n = (__u32)(__atomic_load_n(&kev_sig_count[sig], __ATOMIC_SEQ_CST) - it->priv_u64);

	(void)revents;
	if (n == it->ret_data[0])
		return 0;
	it->ret_data[0] = n;
	return KEVENT_SIGNAL_DELIVERY;
}

const struct kev_source kev_signal_source = {
	.events = KEVENT_SIGNAL_DELIVERY,
	.add = kev_signal_add,
	.del = kev_signal_del,
	.classify = kev_signal_classify,
};
