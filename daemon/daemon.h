/*
 * The state of one crmbridged process, shared by main.c (lifecycle) and
 * routes.c (the HTTP endpoints). Nothing outside daemon/ sees it.
 */
#ifndef CRMB_DAEMON_H
#define CRMB_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "daemon/conf.h"
#include "common/http.h"
#include "classifier/classifier.h"
#include "common/curlev.h"
#include "admin/analytics.h"
#include "common/prom.h"
#include "conversation/engine.h"
#include "conversation/journal.h"
#include "twilio/intake.h"
#include "odoo/client.h"
#include "odoo/lead.h"
#include "twilio/sender.h"
#include "stripe/stripe.h"
#include "twilio/content.h"
#include "common/redis.h"

/* Webhook outcomes, for the status endpoint and later the metrics. */
struct webhook_stats {
	uint64_t requests, accepted, duplicates, spooled, failed;
	uint64_t bad_request, sig_missing, sig_invalid, sig_unconfigured;
	uint64_t status_callbacks;
};

/* POST /api/call-completed outcomes. */
struct outreach_stats {
	uint64_t requests, accepted, duplicates, rejected, unauthorized, opted_out, sent, failed, skipped;
};

/* Erasure and retention (erase.c). */
struct privacy_stats {
	uint64_t erased, odoo_anonymised, odoo_failed, pruned_messages, pruned_conversations, sweeps;
};

/* Process-local figures for /metrics that no module keeps itself. */
struct daemon_metrics {
	struct prom_hist turn, classify_gemini, classify_rules;
	uint64_t leads[2][3]; /* [created, updated][cold, warm, hot] */
	uint64_t leads_deferred;
};

struct daemon {
	sd_event *event;
	struct conf *conf;
	const char *conf_path; /* NULL: none */
	bool conf_required;
	struct http_server *http;
	struct http_server *admin_http; /* NULL: admin endpoints on http */
	char *admin_token; /* the effective admin token (owned); NULL: admin endpoints refuse everyone */
	bool admin_token_generated; /* kept in state_dir/admin.token */
	uint64_t auth_failures;
	struct rconn *redis;
	struct intake *intake;
	struct curlev *curl;
	struct sender *sender; /* NULL without Twilio credentials */
	struct lexicon *lexicon;
	struct gemini *gemini; /* NULL without GOOGLE_API_KEY */
	struct classifier *classifier;
	struct odoo *odoo; /* NULL without ODOO_URL */
	struct lead_ctx *leads;
	struct engine *engine;
	struct journal *journal; /* leads without Odoo */
	struct analytics *analytics;
	struct stripe *stripe; /* NULL without a Stripe key */
	struct content *content; /* the templates' text (Twilio's Content API); NULL without templates */
	struct outreach_stats outreach;
	struct privacy_stats privacy;
	struct media_options media; /* inbound media: from Twilio, with its credentials (points into conf) */
	sd_event_source *retention_timer;
	struct daemon_metrics m;
	sd_event_source *stats_timer;
	bool lead_stats_busy;
	uint64_t lead_writes, lead_stats_writes; /* leads written by this instance; as of the cached figures */
	char consumer[96];
	bool odoo_probe_ok;
	struct odoo_error odoo_probe_error;
	struct webhook_stats wh;
	char bound[80]; /* the address the server got */
	char admin_bound[80];
	uint64_t started; /* CLOCK_MONOTONIC usec */
	uint64_t started_rt; /* CLOCK_REALTIME usec */
	bool ready_sent;
	bool stopping;
	uint64_t stop_deadline;
	sd_event_source *drain;
	/* The last reload: when (realtime usec, 0 if none), whether it worked, how many errors. */
	uint64_t reload_at;
	bool reload_ok;
	unsigned reload_errors;
	uint64_t reloads;
};

/* The routing tables: everything on one listener, or public and admin apart. */
extern const struct http_route daemon_routes[], daemon_public_routes[], daemon_admin_routes[];
extern const size_t daemon_nroutes, daemon_npublic_routes, daemon_nadmin_routes;

/*
 * Sets d->admin_token: the configured one, or the one kept in state_dir (made if there is none). 0, or -1
 * (logged, naming the file and what to do) when the kept one is unusable; d->admin_token is then NULL.
 */
int admin_token_init(struct daemon *d);
/* Wipes and frees d->admin_token. */
void admin_token_free(struct daemon *d);
/* True when req carries the admin token; otherwise answers 401 and returns false. */
bool admin_allowed(struct http_request *req, struct daemon *d);

/*
 * Builds the classifier for c (lexicon, Gemini when keyed, policy) into the
 * out-pointers. Returns 0, or -1 with a reason in err (a bad lexicon).
 */
int daemon_classifier(struct daemon *d, const struct conf *c, struct lexicon **lx, struct gemini **g,
    struct classifier **cl, char *err, size_t errlen);

/* Builds an Odoo client and lead context for c (NULL without ODOO_URL); caller owns both. */
struct odoo *daemon_odoo(sd_event *e, struct curlev *cv, const struct conf *c, struct lead_ctx **leads);

/* Sets up the histograms of /metrics (once, before the engine runs). */
void daemon_metrics_init(struct daemon *d);
/* Told each committed turn by the engine: analytics and metrics. */
void daemon_on_turn(const struct turn_report *r, void *arg);
/* Refreshes the cached lead figures (from Odoo or the journal) now and then. */
void daemon_refresh_lead_stats(struct daemon *d);

/* GET /metrics (metrics.c). */
void get_metrics(struct http_request *req, void *arg);

/* DELETE /api/conversation/{phone}: erases everything about a phone (erase.c). */
void delete_conversation(struct http_request *req, void *arg);
/* Forgets the erase requests waiting (before the HTTP server stops). */
void erase_cancel(void);
/* Drops history older than privacy.history_retention from every conversation (a SCAN sweep). */
void retention_sweep(struct daemon *d);

/* Outreach and hand-off endpoints (outreach.c). */
void post_call_completed(struct http_request *req, void *arg);
void post_conversation_pause(struct http_request *req, void *arg);
void post_conversation_resume(struct http_request *req, void *arg);
/* The sender's report of a tagged message: answers the call-completed request waiting for it. */
void outreach_on_result(const char *tag, json_t *res, void *arg);
/* Forgets the requests waiting (before the HTTP server stops). */
void outreach_cancel(void);
void outreach_cancel_pauses(void);
/* The engine's outbound rules from a configuration. */
void daemon_outbound_options(const struct conf *c, struct engine_options *eo);
/* A Stripe client for c (NULL without a key). */
struct stripe *daemon_stripe(struct daemon *d, const struct conf *c);
struct content *daemon_content(struct daemon *d, const struct conf *c);

/* Cancels the admin requests waiting for Redis (before the HTTP server stops). */
void routes_cancel(void);

/* Builds the http_limits for a configuration. */
void daemon_http_limits(const struct conf *c, struct http_limits *lim);

#endif
