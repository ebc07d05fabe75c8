// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Names of the ABI's numbers (ukevent.h, kev_shared.h), as both output formats print them:
 * the constant without its prefix (KEVENT_INODE_CREATE is "CREATE").
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "keventctl.h"

static const char *const kc_types[KEVENT_MAX] = {
	[KEVENT_SOCKET] = "socket",	    [KEVENT_INODE] = "inode",
	[KEVENT_TIMER] = "timer",	    [KEVENT_POLL] = "poll",
	[KEVENT_NAIO] = "naio",		    [KEVENT_AIO] = "aio",
	[KEVENT_PIPE] = "pipe",		    [KEVENT_SIGNAL] = "signal",
	[KEVENT_POSIX_TIMER] = "posix_timer", [KEVENT_UNOTIFY] = "unotify",
};

static const struct kc_bit kc_socket_bits[] = {
	{ KEVENT_SOCKET_RECV, "RECV" },
	{ KEVENT_SOCKET_ACCEPT, "ACCEPT" },
	{ KEVENT_SOCKET_SEND, "SEND" },
	{ 0, NULL },
};

static const struct kc_bit kc_inode_bits[] = {
	{ KEVENT_INODE_CREATE, "CREATE" },
	{ KEVENT_INODE_REMOVE, "REMOVE" },
	{ KEVENT_INODE_MODIFY, "MODIFY" },
	{ KEVENT_INODE_ATTRIB, "ATTRIB" },
	{ 0, NULL },
};

static const struct kc_bit kc_timer_bits[] = {
	{ KEVENT_TIMER_FIRED, "FIRED" },
	{ 0, NULL },
};

static const struct kc_bit kc_aio_bits[] = {
	{ KEVENT_AIO_BIO, "BIO" },
	{ 0, NULL },
};

static const struct kc_bit kc_signal_bits[] = {
	{ KEVENT_SIGNAL_DELIVERY, "DELIVERY" },
	{ 0, NULL },
};

static const struct kc_bit kc_poll_bits[] = {
	{ POLLIN, "POLLIN" },	  { POLLPRI, "POLLPRI" },     { POLLOUT, "POLLOUT" },
	{ POLLERR, "POLLERR" },	  { POLLHUP, "POLLHUP" },     { POLLNVAL, "POLLNVAL" },
	{ POLLRDNORM, "POLLRDNORM" }, { POLLRDBAND, "POLLRDBAND" }, { POLLWRNORM, "POLLWRNORM" },
	{ POLLWRBAND, "POLLWRBAND" }, { POLLMSG, "POLLMSG" },	  { POLLRDHUP, "POLLRDHUP" },
	{ 0, NULL },
};

/* No names: bits print in hex. */
static const struct kc_bit kc_no_bits[] = { { 0, NULL } };

const struct kc_bit kc_ret_bits[] = {
	{ KEVENT_RET_BROKEN, "BROKEN" },
	{ KEVENT_RET_DONE, "DONE" },
	{ KEVENT_RET_COPY_FAILED, "COPY_FAILED" },
	{ 0, NULL },
};

const struct kc_bit kc_watch_bits[] = {
	{ KEV_WATCH_WAKEUP_ALL, "WAKEUP_ALL" },
	{ KEV_WATCH_LEVEL, "LEVEL" },
	{ 0, NULL },
};

const char *kc_type_name(__u32 type)
{
	return type < KEVENT_MAX && kc_types[type] ? kc_types[type] : "unknown";
}

const struct kc_bit *kc_event_bits(__u32 type)
{
	switch (type) {
	case KEVENT_SOCKET:
	case KEVENT_PIPE:
		return kc_socket_bits;
	case KEVENT_INODE:
		return kc_inode_bits;
	case KEVENT_TIMER:
		return kc_timer_bits;
	case KEVENT_POLL:
		return kc_poll_bits;
	case KEVENT_AIO:
		return kc_aio_bits;
	case KEVENT_SIGNAL:
		return kc_signal_bits;
	default:
		return kc_no_bits;
	}
}

const char *kc_bits_str(const struct kc_bit *t, __u32 mask, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (; t->name; t++) {
		if (!(mask & t->bit))
			continue;
		off += (size_t)snprintf(buf + off, off < len ? len - off : 0, "%s%s",
					off ? "," : "", t->name);
		mask &= ~t->bit;
	}
	if (mask)
		off += (size_t)snprintf(buf + off, off < len ? len - off : 0, "%s%#x",
					off ? "," : "", mask);
	if (!off)
		snprintf(buf, len, "-");
	return buf;
}
