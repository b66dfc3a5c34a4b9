/*
 * The admin endpoints: health, the status of every service, conversations,
 * dead letters, analytics and the lead journal. Each handler reads its
 * struct admin_ctx and answers JSON; none of them blocks. daemon/ puts them
 * in its routing table, behind the admin token.
 */
#include "config.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "conversation/outbound.h"
#include "conversation/state.h"
#include "admin/admin.h"
#include "admin/analytics.h"
#include "conversation/journal.h"
#include "classifier/classifier.h"
#include "common/redis.h"
#include "conversation/engine.h"
#include "odoo/chatter.h"
#include "odoo/lead.h"
#include "redis/scripts.h"
#include "twilio/content.h"
#include "twilio/intake.h"
#include "twilio/sender.h"
#include "twilio/webhook.h"

static json_t *
iso_time(uint64_t realtime_usec_v)
{
	char buf[32];
	time_t t = (time_t)(realtime_usec_v / 1000000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

void
admin_get_health(struct http_request *req, void *arg)
{
	struct admin_ctx *x = arg;

	if (x->stopping) {
		http_reply_json(req, 503, json_pack("{s:s}", "status", "stopping"));
		return;
	}
	http_reply_json(req, 200,
	    json_pack("{s:s, s:s, s:I}", "status", "ok", "version", PACKAGE_VERSION, "uptime_s",
	        (json_int_t)((now_usec() - x->started) / 1000000)));
}

static json_t *
service_json(bool configured, const char *configured_text, const char *otherwise)
{
	return json_pack("{s:b, s:s}", "configured", configured, "mode", configured ? configured_text : otherwise);
}

/* A queue's depth as JSON: null when it is unknown (negative: Redis is down). */
static json_t *
depth_json(long long v)
{
	return v < 0 ? json_null() : json_integer((json_int_t)v);
}

void
admin_get_system_status(struct http_request *req, void *arg)
{
	struct admin_ctx *x = arg;
	struct rconn_info ri;
	struct http_stats hs;
	json_t *j, *redis;
	const char *verdict;

	rconn_get_info(x->redis, &ri);
	http_get_stats(x->http, &hs);
	redis = json_pack("{s:s, s:s, s:i, s:I, s:I}", "state", rconn_state_name(ri.state), "endpoint", ri.endpoint,
	    "db", ri.db, "reconnects", (json_int_t)ri.reconnects, "failures", (json_int_t)ri.failures);
	if (ri.state == RCONN_UP)
		json_object_set_new(redis, "ping_ms", json_real((double)ri.ping_rtt_usec / 1000.0));
	json_object_set_new(redis, "last_error", ri.last_error[0] != '\0' ? json_string(ri.last_error) : json_null());
	verdict = x->stopping ? "stopping" : ri.state == RCONN_UP ? "ok" : "degraded";
	j = json_pack("{s:s, s:s, s:I, s:o, s:s, s:o}", "status", verdict, "version", PACKAGE_VERSION, "uptime_s",
	    (json_int_t)((now_usec() - x->started) / 1000000), "started_at", iso_time(x->started_rt), "listen",
	    x->listen, "redis", redis);
	json_object_set_new(j, "http",
	    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "requests",
	        (json_int_t)hs.requests, "status_2xx", (json_int_t)hs.status_2xx, "status_4xx",
	        (json_int_t)hs.status_4xx, "status_5xx", (json_int_t)hs.status_5xx, "too_large",
	        (json_int_t)hs.too_large, "too_long", (json_int_t)hs.too_long, "conflicting_length",
	        (json_int_t)hs.conflicting_length, "closed_early", (json_int_t)hs.closed_early, "per_address_closed",
	        (json_int_t)hs.per_address_closed, "slow_clients_cut", (json_int_t)hs.slow_clients, "connections",
	        (json_int_t)hs.connections, "in_flight", (json_int_t)hs.in_flight));
	json_object_set_new(j, "services",
	    json_pack("{s:o, s:o, s:o}", "classifier",
	        service_json(x->model_on, x->provider == PROVIDER_OPENAI ? "openai" : "gemini", "offline rules"),
	        "odoo", service_json(x->odoo_url != NULL, "odoo", "not configured"), "twilio",
	        service_json(x->twilio_configured, "signed webhooks", "not configured")));
	json_object_set_new(j, "config",
	    json_pack("{s:o, s:I, s:o}", "path", x->conf_path != NULL ? json_string(x->conf_path) : json_null(),
	        "reloads", (json_int_t)x->reloads, "last_reload",
	        x->reload_at == 0 ? json_null()
	                          : json_pack("{s:o, s:b, s:i}", "at", iso_time(x->reload_at), "ok", x->reload_ok,
	                                "errors", (int)x->reload_errors)));
	{
		struct intake_stats is;
		intake_get_stats(x->intake, &is);
		json_object_set_new(j, "intake",
		    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "stored", (json_int_t)is.stored, "duplicates",
		        (json_int_t)is.duplicates, "spooled", (json_int_t)is.spooled, "replayed_from_spool",
		        (json_int_t)is.replayed, "spool_depth", (json_int_t)is.spool_depth, "failed",
		        (json_int_t)is.failed, "redis_up", is.redis_up));
		json_object_set_new(j, "webhook",
		    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "requests", (json_int_t)x->webhook->requests,
		        "accepted", (json_int_t)x->webhook->accepted, "duplicates", (json_int_t)x->webhook->duplicates,
		        "spooled", (json_int_t)x->webhook->spooled, "failed", (json_int_t)x->webhook->failed,
		        "bad_request", (json_int_t)x->webhook->bad_request, "signature_missing",
		        (json_int_t)x->webhook->sig_missing, "signature_invalid",
		        (json_int_t)(x->webhook->sig_invalid + x->webhook->sig_unconfigured)));
	}
	{
		struct classifier_stats cs;
		json_t *cj;
		classifier_get_stats(x->classifier, &cs);
		cj = json_pack("{s:s, s:I, s:I, s:I}", "mode",
		    x->gemini != NULL ? (x->provider == PROVIDER_OPENAI ? "openai" : "gemini") : "offline rules",
		    "by_gemini", (json_int_t)cs.by_gemini, "by_rules", (json_int_t)cs.by_rules, "fallbacks",
		    (json_int_t)cs.fallbacks);
		if (x->gemini != NULL) {
			struct gemini_stats gs;
			gemini_get_stats(x->gemini, &gs);
			json_object_set_new(cj, "gemini",
			    json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:{s:I, s:I, "
			              "s:I, s:I}, s:o}",
			        "model", x->gemini_model, "breaker", breaker_state_name(gs.breaker), "calls",
			        (json_int_t)gs.calls, "ok", (json_int_t)gs.ok, "retries", (json_int_t)gs.retries,
			        "failures", (json_int_t)gs.failures, "config_errors", (json_int_t)gs.config_errors,
			        "timeouts", (json_int_t)gs.timeouts, "blocked", (json_int_t)gs.blocked, "malformed",
			        (json_int_t)(gs.malformed + gs.truncated), "short_circuited",
			        (json_int_t)gs.short_circuited, "invented_dropped", (json_int_t)gs.invented_dropped,
			        "mean_latency_ms",
			        gs.ok + gs.failures
			            ? (double)gs.latency_usec_sum / 1000.0 / (double)(gs.ok + gs.failures)
			            : 0.0,
			        "tokens", "prompt", (json_int_t)gs.tokens.prompt, "candidates",
			        (json_int_t)gs.tokens.candidates, "thoughts", (json_int_t)gs.tokens.thoughts, "total",
			        (json_int_t)gs.tokens.total, "last_error",
			        gs.last_error[0] ? json_string(gs.last_error) : json_null()));
		}
		json_object_set_new(j, "classifier", cj);
	}
	if (x->odoo != NULL) {
		struct odoo_info oi;
		const char *url = x->odoo_url;
		odoo_get_info(x->odoo, &oi);
		/* The probe's own failure counts too: it is not a user call. */
		if (oi.last_error.kind == ODOO_OK && x->odoo_error.kind != ODOO_OK)
			oi.last_error = x->odoo_error;
		/* Reachable: Odoo answered, even if only to refuse the login; ready: the probe went through. */
		bool reachable = x->odoo_ok || oi.major > 0 ||
		    (x->odoo_error.kind != ODOO_OK && x->odoo_error.kind != ODOO_TRANSIENT);
		const char *why = NULL, *type = lead_ctx_lead_type(x->leads, &why);
		json_object_set_new(j, "odoo",
		    json_pack("{s:s, s:s, s:s, s:i, s:b, s:b, s:b, s:s?, s:s?, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
		        "url", url, "version", oi.version[0] ? oi.version : "unknown", "protocol",
		        odoo_protocol_name(oi.protocol), "uid", oi.uid > 0 ? oi.uid : chatter_self_uid(x->leads),
		        /* JSON-2: learnt by the inbox */ "reachable", reachable, "ready", x->odoo_ok, "x_fields",
		        lead_ctx_has_x_fields(x->leads), "lead_type", type, "lead_type_why", type ? why : NULL, "calls",
		        (json_int_t)oi.calls, "ok", (json_int_t)oi.ok, "transient", (json_int_t)oi.transient,
		        "config_errors", (json_int_t)oi.config, "data_errors", (json_int_t)oi.data, "retries",
		        (json_int_t)oi.retries, "last_error",
		        oi.last_error.kind != ODOO_OK
		            ? json_pack("{s:s, s:s}", "kind", odoo_kind_name(oi.last_error.kind), "message",
		                  oi.last_error.message)
		            : json_null()));
		if (!x->odoo_ok || !lead_ctx_has_x_fields(x->leads))
			verdict = x->stopping ? "stopping" : "degraded";
		json_object_set_new(j, "status", json_string(verdict));
	} else {
		json_object_set_new(j, "odoo", json_null());
	}
	if (x->engine != NULL) {
		struct engine_stats es;
		engine_get_stats(x->engine, &es);
		json_object_set_new(j, "engine",
		    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:i, s:I, s:I, s:I}",
		        "routed", (json_int_t)es.routed, "turns", (json_int_t)es.turns, "turns_failed",
		        (json_int_t)es.turns_failed, "replies", (json_int_t)es.replies, "leads_created",
		        (json_int_t)es.leads_created, "leads_updated", (json_int_t)es.leads_updated,
		        "support_transfers", (json_int_t)es.support, "dead_letters", (json_int_t)es.dead_letters,
		        "odoo_deferred", (json_int_t)es.odoo_deferred, "odoo_create_unknown",
		        (json_int_t)es.odoo_create_unknown, "odoo_recovered", (json_int_t)es.odoo_recovered,
		        "state_reset", (json_int_t)es.state_reset, "turns_in_flight", (int)es.in_flight, "lead_jobs",
		        (int)es.lead_jobs, "queue_depth", (json_int_t)es.queue_depth, "odoo_pending_writes",
		        (json_int_t)es.odoo_pending, "dead_letter_list", (json_int_t)es.dead_letter_list));
	}
	{
		struct engine_stats es = {0};
		struct intake_stats is;
		struct sender_stats ss = {0};
		if (x->engine != NULL)
			engine_get_stats(x->engine, &es);
		else
			es.queue_depth = es.odoo_pending = es.dead_letter_list = -1;
		if (x->sender != NULL)
			sender_get_stats(x->sender, &ss);
		intake_get_stats(x->intake, &is);
		/* A depth only Redis knows is null (unknown) while Redis is down, not -1. */
		json_object_set_new(j, "queues",
		    json_pack("{s:I, s:o, s:I, s:o, s:o, s:I}", "spool", (json_int_t)is.spool_depth, "turns_due",
		        depth_json(es.queue_depth), "turns_in_flight", (json_int_t)es.in_flight, "lead_writes_pending",
		        depth_json(es.odoo_pending), "dead_turns", depth_json(es.dead_letter_list), "replies_in_flight",
		        (json_int_t)ss.in_flight));
		json_object_set_new(j, "dashboard",
		    json_pack("{s:b, s:b, s:I, s:I, s:I, s:I}", "enabled", x->dash_enabled, "charts",
		        x->chartjs != NULL, "login_links", (json_int_t)x->dash_links, "logins",
		        (json_int_t)x->dash_logins, "login_failures", (json_int_t)x->dash_login_failures, "actions",
		        (json_int_t)x->dash_actions));
		json_object_set_new(j, "lead_store",
		    x->leads != NULL ? json_pack("{s:s}", "kind", "odoo")
		        : x->journal != NULL
		        ? json_pack("{s:s, s:I}", "kind", "journal", "leads", (json_int_t)journal_count(x->journal))
		        : json_pack("{s:s}", "kind", "none"));
		json_object_set_new(j, "admin",
		    json_pack("{s:s, s:o, s:I, s:b, s:b}", "token",
		        x->token_generated ? "generated (state_dir/admin.token)" : "configured", "admin_listen",
		        x->admin_listen != NULL ? json_string(x->admin_listen) : json_null(), "auth_failures",
		        (json_int_t)x->auth_failures, "health_public", x->health_public, "metrics_public",
		        x->metrics_public));
	}
	if (x->sender != NULL) {
		struct sender_stats ss;
		sender_get_stats(x->sender, &ss);
		json_object_set_new(j, "sender",
		    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I}, s:i, s:i, s:o}",
		        "queued", (json_int_t)ss.queued, "sent", (json_int_t)ss.sent, "retries", (json_int_t)ss.retries,
		        "dead_letters", (json_int_t)ss.dead, "opted_out", (json_int_t)ss.opted_out, "in_flight",
		        (json_int_t)ss.in_flight, "status_callbacks", (json_int_t)x->webhook->status_callbacks,
		        "delivery", "delivered", (json_int_t)ss.delivered, "read", (json_int_t)ss.read, "undelivered",
		        (json_int_t)ss.undelivered, "failed", (json_int_t)ss.failed, "outside_24h_window",
		        (json_int_t)ss.window_closed, "last_http_status", (int)ss.last_http_status, "last_error_code",
		        (int)ss.last_error_code, "last_error",
		        ss.last_error[0] ? json_string(ss.last_error) : json_null()));
		json_object_set_new(
		    json_object_get(j, "sender"), "reconciled", json_integer((json_int_t)ss.reconciled));
	} else {
		json_object_set_new(j, "sender", json_null());
	}
	/* The configured WhatsApp templates and whether Twilio's Content API told us their text. */
	json_object_set_new(j, "templates", content_status(x->content));
	http_reply_json(req, 200, j);
}

