/*
 * Erasure (a customer's right to be forgotten) and history retention.
 *
 * DELETE /api/conversation/{phone} removes everything crmbridge keeps about
 * one phone: its conversation, inbox, control hash and schedules, its
 * messages in the intake stream (their dedupe keys, named after the
 * MessageSid and Twilio's idempotency token only, stay until their TTL with
 * the value "erased", so a captured webhook replayed after the erasure is
 * still refused as a duplicate instead of bringing the message back), its queued and
 * given-up replies, its outbound message records, its analytics entry, the
 * spooled messages on disk and its records in the lead journal; with
 * privacy.erase_odoo the Odoo lead's WhatsApp fields are cleared and a note
 * says so. It waits for a turn in flight for the phone to end (the turn's
 * lease), so nothing is written back after it. The phone's own keys go in
 * one atomic script; the intake stream and the key space are then walked
 * one short script call at a time, so Redis serves everyone else meanwhile.
 *
 * Retention: history entries older than privacy.history_retention are
 * dropped from every conversation by a sweep (SCAN, one script per key), so
 * a conversation kept alive by new messages does not keep old ones.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/form.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "common/redis.h"
#include "conversation/erase.h"
#include "conversation/state.h"
#include "odoo/lead.h"
#include "twilio/intake.h"
#include "redis/scripts.h"

static struct rscript erase_script, erase_stream, erase_scan, prune_script;

static void
scripts_init(void)
{
	if (erase_script.text != NULL)
		return;
	rscript_init(&erase_script, redis_script_erase_phone);
	rscript_init(&erase_stream, redis_script_erase_stream);
	rscript_init(&erase_scan, redis_script_erase_scan);
	rscript_init(&prune_script, redis_script_erase_prune);
}

struct erase_op {
	struct http_request *req; /* NULL once cancelled */
	struct erase_ctx *x;
	char phone[17];
	json_t *answer, *redis; /* what went, so far */
	long long lead;
	char from_id[48], last[48]; /* the stream walk: from ("" once done), up to */
	char cursor[32]; /* the key space walk */
	/* Names the walks use at every step, made once: the stream, whatsapp:phone, the dedupe key prefixes, the
	   pattern of all our keys, the outbound record prefix, the phone's own key prefix. */
	char *k_stream, *from, *p_sid, *p_idem, *p_all, *p_msg, *p_own;
	uint64_t deadline;
	sd_event_source *timer;
	struct erase_op *next;
};

static struct erase_op *erase_ops;

static void
erase_free(struct erase_op *op)
{
	struct erase_op **p;

	for (p = &erase_ops; *p != NULL; p = &(*p)->next)
		if (*p == op) {
			*p = op->next;
			break;
		}
	sd_event_source_disable_unref(op->timer);
	json_decref(op->answer);
	json_decref(op->redis);
	free(op->k_stream);
	free(op->from);
	free(op->p_sid);
	free(op->p_idem);
	free(op->p_all);
	free(op->p_msg);
	free(op->p_own);
	free(op);
}

void
erase_cancel(void)
{
	struct erase_op *op;

	for (op = erase_ops; op != NULL; op = op->next)
		op->req = NULL;
}

static void
erase_answer(struct erase_op *op)
{
	char ph[32];

	if (op->req != NULL) {
		log_notice("admin: everything about %s erased", log_phone(op->phone, ph, sizeof(ph)));
		http_reply_json(op->req, 200, json_incref(op->answer));
	}
	erase_free(op);
}

static void
on_odoo_erased(const struct odoo_error *e, json_t *report, void *arg)
{
	struct erase_op *op = arg;
	json_t *o = json_object_get(op->answer, "odoo");

	json_object_update(o, report);
	if (e->kind == ODOO_OK && json_array_size(json_object_get(report, "leads")) == 0) {
		json_object_set_new(o, "anonymised", json_false());
		json_object_set_new(o, "why", json_string("no lead of this phone in Odoo"));
	} else if (e->kind == ODOO_OK) {
		json_object_set_new(o, "anonymised", json_true());
		op->x->stats.odoo_anonymised++;
	} else {
		/* The rest is gone already; the lead's id is in the answer for a person to finish by hand. */
		char msg[300];
		/* Cut at a character: Odoo's message may quote the customer's words, and json_string() refuses half an
		   "ñ". */
		snprintf(msg, sizeof(msg), "%s error: %.*s", odoo_kind_name(e->kind), (int)utf8_cut(e->message, 250),
		    e->message);
		json_object_set_new(o, "anonymised", json_false());
		json_object_set_new(o, "error", json_string(msg));
		op->x->stats.odoo_failed++;
	}
	erase_answer(op);
}

