/*
 * GET /metrics in the Prometheus text format, and the turn observer that
 * feeds it and the analytics. Counters are this process's own since it
 * started (Prometheus handles resets); conversation analytics shared by all
 * instances are in /api/analytics/conversations.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/prom.h"
#include "common/util.h"
#include "admin/admin.h"
#include "admin/analytics.h"
#include "conversation/journal.h"
#include "classifier/classifier.h"
#include "common/redis.h"
#include "conversation/erase.h"
#include "conversation/outreach.h"
#include "conversation/engine.h"
#include "odoo/lead.h"
#include "twilio/intake.h"
#include "twilio/sender.h"
#include "twilio/webhook.h"

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

void
admin_metrics_init(struct admin_ctx *x)
{
	prom_hist_init(&x->m.turn, prom_latency_bounds, prom_latency_nbounds);
	prom_hist_init(&x->m.classify_gemini, prom_latency_bounds, prom_latency_nbounds);
	prom_hist_init(&x->m.classify_rules, prom_latency_bounds, prom_latency_nbounds);
}

void
admin_on_turn(const struct turn_report *r, void *arg)
{
	struct admin_ctx *x = arg;
	int q = r->quality == NULL ? 1 : strcmp(r->quality, "hot") == 0 ? 2 : strcmp(r->quality, "cold") == 0 ? 0 : 1;

	if (r->customer)
		prom_hist_observe(&x->m.turn, (double)r->turn_usec / 1e6);
	if (r->classified) {
		if (r->a->source != NULL && strcmp(r->a->source, "rules") != 0)
			prom_hist_observe(&x->m.classify_gemini, (double)r->classify_usec / 1e6);
		else
			prom_hist_observe(&x->m.classify_rules, (double)r->classify_usec / 1e6);
	}
	if (r->lead == 1 || r->lead == 2) {
		x->m.leads[r->lead - 1][q]++;
		x->lead_writes++;
	} else if (r->lead == -1)
		x->m.leads_deferred++;
	if (x->analytics != NULL)
		analytics_record(
		    x->analytics, x->redis != NULL && rconn_state(x->redis) == RCONN_UP ? x->redis : NULL, r);
}

/* ---- lead figures, cached for the analytics ---- */

static void
on_lead_stats(const struct odoo_error *e, json_t *stats, void *arg)
{
	struct admin_ctx *x = arg;

	x->lead_stats_busy = false;
	if (e != NULL && e->kind != ODOO_OK) {
		log_info("analytics: Odoo lead figures not refreshed: %s", e->message);
		return;
	}
	if (stats != NULL) {
		json_int_t total = 0;
		const char *k;
		json_t *v;
		json_object_foreach(json_object_get(stats, "by_quality"), k, v) total += json_integer_value(v);
		if (json_object_get(stats, "total") == NULL)
			json_object_set_new(stats, "total", json_integer(total));
		json_object_set_new(stats, "store", json_string("odoo"));
		analytics_set_leads(x->analytics, stats, realtime_usec());
	}
}

void
admin_refresh_lead_stats(struct admin_ctx *x)
{
	uint64_t at;

	/* At most once a minute, or sooner when this instance wrote leads since: the figures are a cache, not a way
	   to load Odoo. */
	if (x->analytics == NULL || x->lead_stats_busy ||
	    (analytics_leads(x->analytics, &at) != NULL && realtime_usec() - at < 60 * 1000000ULL &&
	        (x->lead_writes == x->lead_stats_writes || realtime_usec() - at < 5 * 1000000ULL)))
		return;
	if (x->leads != NULL && x->odoo_ok) {
		x->lead_stats_busy = true;
		x->lead_stats_writes = x->lead_writes;
		lead_stats(x->leads, 30, on_lead_stats, x);
	} else if (x->leads == NULL && x->journal != NULL) {
		json_t *s = journal_stats(x->journal, 30);
		analytics_set_leads(x->analytics, s, realtime_usec());
		json_decref(s);
	}
}

/* ---- /metrics ---- */

static void
counter(FILE *f, const char *name, const char *help, double v)
{
	prom_family(f, name, "counter", help);
	prom_sample(f, name, NULL, v);
}

