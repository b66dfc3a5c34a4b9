/* Adaptive polling; see pace.h. */
#include "config.h"

#include <stdlib.h>

#include "pace.h"
#include "xmalloc.h"

#define PACE_MAX_DUE 4096

static void
swap(uint64_t *a, uint64_t *b)
{
	uint64_t t = *a;

	*a = *b;
	*b = t;
}

void
pace_due(struct pace *p, uint64_t due_ms)
{
	size_t i;

	if (p->ndue >= PACE_MAX_DUE)
		return; /* a hint: the ceiling still finds it */
	if (p->ndue == p->cap) {
		p->cap = p->cap == 0 ? 16 : p->cap * 2;
		p->due = xreallocarray(p->due, p->cap, sizeof(*p->due));
	}
	i = p->ndue++;
	p->due[i] = due_ms;
	while (i > 0 && p->due[(i - 1) / 2] > p->due[i]) {
		swap(&p->due[(i - 1) / 2], &p->due[i]);
		i = (i - 1) / 2;
	}
}

static void
pop(struct pace *p)
{
	size_t i = 0;

	p->due[0] = p->due[--p->ndue];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < p->ndue && p->due[l] < p->due[m])
			m = l;
		if (r < p->ndue && p->due[r] < p->due[m])
			m = r;
		if (m == i)
			return;
		swap(&p->due[i], &p->due[m]);
		i = m;
	}
}

uint64_t
pace_next(struct pace *p, uint64_t base_ms, uint64_t max_ms, bool busy, uint64_t now_ms)
{
	uint64_t wait = base_ms;
	unsigned i;

	if (busy || p->found)
		p->quiet = 0;
	else if (p->quiet < 64)
		p->quiet++;
	p->found = false;
	/* The first quiet poll keeps the base: work often comes in bursts. */
	for (i = 1; i < p->quiet && wait < max_ms; i++)
		wait *= 2;
	if (wait > max_ms)
		wait = max_ms;
	while (p->ndue > 0 && p->due[0] <= now_ms)
		pop(p);
	if (p->ndue > 0 && p->due[0] - now_ms < wait)
		wait = p->due[0] - now_ms;
	return wait;
}

void
pace_sooner(sd_event_source *src, uint64_t at_usec)
{
	uint64_t t;

	if (src != NULL && sd_event_source_get_time(src, &t) >= 0 && at_usec < t)
		sd_event_source_set_time(src, at_usec);
}

void
pace_free(struct pace *p)
{
	free(p->due);
	p->due = NULL;
	p->ndue = p->cap = 0;
}
