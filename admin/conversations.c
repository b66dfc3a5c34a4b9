/*
 * GET /api/conversations: the conversations, the latest first, one line each
 * (for the dashboard's list and `crmbridgectl`): the phone (and masked), the
 * name, stage, quality, last activity, whether the bot is paused and why,
 * whether the customer waits for a person, opted out, the lead.
 *
 * The order is analytics' P{stats}:active (phone -> last customer turn); each
 * conversation is then read as GET /api/conversation/{phone}/status reads it,
 * one call a phone (each phone is its own slot). ?q= searches the most recent
 * SEARCH_MAX conversations by name, e-mail or phone digits, accents and case
 * folded; ?limit= (1-200, 50) and ?offset= page through them.
 */
#include "config.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "classifier/text.h"
#include "common/form.h"
#include "common/log.h"
#include "common/redis.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "conversation/engine.h"
#include "conversation/state.h"

#define SEARCH_MAX 1000

struct list_op {
	struct http_request *req; /* NULL once cancelled */
	struct admin_ctx *x;
	char *q; /* folded; NULL: no search */
	char qdigits[20]; /* the search's digits, when it is a phone number */
	long long limit, offset, total;
	size_t n, pending;
	char (*phones)[17];
	uint64_t *last_ms;
	json_t **rows; /* NULL: not found, or not matching */
	struct list_op *next;
};

struct list_one {
	struct list_op *op;
	size_t i;
};

static struct list_op *list_ops;

void
admin_conversations_cancel(void)
{
	struct list_op *op;

	for (op = list_ops; op != NULL; op = op->next)
		op->req = NULL;
}

static void
list_free(struct list_op *op)
{
	struct list_op **pp;
	size_t i;

	for (pp = &list_ops; *pp != NULL; pp = &(*pp)->next)
		if (*pp == op) {
			*pp = op->next;
			break;
		}
	for (i = 0; op->rows != NULL && i < op->n; i++)
		json_decref(op->rows[i]);
	free(op->rows);
	free(op->phones);
	free(op->last_ms);
	free(op->q);
	free(op);
}

static bool
contains_folded(const char *s, const char *q)
{
	char *f;
	bool hit;

	if (s == NULL)
		return false;
	f = text_fold_str(s);
	hit = strstr(f, q) != NULL;
	free(f);
	return hit;
}

static bool
matches(const struct list_op *op, const char *phone, const json_t *st)
{
	const char *name =
	    json_string_value(json_object_get(json_object_get(json_object_get(st, "fields"), "name"), "value"));
	const char *email =
	    json_string_value(json_object_get(json_object_get(json_object_get(st, "fields"), "email"), "value"));

	if (op->q == NULL)
		return true;
	if (op->qdigits[0] != '\0' && strstr(phone, op->qdigits) != NULL)
		return true;
	return contains_folded(name, op->q) || contains_folded(email, op->q);
}

/* One line of the list from the state and the control hash; NULL when there is no conversation. */
static json_t *
row(const struct list_op *op, size_t i, const redisReply *reply)
{
	const char *phone = op->phones[i];
	json_t *st, *q, *r;
	const char *why, *reason = NULL;
	long long until = 0;
	uint64_t now = realtime_usec() / 1000;
	char masked[32];
	size_t k;

	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    reply->element[0]->type != REDIS_REPLY_STRING ||
	    (st = conv_state_parse(reply->element[0]->str, reply->element[0]->len, &why)) == NULL)
		return NULL;
	if (!matches(op, phone, st)) {
		json_decref(st);
		return NULL;
	}
	for (k = 0; reply->element[1]->type == REDIS_REPLY_ARRAY && k + 1 < reply->element[1]->elements; k += 2) {
		const redisReply *f = reply->element[1]->element[k], *v = reply->element[1]->element[k + 1];
		if (strcmp(f->str, "pause_until") == 0)
			parse_ll(v->str, 0, INT64_MAX, &until);
		else if (strcmp(f->str, "pause_reason") == 0)
			reason = v->str;
	}
	q = json_object_get(st, "quality");
	r = json_pack("{s:s, s:s, s:s?, s:s, s:o, s:I, s:O, s:I, s:O, s:b, s:b, s:o}", "phone", phone, "phone_masked",
	    log_phone(phone, masked, sizeof(masked)), "name", conv_state_field(st, F_NAME), "stage",
	    conv_state_stage(st), "quality",
	    json_array_size(q) ? json_incref(json_object_get(json_array_get(q, json_array_size(q) - 1), "q"))
	                       : json_null(),
	    "last_activity_ms", (json_int_t)op->last_ms[i], "updated_ms", json_object_get(st, "updated_ms"), "messages",
	    (json_int_t)json_array_size(json_object_get(st, "history")), "lead_id", json_object_get(st, "lead_id"),
	    "opted_out", json_is_true(json_object_get(st, "opted_out")), "waiting_for_person",
	    json_object_get(st, "handoff_ms") != NULL, "paused",
	    until > 0 && (uint64_t)until > now
	        ? json_pack("{s:s, s:I}", "reason", reason ? reason : "admin", "until_ms", (json_int_t)until)
	        : json_null());
	json_decref(st);
	return r;
}