static void
gauge(FILE *f, const char *name, const char *help, double v)
{
	prom_family(f, name, "gauge", help);
	prom_sample(f, name, NULL, v);
}

static void
write_metrics(FILE *f, struct admin_ctx *x)
{
	static const char *const qn[3] = {"cold", "warm", "hot"};
	struct http_stats hs;
	struct intake_stats is;
	struct rconn_info ri;
	struct classifier_stats cs;
	char num[32];
	int i, k;

	prom_family(f, "crmbridge_build_info", "gauge", "Version of crmbridged; always 1.");
	prom_sample(f, "crmbridge_build_info", L("version", PACKAGE_VERSION), 1);
	gauge(f, "crmbridge_start_time_seconds", "When this process started (Unix time).",
	    (double)(x->started_rt / 1000000));
	gauge(f, "crmbridge_uptime_seconds", "Seconds since this process started.",
	    (double)((now_usec() - x->started) / 1000000));

	http_get_stats(x->http, &hs);
	prom_family(f, "crmbridge_http_responses_total", "counter", "HTTP responses on the main listener, by class.");
	prom_sample(f, "crmbridge_http_responses_total", L("class", "2xx"), (double)hs.status_2xx);
	prom_sample(f, "crmbridge_http_responses_total", L("class", "3xx"), (double)hs.status_3xx);
	prom_sample(f, "crmbridge_http_responses_total", L("class", "4xx"), (double)hs.status_4xx);
	prom_sample(f, "crmbridge_http_responses_total", L("class", "5xx"), (double)hs.status_5xx);
	gauge(f, "crmbridge_http_connections", "Open HTTP connections on the main listener.", (double)hs.connections);
	prom_family(f, "crmbridge_http_refused_total", "counter",
	    "HTTP requests refused before a handler saw them, by reason (main listener).");
	prom_sample(f, "crmbridge_http_refused_total", L("reason", "body_too_large"), (double)hs.too_large);
	prom_sample(f, "crmbridge_http_refused_total", L("reason", "uri_too_long"), (double)hs.too_long);
	prom_sample(
	    f, "crmbridge_http_refused_total", L("reason", "conflicting_length"), (double)hs.conflicting_length);
	prom_sample(f, "crmbridge_http_refused_total", L("reason", "closed_early"), (double)hs.closed_early);
	prom_sample(f, "crmbridge_http_refused_total", L("reason", "per_address"), (double)hs.per_address_closed);
	prom_sample(f, "crmbridge_http_refused_total", L("reason", "slow_client"), (double)hs.slow_clients);
	counter(f, "crmbridge_admin_auth_failures_total", "Admin requests refused for a missing or wrong token.",
	    (double)x->auth_failures);
	counter(f, "crmbridge_dashboard_login_links_total", "Dashboard login links made (crmbridgectl dashboard).",
	    (double)x->dash_links);
	counter(f, "crmbridge_dashboard_logins_total", "Dashboard sessions opened (a login link or the admin token).",
	    (double)x->dash_logins);
	counter(f, "crmbridge_dashboard_login_failures_total",
	    "Dashboard logins refused: a used, expired or unknown link, or a wrong token.",
	    (double)x->dash_login_failures);
	counter(f, "crmbridge_dashboard_actions_total",
	    "Changes made through the dashboard (pause, resume, reset, erase, dead-letter retry, log out).",
	    (double)x->dash_actions);

	prom_family(f, "crmbridge_webhook_requests_total", "counter", "Twilio message webhooks, by result.");
	prom_sample(f, "crmbridge_webhook_requests_total", L("result", "accepted"), (double)x->webhook->accepted);
	prom_sample(f, "crmbridge_webhook_requests_total", L("result", "duplicate"), (double)x->webhook->duplicates);
	prom_sample(f, "crmbridge_webhook_requests_total", L("result", "spooled"), (double)x->webhook->spooled);
	prom_sample(f, "crmbridge_webhook_requests_total", L("result", "failed"), (double)x->webhook->failed);
	prom_sample(f, "crmbridge_webhook_requests_total", L("result", "bad_request"), (double)x->webhook->bad_request);
	prom_sample(f, "crmbridge_webhook_requests_total", L("result", "signature_rejected"),
	    (double)(x->webhook->sig_missing + x->webhook->sig_invalid + x->webhook->sig_unconfigured));
	prom_family(f, "crmbridge_webhook_signature_rejects_total", "counter", "Webhooks refused for their signature.");
	prom_sample(
	    f, "crmbridge_webhook_signature_rejects_total", L("reason", "missing"), (double)x->webhook->sig_missing);
	prom_sample(
	    f, "crmbridge_webhook_signature_rejects_total", L("reason", "invalid"), (double)x->webhook->sig_invalid);
	prom_sample(f, "crmbridge_webhook_signature_rejects_total", L("reason", "unconfigured"),
	    (double)x->webhook->sig_unconfigured);
	counter(f, "crmbridge_webhook_duplicates_total", "Webhooks for a MessageSid already stored (Twilio retries).",
	    (double)x->webhook->duplicates);
	counter(f, "crmbridge_status_callbacks_total", "Twilio delivery status callbacks received.",
	    (double)x->webhook->status_callbacks);

	intake_get_stats(x->intake, &is);
	gauge(f, "crmbridge_spool_depth", "Messages waiting in the disk spool for Redis.", (double)is.spool_depth);

	rconn_get_info(x->redis, &ri);
	gauge(f, "crmbridge_redis_up", "1 when the Redis connection is up.", ri.state == RCONN_UP ? 1 : 0);
	counter(f, "crmbridge_redis_reconnects_total", "Redis reconnections.", (double)ri.reconnects);

	prom_family(f, "crmbridge_turn_duration_seconds", "histogram",
	    "From a turn's claim to its commit: classification, lead write, reply queued.");
	prom_hist_write(f, "crmbridge_turn_duration_seconds", NULL, &x->m.turn);
	prom_family(f, "crmbridge_classifier_duration_seconds", "histogram", "Classification time, by who answered.");
	prom_hist_write(f, "crmbridge_classifier_duration_seconds", L("source", model_provider_name(x->provider)),
	    &x->m.classify_gemini);
	prom_hist_write(f, "crmbridge_classifier_duration_seconds", L("source", "rules"), &x->m.classify_rules);

	classifier_get_stats(x->classifier, &cs);
	prom_family(f, "crmbridge_classifier_outcomes_total", "counter",
	    "Classifications, by who answered and why the rules answered for Gemini.");
	prom_sample(f, "crmbridge_classifier_outcomes_total",
	    L("source", model_provider_name(x->provider), "outcome", "ok"), (double)cs.by_gemini);
	prom_sample(f, "crmbridge_classifier_outcomes_total", L("source", "rules", "outcome", "no_model"),
	    (double)(cs.by_rules - cs.fallbacks));
	for (i = 1; i <= GEM_TIMEOUT; i++)
		if (cs.fallback_reason[i] > 0)
			prom_sample(f, "crmbridge_classifier_outcomes_total",
			    L("source", "rules", "outcome", gemini_outcome_name((enum gemini_outcome)i)),
			    (double)cs.fallback_reason[i]);
	if (x->gemini != NULL) {
		struct gemini_stats gs;
		gemini_get_stats(x->gemini, &gs);
		gauge(f, "crmbridge_gemini_breaker_open", "1 while the Gemini circuit breaker is open.",
		    gs.breaker == BREAKER_OPEN ? 1 : 0);
		counter(f, "crmbridge_gemini_retries_total", "Gemini calls retried.", (double)gs.retries);
		counter(f, "crmbridge_gemini_invented_dropped_total",
		    "Values from Gemini dropped for not being in the customer's words.", (double)gs.invented_dropped);
		prom_family(f, "crmbridge_gemini_tokens_total", "counter", "Gemini tokens used, by kind.");
		prom_sample(f, "crmbridge_gemini_tokens_total", L("kind", "prompt"), (double)gs.tokens.prompt);
		prom_sample(f, "crmbridge_gemini_tokens_total", L("kind", "candidates"), (double)gs.tokens.candidates);
		prom_sample(f, "crmbridge_gemini_tokens_total", L("kind", "thoughts"), (double)gs.tokens.thoughts);
	}

	prom_family(f, "crmbridge_odoo_calls_total", "counter", "Odoo calls, by method and result.");
	if (x->odoo != NULL) {
		struct odoo_info oi;
		odoo_get_info(x->odoo, &oi);
		for (i = 0; i < ODOO_METHOD_SLOTS && oi.methods[i].method[0] != '\0'; i++)
			for (k = 0; k < 4; k++)
				if (oi.methods[i].by_kind[k] > 0)
					prom_sample(f, "crmbridge_odoo_calls_total",
					    L("method", oi.methods[i].method, "result",
					        odoo_kind_name((enum odoo_kind)k)),
					    (double)oi.methods[i].by_kind[k]);
		counter(f, "crmbridge_odoo_retries_total", "Odoo calls retried after a transient error.",
		    (double)oi.retries);
	}
	gauge(f, "crmbridge_odoo_up", "1 when Odoo answered the last probe (0 also when not configured).",
	    x->odoo != NULL && x->odoo_ok ? 1 : 0);

	prom_family(f, "crmbridge_twilio_sends_total", "counter", "Replies sent to Twilio, by result and error code.");
	if (x->sender != NULL) {
		struct sender_stats ss;
		sender_get_stats(x->sender, &ss);
		for (i = 0; i < SENDER_RESULT_SLOTS && ss.results[i].result[0] != '\0'; i++) {
			snprintf(num, sizeof(num), "%ld", ss.results[i].code);
			prom_sample(f, "crmbridge_twilio_sends_total", L("result", ss.results[i].result, "code", num),
			    (double)ss.results[i].n);
		}
		gauge(f, "crmbridge_twilio_in_flight", "Sends to Twilio in flight.", (double)ss.in_flight);
		counter(f, "crmbridge_twilio_dead_letters_total", "Replies given up.", (double)ss.dead);
		prom_family(f, "crmbridge_twilio_delivery_total", "counter", "Delivery reports by status.");
		prom_sample(f, "crmbridge_twilio_delivery_total", L("status", "delivered"), (double)ss.delivered);
		prom_sample(f, "crmbridge_twilio_delivery_total", L("status", "read"), (double)ss.read);
		prom_sample(f, "crmbridge_twilio_delivery_total", L("status", "undelivered"), (double)ss.undelivered);
		prom_sample(f, "crmbridge_twilio_delivery_total", L("status", "failed"), (double)ss.failed);
		counter(f, "crmbridge_twilio_outside_window_total",
		    "Replies refused for being outside WhatsApp's 24-hour window (63016).", (double)ss.window_closed);
	}

	if (x->engine != NULL) {
		struct engine_stats es;
		engine_get_stats(x->engine, &es);
		counter(f, "crmbridge_turns_total", "Conversation turns started.", (double)es.turns);
		counter(
		    f, "crmbridge_turns_failed_total", "Turns that failed and were redone.", (double)es.turns_failed);
		gauge(f, "crmbridge_turns_in_flight", "Turns being processed now.", (double)es.in_flight);
		gauge(f, "crmbridge_lead_jobs", "Lead writes under way after their turn.", (double)es.lead_jobs);
		counter(f, "crmbridge_odoo_create_unknown_total",
		    "crm.lead creates that got no answer in time: never resent, looked for before any new create.",
		    (double)es.odoo_create_unknown);
		counter(f, "crmbridge_support_transfers_total", "Conversations handed to support or a person.",
		    (double)es.support);
		prom_family(f, "crmbridge_opt_changes_total", "counter",
		    "Customers who sent STOP (out) or START (in), or blocked the business on WhatsApp (blocked, "
		    "Twilio's 63014).");
		prom_sample(f, "crmbridge_opt_changes_total", L("direction", "out"), (double)es.opt_outs);
		prom_sample(f, "crmbridge_opt_changes_total", L("direction", "in"), (double)es.opt_ins);
		prom_sample(f, "crmbridge_opt_changes_total", L("direction", "blocked"), (double)es.blocked);
		prom_family(f, "crmbridge_odoo_blacklist_total", "counter", "Odoo phone blacklist updates by result.");
		prom_sample(f, "crmbridge_odoo_blacklist_total", L("result", "ok"), (double)es.blacklist_ok);
		prom_sample(f, "crmbridge_odoo_blacklist_total", L("result", "deferred"), (double)es.blacklist_failed);
		counter(f, "crmbridge_messages_silenced_total",
		    "Customer messages kept but not answered (opted out, or a person has the conversation).",
		    (double)es.silenced);
		counter(
		    f, "crmbridge_handoffs_total", "Hand-offs to a person that paused the bot.", (double)es.handoffs);
		prom_family(f, "crmbridge_salesperson_messages_total", "counter",
		    "Salespeople's messages from the leads' chatter, by outcome: sent inside the 24-hour window, held "
		    "for it (the re-opening template sent), sent once the customer answered, refused (no WhatsApp "
		    "conversation, opted out, blocked, no template), failed at Twilio.");
		prom_sample(f, "crmbridge_salesperson_messages_total", L("outcome", "sent"), (double)es.agent_sent);
		prom_sample(f, "crmbridge_salesperson_messages_total", L("outcome", "held"), (double)es.agent_held);
		prom_sample(f, "crmbridge_salesperson_messages_total", L("outcome", "sent_after_hold"),
		    (double)es.agent_released);
		prom_sample(
		    f, "crmbridge_salesperson_messages_total", L("outcome", "refused"), (double)es.agent_refused);
		prom_sample(f, "crmbridge_salesperson_messages_total", L("outcome", "failed"), (double)es.agent_failed);
		counter(f, "crmbridge_salesperson_attachments_not_sent_total",
		    "Salespeople's messages whose attachments were not sent (reported on the lead).",
		    (double)es.agent_files);
		counter(f, "crmbridge_bot_resumed_from_odoo_total",
		    "Conversations handed back to the bot by the resume command in a Log note.",
		    (double)es.agent_resumed);
		counter(f, "crmbridge_inbox_polls_failed_total",
		    "Polls of the leads' chatter that Odoo answered with an error (tried again at the next interval).",
		    (double)es.agent_poll_failed);
		prom_family(f, "crmbridge_chatter_posts_total", "counter",
		    "Messages crmbridge posted on leads' chatter: the WhatsApp conversation, and its notes for the "
		    "team.");
		prom_sample(f, "crmbridge_chatter_posts_total", L("kind", "conversation"), (double)es.chatter_posted);
		prom_sample(f, "crmbridge_chatter_posts_total", L("kind", "note"), (double)es.agent_notes);
		counter(f, "crmbridge_chatter_post_failures_total",
		    "Times the conversation could not be posted on a lead (posted again later, each message once).",
		    (double)es.chatter_failed);
		prom_family(
		    f, "crmbridge_followups_total", "counter", "Follow-ups sent to quiet conversations, by kind.");
		prom_sample(f, "crmbridge_followups_total", L("kind", "text"), (double)es.followups_sent);
		prom_sample(f, "crmbridge_followups_total", L("kind", "template"), (double)es.followups_templates);
		prom_family(f, "crmbridge_window_closed_total", "counter",
		    "Replies due outside the 24-hour window, by what was done.");
		prom_sample(f, "crmbridge_window_closed_total", L("action", "template"), (double)es.window_templates);
		prom_sample(f, "crmbridge_window_closed_total", L("action", "skipped"), (double)es.window_skipped);
		prom_family(f, "crmbridge_links_total", "counter", "Links added to lead confirmations.");
		prom_sample(
		    f, "crmbridge_links_total", L("link", "booking", "result", "added"), (double)es.links_booking);
		prom_sample(
		    f, "crmbridge_links_total", L("link", "payment", "result", "added"), (double)es.links_payment);
		prom_sample(f, "crmbridge_links_total", L("link", "payment", "result", "failed"),
		    (double)es.links_payment_failed);
		prom_family(f, "crmbridge_outreach_total", "counter", "POST /api/call-completed by outcome.");
		prom_sample(f, "crmbridge_outreach_total", L("result", "accepted"), (double)x->outreach->accepted);
		prom_sample(f, "crmbridge_outreach_total", L("result", "duplicate"), (double)x->outreach->duplicates);
		prom_sample(f, "crmbridge_outreach_total", L("result", "rejected"), (double)x->outreach->rejected);
		prom_sample(
		    f, "crmbridge_outreach_total", L("result", "unauthorized"), (double)x->outreach->unauthorized);
		prom_sample(f, "crmbridge_outreach_total", L("result", "opted_out"), (double)x->outreach->opted_out);
		prom_sample(f, "crmbridge_outreach_total", L("result", "sent"), (double)x->outreach->sent);
		prom_sample(f, "crmbridge_outreach_total", L("result", "failed"), (double)x->outreach->failed);
		prom_sample(f, "crmbridge_outreach_total", L("result", "skipped"), (double)x->outreach->skipped);
		prom_family(f, "crmbridge_media_total", "counter",
		    "Inbound voice notes and images: fetched for the model, failed, read by it, or the customer asked "
		    "to write.");
		prom_sample(f, "crmbridge_media_total", L("result", "fetched"), (double)es.media_fetched);
		prom_sample(f, "crmbridge_media_total", L("result", "failed"), (double)es.media_failed);
		prom_sample(f, "crmbridge_media_total", L("result", "transcribed"), (double)es.media_transcribed);
		prom_sample(f, "crmbridge_media_total", L("result", "asked_to_write"), (double)es.media_unread);
		prom_family(f, "crmbridge_privacy_total", "counter",
		    "Erasures (DELETE /api/conversation/{phone}), Odoo anonymisations, history retention.");
		prom_sample(f, "crmbridge_privacy_total", L("event", "erased"), (double)x->privacy->erased);
		prom_sample(
		    f, "crmbridge_privacy_total", L("event", "odoo_anonymised"), (double)x->privacy->odoo_anonymised);
		prom_sample(f, "crmbridge_privacy_total", L("event", "odoo_failed"), (double)x->privacy->odoo_failed);
		prom_sample(f, "crmbridge_privacy_total", L("event", "history_pruned_messages"),
		    (double)x->privacy->pruned_messages);
		prom_sample(f, "crmbridge_privacy_total", L("event", "retention_sweeps"), (double)x->privacy->sweeps);
		prom_family(f, "crmbridge_queue_depth", "gauge", "Items waiting, by queue (sampled every second).");
		prom_sample(
		    f, "crmbridge_queue_depth", L("queue", "turns"), (double)(es.queue_depth < 0 ? 0 : es.queue_depth));
		prom_sample(f, "crmbridge_queue_depth", L("queue", "lead_writes"),
		    (double)(es.odoo_pending < 0 ? 0 : es.odoo_pending));
		prom_sample(f, "crmbridge_queue_depth", L("queue", "dead_turns"),
		    (double)(es.dead_letter_list < 0 ? 0 : es.dead_letter_list));
		prom_sample(f, "crmbridge_queue_depth", L("queue", "spool"), (double)is.spool_depth);
	}
	prom_family(
	    f, "crmbridge_leads_total", "counter", "Leads written (Odoo or the journal), by action and quality.");
	for (k = 0; k < 2; k++)
		for (i = 0; i < 3; i++)
			prom_sample(f, "crmbridge_leads_total",
			    L("action", k == 0 ? "created" : "updated", "quality", qn[i]), (double)x->m.leads[k][i]);
	counter(f, "crmbridge_lead_writes_deferred_total", "Lead writes kept for a background retry.",
	    (double)x->m.leads_deferred);
}

void
admin_get_metrics(struct http_request *req, void *arg)
{
	struct admin_ctx *x = arg;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if ((f = open_memstream(&buf, &len)) == NULL) {
		http_reply_error(req, 503, "out of memory");
		return;
	}
	write_metrics(f, x);
	fclose(f);
	http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", buf, len);
	free(buf);
}
