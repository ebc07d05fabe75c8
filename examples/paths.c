// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * paths: which path each source the BPF side can serve takes in a process like this one
 * (kevent_backend(3), K26): one line per source, "socket bpf", "inode syscall", ... Run it
 * as the user and with the capabilities an application will have. tests/run-suite.sh asks
 * it which passes this machine can run.
 *
 * Exit status: 0 every source on the BPF path, 2 some on their syscall fallback, 1 error.
 */
#include <stdio.h>
#include <string.h>

#include <kevent.h>

static const struct {
	unsigned int type;
	const char *name;
} sources[] = {
	{ KEVENT_SOCKET, "socket" },
	{ KEVENT_INODE, "inode" },
	{ KEVENT_TIMER, "timer" },
};

int main(void)
{
	int q = kevent_init(NULL, 0, 0), status = 0;

	if (q < 0) {
		fprintf(stderr, "paths: kevent_init: %s\n", strerror(-q));
		return 1;
	}
	for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
		int b = kevent_backend(q, sources[i].type);

		if (b < 0) {
			fprintf(stderr, "paths: kevent_backend(%s): %s\n", sources[i].name,
				strerror(-b));
			return 1;
		}
		printf("%s %s\n", sources[i].name, b == KEVENT_BACKEND_BPF ? "bpf" : "syscall");
		if (b != KEVENT_BACKEND_BPF)
			status = 2;
	}
	kevent_close(q);
	return status;
}
