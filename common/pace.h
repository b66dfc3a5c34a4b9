/*
 * The pace of a poll loop: as often as its base interval while it finds
 * work, doubling up to a ceiling while it finds none, and never past a time
 * it knows something falls due (a coalesced turn, a reply's retry). A loop
 * that is told about new work (a webhook, a queued reply) runs at once
 * anyway; the ceiling bounds how late it notices work it was not told about
 * (another instance's, a lease that ran out).
 */
#ifndef CRMB_PACE_H
#define CRMB_PACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

struct pace {
	unsigned quiet; /* polls in a row that found nothing */
	bool found; /* set by the loop when a poll found work */
	uint64_t *due; /* a min-heap of wall-clock times (ms) something falls due */
	size_t ndue, cap;
};

/* Remembers that something falls due at due_ms (wall clock); a hint, at most 4096 kept. */
void pace_due(struct pace *p, uint64_t due_ms);
/*
 * How long (ms) to wait before the next poll, at wall-clock time now_ms:
 * base_ms after a poll that found work or while busy, then doubling with
 * each quiet poll up to max_ms, and no later than the next remembered due
 * time (those already past are forgotten).
 */
uint64_t pace_next(struct pace *p, uint64_t base_ms, uint64_t max_ms, bool busy, uint64_t now_ms);
void pace_free(struct pace *p);
/* Brings the one-shot timer src forward to at_usec (CLOCK_MONOTONIC) if it is set for later. */
void pace_sooner(sd_event_source *src, uint64_t at_usec);

#endif