/* ---- admin: conversations and dead letters (answered from Redis, asynchronously) ---- */

struct admin_op {
	struct http_request *req; /* NULL once cancelled (the server is stopping) */
	struct admin_ctx *x;
	char phone[17];
	int what; /* 0 status, 1 history */
	json_t *turns, *replies; /* dead letters: the turn records (GET), the reply records as read (retry) */
	size_t nt, skipped; /* dead letters retried: turns requeued, records left */
	bool failed; /* a dead-letter list could not be read */
	bool alone; /* the replies' list could not be asked for: on_dead_turns is the last answer */
	struct admin_op *next;
};

static struct admin_op *admin_ops;

static struct admin_op *
admin_op_new(struct http_request *req, struct admin_ctx *x, const char *phone, int what)
{
	struct admin_op *op = calloc(1, sizeof(*op));

	if (op == NULL)
		return NULL;
	op->req = req;
	op->x = x;
	op->what = what;
	snprintf(op->phone, sizeof(op->phone), "%s", phone ? phone : "");
	op->next = admin_ops;
	admin_ops = op;
	return op;
}

static void
admin_op_free(struct admin_op *op)
{
	struct admin_op **pp;

	for (pp = &admin_ops; *pp != NULL; pp = &(*pp)->next)
		if (*pp == op) {
			*pp = op->next;
			break;
		}
	json_decref(op->turns);
	json_decref(op->replies);
	free(op);
}

