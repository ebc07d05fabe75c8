/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/* A circular doubly-linked list with the node inside the element, as in the kernel. */
#ifndef KEV_LIST_H
#define KEV_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct kev_list {
	struct kev_list *next, *prev;
};

#define kev_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void kev_list_init(struct kev_list *h)
{
	h->next = h->prev = h;
}

static inline bool kev_list_empty(const struct kev_list *h)
{
	return h->next == h;
}

static inline void kev_list_add_tail(struct kev_list *n, struct kev_list *h)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

/* Unlinks and leaves the node pointing at itself, so a second del is harmless. */
static inline void kev_list_del(struct kev_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	kev_list_init(n);
}

/* Moves every node of from to the tail of to. */
static inline void kev_list_splice_tail(struct kev_list *from, struct kev_list *to)
{
	if (kev_list_empty(from))
		return;
	from->next->prev = to->prev;
	to->prev->next = from->next;
	from->prev->next = to;
	to->prev = from->prev;
	kev_list_init(from);
}

#endif /* KEV_LIST_H */
