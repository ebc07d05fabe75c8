// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * KEVENT_UNOTIFY (K20): the application's own notifications. Any id, any event mask; it
 * fires through KEVENT_CTL_READY or KEVENT_REQ_READY at ADD. There is no object behind it,
 * so no level state: each READY is delivered once, and READYs before delivery merge.
 */
#include "internal.h"

static int kev_unotify_add(struct kev_queue *q, struct kev_interest *it)
{
	(void)q;
	(void)it;
	return 0;
}

static void kev_unotify_del(struct kev_queue *q, struct kev_interest *it)
{
	(void)q;
	(void)it;
}

const struct kev_source kev_unotify_source = {
	.events = 0, /* any mask */
	.add = kev_unotify_add,
	.del = kev_unotify_del,
};
