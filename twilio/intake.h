/*
 * The durable intake of inbound WhatsApp messages. A message is claimed by
 * its MessageSid (and idempotency token), added to the arrivals
 * (P{turns}:in) and its phone's turn made due, in one atomic script; when
 * Redis cannot take it, it is written and fsynced to a spool directory and
 * moved to Redis, in order, once Redis is back. The conversation engine
 * claims the due turn with the phone's arrivals.
 */
#ifndef CRMB_INTAKE_H
#define CRMB_INTAKE_H

#include <stdint.h>
#include <systemd/sd-event.h>

#include "common/form.h"
#include "common/redis.h"

struct intake;

enum intake_result {
	INTAKE_STORED, /* in Redis */
	INTAKE_DUPLICATE, /* already claimed: nothing changed */
	INTAKE_SPOOLED, /* on disk, synced; will move to Redis */
	INTAKE_FAILED, /* neither Redis nor the spool could take it */
};

/* Called exactly once per submission, possibly before intake_submit returns. */
typedef void (*intake_cb)(enum intake_result res, void *arg);

struct intake_msg {
	const char *sid; /* MessageSid */
	const char *from; /* whatsapp:+E164 */
	const char *idem; /* I-Twilio-Idempotency-Token, or NULL */
	const char *body; /* the form body exactly as received */
	size_t len;
	uint64_t received_ms; /* realtime */
	const struct form *form; /* the body as the webhook parsed it (borrowed), or NULL: parsed again */
};

struct intake_options {
	const char *state_dir; /* the spool lives in state_dir/spool */
	const char *key_prefix; /* e.g. "crmbridge:" */
	uint64_t dedupe_ttl_s; /* how long a MessageSid stays claimed */
	uint64_t redis_timeout_ms; /* after this the message is spooled instead */
	uint64_t coalesce_window_ms; /* a turn waits this long after its phone's last message (0: due at once) */
	uint64_t coalesce_max_ms; /* and never longer than this after the burst's first */
	/* A message was stored (not spooled, not a duplicate): its phone's turn is due at due_ms. NULL: none. */
	void (*stored)(uint64_t due_ms, void *arg);
	void *stored_arg;
};

struct intake_stats {
	uint64_t stored, duplicates, spooled, replayed, failed, redis_errors;
	uint64_t spool_depth;
	bool redis_up; /* the intake's own Redis connection is up (it reconnects apart from the daemon's) */
};

/* Opens the spool (creating it) and finds what is left in it. NULL with errno on failure. */
struct intake *intake_new(sd_event *e, struct rconn *rc, const struct intake_options *o);
/* Frees the intake; pending submissions are answered first. NULL is fine. */
void intake_free(struct intake *in);
/* Points the intake at another Redis connection (after a reload). */
void intake_set_redis(struct intake *in, struct rconn *rc);
/* Stores m; every string in m is copied. */
void intake_submit(struct intake *in, const struct intake_msg *m, intake_cb cb, void *arg);
/* Tells the intake Redis is up: the spool starts moving. */
void intake_redis_up(struct intake *in);
/* Copies the counters. */
void intake_get_stats(const struct intake *in, struct intake_stats *st);
/*
 * Erasure: deletes the spooled messages from `from` ("whatsapp:+E164").
 * Returns how many, or -EBUSY when one of them is being moved into Redis
 * right now (try again in a moment).
 */
int intake_spool_erase(struct intake *in, const char *from);
/*
 * The inbox entry (JSON, to free) of a webhook's form: sid, text (the body, or what the message carries),
 * t_ms, profile, and media (up to 3 voice notes or images) with media_only. NULL if the form is malformed.
 */
char *intake_entry_json(const char *sid, const char *form, size_t len, uint64_t received_ms);
/* The same from a parsed form. */
char *intake_entry_of_form(const char *sid, const struct form *f, uint64_t received_ms);
/*
 * A member of the arrivals (to free): "<+E164>|<order>|<entry>", the order being the receive time (13 digits)
 * and seq (6), so that one phone's messages are a range of the sorted set, in the order they came.
 */
char *intake_member(const char *phone, uint64_t received_ms, unsigned seq, const char *entry);

/* What intake-store.lua is given (strings borrowed). */
struct intake_store_args {
	const char *prefix; /* the key prefix */
	const char *sid, *idem; /* MessageSid; I-Twilio-Idempotency-Token or NULL */
	const char *phone; /* +E164 */
	const char *member; /* intake_member() */
	uint64_t claim_ttl_s, window_ms, cap_ms; /* the claims' TTL; the coalescing window and cap (0, 0: due now) */
};
/*
 * Runs intake-store (sc: its script) on rc: the claims, the arrival and the phone's turn due, in one script.
 * fn gets the due time (ms), or 0 for a duplicate. A negative errno when it could not be sent.
 */
int intake_store(
    struct rconn *rc, const struct rscript *sc, const struct intake_store_args *a, redisCallbackFn *fn, void *pd);
/* A result's name: "stored", "duplicate", "spooled", "failed". */
const char *intake_result_name(enum intake_result r);

#endif
