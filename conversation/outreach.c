/*
 * Conversations started from our side, and a person taking one over:
 *   POST /api/call-completed             a call platform's report that a sales call ended (X-Service-Token):
 *                                        the call's context goes into the conversation and the first WhatsApp
 *                                        message goes out as an approved template; idempotent on recipient.id
 *   POST /api/conversation/{phone}/pause the bot stops answering that phone (?for=2h; handoff.pause by default)
 *   POST /api/conversation/{phone}/resume
 * The template goes through the durable outbox like every reply; the
 * request waits (outreach.wait) for Twilio's answer so the caller gets the
 * message SID, and gets 202 with the SID still unknown when Twilio is slow.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/form.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "conversation/outbound.h"
#include "common/redis.h"
#include "conversation/outreach.h"
#include "conversation/state.h"
#include "conversation/engine.h"
#include "odoo/lead.h"
#include "twilio/content.h"
#include "twilio/sender.h"
#include "redis/scripts.h"

static struct rscript store_call;

struct waiter {
	struct http_request *req; /* NULL once the request is gone */
	struct outreach_ctx *x;
	char tag[96];
	json_t *answer; /* what is known besides Twilio's answer */
	sd_event_source *timer;
	struct waiter *next;
};
static struct waiter *waiters;

static void
waiter_free(struct waiter *w)
{
	struct waiter **pp;

	for (pp = &waiters; *pp != NULL; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	sd_event_source_disable_unref(w->timer);
	json_decref(w->answer);
	free(w);
}

/* Answers with Twilio's outcome (res), or 202 while it is unknown (res NULL). */
static void
answer(struct waiter *w, json_t *res)
{
	const char *st = json_string_value(json_object_get(res, "status"));
	unsigned code = 202;

	if (w->req == NULL) {
		waiter_free(w);
		return;
	}
	if (res == NULL) {
		json_object_set_new(w->answer, "twilio", json_pack("{s:s, s:n}", "status", "queued", "sid"));
	} else {
		json_object_set(w->answer, "twilio", res);
		if (st != NULL && strcmp(st, "sent") == 0) {
			code = 200;
			w->x->stats.sent++;
		} else {
			code = 502; /* Twilio refused the template: retrying the call report will not change that */
			w->x->stats.failed++;
		}
	}
	http_reply_json(w->req, code, json_incref(w->answer));
	waiter_free(w);
}

void
outreach_on_result(const char *tag, json_t *res, void *arg)
{
	struct waiter *w, *next;

	for (w = waiters; w != NULL; w = next) {
		next = w->next;
		if (strcmp(w->tag, tag) == 0)
			answer(w, res);
	}
}

void
outreach_cancel(void)
{
	struct waiter *w;

	for (w = waiters; w != NULL; w = w->next)
		w->req = NULL;
}

static int
on_wait_timeout(sd_event_source *s, uint64_t usec, void *arg)
{
	answer(arg, NULL);
	return 0;
}

static void
wait_for_twilio(struct waiter *w)
{
	if (w->x->wait_ms == 0 ||
	    sd_event_add_time(w->x->event, &w->timer, CLOCK_MONOTONIC, now_usec() + w->x->wait_ms * 1000, 10000,
	        on_wait_timeout, w) < 0)
		answer(w, NULL);
}

static void
on_result_read(redisAsyncContext *ac, void *r, void *pd)
{
	struct waiter *w = pd;
	redisReply *reply = r;
	json_t *res = NULL;

	if (reply != NULL && reply->type == REDIS_REPLY_STRING)
		res = json_loadb(reply->str, reply->len, 0, NULL);
	if (res != NULL) {
		answer(w, res);
		json_decref(res);
	} else if (w->req != NULL) {
		wait_for_twilio(w); /* queued earlier and not sent yet */
	} else {
		waiter_free(w);
	}
}

static void
on_template_queued(int parts, void *arg)
{
	struct waiter *w = arg;
	char *k;

	if (w->req == NULL) {
		waiter_free(w);
		return;
	}
	if (parts == -EPERM) {
		w->x->stats.opted_out++;
		json_object_set_new(w->answer, "error",
		    json_pack("{s:i, s:s, s:s}", "code", 409, "status", "opted_out", "message",
		        "the recipient has opted out of WhatsApp messages (STOP): nothing was sent"));
		http_reply_json(w->req, 409, json_incref(w->answer));
		waiter_free(w);
		return;
	}
	if (parts < 0) {
		http_reply_error(w->req, 503, "Redis unavailable: the message could not be queued");
		waiter_free(w);
		return;
	}
	if (parts > 0) {
		wait_for_twilio(w);
		return;
	}
	/* Already queued for this recipient.id: the same answer as the first time. */
	w->x->stats.duplicates++;
	json_object_set_new(w->answer, "duplicate", json_true());
	k = sender_result_key(w->x->sender, w->tag);
	if (w->x->redis == NULL || rconn_command(w->x->redis, on_result_read, w, "GET %s", k) < 0)
		wait_for_twilio(w);
	free(k);
}

struct call_op {
	struct waiter *w;
	char phone[17];
	char *vars;
};

static void
on_call_stored(redisAsyncContext *ac, void *r, void *pd)
{
	struct call_op *op = pd;
	struct waiter *w = op->w;
	redisReply *reply = r;
	struct outreach_ctx *x = w->x;
	json_t *st = NULL, *fields, *f;
	const char *why, *k;
	struct sender_msg m = {0};

	if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
	    reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[0]->integer == 1 && x->started != NULL)
		x->started(x->started_arg); /* a conversation started */
	if (w->req == NULL || reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
		if (w->req != NULL)
			http_reply_error(w->req, 503, "Redis unavailable: the call was not recorded");
		waiter_free(w);
		free(op->vars);
		free(op);
		return;
	}
	if (reply->element[1]->type == REDIS_REPLY_STRING)
		st = conv_state_parse(reply->element[1]->str, reply->element[1]->len, &why);
	fields = json_object();
	json_object_foreach(json_object_get(st, "fields"), k, f)
	    json_object_set(fields, k, json_object_get(f, "value"));
	json_object_set_new(w->answer, "conversation",
	    json_pack("{s:s, s:o, s:I}", "stage", st != NULL ? conv_state_stage(st) : "contacted", "fields", fields,
	        "messages", (json_int_t)json_array_size(json_object_get(st, "history"))));
	json_decref(st);
	m.to = op->phone;
	m.content_sid = x->content_sid;
	m.content_vars = op->vars;
	m.once = w->tag;
	m.tag = w->tag;
	sender_send(x->sender, &m, on_template_queued, w);
	free(op->vars);
	free(op);
}

