// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The library's half of a kernel-side filter (kev_shared.h): how many watched objects hash
 * to each bit, so that a bit is cleared only when the last of them is gone.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

int kev_filter_init(struct kev_filter *f, struct kev_filter_bits *bits)
{
	f->refs = calloc(1U << KEV_FILTER_BITS, sizeof(*f->refs));
	if (!f->refs)
		return -ENOMEM;
	f->bits = bits;
	return 0;
}

void kev_filter_fini(struct kev_filter *f)
{
	free(f->refs);
	f->refs = NULL;
	f->bits = NULL;
}

/*
 * One watched object more (delta > 0) or less on bit h. Callers set the bit before they write
 * the object to the kernel's map and clear it once no interest watches the object, so a
 * program never skips a watched object. Full barrier: the bit is visible before that map
 * write.
 */
void kev_filter_ref(struct kev_filter *f, __u32 h, int delta)
{
	__u64 bit = 1ULL << (h % 64);

	if (delta > 0 && !f->refs[h]++)
		__atomic_fetch_or(&f->bits->w[h / 64], bit, __ATOMIC_SEQ_CST);
	else if (delta < 0 && !--f->refs[h])
		__atomic_fetch_and(&f->bits->w[h / 64], ~bit, __ATOMIC_SEQ_CST);
}
