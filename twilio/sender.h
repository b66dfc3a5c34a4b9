/*
 * The WhatsApp reply sender: a durable outbox in Redis (one FIFO per
 * recipient, so replies to a phone keep their order while different phones
 * proceed in parallel) drained through Twilio's REST API with libcurl.
 * Retries 429, 5xx and network errors with backoff and jitter (honouring
 * Retry-After); gives up on 20003 and 21211 into a dead-letter list; marks
 * a phone opted out on 21610. A queued reply survives a restart.
 */
#ifndef CRMB_SENDER_H
#define CRMB_SENDER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "common/curlev.h"
#include "common/redis.h"

struct sender;

struct sender_options {
	const char *api_base; /* https://api.twilio.com */
	const char *account_sid;
	const char *auth_token;
	const char *from; /* whatsapp:+E164, or NULL with messaging_service_sid */
	const char *messaging_service_sid;
	const char *status_callback; /* URL for delivery reports, or NULL */
	const char *key_prefix;
	uint64_t timeout_ms; /* one request */
	unsigned max_attempts; /* then the reply goes to the dead-letter list */
	unsigned max_in_flight;
	uint64_t lease_ms; /* a claimed reply not finished by then is sent again */
	uint64_t backoff_min_ms, backoff_max_ms;
	uint64_t poll_ms; /* how often the outbox is looked at when idle */
	/* Told the outcome of each tagged message ({"status":"sent","sid":…} or {"status":"failed",…}). */
	void (*on_result)(const char *tag, json_t *result, void *arg);
	void *result_arg;
	char *key_prefix_copy; /* internal */
};

/* Sends by outcome and Twilio error code, for the metrics. */
#define SENDER_RESULT_SLOTS 32
struct sender_result {
	char result[16]; /* "sent", "retry", "rejected", "opted_out", "network", "already_sent"; "" is free */
	long code; /* Twilio's error code, or the HTTP status when none, 0 for a network error */
	uint64_t n;
};

struct sender_stats {
	uint64_t queued, sent, retries, dead, opted_out, dropped_opted_out;
	uint64_t reconciled; /* an interrupted attempt had got through: found in Twilio's list, not sent again */
	uint64_t in_flight;
	uint64_t delivered, read, undelivered, failed, window_closed; /* from status callbacks */
	long last_http_status; /* of the last send; 0 for a network error */
	long last_error_code; /* Twilio's code, 0 when none */
	char last_error[128];
	struct sender_result results[SENDER_RESULT_SLOTS];
};

/* Called when a reply has been queued durably: parts > 0, or -EPERM (opted out), -ENOTCONN, -EIO. */
typedef void (*sender_queued_fn)(int parts, void *arg);

/* A new sender; every string in o is copied. */
struct sender *sender_new(sd_event *e, struct curlev *cv, struct rconn *rc, const struct sender_options *o);
/* Stops sending; claimed replies are sent again after their lease. NULL is fine. */
void sender_free(struct sender *s);
/* Points the sender at another Redis connection. */
void sender_set_redis(struct sender *s, struct rconn *rc);
/* Queues text for to (whatsapp:+E164 or +E164), split into parts of at most 1,600 characters. */
void sender_enqueue(struct sender *s, const char *to, const char *text, sender_queued_fn fn, void *arg);
/*
 * Like sender_enqueue, but at most once per key (for a week): a turn redone
 * after a crash does not send its reply twice. parts is 0 when already queued.
 */
void sender_enqueue_once(
    struct sender *s, const char *to, const char *text, const char *once, sender_queued_fn fn, void *arg);
/* A message to queue: text, or an approved template. */
struct sender_msg {
	const char *to; /* whatsapp:+E164 or +E164 */
	const char *text; /* split into parts of at most 1,600 characters; ignored with content_sid */
	const char *content_sid; /* HX…: sent as ContentSid + ContentVariables, no Body */
	const char *content_vars; /* a JSON object as text ({"1":"Ana"}), or NULL */
	const char *once; /* queued at most once per key (a week), or NULL */
	const char *tag; /* its outcome is recorded under this tag and told to on_result, or NULL */
	int opt; /* 1: opt the recipient out first (this message still goes), -1: opt back in first */
};
/* Queues m; fn as for sender_enqueue (parts 0: already queued under m->once). */
void sender_send(struct sender *s, const struct sender_msg *m, sender_queued_fn fn, void *arg);
/* Key of a tagged message's recorded outcome; caller frees. */
char *sender_result_key(const struct sender *s, const char *tag);
/* Records a delivery report from Twilio's status callback. */
void sender_record_status(struct sender *s, const char *message_sid, const char *status, long error_code);
/* Key of the list of replies given up. */
const char *sender_dead_key(const struct sender *s);
/* Copies the counters. */
void sender_get_stats(const struct sender *s, struct sender_stats *st);

/*
 * Splits text into parts of at most max characters (Unicode code points),
 * preferring to cut after a newline or a space. Returns the number of parts
 * and fills off[]/len[] (byte offsets and lengths, up to maxparts).
 */
size_t sender_split(const char *text, size_t max, size_t *off, size_t *len, size_t maxparts);

#endif