/* A string member (or a number, written as text), "" when absent; -1 if it has another type. */
static int
str_member(json_t *obj, const char *key, char *out, size_t size, bool required)
{
	json_t *v = json_object_get(obj, key);

	out[0] = '\0';
	if (v == NULL || json_is_null(v))
		return required ? -1 : 0;
	if (json_is_string(v))
		snprintf(out, size, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(out, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else
		return -1;
	return required && out[0] == '\0' ? -1 : 0;
}

/* Whether s is one of the comma-separated words of list (case and surrounding spaces ignored). */
static bool
in_list(const char *list, const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	while (list != NULL && *list != '\0' && n > 0) {
		const char *e = strchr(list, ','), *b = list;
		size_t len;
		if (e == NULL)
			e = list + strlen(list);
		while (b < e && *b == ' ')
			b++;
		for (len = (size_t)(e - b); len > 0 && b[len - 1] == ' '; len--)
			;
		if (len == n && strncasecmp(b, s, n) == 0)
			return true;
		list = *e == ',' ? e + 1 : e;
	}
	return false;
}

static bool
safe_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (; *s != '\0'; s++)
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') && !(*s >= '0' && *s <= '9') &&
		    strchr("_-.:", *s) == NULL)
			return false;
	return true;
}

/*
 * Checks the call platform's payload and builds the call context kept in the
 * conversation (call) and the values template variables may name (src).
 * Returns NULL with the reason in why.
 */
