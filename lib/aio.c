// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/* aio_sendfile() (K22) is not implemented yet: it fails cleanly with -ENOSYS. */
#include "internal.h"

KEV_API long aio_sendfile(int kevent_fd, int sock_fd, int in_fd, off_t offset, size_t count)
{
	(void)kevent_fd;
	(void)sock_fd;
	(void)in_fd;
	(void)offset;
	(void)count;
	return kev_err(-ENOSYS);
}
