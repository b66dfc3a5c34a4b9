/*
 * The reply sender. Outbox layout in Redis, all under the {outbox} hash tag:
 *   P{outbox}:q:<to>         list of one recipient's jobs, oldest first, each a JSON object (id, body,
 *                            attempts, created_ms, part, parts, ...): a job has no key of its own, so every
 *                            script is given all the keys it touches
 *   P{outbox}:due            sorted set: recipients whose head job is due, by time (ms)
 *   P{outbox}:optout         set of recipients who opted out (Twilio 21610)
 *   P{outbox}:dead           list of JSON records of replies given up on
 *   P{outbox}:msg:<sid>      hash: to, job, status, error_code (7 days), only with status callbacks on
 *   P{outbox}:result:<tag>   JSON outcome of a tagged message (sent + sid, or failed + error), 7 days
 *   P{outbox}:once:<key>     a message queued at most once per key (a week)
 *   P{outbox}:upgraded       set once the walk below has converted the previous release's jobs
 * A job holds either a body or a template (content_sid + content_vars). Its id
 * is made here without asking Redis (job_id): the older releases' counter
 * P{outbox}:seq is no longer written, and ids are opaque strings.
 * A claim moves the recipient's due time a lease ahead, so one instance
 * sends a recipient's replies one at a time and a crash only delays them.
 * Most jobs are not claimed: the enqueue script hands out a reply to a
 * recipient with nothing under way, and the done script the recipient's
 * next job, each in the same way as a claim; the poll takes retries, a
 * crashed sender's jobs and what waited for room. The previous release kept
 * bare ids in the queues and each job in a hash P{outbox}:job:<id>: a walk
 * at the first connection converts them (sender-upgrade.c), and a claim
 * that meets one leaves it for the sender to convert on the spot.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alive.h"
#include "common/log.h"
#include "common/pace.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "redis/scripts.h"
#include "sender-private.h"
#include "twilio/sender-upgrade.h"
#include "twilio/sender.h"

#define MAX_PARTS 16
#define MSG_TTL_S SENDER_MSG_TTL_S
#define DEAD_KEEP 1000

struct job {
	struct sender *s; /* NULL once the sender is gone */
	struct job *prev, *next;
	char *id, *to, *body;
	char *content_sid, *content_vars, *tag; /* a template (ContentSid) instead of a body; a result to record */
	unsigned attempts;
	CURL *easy;
	struct curl_slist *hdrs;
	char *post;
	struct curlbuf resp; /* Twilio's answers are small: 64 KiB at most */
	long retry_after_ms;
	bool ambiguous; /* this attempt may have reached Twilio (a timeout after the request went out) */
	uint64_t unsure_ms; /* an earlier attempt started then and its outcome is unknown: look before sending */
};

/*
 * Redis answers can arrive after the sender is gone (a reload replaces it):
 * every pending Redis call holds this token instead of the sender itself.
 */
/* A pending enqueue or done: who to tell, and whether it holds a slot for a job it may hand out. */
struct enq {
	struct alive *alive;
	sender_queued_fn fn;
	void *arg;
	bool reserved;
};

static void sender_tick(struct sender *s);
static bool start_from_reply(struct sender *s, redisReply **e, size_t n);

/* The longest the outbox goes unread when nothing is queued here: how late another instance's reply is seen. */
#define SENDER_IDLE_POLL_MS 2000

static void *
hold(struct sender *s)
{
	return alive_hold(s->alive);
}

/* Drops one reference; returns the sender, or NULL if it is gone. */
static struct sender *
release(void *pd)
{
	return alive_release(pd);
}

/* ---- Redis helpers ---- */

static int
eval(struct sender *s, const struct rscript *sc, redisCallbackFn *fn, void *pd, int nkeys, const char **argv, int argc)
{
	return s->rc != NULL ? rconn_eval(s->rc, sc, fn, pd, nkeys, argc, argv, NULL) : -ENOTCONN;
}

/* eval() with a reference to the sender held until fn runs; fn must release it. */
static int
call(struct sender *s, const struct rscript *sc, redisCallbackFn *fn, int nkeys, const char **argv, int argc)
{
	void *pd = hold(s);
	int r = eval(s, sc, fn, pd, nkeys, argv, argc);

	if (r < 0)
		release(pd);
	return r;
}

static char *
key2(const char *prefix, const char *suffix)
{
	char *k;

	xasprintf(&k, "%s%s", prefix, suffix);
	return k;
}

/* Holds a slot for a job a script may hand out; false when the sender has none free. */
static bool
reserve(struct sender *s)
{
	if (s->in_flight + s->reserved >= s->o.max_in_flight) {
		s->backlog = s->starved = true;
		return false;
	}
	s->reserved++;
	return true;
}

static void
unreserve(struct sender *s, bool reserved)
{
	if (s != NULL && reserved && s->reserved > 0)
		s->reserved--;
}

/* The lease's end for a job handed out now, as text. */
static void
lease_end(const struct sender *s, char *buf, size_t len)
{
	snprintf(buf, len, "%" PRIu64, realtime_usec() / 1000 + s->o.lease_ms);
}