static json_t *
parse_call(json_t *doc, char phone[17], json_t **src, char *why, size_t whylen)
{
	json_t *rec = json_object_get(doc, "recipient"), *meta = json_object_get(doc, "call_metadata");
	json_t *vars = json_object_get(rec, "variables"), *call, *v;
	char rid[128], num[64], buf[256];
	const char *k;
	static const char *const top[] = {"batch_id", "agent_id", "agent_name", "phone_number_id", "batch_name"};
	static const char *const metas[] = {"client_name", "client_id", "group_id", "group_name"};
	size_t i;

	if (!json_is_object(doc)) {
		snprintf(why, whylen, "the body must be a JSON object");
		return NULL;
	}
	if (!json_is_object(rec)) {
		snprintf(why, whylen, "recipient: required, an object");
		return NULL;
	}
	if (str_member(rec, "id", rid, sizeof(rid), true) < 0 || !safe_id(rid)) {
		snprintf(why, whylen, "recipient.id: required, a string or integer of 1-64 letters, digits, _-.:");
		return NULL;
	}
	if (str_member(rec, "phone_number", num, sizeof(num), true) < 0 || conv_phone_param(num, phone) < 0) {
		snprintf(why, whylen, "recipient.phone_number: required, an international number (+E164)");
		return NULL;
	}
	if (str_member(rec, "status", buf, sizeof(buf), true) < 0) {
		snprintf(why, whylen, "recipient.status: required, a string");
		return NULL;
	}
	if (meta != NULL && !json_is_object(meta) && !json_is_null(meta)) {
		snprintf(why, whylen, "call_metadata: must be an object");
		return NULL;
	}
	if (vars != NULL && !json_is_object(vars) && !json_is_null(vars)) {
		snprintf(why, whylen, "recipient.variables: must be an object");
		return NULL;
	}
	call = json_pack("{s:s, s:s}", "recipient_id", rid, "status", buf);
	*src = json_object();
	for (i = 0; i < sizeof(top) / sizeof(top[0]); i++) {
		if (str_member(doc, top[i], buf, sizeof(buf), i < 2) < 0) {
			snprintf(why, whylen, "%s: %s a string", top[i], i < 2 ? "required," : "must be");
			goto bad;
		}
		if (buf[0] != '\0') {
			json_object_set_new(call, top[i], json_string(buf));
			json_object_set_new(*src, top[i], json_string(buf));
		}
	}
	for (i = 0; i < sizeof(metas) / sizeof(metas[0]); i++) {
		if (str_member(meta, metas[i], buf, sizeof(buf), false) < 0) {
			snprintf(why, whylen, "call_metadata.%s: must be a string", metas[i]);
			goto bad;
		}
		if (buf[0] != '\0') {
			json_object_set_new(call, metas[i], json_string(buf));
			json_object_set_new(*src, metas[i], json_string(buf));
		}
	}
	if (str_member(rec, "conversation_id", buf, sizeof(buf), false) < 0) {
		snprintf(why, whylen, "recipient.conversation_id: must be a string");
		goto bad;
	}
	if (buf[0] != '\0')
		json_object_set_new(call, "conversation_id", json_string(buf));
	for (i = 0; i < 2; i++) {
		const char *key = i == 0 ? "created_at_unix" : "updated_at_unix";
		v = json_object_get(rec, key);
		if (v != NULL && !json_is_null(v) && !json_is_integer(v)) {
			snprintf(why, whylen, "recipient.%s: must be an integer (seconds since 1970)", key);
			goto bad;
		}
		if (json_is_integer(v))
			json_object_set(call, key, v);
	}
	if (json_is_object(vars)) {
		json_t *kept = json_object();
		json_object_foreach(vars, k, v)
		{
			if (!json_is_string(v) && !json_is_number(v) && !json_is_boolean(v))
				continue; /* nested values are not context a template or a model can use */
			json_object_set(kept, k, v);
			if (json_is_string(v))
				json_object_set(*src, k, v);
			else if (json_is_integer(v)) {
				snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
				json_object_set_new(*src, k, json_string(buf));
			}
		}
		json_object_set_new(call, "variables", kept);
	}
	json_object_set_new(call, "phone", json_string(phone));
	json_object_set_new(call, "at_ms", json_integer((json_int_t)(realtime_usec() / 1000)));
	return call;
bad:
	json_decref(call);
	json_decref(*src);
	*src = NULL;
	return NULL;
}