static void run_erase(struct erase_op *op);

static int
on_retry(sd_event_source *s, uint64_t usec, void *arg)
{
	struct erase_op *op = arg;

	op->timer = sd_event_source_disable_unref(op->timer);
	if (op->req == NULL) {
		erase_free(op);
		return 0;
	}
	run_erase(op);
	return 0;
}

/* The Redis part is done: the lead journal, then the Odoo lead, then the answer. */
static void
erase_finish(struct erase_op *op)
{
	struct erase_ctx *x = op->x;
	long long lead = op->lead;
	int n;

	json_object_set(op->answer, "redis", op->redis);
	/* The lead journal (leads kept without Odoo). */
	if (x->journal_erase != NULL) {
		n = x->journal_erase(op->phone, x->journal_arg);
		json_object_set_new(
		    op->answer, "journal_records", n >= 0 ? json_integer(n) : json_string(strerror(-n)));
	}
	x->stats.erased++;
	if (x->leads != NULL && x->erase_odoo) {
		/* Every lead of the phone, not only the one this conversation wrote: older, lost and won ones too. */
		json_object_set_new(op->answer, "odoo",
		    lead > 0 ? json_pack("{s:I}", "lead_id", (json_int_t)lead) : json_pack("{s:n}", "lead_id"));
		lead_erase(x->leads, op->phone, lead > 0 ? (int)lead : 0, on_odoo_erased, op);
		return;
	}
	json_object_set_new(op->answer, "odoo",
	    lead > 0 ? json_pack("{s:I, s:b, s:s}", "lead_id", (json_int_t)lead, "anonymised", 0, "why",
	                   x->leads == NULL ? "no Odoo configured" : "privacy.erase_odoo is off")
	             : json_null());
	erase_answer(op);
}

static void
count(struct erase_op *op, const char *what, long long n)
{
	json_object_set_new(op->redis, what, json_integer(json_integer_value(json_object_get(op->redis, what)) + n));
}

/* A step of a walk failed: what went is gone, the rest is there; the erasure can simply be asked again. */
static bool
walk_failed(struct erase_op *op, const redisReply *reply, size_t elements)
{
	if (op->req == NULL) {
		erase_free(op);
		return true;
	}
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != elements ||
	    reply->element[0]->type != REDIS_REPLY_STRING) {
		http_reply_error(op->req, 503, "Redis failed during the erasure; part of it is done: ask again");
		erase_free(op);
		return true;
	}
	return false;
}

static void walk(struct erase_op *op);

static void
on_step(redisAsyncContext *ac, void *r, void *pd)
{
	struct erase_op *op = pd;
	redisReply *reply = r;
	bool stream = op->from_id[0] != '\0';

	if (walk_failed(op, reply, stream ? 3 : 2))
		return;
	if (stream) {
		/* {the next start or "" when the stream is done, entries deleted, dedupe keys emptied} */
		count(op, "intake_messages", reply->element[1]->integer);
		count(op, "dedupe_keys", reply->element[2]->integer);
		snprintf(op->from_id, sizeof(op->from_id), "%s", reply->element[0]->str);
	} else {
		/* {the next cursor, keys deleted}: cursor 0 again is the end of the key space */
		count(op, "outbound_records", reply->element[1]->integer);
		snprintf(op->cursor, sizeof(op->cursor), "%s", reply->element[0]->str);
		if (strcmp(op->cursor, "0") == 0) {
			erase_finish(op);
			return;
		}
	}
	walk(op);
}

/*
 * The next step of the walks, one short script call each so that Redis
 * serves everyone else in between: the intake stream (500 entries a call, up
 * to the entry that was last when the erasure began) while from_id is set,
 * then the key space (one SCAN step of 1000) until its cursor is 0 again.
 */
static void
walk(struct erase_op *op)
{
	struct erase_ctx *x = op->x;
	int r;

	if (op->from_id[0] != '\0') {
		const char *argv[7] = {op->k_stream, op->from, op->from_id, op->last, "500", op->p_sid, op->p_idem};
		r = x->redis == NULL ? -1 : rconn_eval(x->redis, &erase_stream, on_step, op, 1, 7, argv, NULL);
	} else {
		const char *argv[6] = {op->phone, op->cursor, op->p_all, op->p_msg, op->p_own, "1000"};
		r = x->redis == NULL ? -1 : rconn_eval(x->redis, &erase_scan, on_step, op, 0, 6, argv, NULL);
	}
	if (r < 0)
		walk_failed(op, NULL, 0);
}

