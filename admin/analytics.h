/*
 * Conversation analytics, kept as counters in Redis while turns commit
 * (shared by every instance on one Redis, kept across restarts), so that
 * reading them costs the same at ten conversations or ten million: a hash
 * of totals, a hash per day (kept 40 days) and a sorted set of phones by
 * last activity. Lead figures from Odoo (or the journal) are cached.
 */
#ifndef CRMB_ANALYTICS_H
#define CRMB_ANALYTICS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "conversation/engine.h"
#include "common/redis.h"

struct analytics;

/* e: where the counts wait (a second at most) before they are written; NULL writes each report at once. */
struct analytics *analytics_new(sd_event *e, const char *key_prefix, uint64_t conversation_ttl_ms);
void analytics_free(struct analytics *an);

/*
 * Records a committed turn: its counts are added in memory and written with others, one script call a
 * second (sooner when 500 phones wait, and before every read): a crash loses a second of counts at most,
 * and a write whose answer is lost is not sent again, so nothing is counted twice. rc may be NULL (Redis
 * away): the counts wait for it.
 */
void analytics_record(struct analytics *an, struct rconn *rc, const struct turn_report *r);

/* Counts a conversation started from our side (POST /api/call-completed); written as above. */
void analytics_outreach(struct analytics *an, struct rconn *rc, uint64_t now_ms);

/* An erased phone: its activity waiting in memory is dropped (not written after the erasure). */
void analytics_forget(struct analytics *an, const char *phone);
/* Writes the counts waiting now (shutdown). */
void analytics_flush(struct analytics *an);
/* True while counts are on their way to Redis (or wait with Redis up): the drain waits for them. */
bool analytics_busy(const struct analytics *an);

/* Told the figures (owned by the callee, NULL when Redis failed). */
typedef void (*analytics_fn)(json_t *figures, void *arg);
/* Reads the figures for the last `days` days (1-40) with one script call. */
int analytics_read(struct analytics *an, struct rconn *rc, unsigned days, analytics_fn done, void *arg);

/*
 * The q-quantile of a bucketed distribution: counts per bucket (n bounds,
 * n+1 buckets, the last unbounded), each bucket's sum (or NULL), interpolated
 * within the bucket around its mean. -1 when empty.
 */
double
analytics_bucket_quantile(const uint64_t *counts, const double *sums, const double *bounds, unsigned n, double q);

/* Lead figures from the lead store, cached: replaced by the caller's refresh. */
void analytics_set_leads(struct analytics *an, json_t *stats, uint64_t at_realtime_usec);
/* The cached lead figures (borrowed) and when they were taken; NULL if none. */
json_t *analytics_leads(const struct analytics *an, uint64_t *at_realtime_usec);

#endif