void
outreach_call_completed(struct http_request *req, void *arg)
{
	struct outreach_ctx *x = arg;
	const char *tok = http_req_header(req, "X-Service-Token"), *ct = http_req_header(req, "Content-Type"), *body;
	size_t len;
	json_t *doc, *call, *src = NULL, *st;
	json_error_t je;
	char phone[17], why[160], missing[32], *vars, ttl[24], *conv, *ctl, *fresh, *calltxt, ph[32];
	struct waiter *w;
	struct call_op *op;

	x->stats.requests++;
	if (x->service_token == NULL) {
		http_reply_error(
		    req, 503, "outreach is not configured: set CRMBRIDGE_SERVICE_TOKEN (outreach.service_token)");
		return;
	}
	if (tok == NULL || !timingsafe_streq(tok, x->service_token)) {
		x->stats.unauthorized++;
		http_reply_error(req, 401, tok == NULL ? "this endpoint needs X-Service-Token" : "wrong service token");
		return;
	}
	if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0) {
		x->stats.rejected++;
		http_reply_error(req, 415, "the body must be application/json");
		return;
	}
	body = http_req_body(req, &len);
	if ((doc = json_loadb(body != NULL ? body : "", len, 0, &je)) == NULL) {
		x->stats.rejected++;
		http_reply_error(req, 400, "malformed JSON at line %d, column %d", je.line, je.column);
		return;
	}
	if ((call = parse_call(doc, phone, &src, why, sizeof(why))) == NULL) {
		json_decref(doc);
		x->stats.rejected++;
		http_reply_error(req, 422, "%s", why);
		return;
	}
	json_decref(doc);
	if (x->sender == NULL || x->content_sid == NULL || x->redis == NULL) {
		json_decref(call);
		json_decref(src);
		http_reply_error(req, 503, "%s",
		    x->sender == NULL
		        ? "Twilio is not configured: nothing can be sent"
		        : "no outreach template: set CRMBRIDGE_OUTREACH_CONTENT_SID (outreach.content_sid)");
		return;
	}
	/* A call that did not take place (nobody answered, it failed): no "thanks for the call" message. */
	if (in_list(x->skip_statuses, json_string_value(json_object_get(call, "status")))) {
		x->stats.skipped++;
		log_info("outreach: call %s not answered (%s): nothing sent to %s",
		    json_string_value(json_object_get(call, "recipient_id")),
		    json_string_value(json_object_get(call, "status")), log_phone(phone, ph, sizeof(ph)));
		http_reply_json(req, 200,
		    json_pack("{s:s, s:O, s:b, s:s}", "phone", phone, "recipient_id",
		        json_object_get(call, "recipient_id"), "skipped", 1, "reason",
		        "recipient.status is in outreach.skip_statuses: the call did not take place"));
		json_decref(call);
		json_decref(src);
		return;
	}
	/* The conversation as it will start: fresh, with the call merged (kept if one exists). */
	st = conv_state_new(phone, realtime_usec() / 1000);
	outbound_merge_call(st, call, x->history_cap);
	if ((vars = outbound_template_vars(st, src, x->content_variables, missing)) == NULL) {
		json_decref(st);
		json_decref(call);
		json_decref(src);
		x->stats.rejected++;
		http_reply_error(
		    req, 422, "template variable %s has no value in the payload (outreach.content_variables)", missing);
		return;
	}
	json_decref(src);
	{
		/* What the customer will read, when the Content API told us the template's text. */
		char *msg = content_render(x->content, x->content_sid, vars);
		if (msg != NULL) {
			json_object_set_new(call, "message", json_string(msg));
			free(msg);
			json_decref(st);
			st = conv_state_new(phone, realtime_usec() / 1000);
			outbound_merge_call(st, call, x->history_cap);
		}
	}
	w = xcalloc(1, sizeof(*w));
	w->req = req;
	w->x = x;
	snprintf(w->tag, sizeof(w->tag), "outreach:%s", json_string_value(json_object_get(call, "recipient_id")));
	w->answer = json_pack("{s:s, s:O, s:b, s:O}", "phone", phone, "recipient_id",
	    json_object_get(call, "recipient_id"), "duplicate", 0, "call", call);
	w->next = waiters;
	waiters = w;
	x->stats.accepted++;
	log_info("outreach: call %s ended (%s); template to %s",
	    json_string_value(json_object_get(call, "recipient_id")),
	    json_string_value(json_object_get(call, "status")), log_phone(phone, ph, sizeof(ph)));
	op = xcalloc(1, sizeof(*op));
	op->w = w;
	op->vars = vars;
	snprintf(op->phone, sizeof(op->phone), "%s", phone);
	fresh = json_dumps(st, JSON_COMPACT);
	calltxt = json_dumps(call, JSON_COMPACT);
	snprintf(ttl, sizeof(ttl), "%" PRIu64, x->conversation_ttl_ms / 1000);
	conv = engine_conv_key(x->engine, phone);
	ctl = engine_ctl_key(x->engine, phone);
	if (store_call.text == NULL)
		rscript_init(&store_call, redis_script_outreach_store_call);
	{
		const char *a[5] = {conv, ctl, fresh, calltxt, ttl};
		if (rconn_eval(x->redis, &store_call, on_call_stored, op, 2, 5, a, NULL) < 0) {
			http_reply_error(req, 503, "Redis unavailable: the call was not recorded");
			waiter_free(w);
			free(op->vars);
			free(op);
		}
	}
	free(conv);
	free(ctl);
	free(fresh);
	free(calltxt);
	json_decref(st);
	json_decref(call);
}

