// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Linked into the ThreadSanitizer build of the Criterion suite only (make tsan).
 *
 * Criterion's runner maps its shared arena (BoxFort's bxf_arena_init) at a random address
 * between 0x200000000000 and 0x600000000000, drawn with rand_r(), and gives up after a few
 * tries that find the place taken. ThreadSanitizer reserves nearly all of that range for
 * its shadow and metadata, so the runner aborts at start ("Could not initialize
 * inheritable arena"). Criterion is the only user of rand_r() in the suite; this one,
 * which the executable's definition makes Criterion's, draws from the free hole just above
 * where position-independent executables are loaded: 16 places 4 GiB apart from
 * 0x566000000000, below the 0x568000000000 where the reserved range resumes (an arena
 * placed there would have no shadow), a different one at each try.
 */
#include <stdlib.h>

int rand_r(unsigned int *seed)
{
	static unsigned int tries;
	unsigned int n = __atomic_fetch_add(&tries, 1, __ATOMIC_RELAXED);

	(void)seed;
	/* BoxFort: base = 0x200000000000 + (r & 0x3fffff) * 16 MiB */
	return (int)(0x366000 + 0x100 * (n % 16));
}