static void
on_erased(redisAsyncContext *ac, void *r, void *pd)
{
	struct erase_op *op = pd;
	struct erase_ctx *x = op->x;
	redisReply *reply = r;
	static const char *const names[] = {
	    "lead_id", "conversation_keys", "schedules", "dead_letters", "queued_replies", "opt_out", "dedupe_keys"};
	size_t i;

	if (op->req == NULL) {
		erase_free(op);
		return;
	}
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) {
		http_reply_error(op->req, 503, "Redis unavailable; nothing was erased there (try again)");
		erase_free(op);
		return;
	}
	if (reply->element[0]->type == REDIS_REPLY_STRING && strcmp(reply->element[0]->str, "busy") == 0) {
		/* A turn or a send for this phone is under way: erased once it ends, so nothing is written back. */
		if (now_usec() > op->deadline) {
			http_reply_error(op->req, 503, "a turn for this phone is in progress; try again in a minute");
			erase_free(op);
			return;
		}
		if (sd_event_add_time(x->event, &op->timer, CLOCK_MONOTONIC, now_usec() + 200000, 10000, on_retry, op) <
		    0) {
			http_reply_error(op->req, 503, "cannot wait for the turn in progress");
			erase_free(op);
		}
		return;
	}
	if (reply->elements != 8 || reply->element[7]->type != REDIS_REPLY_STRING) {
		http_reply_error(op->req, 500, "unexpected answer from the erase script");
		erase_free(op);
		return;
	}
	op->redis = json_pack("{s:i, s:i}", "intake_messages", 0, "outbound_records", 0);
	for (i = 1; i < 7; i++)
		json_object_set_new(op->redis, names[i], json_integer(reply->element[i]->integer));
	op->lead = reply->element[0]->integer;
	snprintf(op->last, sizeof(op->last), "%s", reply->element[7]->str);
	snprintf(op->from_id, sizeof(op->from_id), "%s", op->last[0] != '\0' ? "-" : ""); /* an empty stream: no walk */
	snprintf(op->cursor, sizeof(op->cursor), "0");
	walk(op);
}

static void
run_erase(struct erase_op *op)
{
	struct erase_ctx *x = op->x;
	const char *p = x->key_prefix;
	char *k[18], *a[2], now[24];
	const char *argv[23];
	int i, n = 0;

	xasprintf(&k[0], "%s{%s}:conv", p, op->phone);
	xasprintf(&k[1], "%s{%s}:inbox", p, op->phone);
	xasprintf(&k[2], "%s{%s}:routed", p, op->phone);
	xasprintf(&k[3], "%s{%s}:ctl", p, op->phone);
	xasprintf(&k[4], "%s{turns}:due", p);
	xasprintf(&k[5], "%s{turns}:first", p);
	xasprintf(&k[6], "%s{turns}:lease", p);
	xasprintf(&k[7], "%s{turns}:attempts", p);
	xasprintf(&k[8], "%s{odoo}:pending", p);
	xasprintf(&k[9], "%s{followup}:due", p);
	xasprintf(&k[10], "%s{engine}:dead", p);
	xasprintf(&k[11], "%s{intake}:stream", p);
	xasprintf(&k[12], "%s{outbox}:q:%s", p, op->phone);
	xasprintf(&k[13], "%s{outbox}:due", p);
	xasprintf(&k[14], "%s{outbox}:optout", p);
	xasprintf(&k[15], "%s{outbox}:dead", p);
	xasprintf(&k[16], "%s{stats}:active", p);
	xasprintf(&k[17], "%s{%s}:odoo", p, op->phone);
	xasprintf(&a[0], "%s{outbox}:job:", p);
	xasprintf(&a[1], "%s{outbox}:deadbody:", p);
	snprintf(now, sizeof(now), "%" PRIu64, realtime_usec() / 1000);
	for (i = 0; i < 18; i++)
		argv[n++] = k[i];
	argv[n++] = op->phone;
	argv[n++] = a[0];
	argv[n++] = a[1];
	argv[n++] = op->p_sid;
	argv[n++] = now;
	if (x->redis == NULL || rconn_eval(x->redis, &erase_script, on_erased, op, 18, n, argv, NULL) < 0) {
		if (op->req != NULL)
			http_reply_error(op->req, 503, "Redis unavailable; nothing was erased there (try again)");
		erase_free(op);
	}
	for (i = 0; i < 18; i++)
		free(k[i]);
	free(a[0]);
	free(a[1]);
}

