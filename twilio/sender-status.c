/*
 * The sender's delivery reports (Twilio's status callbacks): counted, kept on
 * the message's record (P{outbox}:msg:<sid>), and a failure of a tagged message
 * (a salesperson's) told to the tag's owner, as a failure of the POST would be.
 *
 * A report can come before the sender has recorded Twilio's answer to the POST
 * (Twilio posts the callback as soon as WhatsApp refuses, and both arrive on
 * the same loop: seen under load in CI). The record then has no "job" yet: the
 * tag is asked for again, every LATE_RETRY_MS, until the record has its job or
 * LATE_TRIES have passed (an unknown SID: another sender's, or a lost record).
 */
#include "config.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "common/xmalloc.h"
#include "sender-private.h"

#define LATE_RETRY_MS 500
#define LATE_TRIES 20

/* A delivery report's failure, waiting for the message's record to say whose it is. */
struct late_failure {
	void *alive; /* the sender's liveness token */
	char *key; /* P{outbox}:msg:<sid> */
	char status[16];
	long code;
	unsigned tries;
};

static void ask_tag(struct late_failure *lf);

static void
late_free(struct late_failure *lf)
{
	free(lf->key);
	free(lf);
}

static int
on_late_retry(sd_event_source *src, uint64_t usec, void *arg)
{
	(void)usec;
	sd_event_source_unref(src);
	ask_tag(arg);
	return 0;
}

static void
on_status_tag(redisAsyncContext *ac, void *r, void *pd)
{
	struct late_failure *lf = pd;
	struct sender *s = alive_release(lf->alive);
	redisReply *reply = r, *tag, *job;

	(void)ac;
	if (s == NULL || reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
		late_free(lf);
		return;
	}
	tag = reply->element[0];
	job = reply->element[1];
	if (job->type != REDIS_REPLY_STRING && ++lf->tries < LATE_TRIES) {
		/* Not recorded yet: the answer to the POST may still be on its way here. */
		lf->alive = alive_hold(s->alive);
		if (sd_event_add_time_relative(
		        s->event, NULL, CLOCK_MONOTONIC, LATE_RETRY_MS * 1000ULL, 10000, on_late_retry, lf) < 0) {
			alive_release(lf->alive);
			late_free(lf);
		}
		return;
	}
	if (tag->type == REDIS_REPLY_STRING && tag->len > 0 && s->o.on_result != NULL) {
		char *t = xstrndup(tag->str, tag->len), err[64];
		json_t *res;
		snprintf(err, sizeof(err), "WhatsApp reported the message %s", lf->status);
		res = json_pack("{s:s, s:s, s:i, s:I}", "status", "failed", "error", err, "code", (int)lf->code,
		    "at_ms", (json_int_t)(realtime_usec() / 1000));
		s->o.on_result(t, res, s->o.result_arg);
		json_decref(res);
		free(t);
	}
	late_free(lf);
}

static void
ask_tag(struct late_failure *lf)
{
	struct sender *s = alive_release(lf->alive);

	if (s == NULL || s->rc == NULL) {
		late_free(lf);
		return;
	}
	lf->alive = alive_hold(s->alive);
	if (rconn_command(s->rc, on_status_tag, lf, "HMGET %s tag job", lf->key) < 0) {
		alive_release(lf->alive);
		late_free(lf);
	}
}

void
sender_record_status(struct sender *s, const char *sid, const char *status, long error_code)
{
	char *k, code[24];

	xasprintf(&k, "%s%s", s->k_msgprefix, sid);
	if (strcmp(status, "delivered") == 0)
		s->st.delivered++;
	else if (strcmp(status, "read") == 0)
		s->st.read++;
	else if (strcmp(status, "undelivered") == 0)
		s->st.undelivered++;
	else if (strcmp(status, "failed") == 0)
		s->st.failed++;
	if (error_code == 63016)
		s->st.window_closed++;
	snprintf(code, sizeof(code), "%ld", error_code);
	if (s->rc != NULL) {
		rconn_command(s->rc, NULL, NULL, "HSET %s status %s error_code %s updated_ms %" PRIu64, k, status, code,
		    realtime_usec() / 1000);
		rconn_command(s->rc, NULL, NULL, "EXPIRE %s %d", k, SENDER_MSG_TTL_S);
	}
	if (s->rc != NULL && s->o.on_result != NULL &&
	    (strcmp(status, "failed") == 0 || strcmp(status, "undelivered") == 0)) {
		/* Accepted by Twilio, then not delivered: the tag's owner hears of it (a salesperson's, on the lead). */
		struct late_failure *lf = xcalloc(1, sizeof(*lf));
		snprintf(lf->status, sizeof(lf->status), "%s", status);
		lf->code = error_code;
		lf->key = k;
		lf->alive = alive_hold(s->alive);
		ask_tag(lf);
		return;
	}
	free(k);
}