void
admin_cancel(void)
{
	struct admin_op *op;

	for (op = admin_ops; op != NULL; op = op->next)
		op->req = NULL;
	admin_conversations_cancel();
}

/* The {phone} of a conversation route as +E164; answers 400 and returns -1 when it is not one. */
static int
phone_param(struct http_request *req, char out[17])
{
	const char *p = http_req_param(req, 0);

	if (p == NULL || conv_phone_param(p, out) < 0) {
		http_reply_error(req, 400, "the phone must be +E164, whatsapp:+E164 or digits");
		return -1;
	}
	return 0;
}

/* What may go out to this customer now: the window, opt-out, a hand-off's pause, follow-ups, a call. */
static void
outbound_status(struct admin_ctx *x, json_t *st, redisReply *ctlr, json_t *out)
{
	json_t *ctl = json_object(), *w;
	uint64_t now = realtime_usec() / 1000, closed = 0, until = 0;
	long long v;
	size_t i;

	if (ctlr != NULL && ctlr->type == REDIS_REPLY_ARRAY)
		for (i = 0; i + 1 < ctlr->elements; i += 2)
			json_object_set_new(ctl, ctlr->element[i]->str, json_string(ctlr->element[i + 1]->str));
	if (parse_ll(json_string_value(json_object_get(ctl, "window_closed_ms")) ?: "0", 0, INT64_MAX, &v) == 0)
		closed = (uint64_t)v;
	if (parse_ll(json_string_value(json_object_get(ctl, "pause_until")) ?: "0", 0, INT64_MAX, &v) == 0)
		until = (uint64_t)v;
	w = json_pack("{s:b, s:O}", "open", outbound_window_open(st, now, x->window_margin_ms, closed),
	    "last_inbound_ms", json_object_get(st, "last_inbound_ms"));
	if (outbound_window_closes(st, x->window_margin_ms) > 0)
		json_object_set_new(
		    w, "free_text_until_ms", json_integer((json_int_t)outbound_window_closes(st, x->window_margin_ms)));
	json_object_set_new(w, "closed_by_twilio_ms", closed > 0 ? json_integer((json_int_t)closed) : json_null());
	json_object_set_new(out, "window", w);
	json_object_set_new(out, "opted_out", json_boolean(json_is_true(json_object_get(st, "opted_out"))));
	/* WhatsApp's 63014: the customer blocked the business; cleared when they write again. */
	if (parse_ll(json_string_value(json_object_get(ctl, "blocked_ms")) ?: "0", 0, INT64_MAX, &v) == 0 && v > 0)
		json_object_set_new(out, "blocked_since_ms", json_integer((json_int_t)v));
	else
		json_object_set_new(out, "blocked_since_ms", json_null());
	if (json_object_get(st, "blacklist_pending") != NULL || json_object_get(st, "blacklisted") != NULL)
		json_object_set_new(out, "odoo_blacklist",
		    json_pack("{s:O?, s:O?}", "blacklisted", json_object_get(st, "blacklisted"), "pending",
		        json_object_get(st, "blacklist_pending")));
	json_object_set_new(out, "paused",
	    until > now ? json_pack("{s:I, s:s?, s:s?}", "until_ms", (json_int_t)until, "reason",
	                      json_string_value(json_object_get(ctl, "pause_reason")), "by",
	                      json_string_value(json_object_get(ctl, "pause_by")))
	                : json_null());
	json_object_set_new(out, "followups",
	    json_pack("{s:I, s:O?}", "sent", json_integer_value(json_object_get(st, "followups_sent")), "last_ms",
	        json_object_get(st, "followup_last_ms")));
	if (json_object_get(st, "call") != NULL)
		json_object_set(out, "call", json_object_get(st, "call"));
	else if (json_object_get(ctl, "call") != NULL)
		json_object_set_new(out, "call", json_loads(json_string_value(json_object_get(ctl, "call")), 0, NULL));
	if (json_object_get(st, "links") != NULL)
		json_object_set(out, "links", json_object_get(st, "links"));
	json_decref(ctl);
}

