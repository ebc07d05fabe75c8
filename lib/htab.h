/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * A chained hash table of intrusive nodes. The caller hashes and compares; the table only
 * keeps buckets and grows them, so one implementation serves every key shape.
 */
#ifndef KEV_HTAB_H
#define KEV_HTAB_H

#include <stdbool.h>
#include <stdint.h>

struct kev_hnode {
	struct kev_hnode *next;
	uint64_t hash;
};

struct kev_htab {
	struct kev_hnode **buckets;
	uint32_t mask; /* buckets - 1; buckets is a power of two */
	uint32_t count;
};

/* Returns true when node matches the key the caller is looking for. */
typedef bool (*kev_hmatch_fn)(const struct kev_hnode *node, const void *key);

int kev_htab_init(struct kev_htab *t);
void kev_htab_free(struct kev_htab *t);
struct kev_hnode *kev_htab_find(const struct kev_htab *t, uint64_t hash, kev_hmatch_fn match,
				const void *key);
/* Inserts node (node->hash already set); -ENOMEM if the table could not grow. */
int kev_htab_insert(struct kev_htab *t, struct kev_hnode *node);
void kev_htab_remove(struct kev_htab *t, struct kev_hnode *node);

/* Visit every node; fn may remove the node it is given. */
void kev_htab_each(struct kev_htab *t, void (*fn)(struct kev_hnode *node, void *arg), void *arg);
/*
 * A table walked a little at a time: visit the buckets from *cursor on (wrapping) until
 * `nodes` nodes or `buckets` buckets were seen, and move the cursor past them. fn may
 * remove the node it is given.
 */
void kev_htab_scan(struct kev_htab *t, uint32_t *cursor, uint32_t buckets, uint32_t nodes,
		   void (*fn)(struct kev_hnode *node, void *arg), void *arg);

static inline uint64_t kev_hash64(uint64_t x)
{
	/* splitmix64 finaliser: cheap and mixes every input bit into the low bits. */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

#endif /* KEV_HTAB_H */
