/*
 * GET /api/conversations: the conversations, the latest first, one line each
 * (for the dashboard's list and `crmbridgectl`): the phone (and masked), the
 * name, stage, quality, last activity, whether the bot is paused and why,
 * whether the customer waits for a person, opted out, the lead.
 *
 * The order is analytics' P{stats}:active (phone -> last customer turn); each
 * conversation's line is then picked out of its state by
 * redis/conversations-row.lua, one call a phone (each phone is its own slot),
 * so the histories stay in Redis. ?q= searches the most recent SEARCH_MAX
 * conversations by name, e-mail or phone digits, accents and case folded;
 * ?limit= (1-200, 50) and ?offset= (up to SEARCH_MAX) page through them. A
 * conversation that cannot be read (Redis away) makes the answer 503, never a
 * list with holes.
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
#include "redis/scripts.h"

#define SEARCH_MAX 1000

struct list_op {
	struct http_request *req; /* NULL once cancelled */
	struct admin_ctx *x;
	char *q; /* folded; NULL: no search */
	char qdigits[20]; /* the search's digits, when it is a phone number */
	long long limit, offset, total;
	size_t n, pending;
	bool failed; /* a conversation could not be read */
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
static struct rscript row_script;

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

	if (s == NULL || s[0] == '\0')
		return false;
	f = text_fold_str(s);
	hit = strstr(f, q) != NULL;
	free(f);
	return hit;
}

/* Element i of a conversations-row answer as text ("" when it is not one). */
static const char *
el(const redisReply *r, size_t i)
{
	return i < r->elements && r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str : "";
}

static long long
num(const redisReply *r, size_t i)
{
	long long v = 0;

	if (i < r->elements && r->element[i]->type == REDIS_REPLY_INTEGER)
		return r->element[i]->integer;
	parse_ll(el(r, i), 0, INT64_MAX, &v);
	return v;
}

/*
 * One line of the list from conversations-row.lua's answer: NULL when there is no conversation or it does not
 * match the search; marks the list failed on an error (Redis away).
 */
static json_t *
row(struct list_op *op, size_t i, const redisReply *reply)
{
	const char *phone = op->phones[i], *reason;
	long long until, lead;
	char masked[32];

	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		op->failed = true;
		return NULL;
	}
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 11)
		return NULL; /* nil: erased, or expired since the list was read */
	if (op->q != NULL && !(op->qdigits[0] != '\0' && strstr(phone, op->qdigits) != NULL) &&
	    !contains_folded(el(reply, 0), op->q) && !contains_folded(el(reply, 1), op->q))
		return NULL;
	until = num(reply, 9);
	reason = el(reply, 10);
	lead = num(reply, 6);
	return json_pack("{s:s, s:s, s:o, s:s, s:o, s:I, s:I, s:I, s:o, s:b, s:b, s:o}", "phone", phone, "phone_masked",
	    log_phone(phone, masked, sizeof(masked)), "name", el(reply, 0)[0] ? json_string(el(reply, 0)) : json_null(),
	    "stage", el(reply, 2), "quality", el(reply, 3)[0] ? json_string(el(reply, 3)) : json_null(),
	    "last_activity_ms", (json_int_t)op->last_ms[i], "updated_ms", (json_int_t)num(reply, 4), "messages",
	    (json_int_t)num(reply, 5), "lead_id", lead > 0 ? json_integer((json_int_t)lead) : json_null(), "opted_out",
	    num(reply, 7) == 1, "waiting_for_person", num(reply, 8) == 1, "paused",
	    until > 0 && (uint64_t)until > realtime_usec() / 1000
	        ? json_pack("{s:s, s:I}", "reason", reason[0] ? reason : "admin", "until_ms", (json_int_t)until)
	        : json_null());
}

static void
answer(struct list_op *op)
{
	json_t *list;
	long long skipped = 0, matched = 0;
	size_t i;

	if (op->failed) {
		/* A part of the list could not be read: no list rather than a list that leaves some out. */
		http_reply_error(op->req, 503, "Redis unavailable");
		return;
	}
	list = json_array();
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
		const char *argv[] = {key, ctl};
		if (rconn_eval(op->x->redis, &row_script, on_one, one, 2, 2, argv, NULL) < 0) {
			free(one);
			op->pending--;
			op->failed = true;
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
	if (row_script.text == NULL)
		rscript_init(&row_script, redis_script_conversations_row);
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