static void
on_conv(redisAsyncContext *ac, void *r, void *pd)
{
	struct admin_op *op = pd;
	redisReply *reply = r;
	json_t *st, *out;
	const char *why;

	if (op->req == NULL) {
		admin_op_free(op);
		return;
	}
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
		http_reply_error(op->req, 503, "Redis unavailable");
	} else if (reply->element[0]->type != REDIS_REPLY_STRING ||
	    (st = conv_state_parse(reply->element[0]->str, reply->element[0]->len, &why)) == NULL) {
		http_reply_error(op->req, 404, "no conversation with this phone");
	} else {
		if (op->what == 1) {
			out = json_pack("{s:s, s:O}", "phone", op->phone, "history", json_object_get(st, "history"));
		} else {
			json_t *q = json_object_get(st, "quality");
			json_t *fields = json_object(), *f;
			const char *k;
			json_object_foreach(json_object_get(st, "fields"), k, f)
			    json_object_set(fields, k, json_object_get(f, "value"));
			out = json_pack("{s:s, s:s, s:o, s:O, s:O, s:O, s:O, s:O, s:O, s:I}", "phone", op->phone,
			    "stage", conv_state_stage(st), "fields", fields, "lead_id", json_object_get(st, "lead_id"),
			    "lead_pending", json_object_get(st, "lead_pending"), "quality",
			    json_array_size(q) ? json_array_get(q, json_array_size(q) - 1) : json_null(), "counters",
			    json_object_get(st, "counters"), "created_ms", json_object_get(st, "created_ms"),
			    "updated_ms", json_object_get(st, "updated_ms"), "messages",
			    (json_int_t)json_array_size(json_object_get(st, "history")));
			outbound_status(op->x, st, reply->element[1], out);
		}
		json_decref(st);
		http_reply_json(op->req, 200, out);
	}
	admin_op_free(op);
}