static void
answer(struct list_op *op)
{
	json_t *list = json_array();
	long long skipped = 0, matched = 0;
	size_t i;

	for (i = 0; i < op->n; i++) {
		if (op->rows[i] == NULL)
			continue;
		matched++;
		/* Without a search the offset was applied in Redis; with one, here. */
		if (op->q != NULL && skipped < op->offset) {
			skipped++;
			continue;
		}
		if ((long long)json_array_size(list) < op->limit)
			json_array_append(list, op->rows[i]);
	}
	http_reply_json(op->req, 200,
	    json_pack("{s:o, s:I, s:I, s:s?, s:I}", "conversations", list, "total", (json_int_t)op->total, "matched",
	        (json_int_t)(op->q != NULL ? matched : op->total), "q", op->q, "searched",
	        (json_int_t)(op->q != NULL ? op->n : 0)));
}

static void
on_one(redisAsyncContext *ac, void *r, void *pd)
{
	struct list_one *one = pd;
	struct list_op *op = one->op;

	(void)ac;
	if (op->req != NULL)
		op->rows[one->i] = row(op, one->i, r);
	free(one);
	if (--op->pending > 0)
		return;
	if (op->req != NULL)
		answer(op);
	list_free(op);
}

static void
on_active(redisAsyncContext *ac, void *r, void *pd)
{
	struct list_op *op = pd;
	redisReply *reply = r;
	size_t i;

	(void)ac;
	if (op->req == NULL) {
		list_free(op);
		return;
	}
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    reply->element[1]->type != REDIS_REPLY_ARRAY) {
		http_reply_error(op->req, 503, "Redis unavailable");
		list_free(op);
		return;
	}
	op->total = reply->element[0]->integer;
	reply = reply->element[1];
	op->n = reply->elements / 2;
	op->phones = xcalloc(op->n + 1, sizeof(*op->phones));
	op->last_ms = xcalloc(op->n + 1, sizeof(*op->last_ms));
	op->rows = xcalloc(op->n + 1, sizeof(*op->rows));
	for (i = 0; i < op->n; i++) {
		long long v = 0;
		snprintf(op->phones[i], sizeof(op->phones[i]), "%s", reply->element[2 * i]->str);
		parse_ll(reply->element[2 * i + 1]->str, 0, INT64_MAX, &v);
		op->last_ms[i] = (uint64_t)v;
	}
	op->pending = op->n + 1; /* one more, let go below, so that no answer ends it early */
	for (i = 0; i < op->n; i++) {
		struct list_one *one = xmalloc(sizeof(*one));
		char *key = engine_conv_key(op->x->engine, op->phones[i]),
		     *ctl = engine_ctl_key(op->x->engine, op->phones[i]);
		one->op = op;
		one->i = i;
		if (rconn_command(op->x->redis, on_one, one, "EVAL %s 2 %s %s",
		        "return {redis.call('GET', KEYS[1]), redis.call('HGETALL', KEYS[2])}", key, ctl) < 0) {
			free(one);
			op->pending--;
		}
		free(key);
		free(ctl);
	}
	if (--op->pending > 0)
		return;
	answer(op);
	list_free(op);
}

void
admin_get_conversations(struct http_request *req, void *arg)
{
	struct admin_ctx *x = arg;
	struct form f = {0};
	const char *q = http_req_query(req), *why, *v;
	struct list_op *op;
	long long limit = 50, offset = 0, upto;
	char *key;

	if (form_parse(q, strlen(q), &f, &why) < 0) {
		http_reply_error(req, 400, "the query string is malformed (%s)", why);
		return;
	}
	if (((v = form_get(&f, "limit")) != NULL && parse_ll(v, 1, 200, &limit) < 0) ||
	    ((v = form_get(&f, "offset")) != NULL && parse_ll(v, 0, SEARCH_MAX, &offset) < 0)) {
		form_clear(&f);
		http_reply_error(req, 400, "limit must be a number from 1 to 200, offset from 0 to %d", SEARCH_MAX);
		return;
	}
	if (x->engine == NULL || x->redis == NULL || rconn_state(x->redis) != RCONN_UP) {
		form_clear(&f);
		http_reply_error(req, 503, "Redis unavailable");
		return;
	}
	op = xcalloc(1, sizeof(*op));
	op->req = req;
	op->x = x;
	op->limit = limit;
	op->offset = offset;
	if ((v = form_get(&f, "q")) != NULL && v[0] != '\0') {
		size_t i, n = 0;
		op->q = text_fold_str(v);
		for (i = 0; v[i] != '\0' && n + 1 < sizeof(op->qdigits); i++)
			if (isdigit((unsigned char)v[i]))
				op->qdigits[n++] = v[i];
			else if (strchr("+ -().", v[i]) == NULL)
				break;
		if (v[i] != '\0' || n < 3)
			op->qdigits[0] = '\0'; /* not a phone number, or too short a piece of one */
	}
	form_clear(&f);
	op->next = list_ops;
	list_ops = op;
	upto = op->q != NULL ? SEARCH_MAX : offset + limit;
	xasprintf(&key, "%s{stats}:active", x->key_prefix);
	if (rconn_command(x->redis, on_active, op, "EVAL %s 1 %s %lld %lld",
	        "return {redis.call('ZCARD', KEYS[1]), redis.call('ZREVRANGE', KEYS[1], ARGV[1], ARGV[2], "
	        "'WITHSCORES')}",
	        key, op->q != NULL ? 0LL : offset, upto - 1) < 0) {
		list_free(op);
		http_reply_error(req, 503, "Redis unavailable");
	}
	free(key);
}