/* Normalises whatsapp:+E164 or +E164 to +E164; NULL if it is neither. */
static char *
normalise_to(const char *to)
{
	const char *p = strncmp(to, "whatsapp:", 9) == 0 ? to + 9 : to;
	size_t n = 0;

	if (*p != '+')
		return NULL;
	for (const char *q = p + 1; *q != '\0'; q++, n++)
		if (!isdigit((unsigned char)*q))
			return NULL;
	return n >= 7 && n <= 15 ? xstrdup(p) : NULL;
}

/* ---- enqueue ---- */

/* Writes v in base 36 (0-9a-z) into buf, which holds 14 bytes. */
static void
base36(uint64_t v, char *buf)
{
	char tmp[14];
	size_t n = 0;

	do
		tmp[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
	while ((v /= 36) > 0);
	while (n > 0)
		*buf++ = tmp[--n];
	*buf = '\0';
}

/*
 * A new reply's id, made without a Redis counter: 64 random bits drawn when
 * the sender was made (no two senders of any instance, before or after a
 * restart, are to be expected to draw the same), then the count of replies
 * it queued, both in base 36: at most 27 characters of [0-9a-z-].
 * sender-enqueue adds ".<part>" for each job.
 */
static void
job_id(struct sender *s, char *buf, size_t len)
{
	char nonce[14], count[14];

	base36(s->id_nonce, nonce);
	base36(++s->id_count, count);
	snprintf(buf, len, "%s-%s", nonce, count);
}

static void
on_enqueued(redisAsyncContext *ac, void *r, void *pd)
{
	struct enq *e = pd;
	struct sender *s = release(e->alive);
	redisReply *reply = r;
	int res;

	unreserve(s, e->reserved);
	if (reply == NULL)
		res = -ENOTCONN;
	else if (reply->type == REDIS_REPLY_INTEGER)
		res = reply->integer < 0 ? -EPERM : (int)reply->integer;
	else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 9 &&
	    reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[0]->integer > 0)
		res = (int)reply->element[0]->integer; /* queued, and its first part handed to us */
	else
		res = -EIO;
	if (res > 0 && s != NULL) {
		s->st.queued += (uint64_t)res;
		/* Handed out: send it now. Else it waits behind a send under way (whose done hands it out), a retry
		   (the poll), or for room (the backlog). */
		if (reply->type != REDIS_REPLY_ARRAY || !start_from_reply(s, reply->element + 1, 8))
			if (s->backlog)
				sender_tick(s);
	}
	if (e->fn != NULL)
		e->fn(res, e->arg);
	free(e);
}

void
sender_enqueue(struct sender *s, const char *to, const char *text, sender_queued_fn fn, void *arg)
{
	sender_enqueue_once(s, to, text, NULL, fn, arg);
}

void
sender_enqueue_once(
    struct sender *s, const char *to, const char *text, const char *once, sender_queued_fn fn, void *arg)
{
	struct sender_msg m = {.to = to, .text = text, .once = once};

	sender_send(s, &m, fn, arg);
}

void
sender_send(struct sender *s, const struct sender_msg *m, sender_queued_fn fn, void *arg)
{
	size_t off[MAX_PARTS], len[MAX_PARTS], n, i;
	char *norm = normalise_to(m->to), *q = NULL, *oncekey = NULL, created[24], now[24], until[24], id[32];
	char *parts[MAX_PARTS];
	const char *argv[15 + MAX_PARTS];
	struct enq *e;
	int argc = 0, r;
	bool tpl = m->content_sid != NULL && *m->content_sid != '\0';

	if (norm == NULL || (!tpl && (m->text == NULL || *m->text == '\0'))) {
		if (fn != NULL)
			fn(-EINVAL, arg);
		free(norm);
		return;
	}
	if (tpl) {
		/* A template is one message; its text is Twilio's to render. */
		n = 1;
		parts[0] = xstrdup("");
	} else {
		n = sender_split(m->text, 1600, off, len, MAX_PARTS);
		for (i = 0; i < n; i++)
			parts[i] = xstrndup(m->text + off[i], len[i]);
	}
	q = key2(s->k_qprefix, norm);
	snprintf(created, sizeof(created), "%" PRIu64, realtime_usec() / 1000);
	snprintf(now, sizeof(now), "%" PRIu64, realtime_usec() / 1000);
	argv[argc++] = s->k_due;
	argv[argc++] = q;
	argv[argc++] = s->k_optout;
	if (m->once != NULL)
		xasprintf(&oncekey, "%s{outbox}:once:%s", s->o.key_prefix_copy, m->once);
	argv[argc++] = oncekey != NULL ? oncekey : s->k_optout; /* the same key as optout: no once-check */
	argv[argc++] = norm;
	argv[argc++] = created;
	argv[argc++] = now;
	argv[argc++] = "604800"; /* a turn's reply is remembered for a week */
	argv[argc++] = tpl ? m->content_sid : "";
	argv[argc++] = tpl && m->content_vars != NULL ? m->content_vars : "";
	argv[argc++] = m->tag != NULL ? m->tag : "";
	argv[argc++] = m->opt > 0 ? "out" : m->opt < 0 ? "in" : "";
	e = xcalloc(1, sizeof(*e));
	/* With a slot free, a recipient with nothing under way gets its reply without a claim. */
	e->reserved = s->rc != NULL && rconn_state(s->rc) == RCONN_UP && reserve(s);
	lease_end(s, until, sizeof(until));
	argv[argc++] = e->reserved ? "1" : "0";
	argv[argc++] = until;
	job_id(s, id, sizeof(id));
	argv[argc++] = id;
	for (i = 0; i < n; i++)
		argv[argc++] = parts[i];
	e->alive = hold(s);
	e->fn = fn;
	e->arg = arg;
	if ((r = eval(s, &s->enqueue, on_enqueued, e, 4, argv, argc)) < 0) {
		unreserve(s, e->reserved);
		release(e->alive);
		free(e);
		if (fn != NULL)
			fn(r, arg);
	}
	for (i = 0; i < n; i++)
		free(parts[i]);
	free(q);
	free(oncekey);
	free(norm);
}

