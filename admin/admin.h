/*
 * The admin plane: who may call it (the admin token), the admin endpoints
 * (/health, /system/status, conversations, dead letters, analytics, leads)
 * and /metrics, which report on every service of the process.
 */
#ifndef CRMB_ADMIN_H
#define CRMB_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include "classifier/gemini.h"
#include "common/http.h"
#include "common/prom.h"
#include "odoo/client.h"

/* The longest admin (or outreach service) token accepted, in bytes; the shortest is 16. */
#define ADMIN_TOKEN_MAX 1024

struct analytics;
struct classifier;
struct content;
struct engine;
struct intake;
struct journal;
struct lead_ctx;
struct outreach_stats;
struct privacy_stats;
struct rconn;
struct sender;
struct turn_report;
struct webhook_stats;

/* Process-local figures for /metrics that no other module keeps. */
struct admin_metrics {
	struct prom_hist turn, classify_gemini, classify_rules;
	uint64_t leads[2][3]; /* [created, updated][cold, warm, hot] */
	uint64_t leads_deferred;
};

/*
 * What the admin endpoints and /metrics report on; the handlers and the allow functions take it as their
 * arg. The daemon keeps the borrowed pointers and the configuration current (start, reload) and writes the
 * process's facts; the rest is the admin plane's own.
 */
struct admin_ctx {
	/* The admin token (owned; NULL: every admin request is refused) and the requests it refused. */
	char *token;
	bool token_generated; /* kept in state_dir/admin.token */
	uint64_t auth_failures;

	/* The services (borrowed; NULL when not running). */
	struct rconn *redis;
	struct http_server *http; /* the main listener */
	struct intake *intake;
	struct classifier *classifier;
	struct gemini *gemini;
	struct odoo *odoo;
	struct lead_ctx *leads;
	struct engine *engine;
	struct sender *sender;
	struct journal *journal; /* leads without Odoo */
	struct content *content;
	struct analytics *analytics;
	const struct webhook_stats *webhook;
	const struct outreach_stats *outreach;
	const struct privacy_stats *privacy;

	/* The process, written by the daemon. */
	uint64_t started; /* CLOCK_MONOTONIC usec */
	uint64_t started_rt; /* CLOCK_REALTIME usec */
	bool stopping;
	const char *listen; /* the address the main server got */
	const char *admin_listen; /* the admin server's; NULL: admin endpoints on the main one */
	bool odoo_ok; /* the Odoo probe went through */
	struct odoo_error odoo_error; /* the probe's failure */
	/* The last reload: when (realtime usec, 0 if none), whether it worked, how many errors. */
	uint64_t reloads, reload_at;
	bool reload_ok;
	unsigned reload_errors;

	/* Configuration (borrowed unless said; the daemon refreshes it on reload). */
	bool health_public, metrics_public; /* answered without the admin token */
	const char *conf_path; /* NULL: built-in defaults */
	const char *key_prefix;
	uint64_t window_margin_ms;
	bool model_on; /* a model is configured (else the offline rules) */
	enum model_provider provider;
	const char *gemini_model;
	char *odoo_url; /* owned, its password redacted; NULL: no Odoo */
	bool twilio_configured; /* an auth token is set */

	/* The dashboard (admin/dashboard.c): sessions of session_ttl from login links of link_ttl. */
	bool dash_enabled;
	bool dash_secure; /* the session cookie is Secure (an https public_url, the admin API on the main listener) */
	uint64_t dash_session_ttl_ms, dash_link_ttl_ms;
	char *chartjs; /* owned: Debian's Chart.js as read (NULL: not found, the figures shown as tables) */
	size_t chartjs_len;
	char chartjs_etag[20];
	uint64_t dash_links, dash_logins, dash_login_failures, dash_actions;

	/* The admin plane's own. */
	struct admin_metrics m;
	bool lead_stats_busy;
	uint64_t lead_writes, lead_stats_writes; /* leads written by this instance; as of the cached figures */
};

/*
 * Sets x->token: configured (copied) when not NULL, else the one kept in state_dir (made if there is none).
 * 0, or -1 (logged, naming the file and what to do) when the kept one is unusable; x->token is then NULL.
 */
int admin_token_init(struct admin_ctx *x, const char *configured, const char *state_dir);
/* Wipes and frees x->token and x->odoo_url. */
void admin_ctx_clear(struct admin_ctx *x);
/* True when req carries the admin token; otherwise answers 401 and returns false. */
bool admin_allowed(struct http_request *req, struct admin_ctx *x);
/* The routes' allow functions (arg: the struct admin_ctx): always the token; the token unless public. */
bool admin_allow(struct http_request *req, void *arg);
bool admin_allow_health(struct http_request *req, void *arg);
bool admin_allow_metrics(struct http_request *req, void *arg);

/* The handlers; arg is the struct admin_ctx. */
void admin_get_health(struct http_request *req, void *arg);
void admin_get_system_status(struct http_request *req, void *arg);
void admin_get_conversation_status(struct http_request *req, void *arg);
void admin_get_conversation_history(struct http_request *req, void *arg);
void admin_post_conversation_reset(struct http_request *req, void *arg);
void admin_get_dead_letters(struct http_request *req, void *arg);
void admin_post_dead_letters_retry(struct http_request *req, void *arg);
void admin_get_analytics(struct http_request *req, void *arg);
void admin_get_leads(struct http_request *req, void *arg);
/* GET /api/conversations?q=&limit=&offset=: the conversations, the latest first (admin/conversations.c). */
void admin_get_conversations(struct http_request *req, void *arg);
void admin_conversations_cancel(void);
/* GET /metrics. */
void admin_get_metrics(struct http_request *req, void *arg);
/* Cancels the admin requests waiting for Redis (before the HTTP server stops). */
void admin_cancel(void);

/* Sets up the histograms of /metrics (once, before the engine runs). */
void admin_metrics_init(struct admin_ctx *x);
/* Told each committed turn by the engine (arg: the struct admin_ctx): analytics and metrics. */
void admin_on_turn(const struct turn_report *r, void *arg);
/* Refreshes the cached lead figures (from Odoo or the journal) now and then. */
void admin_refresh_lead_stats(struct admin_ctx *x);

#endif