/* ---- pause and resume ---- */

struct pause_op {
	struct http_request *req;
	struct outreach_ctx *x;
	char phone[17];
	bool pause;
	uint64_t until_ms;
	json_t *answer;
	struct pause_op *next;
};
static struct pause_op *pause_ops;

static void
pause_free(struct pause_op *op)
{
	struct pause_op **pp;

	for (pp = &pause_ops; *pp != NULL; pp = &(*pp)->next)
		if (*pp == op) {
			*pp = op->next;
			break;
		}
	json_decref(op->answer);
	free(op);
}

void
outreach_cancel_pauses(void)
{
	for (struct pause_op *op = pause_ops; op != NULL; op = op->next)
		op->req = NULL;
}

static void
pause_answer(struct pause_op *op, const char *odoo)
{
	if (op->req != NULL) {
		json_object_set_new(op->answer, "odoo", json_string(odoo));
		http_reply_json(op->req, 200, json_incref(op->answer));
	}
	pause_free(op);
}

static void
on_pause_noted(const struct odoo_error *e, void *arg)
{
	struct pause_op *op = arg;
	char msg[400];

	if (e->kind == ODOO_OK) {
		pause_answer(op, op->pause ? "lead assigned and noted" : "noted");
		return;
	}
	snprintf(msg, sizeof(msg), "the lead note failed (%s error: %.*s); the pause itself stands",
	    odoo_kind_name(e->kind), (int)utf8_cut(e->message, 200), e->message); /* at a character */
	pause_answer(op, msg);
}

