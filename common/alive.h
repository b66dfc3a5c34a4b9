/*
 * A liveness token: callbacks that may come back after their owner is freed (a Redis answer, a reload
 * replacing the owner) hold the token instead of the owner. The owner holds one reference and ends it when
 * it is freed; a callback's release then answers NULL, and the last release frees the token.
 */
#ifndef CRMB_ALIVE_H
#define CRMB_ALIVE_H

#include <stdlib.h>

#include "common/xmalloc.h"

struct alive {
	void *owner; /* NULL once the owner is freed */
	unsigned refs;
};

/* The owner's token, with the owner's own reference. */
static inline struct alive *
alive_new(void *owner)
{
	struct alive *a = xcalloc(1, sizeof(*a));

	a->owner = owner;
	a->refs = 1;
	return a;
}

/* A reference for a pending callback. */
static inline struct alive *
alive_hold(struct alive *a)
{
	a->refs++;
	return a;
}

/* Drops one reference; returns the owner, or NULL if it is gone. */
static inline void *
alive_release(struct alive *a)
{
	void *owner = a->owner;

	if (--a->refs == 0)
		free(a);
	return owner;
}

/* The owner is being freed: its reference goes, and later releases answer NULL. */
static inline void
alive_end(struct alive *a)
{
	a->owner = NULL;
	alive_release(a);
}

#endif