char *
sender_result_key(const struct sender *s, const char *tag)
{
	return key2(s->k_result, tag);
}

/* Records the outcome of a tagged message (7 days) and tells the owner. */
static void
record_result(struct sender *s, struct job *j, const char *sid, const char *error, long code)
{
	json_t *res;
	char *txt, *k;

	if (j->tag == NULL || *j->tag == '\0')
		return;
	res = sid != NULL
	    ? json_pack("{s:s, s:s, s:I}", "status", "sent", "sid", sid, "at_ms", (json_int_t)(realtime_usec() / 1000))
	    : json_pack("{s:s, s:s, s:i, s:I}", "status", "failed", "error", error ? error : "?", "code", (int)code,
	          "at_ms", (json_int_t)(realtime_usec() / 1000));
	txt = json_dumps(res, JSON_COMPACT);
	k = key2(s->k_result, j->tag);
	if (s->rc != NULL)
		rconn_command(s->rc, NULL, NULL, "SET %s %s EX %d", k, txt, MSG_TTL_S);
	if (s->o.on_result != NULL)
		s->o.on_result(j->tag, res, s->o.result_arg);
	free(k);
	free(txt);
	json_decref(res);
}

/* ---- finishing a job ---- */

static void
job_free(struct job *j)
{
	if (j->s != NULL) {
		if (j->prev != NULL)
			j->prev->next = j->next;
		else
			j->s->jobs = j->next;
		if (j->next != NULL)
			j->next->prev = j->prev;
	}
	/* A job whose sender is gone (replaced by a reload) no longer knows the curlev: its handle is freed. */
	curlev_easy_release(j->s != NULL ? j->s->cv : NULL, j->easy);
	curl_slist_free_all(j->hdrs);
	free(j->post);
	curlbuf_reset(&j->resp);
	free(j->id);
	free(j->to);
	free(j->body);
	free(j->content_sid);
	free(j->content_vars);
	free(j->tag);
	free(j);
}

static void
on_redis_done(redisAsyncContext *ac, void *r, void *pd)
{
	struct sender *s = release(pd);

	/* A lost answer is harmless: the lease expires and the state is read again. */
	if (s != NULL)
		sender_tick(s);
}

/* sender-done's answer: the recipient's next job handed out, or 1 (nothing to hand out), or 0. */
static void
on_done(redisAsyncContext *ac, void *r, void *pd)
{
	struct enq *e = pd;
	struct sender *s = release(e->alive);
	redisReply *reply = r;

	unreserve(s, e->reserved);
	free(e);
	if (s == NULL)
		return;
	/* A lost answer is harmless: a job handed out comes back after its lease. */
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || !start_from_reply(s, reply->element, reply->elements))
		if (s->backlog)
			sender_tick(s);
}

/*
 * The job is finished (sent, given up, or found sent): it leaves its queue
 * and the recipient's next job is handed out. sid is Twilio's MessageSid of
 * a sent job, recorded for the delivery reports when they are asked for.
 */
static void
job_done(struct job *j, const char *sid)
{
	struct sender *s = j->s;
	char *q = key2(s->k_qprefix, j->to), *mk = NULL, now[24], until[24], ttl[16];
	const char *argv[10];
	struct enq *e = xcalloc(1, sizeof(*e));
	int nkeys = 2, argc;

	snprintf(now, sizeof(now), "%" PRIu64, realtime_usec() / 1000);
	lease_end(s, until, sizeof(until));
	e->reserved = reserve(s);
	argv[0] = s->k_due;
	argv[1] = q;
	/* Only a status callback reads the record (the erasure deletes it): without them it is not written. */
	if (s->o.status_callback != NULL && sid != NULL && *sid != '\0') {
		mk = key2(s->k_msgprefix, sid);
		argv[nkeys++] = mk;
	}
	argc = nkeys;
	argv[argc++] = j->to;
	argv[argc++] = j->id;
	argv[argc++] = now;
	argv[argc++] = until;
	argv[argc++] = e->reserved ? "1" : "0";
	snprintf(ttl, sizeof(ttl), "%d", MSG_TTL_S);
	argv[argc++] = ttl;
	argv[argc++] = j->tag != NULL ? j->tag : "";
	e->alive = hold(s);
	if (eval(s, &s->done, on_done, e, nkeys, argv, argc) < 0) {
		unreserve(s, e->reserved);
		release(e->alive);
		free(e);
	}
	free(mk);
	free(q);
}