static void
conversation_get(struct http_request *req, struct admin_ctx *x, int what)
{
	char phone[17], *key, *ctl;
	struct admin_op *op;

	if (phone_param(req, phone) < 0)
		return;
	if ((op = admin_op_new(req, x, phone, what)) == NULL) {
		http_reply_error(req, 503, "out of memory");
		return;
	}
	key = engine_conv_key(x->engine, phone);
	ctl = engine_ctl_key(x->engine, phone);
	/* The state and the control hash (pause, call, window report) in one round trip: one slot. */
	if (x->redis == NULL ||
	    rconn_command(x->redis, on_conv, op, "EVAL %s 2 %s %s",
	        "return {redis.call('GET', KEYS[1]), redis.call('HGETALL', KEYS[2])}", key, ctl) < 0) {
		admin_op_free(op);
		http_reply_error(req, 503, "Redis unavailable");
	}
	free(key);
	free(ctl);
}

void
admin_get_conversation_status(struct http_request *req, void *arg)
{
	conversation_get(req, arg, 0);
}

void
admin_get_conversation_history(struct http_request *req, void *arg)
{
	conversation_get(req, arg, 1);
}

static void
on_reset(int r, void *arg)
{
	struct admin_op *op = arg;

	if (op->req != NULL) {
		if (r < 0)
			http_reply_error(op->req, 503, "Redis unavailable");
		else
			http_reply_json(op->req, 200, json_pack("{s:s, s:b}", "phone", op->phone, "reset", 1));
	}
	admin_op_free(op);
}