void
erase_delete_conversation(struct http_request *req, void *arg)
{
	struct erase_ctx *x = arg;
	const char *p = http_req_param(req, 0);
	char phone[17], from[32];
	struct erase_op *op;
	int spooled = 0;

	if (p == NULL || conv_phone_param(p, phone) < 0) {
		http_reply_error(req, 400, "the phone must be +E164, whatsapp:+E164 or digits");
		return;
	}
	if (x->redis == NULL || rconn_state(x->redis) != RCONN_UP) {
		http_reply_error(req, 503, "Redis unavailable; nothing was erased (try again)");
		return;
	}
	scripts_init();
	/* The spool first: a message waiting there would otherwise land in Redis after the erase. */
	snprintf(from, sizeof(from), "whatsapp:%s", phone);
	if (x->intake != NULL && (spooled = intake_spool_erase(x->intake, from)) < 0) {
		http_reply_error(
		    req, 503, "a message from this phone is being moved from the spool into Redis; try again");
		return;
	}
	op = xcalloc(1, sizeof(*op));
	op->req = req;
	op->x = x;
	snprintf(op->phone, sizeof(op->phone), "%s", phone);
	xasprintf(&op->k_stream, "%s{intake}:stream", x->key_prefix);
	xasprintf(&op->from, "whatsapp:%s", phone);
	xasprintf(&op->p_sid, "%s{intake}:sid:", x->key_prefix);
	xasprintf(&op->p_idem, "%s{intake}:idem:", x->key_prefix);
	xasprintf(&op->p_all, "%s*", x->key_prefix);
	xasprintf(&op->p_msg, "%s{outbox}:msg:", x->key_prefix);
	xasprintf(&op->p_own, "%s{%s}:", x->key_prefix, phone);
	op->answer = json_pack("{s:s, s:b, s:i}", "phone", phone, "erased", 1, "spool_files", spooled);
	op->deadline = now_usec() + 15000000;
	op->next = erase_ops;
	erase_ops = op;
	run_erase(op);
}

/* ---- retention ---- */

struct sweep {
	char cursor[32];
	bool busy;
};

static struct sweep sweep;

static void sweep_step(struct erase_ctx *x);

static void
on_pruned(redisAsyncContext *ac, void *r, void *pd)
{
	struct erase_ctx *x = pd;
	redisReply *reply = r;

	if (reply != NULL && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1)
		x->stats.pruned_conversations++;
}

static void
on_state(redisAsyncContext *ac, void *r, void *pd)
{
	struct erase_ctx *x = pd;
	redisReply *reply = r;
	const char *why;
	json_t *st;
	char *key = NULL, *pruned;
	size_t dropped;

	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    reply->element[1]->type != REDIS_REPLY_STRING)
		return;
	key = reply->element[0]->str;
	if ((st = conv_state_parse(reply->element[1]->str, reply->element[1]->len, &why)) == NULL)
		return;
	dropped = conv_state_prune(st, realtime_usec() / 1000, x->history_retention_ms);
	if (dropped > 0) {
		const char *argv[3];
		pruned = json_dumps(st, JSON_COMPACT);
		argv[0] = key;
		argv[1] = reply->element[1]->str;
		argv[2] = pruned;
		x->stats.pruned_messages += dropped;
		rconn_eval(x->redis, &prune_script, on_pruned, x, 1, 3, argv, NULL);
		free(pruned);
	}
	json_decref(st);
}

static void
on_scan(redisAsyncContext *ac, void *r, void *pd)
{
	struct erase_ctx *x = pd;
	redisReply *reply = r;
	size_t i;

	sweep.busy = false;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
		return;
	snprintf(sweep.cursor, sizeof(sweep.cursor), "%s", reply->element[0]->str);
	for (i = 0; i < reply->element[1]->elements; i++) {
		const char *k = reply->element[1]->element[i]->str;
		rconn_command(x->redis, on_state, x, "EVAL %s 1 %s", "return {KEYS[1], redis.call('GET', KEYS[1])}", k);
	}
	if (strcmp(sweep.cursor, "0") != 0)
		sweep_step(x);
	else
		x->stats.sweeps++;
}

static void
sweep_step(struct erase_ctx *x)
{
	char *match;

	if (x->redis == NULL || rconn_state(x->redis) != RCONN_UP || sweep.busy)
		return;
	xasprintf(&match, "%s{+*}:conv", x->key_prefix);
	sweep.busy = true;
	if (rconn_command(x->redis, on_scan, x, "SCAN %s MATCH %s COUNT 500", sweep.cursor, match) < 0)
		sweep.busy = false;
	free(match);
}

void
erase_retention_sweep(struct erase_ctx *x)
{
	if (x->history_retention_ms == 0 || sweep.busy)
		return;
	scripts_init();
	snprintf(sweep.cursor, sizeof(sweep.cursor), "0");
	sweep_step(x);
}
