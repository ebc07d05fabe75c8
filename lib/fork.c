// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * fork() (K6). A queue belongs to the process that made it. The child of a fork() inherits
 * copies of the library's memory and descriptors, but the BPF object, the slots and every
 * ring are the parent's, shared with it through those descriptors: a child that used them
 * would take the parent's events and rewrite its registrations. So the child gives them up:
 *
 * - the shared mappings are MADV_DONTFORK (kev_mmap()): the child does not even have them;
 * - at the fork, the child moves to a new generation; a queue made in an older generation
 *   answers -EBADF to every call but kevent_close(), which closes the child's copies of
 *   its descriptors and touches nothing of the parent's;
 * - the child's first kevent_init() loads a BPF object of its own;
 * - the signal handlers the library installed go back to what they replaced, so that
 *   KEVENT_SIGNAL_NOMASK in the parent never swallows a signal sent to the child.
 *
 * posix_spawn() and system() run no fork handlers and exec at once: every descriptor of the
 * library is close-on-exec, and exec resets the handlers.
 */
#include <pthread.h>
#include <sys/mman.h>
#include <sys/types.h>

#include "internal.h"

static unsigned int kev_generation;

unsigned int kev_fork_gen(void)
{
	return __atomic_load_n(&kev_generation, __ATOMIC_RELAXED);
}

/*
 * In the child, one thread left: locks the parent's other threads held at the fork stay
 * held forever, so every module starts again from its initial state.
 */
static void kev_fork_child(void)
{
	__atomic_add_fetch(&kev_generation, 1, __ATOMIC_RELAXED);
	kev_queue_forget();
	kev_kernel_forget();
	kev_socket_forget();
	kev_inode_forget_all();
	kev_signal_forget();
}

static void kev_fork_register(void)
{
	pthread_atfork(NULL, NULL, kev_fork_child);
}

void kev_fork_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, kev_fork_register);
}

void *kev_mmap(int fd, size_t len, int prot, off_t off)
{
	void *p = mmap(NULL, len, prot, MAP_SHARED, fd, off);

	if (p == MAP_FAILED)
		return NULL;
	/* The parent's, not the child's: see the top of this file. */
	madvise(p, len, MADV_DONTFORK);
	return p;
}