void
admin_post_conversation_reset(struct http_request *req, void *arg)
{
	struct admin_ctx *x = arg;
	char phone[17], ph[32];
	struct admin_op *op;

	if (phone_param(req, phone) < 0)
		return;
	if ((op = admin_op_new(req, x, phone, 2)) == NULL) {
		http_reply_error(req, 503, "out of memory");
		return;
	}
	log_notice("admin: conversation %s reset", log_phone(phone, ph, sizeof(ph)));
	engine_reset_phone(x->engine, phone, on_reset, op);
}

/* The sender's list of replies given up (the same key whether or not a sender runs now). */
static char *
replies_dead_key(const struct admin_ctx *x)
{
	char *k;

	xasprintf(&k, "%s{outbox}:dead", x->key_prefix);
	return k;
}

static json_t *
parse_list(const redisReply *r)
{
	json_t *list = json_array();
	size_t i;

	for (i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		json_t *e = r->element[i]->type == REDIS_REPLY_STRING ? json_loads(r->element[i]->str, 0, NULL) : NULL;
		if (e != NULL)
			json_array_append_new(list, e);
	}
	return list;
}

/* Each record's phone (under key) also masked, as the log shows it, for the dashboard's list. */
static void
masked(json_t *list, const char *key)
{
	char ph[32];
	json_t *e;
	size_t i;

	json_array_foreach(list, i, e)
	{
		const char *p = json_string_value(json_object_get(e, key));
		if (p != NULL)
			json_object_set_new(e, "phone_masked", json_string(log_phone(p, ph, sizeof(ph))));
	}
}

/*
 * The dead letters are read in three calls, each on one hash slot: the
 * turns ({engine}:dead), the replies ({outbox}:dead), then for a retry the
 * replies' texts, named after each record's "job" ({outbox}:deadbody:<job>).
 * Retrying, each record is requeued, then removed (a crash in between
 * retries it twice, never loses it).
 */
