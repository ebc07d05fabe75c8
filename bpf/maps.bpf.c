// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The one definition of the maps every program shares (see kevent.bpf.h). */
#define KEV_MAPS_DEFINE
#include "kevent.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