static void
on_paused(redisAsyncContext *ac, void *r, void *pd)
{
	struct pause_op *op = pd;
	redisReply *reply = r;
	struct outreach_ctx *x = op->x;
	json_t *st = NULL, *lead;
	const char *why;
	char note[256], until[32];

	if (op->req == NULL) {
		pause_free(op);
		return;
	}
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		http_reply_error(op->req, 503, "Redis unavailable");
		pause_free(op);
		return;
	}
	if (reply->type == REDIS_REPLY_STRING)
		st = conv_state_parse(reply->str, reply->len, &why);
	lead = json_object_get(st, "lead_id");
	json_object_set(op->answer, "lead_id", lead != NULL ? lead : json_null());
	if (x->leads == NULL || !json_is_integer(lead) || lead_ctx_has_helpdesk(x->leads)) {
		json_decref(st);
		pause_answer(op, x->leads == NULL ? "no Odoo configured" : "no lead yet");
		return;
	}
	if (op->pause) {
		time_t u = (time_t)(op->until_ms / 1000);
		struct tm tm;
		gmtime_r(&u, &tm);
		strftime(until, sizeof(until), "%Y-%m-%d %H:%M UTC", &tm);
		snprintf(note, sizeof(note),
		    "Paused by an admin: a person has this WhatsApp conversation; the bot stays "
		    "quiet until %s or until resumed.",
		    until);
	} else {
		snprintf(note, sizeof(note), "Resumed by an admin: the WhatsApp bot answers this customer again.");
	}
	lead_handoff(x->leads, (int)json_integer_value(lead), op->pause ? x->handoff_team_id : 0,
	    op->pause ? x->handoff_user_id : 0, note, on_pause_noted, op);
	json_decref(st);
}

static void
pause_or_resume(struct http_request *req, struct outreach_ctx *x, bool pause)
{
	const char *p = http_req_param(req, 0), *q = http_req_query(req);
	char phone[17], ph[32], *conv, *ctl, ttl[24];
	uint64_t dur = x->pause_ms;
	struct pause_op *op;

	if (p == NULL || conv_phone_param(p, phone) < 0) {
		http_reply_error(req, 400, "the phone must be +E164, whatsapp:+E164 or digits");
		return;
	}
	if (pause && q != NULL && strncmp(q, "for=", 4) == 0 &&
	    (parse_duration_ms(q + 4, &dur) < 0 || dur < 60000 || dur > 30ULL * 86400000)) {
		http_reply_error(req, 400, "for must be a duration from 1m to 30d (2h, 90m, 3d)");
		return;
	}
	if (x->redis == NULL || rconn_state(x->redis) != RCONN_UP) {
		http_reply_error(req, 503, "Redis unavailable");
		return;
	}
	op = xcalloc(1, sizeof(*op));
	op->req = req;
	op->x = x;
	op->pause = pause;
	op->until_ms = realtime_usec() / 1000 + dur;
	snprintf(op->phone, sizeof(op->phone), "%s", phone);
	op->answer = pause ? json_pack("{s:s, s:b, s:I, s:s}", "phone", phone, "paused", 1, "until_ms",
	                         (json_int_t)op->until_ms, "by", "admin")
	                   : json_pack("{s:s, s:b}", "phone", phone, "paused", 0);
	op->next = pause_ops;
	pause_ops = op;
	conv = engine_conv_key(x->engine, phone);
	ctl = engine_ctl_key(x->engine, phone);
	/* The hash outlives the conversation when the pause is longer. */
	snprintf(ttl, sizeof(ttl), "%" PRIu64, (dur > x->conversation_ttl_ms ? dur : x->conversation_ttl_ms) / 1000);
	if (pause) {
		rconn_command(x->redis, NULL, NULL, "HSET %s pause_until %" PRIu64 " pause_reason admin pause_by admin",
		    ctl, op->until_ms);
		rconn_command(x->redis, NULL, NULL, "EXPIRE %s %s", ctl, ttl);
		engine_cancel_followups(x->engine, phone);
	} else {
		rconn_command(x->redis, NULL, NULL, "HDEL %s pause_until pause_reason pause_by pause_partner", ctl);
	}
	if (rconn_command(x->redis, on_paused, op, "GET %s", conv) < 0) {
		http_reply_error(req, 503, "Redis unavailable");
		pause_free(op);
	}
	log_notice("admin: conversation %s %s", log_phone(phone, ph, sizeof(ph)), pause ? "paused" : "resumed");
	free(conv);
	free(ctl);
}

void
outreach_pause(struct http_request *req, void *arg)
{
	pause_or_resume(req, arg, true);
}

void
outreach_resume(struct http_request *req, void *arg)
{
	pause_or_resume(req, arg, false);
}