static void
on_dead_turns(redisAsyncContext *ac, void *r, void *pd)
{
	struct admin_op *op = pd;
	redisReply *reply = r;
	struct admin_ctx *x = op->x;
	size_t i;

	if (op->alone) {
		admin_op_free(op);
		return;
	}
	if (op->req == NULL || reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
		op->failed = true;
		return;
	}
	if (op->what == 3) {
		op->turns = parse_list(reply);
		return;
	}
	for (i = 0; i < reply->elements; i++) {
		const redisReply *e = reply->element[i];
		json_t *rec = e->type == REDIS_REPLY_STRING ? json_loads(e->str, 0, NULL) : NULL;
		const char *phone = json_string_value(json_object_get(rec, "phone"));
		if (phone != NULL && x->engine != NULL &&
		    engine_requeue(x->engine, phone, json_object_get(rec, "messages")) == 0) {
			rconn_command(
			    x->redis, NULL, NULL, "LREM %s 1 %b", engine_key(x->engine, "dead"), e->str, e->len);
			op->nt++;
		} else {
			op->skipped++;
		}
		json_decref(rec);
	}
}

static void
dead_letters_answer(struct admin_op *op, size_t nr)
{
	log_notice("admin: dead letters retried: %zu turns, %zu replies, %zu left", op->nt, nr, op->skipped);
	http_reply_json(op->req, 200,
	    json_pack("{s:I, s:I, s:I}", "turns_requeued", (json_int_t)op->nt, "replies_requeued", (json_int_t)nr,
	        "left", (json_int_t)op->skipped));
}

/* A retry's reply texts, in the order of op->replies. */
static void
on_dead_bodies(redisAsyncContext *ac, void *r, void *pd)
{
	struct admin_op *op = pd;
	redisReply *reply = r;
	struct admin_ctx *x = op->x;
	char *rkey;
	size_t i, nr = 0;
	json_t *raw;

	if (op->req == NULL) {
		admin_op_free(op);
		return;
	}
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
		http_reply_error(op->req, 503, "Redis unavailable");
		admin_op_free(op);
		return;
	}
	rkey = replies_dead_key(x);
	json_array_foreach(op->replies, i, raw)
	{
		json_t *rec = json_loads(json_string_value(raw), 0, NULL);
		const char *to = json_string_value(json_object_get(rec, "to"));
		const redisReply *b = i < reply->elements ? reply->element[i] : NULL;
		const char *body = b != NULL && b->type == REDIS_REPLY_STRING ? b->str : NULL;
		if (to != NULL && body != NULL && *body != '\0' && x->sender != NULL) {
			sender_enqueue(x->sender, to, body, NULL, NULL);
			rconn_command(x->redis, NULL, NULL, "LREM %s 1 %b", rkey, json_string_value(raw),
			    json_string_length(raw));
			rconn_command(x->redis, NULL, NULL, "DEL %s{outbox}:deadbody:%s", x->key_prefix,
			    json_string_value(json_object_get(rec, "job")));
			nr++;
		} else {
			op->skipped++;
		}
		json_decref(rec);
	}
	free(rkey);
	dead_letters_answer(op, nr);
	admin_op_free(op);
}

static void
on_dead_replies(redisAsyncContext *ac, void *r, void *pd)
{
	struct admin_op *op = pd;
	redisReply *reply = r;
	struct admin_ctx *x = op->x;
	const char **argv;
	size_t i, n = 0;

	if (op->req == NULL) {
		admin_op_free(op);
		return;
	}
	if (op->failed || reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
		http_reply_error(op->req, 503, "Redis unavailable");
		admin_op_free(op);
		return;
	}
	if (op->what == 3) {
		json_t *replies = parse_list(reply);
		masked(op->turns, "phone");
		masked(replies, "to");
		http_reply_json(op->req, 200, json_pack("{s:O, s:o}", "turns", op->turns, "replies", replies));
		admin_op_free(op);
		return;
	}
	/* Only the records with a job can have a text: MGET names those (all in {outbox}: one slot). */
	op->replies = json_array();
	argv = xreallocarray(NULL, reply->elements + 1, sizeof(*argv));
	argv[n++] = "MGET";
	for (i = 0; i < reply->elements; i++) {
		const redisReply *e = reply->element[i];
		json_t *rec = e->type == REDIS_REPLY_STRING ? json_loads(e->str, 0, NULL) : NULL;
		const char *job = json_string_value(json_object_get(rec, "job"));
		json_t *raw = rec != NULL ? json_stringn(e->str, e->len) : NULL;
		if (job != NULL && raw != NULL) {
			char *k;
			xasprintf(&k, "%s{outbox}:deadbody:%s", x->key_prefix, job);
			argv[n++] = k;
			json_array_append(op->replies, raw);
		} else {
			op->skipped++;
		}
		json_decref(raw);
		json_decref(rec);
	}
	if (n == 1) {
		dead_letters_answer(op, 0);
		admin_op_free(op);
	} else if (rconn_command_argv(x->redis, on_dead_bodies, op, (int)n, argv, NULL) < 0) {
		http_reply_error(op->req, 503, "Redis unavailable");
		admin_op_free(op);
	}
	for (i = 1; i < n; i++)
		free((char *)(uintptr_t)argv[i]);
	free(argv);
}