static void
job_dead(struct job *j, const char *reason)
{
	struct sender *s = j->s;
	char ph[32], *rec;
	json_t *jr;

	s->st.dead++;
	log_error("sender: reply %s to %s given up: %s", j->id, log_phone(j->to, ph, sizeof(ph)), reason);
	jr = json_pack("{s:s, s:s, s:s, s:i, s:I}", "job", j->id, "to", j->to, "reason", reason, "attempts",
	    (int)j->attempts, "at_ms", (json_int_t)(realtime_usec() / 1000));
	rec = json_dumps(jr, JSON_COMPACT);
	json_decref(jr);
	if (s->rc != NULL) {
		rconn_command(s->rc, NULL, NULL, "LPUSH %s %s", s->k_dead, rec);
		rconn_command(s->rc, NULL, NULL, "LTRIM %s 0 %d", s->k_dead, DEAD_KEEP - 1);
		/* The text stays out of the list an admin reads; kept a week apart, for a retry. */
		if (j->body != NULL) {
			char *bk = key2(s->k_deadbody, j->id);
			rconn_command(s->rc, NULL, NULL, "SET %s %s EX %d", bk, j->body, 7 * 86400);
			free(bk);
		}
	}
	free(rec);
	record_result(s, j, NULL, reason, s->st.last_error_code);
	job_done(j, NULL);
}

static void
job_retry(struct job *j, const char *why)
{
	struct sender *s = j->s;
	uint64_t d = s->o.backoff_min_ms, due;
	unsigned i;
	char ph[32], *q, when[24], att[16];
	const char *argv[7];

	if (j->attempts >= s->o.max_attempts) {
		char reason[160];
		snprintf(reason, sizeof(reason), "gave up after %u attempts; last: %s", j->attempts, why);
		job_dead(j, reason);
		return;
	}
	for (i = 1; i < j->attempts && d < s->o.backoff_max_ms; i++)
		d *= 2;
	if (d > s->o.backoff_max_ms)
		d = s->o.backoff_max_ms;
	d = d / 2 + random_below(d / 2 + 1);
	/* After an attempt that may still be under way at Twilio, give it time to finish before looking. */
	if (j->ambiguous && d < s->o.timeout_ms)
		d = s->o.timeout_ms;
	/* Twilio's Retry-After wins when it asks for longer. */
	if (j->retry_after_ms > 0 && (uint64_t)j->retry_after_ms > d)
		d = (uint64_t)j->retry_after_ms;
	s->st.retries++;
	log_info("sender: reply %s to %s: %s; retry %u in %" PRIu64 " ms", j->id, log_phone(j->to, ph, sizeof(ph)), why,
	    j->attempts, d);
	due = realtime_usec() / 1000 + d;
	pace_due(&s->pace, due);
	pace_sooner(s->poll, now_usec() + d * 1000);
	snprintf(when, sizeof(when), "%" PRIu64, due);
	snprintf(att, sizeof(att), "%u", j->attempts);
	q = key2(s->k_qprefix, j->to);
	argv[0] = s->k_due;
	argv[1] = q;
	argv[2] = j->to;
	argv[3] = j->id;
	argv[4] = att;
	/* Twilio answered (429, 5xx) or nothing left us: this attempt created nothing, its sent_ms goes. */
	argv[5] = j->ambiguous ? "1" : "0";
	argv[6] = when;
	call(s, &s->retry, on_redis_done, 2, argv, 7);
	free(q);
}

static void
job_opted_out(struct job *j)
{
	struct sender *s = j->s;
	char ph[32], *q = key2(s->k_qprefix, j->to);
	const char *argv[4] = {s->k_due, q, s->k_optout, j->to};

	s->st.opted_out++;
	log_notice(
	    "sender: %s has opted out (21610): nothing more will be sent to it", log_phone(j->to, ph, sizeof(ph)));
	call(s, &s->optout, on_redis_done, 3, argv, 4);
	free(q);
}

