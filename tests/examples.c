// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The examples in examples/ build and run (K9, K13, K17): loop.c is the event loop that
 * libkevent(7) points a port at; it checks every echo itself and exits 0 only if all came.
 */
#include <spawn.h>
#include <sys/wait.h>

#include "helpers.h"

TestSuite(examples, .timeout = KT_TEST_TIMEOUT);

extern char **environ;

Test(examples, k9_k17_minimal_event_loop_runs,
     .description = "K9/K13/K17: examples/loop.c (ALWAYS_QUEUE, MODIFY for SEND, close "
		    "without REMOVE) serves its clients and exits 0")
{
	char *argv[] = { KT_BUILD_DIR "/loop", NULL };
	int status;
	pid_t pid;

	cr_assert_eq(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ), 0, "spawn %s",
		     argv[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: status %#x", argv[0],
		  status);
}