static void
dead_letters(struct http_request *req, struct admin_ctx *x, int what)
{
	struct admin_op *op;
	char *rkey;

	if ((op = admin_op_new(req, x, NULL, what)) == NULL) {
		http_reply_error(req, 503, "out of memory");
		return;
	}
	rkey = replies_dead_key(x);
	/* Answered in order on one connection: on_dead_replies runs last and answers. */
	if (rconn_command(x->redis, on_dead_turns, op, "LRANGE %s 0 999", engine_key(x->engine, "dead")) < 0) {
		admin_op_free(op);
		http_reply_error(req, 503, "Redis unavailable");
	} else if (rconn_command(x->redis, on_dead_replies, op, "LRANGE %s 0 999", rkey) < 0) {
		op->alone = true;
		http_reply_error(req, 503, "Redis unavailable");
	}
	free(rkey);
}

void
admin_get_dead_letters(struct http_request *req, void *arg)
{
	dead_letters(req, arg, 3);
}

void
admin_post_dead_letters_retry(struct http_request *req, void *arg)
{
	dead_letters(req, arg, 4);
}

/* ---- analytics, leads ---- */

static void
on_analytics(json_t *fig, void *arg)
{
	struct admin_op *op = arg;
	struct admin_ctx *x = op->x;

	if (op->req == NULL) {
		json_decref(fig);
		admin_op_free(op);
		return;
	}
	if (fig == NULL) {
		http_reply_error(op->req, 503, "Redis unavailable");
	} else {
		uint64_t at;
		json_t *leads = analytics_leads(x->analytics, &at);
		json_object_set_new(fig, "generated_at", iso_time(realtime_usec()));
		json_object_set_new(fig, "lead_store",
		    leads != NULL ? json_pack("{s:O, s:o}", "figures", leads, "as_of", iso_time(at))
		                  : json_pack("{s:s, s:n}", "store", x->leads != NULL ? "odoo" : "journal", "figures"));
		http_reply_json(op->req, 200, fig);
	}
	admin_op_free(op);
}

void
admin_get_analytics(struct http_request *req, void *arg)
{
	struct admin_ctx *x = arg;
	struct admin_op *op;
	long long days = 30;
	const char *q = http_req_query(req);

	if (strncmp(q, "days=", 5) == 0 && parse_ll(q + 5, 1, 40, &days) < 0) {
		http_reply_error(req, 400, "days must be a number from 1 to 40");
		return;
	}
	if ((op = admin_op_new(req, x, NULL, 5)) == NULL) {
		http_reply_error(req, 503, "out of memory");
		return;
	}
	admin_refresh_lead_stats(x); /* for the next read; this one answers from the cache */
	if (analytics_read(x->analytics, rconn_state(x->redis) == RCONN_UP ? x->redis : NULL, (unsigned)days,
	        on_analytics, op) < 0) {
		admin_op_free(op);
		http_reply_error(req, 503, "Redis unavailable");
	}
}

void
admin_get_leads(struct http_request *req, void *arg)
{
	struct admin_ctx *x = arg;
	long long limit = 100;
	const char *q = http_req_query(req);

	if (strncmp(q, "limit=", 6) == 0 && parse_ll(q + 6, 1, 10000, &limit) < 0) {
		http_reply_error(req, 400, "limit must be a number from 1 to 10000");
		return;
	}
	if (x->leads != NULL) {
		http_reply_error(req, 409, "leads are written to Odoo (%s): look there", x->odoo_url);
		return;
	}
	if (x->journal == NULL) {
		http_reply_error(req, 503, "the lead journal is not open");
		return;
	}
	http_reply_json(
	    req, 200, json_pack("{s:s, s:o}", "store", "journal", "leads", journal_leads(x->journal, (size_t)limit)));
}
