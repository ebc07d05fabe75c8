// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/* placeholder while being written */
#include "internal.h"
static int kev_stub_add(struct kev_queue *q, struct kev_interest *it) { (void)q; (void)it; return -ENOSYS; }
static void kev_stub_del(struct kev_queue *q, struct kev_interest *it) { (void)q; (void)it; }
const struct kev_source kev_poll_source = { .add = kev_stub_add, .del = kev_stub_del };
const struct kev_source kev_pipe_source = { .add = kev_stub_add, .del = kev_stub_del };
const struct kev_source kev_signal_source = { .add = kev_stub_add, .del = kev_stub_del };
const struct kev_source kev_aio_source = { .add = kev_stub_add, .del = kev_stub_del };
bool kev_fdwatch_alive(struct kev_queue *q, const struct kev_interest *it) { (void)q; (void)it; return true; }