static size_t
on_header(char *buf, size_t size, size_t nitems, void *ud)
{
	struct job *j = ud;
	size_t n = size * nitems;
	long long secs;
	char val[32];

	if (n > 12 && strncasecmp(buf, "Retry-After:", 12) == 0) {
		size_t vl = n - 12;
		const char *v = buf + 12;
		while (vl > 0 && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		if (vl < sizeof(val)) {
			memcpy(val, v, vl);
			val[vl] = '\0';
			if (parse_ll(val, 0, 3600, &secs) == 0)
				j->retry_after_ms = (long)secs * 1000;
		}
	}
	return n;
}

static void
count_result(struct sender *s, const char *result, long code)
{
	size_t i;

	for (i = 0; i < SENDER_RESULT_SLOTS; i++) {
		struct sender_result *r = &s->st.results[i];
		if (r->result[0] == '\0') {
			snprintf(r->result, sizeof(r->result), "%s", result);
			r->code = code;
		}
		if (strcmp(r->result, result) == 0 && r->code == code) {
			r->n++;
			return;
		}
	}
	/* Full: the last slot takes the rest, so nothing goes uncounted. */
	s->st.results[SENDER_RESULT_SLOTS - 1].n++;
}

/* Classifies Twilio's answer: done, retry later, dead letter or opted out. */
static void
handle_sent(struct sender *s, struct job *j, CURL *easy, CURLcode res)
{
	long status = 0, code = 0;
	json_t *doc = NULL, *v;
	char why[sizeof(s->st.last_error)], ph[32];

	s->in_flight--;
	s->st.in_flight = s->in_flight;
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	s->st.last_http_status = res == CURLE_OK ? status : 0;
	if (res == CURLE_ABORTED_BY_CALLBACK) {
		/* Shutting down: the lease brings it back after a restart. */
		job_free(j);
		return;
	}
	if (j->resp.data != NULL)
		doc = json_loads(j->resp.data, 0, NULL);
	if (doc != NULL && json_is_integer(v = json_object_get(doc, "code")))
		code = (long)json_integer_value(v);
	s->st.last_error_code = code;

	if (res != CURLE_OK) {
		curl_off_t up = 0;
		curl_easy_getinfo(easy, CURLINFO_SIZE_UPLOAD_T, &up);
		/* Once the request went out, Twilio may have created the message: the next attempt looks first. */
		j->ambiguous = up > 0;
		curlev_network_error(easy, res, why, sizeof(why));
		snprintf(s->st.last_error, sizeof(s->st.last_error), "%s", why);
		count_result(s, "network", 0);
		job_retry(j, why);
	} else if (status >= 200 && status < 300) {
		const char *sid = json_string_value(json_object_get(doc, "sid"));
		s->st.sent++;
		s->st.last_error[0] = '\0';
		count_result(s, "sent", 0);
		log_info("sender: %s %s to %s accepted by Twilio as %s", j->content_sid ? "template" : "reply", j->id,
		    log_phone(j->to, ph, sizeof(ph)), sid != NULL ? sid : "(no sid)");
		record_result(s, j, sid != NULL ? sid : "", NULL, 0);
		job_done(j, sid);
	} else {
		snprintf(why, sizeof(why), "HTTP %ld, Twilio error %ld", status, code);
		snprintf(s->st.last_error, sizeof(s->st.last_error), "%s", why);
		if (code == 21610) {
			count_result(s, "opted_out", code);
			record_result(s, j, NULL, why, code);
			job_opted_out(j);
		} else if (status == 429 || code == 20429 || code == 63018 || status >= 500) {
			count_result(s, "retry", code != 0 ? code : status);
			job_retry(j, why);
		} else {
			count_result(s, "rejected", code != 0 ? code : status);
			job_dead(j, why);
		} /* 20003 bad credentials, 21211 bad number, other 4xx: retrying cannot help */
	}
	json_decref(doc);
	job_free(j);
}

static void
on_sent(CURL *easy, CURLcode res, void *arg)
{
	struct job *j = arg;

	if (j->s == NULL) { /* the sender was replaced while this was in flight; the lease resends it */
		job_free(j);
		return;
	}
	handle_sent(j->s, j, easy, res);
}

static void send_post(struct job *j);

/* The reconciliation's answer: Twilio's recent messages to the recipient. */
static void
on_listed(CURL *easy, CURLcode res, void *arg)
{
	struct job *j = arg;
	struct sender *s = j->s;
	long status = 0;
	json_t *doc = NULL, *m;
	size_t i;
	const char *found = NULL;
	char ph[32];

	if (s == NULL || res == CURLE_ABORTED_BY_CALLBACK) {
		job_free(j);
		return;
	}
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	if (res == CURLE_OK && status == 200 && j->resp.data != NULL)
		doc = json_loads(j->resp.data, 0, NULL);
	json_array_foreach(json_object_get(doc, "messages"), i, m)
	{
		const char *body = json_string_value(json_object_get(m, "body"));
		const char *created = json_string_value(json_object_get(m, "date_created"));
		time_t t = created != NULL ? curl_getdate(created, NULL) : -1;
		/* The same text (a template's is Twilio's: any), created since the unsure attempt began (a minute of
		   clock skew allowed); one message at a time goes to a recipient, so it is this one. */
		if (body != NULL && (j->content_sid != NULL || strcmp(body, j->body) == 0) && t >= 0 &&
		    (uint64_t)t * 1000 + 60000 >= j->unsure_ms) {
			found = json_string_value(json_object_get(m, "sid"));
			break;
		}
	}
	curlev_easy_release(s->cv, j->easy);
	j->easy = NULL;
	curl_slist_free_all(j->hdrs);
	j->hdrs = NULL;
	curlbuf_reset(&j->resp);
	if (found != NULL) {
		s->in_flight--;
		s->st.in_flight = s->in_flight;
		s->st.reconciled++;
		count_result(s, "already_sent", 0);
		log_info("sender: reply %s to %s was already accepted by Twilio as %s (found after an interrupted "
		         "attempt); not sent again",
		    j->id, log_phone(j->to, ph, sizeof(ph)), found);
		record_result(s, j, found, NULL, 0);
		job_done(j, found);
		job_free(j);
		json_decref(doc);
		return;
	}
	if (res != CURLE_OK || status != 200)
		log_warnx("sender: reply %s: cannot list Twilio's messages (%s); sending it again", j->id,
		    res != CURLE_OK ? curl_easy_strerror(res) : "HTTP error");
	json_decref(doc);
	send_post(j);
}

/* Asks Twilio for the recipient's recent messages, to see whether an interrupted attempt got through. */
static int
reconcile(struct job *j)
{
	struct sender *s = j->s;
	char *url, wto[64], *eto, *efrom;

	j->easy = curlev_easy(s->cv);
	snprintf(wto, sizeof(wto), "whatsapp:%s", j->to);
	eto = curl_easy_escape(j->easy, wto, 0);
	efrom = s->o.from != NULL ? curl_easy_escape(j->easy, s->o.from, 0) : NULL;
	xasprintf(&url, "%s?To=%s%s%s&PageSize=50", s->url, eto, efrom ? "&From=" : "", efrom ? efrom : "");
	curl_free(eto);
	curl_free(efrom);
	j->hdrs = curl_slist_append(NULL, "Accept: application/json");
	curl_easy_setopt(j->easy, CURLOPT_URL, url);
	curl_easy_setopt(j->easy, CURLOPT_HTTPHEADER, j->hdrs);
	curl_easy_setopt(j->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	curl_easy_setopt(j->easy, CURLOPT_USERPWD, s->userpwd);
	curlev_defaults(j->easy, &j->resp, s->o.timeout_ms);
	free(url);
	return curlev_add(s->cv, j->easy, on_listed, j);
}

/* Posts the reply to Twilio's Messages API. */
static void
send_post(struct job *j)
{
	struct sender *s = j->s;
	char *eto, *ebody, *efrom = NULL, *ecb = NULL;
	const char *to = j->to, *body = j->body;

	j->easy = curlev_easy(s->cv);
	{
		char wto[64];
		snprintf(wto, sizeof(wto), "whatsapp:%s", to);
		eto = curl_easy_escape(j->easy, wto, 0);
	}
	if (j->content_sid != NULL) {
		/* An approved template: ContentSid and its variables, no Body (Twilio answers 63016 to a template
		   sent as Body outside the window). */
		char *esid = curl_easy_escape(j->easy, j->content_sid, 0),
		     *evars = curl_easy_escape(j->easy, j->content_vars ? j->content_vars : "{}", 0);
		xasprintf(&ebody, "%s&ContentVariables=%s", esid, evars);
		curl_free(esid);
		curl_free(evars);
	} else {
		char *b = curl_easy_escape(j->easy, body, 0);
		ebody = xstrdup(b);
		curl_free(b);
	}
	if (s->o.from != NULL)
		efrom = curl_easy_escape(j->easy, s->o.from, 0);
	else
		efrom = curl_easy_escape(j->easy, s->o.messaging_service_sid, 0);
	if (s->o.status_callback != NULL)
		ecb = curl_easy_escape(j->easy, s->o.status_callback, 0);
	xasprintf(&j->post, "To=%s&%s=%s&%s=%s%s%s", eto, s->o.from != NULL ? "From" : "MessagingServiceSid", efrom,
	    j->content_sid != NULL ? "ContentSid" : "Body", ebody, ecb != NULL ? "&StatusCallback=" : "",
	    ecb != NULL ? ecb : "");
	curl_free(eto);
	free(ebody);
	curl_free(efrom);
	curl_free(ecb);
	j->hdrs = curl_slist_append(NULL, "Accept: application/json");
	curl_easy_setopt(j->easy, CURLOPT_URL, s->url);
	curl_easy_setopt(j->easy, CURLOPT_POSTFIELDS, j->post);
	curl_easy_setopt(j->easy, CURLOPT_HTTPHEADER, j->hdrs);
	curl_easy_setopt(j->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	curl_easy_setopt(j->easy, CURLOPT_USERPWD, s->userpwd);
	curlev_defaults(j->easy, &j->resp, s->o.timeout_ms);
	curl_easy_setopt(j->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(j->easy, CURLOPT_HEADERDATA, j);
	if (curlev_add(s->cv, j->easy, on_sent, j) < 0) {
		/* Its lease brings it back. */
		s->in_flight--;
		s->st.in_flight = s->in_flight;
		job_free(j);
	}
}

static void
start_job(struct sender *s, const char *id, const char *to, const char *body, unsigned attempts, uint64_t unsure_ms,
    const char *content_sid, const char *content_vars, const char *tag)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->content_sid = content_sid != NULL && *content_sid != '\0' ? xstrdup(content_sid) : NULL;
	j->content_vars = content_vars != NULL && *content_vars != '\0' ? xstrdup(content_vars) : NULL;
	j->tag = tag != NULL && *tag != '\0' ? xstrdup(tag) : NULL;
	j->s = s;
	j->resp.max = 65536;
	j->id = xstrdup(id);
	j->to = xstrdup(to);
	j->body = xstrdup(body);
	j->attempts = attempts + 1;
	j->unsure_ms = unsure_ms;
	s->in_flight++;
	s->st.in_flight = s->in_flight;
	j->next = s->jobs;
	if (s->jobs != NULL)
		s->jobs->prev = j;
	s->jobs = j;
	if (unsure_ms > 0) {
		if (reconcile(j) < 0) {
			s->in_flight--;
			s->st.in_flight = s->in_flight;
			job_free(j);
		}
		return;
	}
	send_post(j);
}

/*
 * Starts the job a script handed out: e[0..n) is {id, to, body, attempts,
 * sent_ms, content_sid, content_vars, tag}. False if that is not what it is.
 */
static bool
start_from_reply(struct sender *s, redisReply **e, size_t n)
{
	long long att = 0, unsure = 0;

	if (n != 8 || e[0]->type != REDIS_REPLY_STRING || e[1]->type != REDIS_REPLY_STRING ||
	    e[2]->type != REDIS_REPLY_STRING)
		return false;
	if (e[3]->type == REDIS_REPLY_STRING)
		parse_ll(e[3]->str, 0, 1000000, &att);
	if (e[4]->type == REDIS_REPLY_STRING && e[4]->len > 0)
		parse_ll(e[4]->str, 0, INT64_MAX, &unsure);
	start_job(s, e[0]->str, e[1]->str, e[2]->str, (unsigned)att, (uint64_t)unsure,
	    e[5]->type == REDIS_REPLY_STRING ? e[5]->str : NULL, e[6]->type == REDIS_REPLY_STRING ? e[6]->str : NULL,
	    e[7]->type == REDIS_REPLY_STRING ? e[7]->str : NULL);
	return true;
}

/* ---- claiming due replies ---- */

/* All the claims of a tick are answered: the next tick may start. */
static void
claims_done(struct sender *s)
{
	s->claiming = false;
	if (s->claimed)
		s->pace.found = true;
	/* The due list was full: more may be due; or one was asked for while this tick ran. */
	if ((s->claimed && s->backlog) || s->tick_again) {
		s->claimed = false;
		s->tick_again = false;
		sender_tick(s);
	}
	s->claimed = false;
}

/* A legacy head converted for a claim: claim again. */
static void
on_converted(redisAsyncContext *ac, void *r, void *pd)
{
	struct sender *s = release(pd);
	redisReply *reply = r;

	/* An error is left to the next poll rather than claimed again at once. */
	if (s != NULL && reply != NULL && reply->type == REDIS_REPLY_INTEGER)
		sender_tick(s);
}

/*
 * One recipient's claim: {id, to, body, attempts, sent_ms, content_sid,
 * content_vars, tag}, {"legacy", id, to} (a job of the previous release at
 * the head, left in place), or nil.
 */
static void
on_claimed(redisAsyncContext *ac, void *r, void *pd)
{
	struct sender *s = release(pd);
	redisReply *reply = r;

	if (s == NULL)
		return;
	unreserve(s, true);
	if (reply != NULL && reply->type == REDIS_REPLY_ARRAY) {
		if (start_from_reply(s, reply->element, reply->elements))
			s->claimed = true;
		else if (reply->elements == 3 && reply->element[1]->type == REDIS_REPLY_STRING &&
		    reply->element[2]->type == REDIS_REPLY_STRING) {
			void *h = hold(s);
			if (sender_upgrade_one(
			        s->upgrade, reply->element[2]->str, reply->element[1]->str, on_converted, h) < 0)
				release(h);
		}
	}
	/* After sender_set_redis() the old connection's claims answer NULL with the count already reset. */
	if (s->claims > 0 && --s->claims == 0)
		claims_done(s);
}

/*
 * The due recipients (a plain ZRANGEBYSCORE: nothing due costs one command),
 * then one claim script per recipient, given its queue's key, all pipelined.
 */
static void
on_due(redisAsyncContext *ac, void *r, void *pd)
{
	struct sender *s = release(pd);
	redisReply *reply = r;
	char now[24], until[24];
	const char *argv[5];
	uint64_t t;
	size_t i;

	if (s == NULL)
		return;
	/* Fewer due than asked for, and no hand-off refused since: none waits for room any more. */
	s->backlog = s->starved || (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements >= s->limit);
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
		claims_done(s);
		return;
	}
	t = realtime_usec() / 1000;
	snprintf(now, sizeof(now), "%" PRIu64, t);
	snprintf(until, sizeof(until), "%" PRIu64, t + s->o.lease_ms);
	s->claims = 1; /* held until every claim is sent */
	for (i = 0; i < reply->elements; i++) {
		char *q;

		if (reply->element[i]->type != REDIS_REPLY_STRING)
			continue;
		q = key2(s->k_qprefix, reply->element[i]->str);
		argv[0] = s->k_due;
		argv[1] = q;
		argv[2] = reply->element[i]->str;
		argv[3] = now;
		argv[4] = until;
		s->reserved++; /* given back by on_claimed */
		if (call(s, &s->claim, on_claimed, 2, argv, 5) == 0)
			s->claims++;
		else
			s->reserved--;
		free(q);
	}
	if (--s->claims == 0)
		claims_done(s);
}

static void
sender_tick(struct sender *s)
{
	char now[24], max[16];
	void *pd;

	if (s->claiming) {
		s->tick_again = true; /* a reply may have been queued after that claim was sent */
		return;
	}
	if (s->rc == NULL || rconn_state(s->rc) != RCONN_UP)
		return;
	sender_upgrade_walk(s->upgrade);
	if (s->in_flight + s->reserved >= s->o.max_in_flight)
		return;
	s->limit = s->o.max_in_flight - s->in_flight - s->reserved;
	snprintf(now, sizeof(now), "%" PRIu64, realtime_usec() / 1000);
	snprintf(max, sizeof(max), "%u", s->limit);
	pd = hold(s);
	if (rconn_command(s->rc, on_due, pd, "ZRANGEBYSCORE %s -inf %s LIMIT 0 %s", s->k_due, now, max) == 0) {
		s->claiming = true;
		s->starved = false;
	} else
		release(pd);
}

static int
on_poll(sd_event_source *es, uint64_t usec, void *arg)
{
	struct sender *s = arg;

	sender_tick(s);
	/* Replies in flight need no poll (their dones hand out what follows); replies waiting for room do. */
	sd_event_source_set_time(es,
	    now_usec() +
	        pace_next(&s->pace, s->o.poll_ms, SENDER_IDLE_POLL_MS, s->backlog, realtime_usec() / 1000) * 1000);
	return 0;
}

/* ---- life ---- */

struct sender *
sender_new(sd_event *e, struct curlev *cv, struct rconn *rc, const struct sender_options *o)
{
	struct sender *s = xcalloc(1, sizeof(*s));
	size_t n;

	s->event = sd_event_ref(e);
	s->alive = alive_new(s);
	s->id_nonce = random_below(UINT64_MAX);
	s->cv = cv;
	s->rc = rc;
	s->o = *o;
	s->o.api_base = NULL;
	s->o.account_sid = xstrdup(o->account_sid);
	s->o.auth_token = NULL;
	s->o.from = o->from != NULL ? xstrdup(o->from) : NULL;
	s->o.messaging_service_sid = o->messaging_service_sid != NULL ? xstrdup(o->messaging_service_sid) : NULL;
	s->o.status_callback = o->status_callback != NULL ? xstrdup(o->status_callback) : NULL;
	s->o.key_prefix = NULL;
	s->o.key_prefix_copy = xstrdup(o->key_prefix);
	if (s->o.max_in_flight == 0)
		s->o.max_in_flight = 32;
	if (s->o.max_attempts == 0)
		s->o.max_attempts = 10;
	if (s->o.poll_ms == 0)
		s->o.poll_ms = 250;
	n = strlen(o->api_base);
	xasprintf(&s->url, "%.*s/2010-04-01/Accounts/%s/Messages.json",
	    (int)(n > 0 && o->api_base[n - 1] == '/' ? n - 1 : n), o->api_base, o->account_sid);
	xasprintf(&s->userpwd, "%s:%s", o->account_sid, o->auth_token);
	xasprintf(&s->k_due, "%s{outbox}:due", o->key_prefix);
	xasprintf(&s->k_qprefix, "%s{outbox}:q:", o->key_prefix);
	xasprintf(&s->k_optout, "%s{outbox}:optout", o->key_prefix);
	xasprintf(&s->k_dead, "%s{outbox}:dead", o->key_prefix);
	xasprintf(&s->k_deadbody, "%s{outbox}:deadbody:", o->key_prefix);
	xasprintf(&s->k_msgprefix, "%s{outbox}:msg:", o->key_prefix);
	xasprintf(&s->k_result, "%s{outbox}:result:", o->key_prefix);
	rscript_init(&s->enqueue, redis_script_sender_enqueue);
	rscript_init(&s->claim, redis_script_sender_claim);
	rscript_init(&s->done, redis_script_sender_done);
	rscript_init(&s->optout, redis_script_sender_optout);
	rscript_init(&s->retry, redis_script_sender_retry);
	s->upgrade = sender_upgrade_new(o->key_prefix, &s->rc);
	if (sd_event_add_time(e, &s->poll, CLOCK_MONOTONIC, now_usec() + s->o.poll_ms * 1000, 10000, on_poll, s) < 0)
		fatalx("sender: sd_event_add_time failed");
	sd_event_source_set_enabled(s->poll, SD_EVENT_ON);
	return s;
}

void
sender_set_redis(struct sender *s, struct rconn *rc)
{
	s->rc = rc;
	s->claiming = false;
	s->claims = 0;
	s->claimed = false;
}

void
sender_free(struct sender *s)
{
	if (s == NULL)
		return;
	for (struct job *j = s->jobs; j != NULL; j = j->next)
		j->s = NULL;
	alive_end(s->alive);
	sd_event_source_disable_unref(s->poll);
	sd_event_unref(s->event);
	if (s->userpwd != NULL)
		explicit_bzero(s->userpwd, strlen(s->userpwd));
	free(s->userpwd);
	free(s->url);
	free((void *)(uintptr_t)s->o.account_sid);
	free((void *)(uintptr_t)s->o.from);
	free((void *)(uintptr_t)s->o.messaging_service_sid);
	free((void *)(uintptr_t)s->o.status_callback);
	free(s->o.key_prefix_copy);
	free(s->k_due);
	free(s->k_qprefix);
	free(s->k_optout);
	free(s->k_dead);
	free(s->k_deadbody);
	free(s->k_msgprefix);
	free(s->k_result);
	sender_upgrade_free(s->upgrade);
	pace_free(&s->pace);
	free(s);
}

const char *
sender_dead_key(const struct sender *s)
{
	return s->k_dead;
}

void
sender_get_stats(const struct sender *s, struct sender_stats *st)
{
	*st = s->st;
}
