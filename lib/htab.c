// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
#include <errno.h>
#include <stdlib.h>

#include "htab.h"

#define KEV_HTAB_MIN 16

int kev_htab_init(struct kev_htab *t)
{
	t->buckets = calloc(KEV_HTAB_MIN, sizeof(*t->buckets));
	t->mask = KEV_HTAB_MIN - 1;
	t->count = 0;
	return t->buckets ? 0 : -ENOMEM;
}

void kev_htab_free(struct kev_htab *t)
{
	free(t->buckets);
	t->buckets = NULL;
	t->count = 0;
}

struct kev_hnode *kev_htab_find(const struct kev_htab *t, uint64_t hash, kev_hmatch_fn match,
				const void *key)
{
	struct kev_hnode *n;

	for (n = t->buckets[hash & t->mask]; n; n = n->next)
		if (n->hash == hash && match(n, key))
			return n;
	return NULL;
}

static int kev_htab_grow(struct kev_htab *t)
{
	uint32_t size = (t->mask + 1) * 2, i;
	struct kev_hnode **b = calloc(size, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (i = 0; i <= t->mask; i++) {
		struct kev_hnode *n = t->buckets[i], *next;

		for (; n; n = next) {
			next = n->next;
			n->next = b[n->hash & (size - 1)];
			b[n->hash & (size - 1)] = n;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->mask = size - 1;
	return 0;
}

int kev_htab_insert(struct kev_htab *t, struct kev_hnode *node)
{
	struct kev_hnode **head;

	/* Keep chains short: grow at load factor 1. */
	if (t->count > t->mask && kev_htab_grow(t))
		return -ENOMEM;
	head = &t->buckets[node->hash & t->mask];
	node->next = *head;
	*head = node;
	t->count++;
	return 0;
}

void kev_htab_remove(struct kev_htab *t, struct kev_hnode *node)
{
	struct kev_hnode **p = &t->buckets[node->hash & t->mask];

	for (; *p; p = &(*p)->next) {
		if (*p == node) {
			*p = node->next;
			t->count--;
			return;
		}
	}
}

/* Visit the nodes of bucket i; returns how many. */
static uint32_t kev_htab_bucket(struct kev_htab *t, uint32_t i,
				void (*fn)(struct kev_hnode *node, void *arg), void *arg)
{
	struct kev_hnode *n = t->buckets[i], *next;
	uint32_t seen = 0;

	for (; n; n = next, seen++) {
		next = n->next;
		fn(n, arg);
	}
	return seen;
}

void kev_htab_each(struct kev_htab *t, void (*fn)(struct kev_hnode *node, void *arg), void *arg)
{
	for (uint32_t i = 0; t->buckets && i <= t->mask; i++)
		kev_htab_bucket(t, i, fn, arg);
}

void kev_htab_scan(struct kev_htab *t, uint32_t *cursor, uint32_t buckets, uint32_t nodes,
		   void (*fn)(struct kev_hnode *node, void *arg), void *arg)
{
	uint32_t seen = 0;

	for (; t->buckets && buckets-- && seen < nodes; *cursor = (*cursor + 1) & t->mask)
		seen += kev_htab_bucket(t, *cursor & t->mask, fn, arg);
}
