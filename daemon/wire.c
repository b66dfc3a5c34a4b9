/*
 * The wiring: each folder's context filled from the daemon's services and
 * configuration (at start and after a reload), the few callbacks that let a
 * folder reach another without knowing it, and the routing tables, where the
 * daemon decides which endpoint needs the admin token.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "conversation/state.h"
#include "classifier/profile.h"
#include "daemon/daemon.h"

/* The intake stored a message: its phone's turn is due at due_ms; the engine claims it then. */
void
daemon_intake_stored(uint64_t due_ms, void *arg)
{
	struct daemon *d = arg;

	if (d->engine != NULL)
		engine_due(d->engine, due_ms);
}

/* A delivery report about the customer: 63016, the window is closed until they write again; 63014, they blocked
 * the business on WhatsApp, and nothing more goes out until they write again. */
static void
on_refused(const char *to, long code, void *arg)
{
	struct daemon *d = arg;
	char phone[17];

	if (conv_phone_param(to, phone) < 0 || d->engine == NULL)
		return;
	if (code == 63016)
		engine_window_closed(d->engine, phone);
	else if (code == 63014)
		engine_blocked(d->engine, phone);
}

/* A call report started a conversation: the analytics count it. */
static void
on_outreach_started(void *arg)
{
	struct daemon *d = arg;

	if (d->analytics != NULL)
		analytics_outreach(d->analytics, d->redis, realtime_usec() / 1000);
}

static void
erase_forget(const char *phone, void *arg)
{
	struct daemon *d = arg;

	analytics_forget(d->analytics, phone);
}

void
daemon_wire(struct daemon *d)
{
	const struct conf *c = d->conf;
	struct webhook_ctx *w = &d->webhook;
	struct outreach_ctx *o = &d->outreach;
	struct erase_ctx *e = &d->erase;
	struct admin_ctx *a = &d->admin;

	w->intake = d->intake;
	w->sender = d->sender;
	w->refused = on_refused;
	w->arg = d;
	w->verify_signature = c->webhook_verify_signature;
	w->public_url = c->public_url;
	w->auth_token = c->twilio_auth_token;
	w->auth_token_secondary = c->twilio_auth_token_secondary;

	o->event = d->event;
	o->redis = d->redis;
	o->engine = d->engine;
	o->sender = d->sender;
	o->leads = d->leads;
	o->content = d->content;
	o->started = on_outreach_started;
	o->started_arg = d;
	o->service_token = c->outreach_service_token;
	o->content_sid = c->outreach_content_sid;
	o->content_variables = c->outreach_content_variables;
	o->skip_statuses = c->outreach_skip_statuses;
	o->wait_ms = c->outreach_wait_ms;
	o->history_cap = (unsigned)c->engine_history;
	o->conversation_ttl_ms = c->engine_conversation_ttl_ms;
	o->pause_ms = c->handoff_pause_ms;
	o->handoff_team_id = (int)c->handoff_team_id;
	o->handoff_user_id = (int)c->handoff_user_id;

	e->event = d->event;
	e->redis = d->redis;
	e->intake = d->intake;
	e->leads = d->leads;
	e->journal = d->journal;
	e->forget = erase_forget;
	e->forget_arg = d;
	e->key_prefix = c->redis_key_prefix;
	e->erase_odoo = c->privacy_erase_odoo;
	e->history_retention_ms = c->privacy_history_retention_ms;

	a->redis = d->redis;
	a->http = d->http;
	a->intake = d->intake;
	a->classifier = d->classifier;
	a->gemini = d->gemini;
	a->odoo = d->odoo;
	a->leads = d->leads;
	a->engine = d->engine;
	a->sender = d->sender;
	a->journal = d->journal;
	a->content = d->content;
	a->analytics = d->analytics;
	a->webhook = &w->stats;
	a->outreach = &o->stats;
	a->privacy = &e->stats;
	a->listen = d->bound;
	a->admin_listen = d->admin_http != NULL ? d->admin_bound : NULL;
	a->health_public = c->health_public;
	a->metrics_public = c->metrics_public;
	a->conf_path = c->path;
	a->key_prefix = c->redis_key_prefix;
	a->window_margin_ms = c->window_margin_ms;
	a->model_on = conf_model_on(c);
	a->provider = (enum model_provider)conf_model_provider(c);
	a->gemini_model = c->gemini_model;
	free(a->odoo_url);
	a->odoo_url = c->odoo_url != NULL ? conf_redact_url(c->odoo_url) : NULL;
	a->twilio_configured = c->twilio_auth_token != NULL;
	a->dash_enabled = c->dashboard_enabled;
	a->dash_session_ttl_ms = c->dashboard_session_ttl_ms;
	a->dash_link_ttl_ms = c->dashboard_link_ttl_ms;
	/* Secure: the browser reaches the admin API through the https address (not on a listener of its own). */
	a->dash_secure = c->public_url != NULL && strncmp(c->public_url, "https://", 8) == 0 && d->admin_http == NULL;
	if (c->dashboard_enabled)
		dashboard_load_chartjs(a, c->dashboard_chartjs);
}

/* GET /system/config: the whole effective configuration, secrets redacted (arg: the daemon). */
static void
get_system_config(struct http_request *req, void *arg)
{
	struct daemon *d = arg;
	json_t *j;

	j = conf_to_json(d->conf);
	http_reply_json(req, 200,
	    json_pack("{s:o, s:o, s:s}", "config", j, "path", d->conf->path ? json_string(d->conf->path) : json_null(),
	        "admin_token", d->admin.token_generated ? "generated (state_dir/admin.token)" : "configured"));
}

/* GET /api/profile: the effective business profile (arg: the daemon). */
static void
get_profile(struct http_request *req, void *arg)
{
	struct daemon *d = arg;
	json_t *j = profile_to_json(d->profile);

	json_object_set_new(j, "odoo_catalogue", daemon_catalogue_json(d));
	http_reply_json(req, 200, j);
}

static size_t
add_routes(struct http_route *to, size_t n, const struct http_route *from, size_t nfrom)
{
	if (n + nfrom > DAEMON_MAX_ROUTES)
		abort(); /* DAEMON_MAX_ROUTES is too small: a build mistake */
	memcpy(to + n, from, nfrom * sizeof(*from));
	return n + nfrom;
}

void
daemon_routes(struct daemon *d)
{
	struct admin_ctx *a = &d->admin;
	/* /health and /metrics are on every listener, for probes that reach only one. */
	const struct http_route probes[] = {
	    {"GET", "/health", admin_get_health, a, admin_allow_health},
	    {"GET", "/metrics", admin_get_metrics, a, admin_allow_metrics},
	};
	/* Twilio's webhooks and the call platform's report carry their own credentials. */
	const struct http_route public[] = {
	    {"POST", "/api/webhook/whatsapp", webhook_whatsapp, &d->webhook, NULL},
	    {"POST", "/webhook/twilio/incoming", webhook_whatsapp, &d->webhook, NULL},
	    {"POST", "/api/call-completed", outreach_call_completed, &d->outreach, NULL},
	    {"POST", "/api/webhook/status", webhook_status, &d->webhook, NULL},
	};
	const struct http_route admin[] = {
	    {"GET", "/system/status", admin_get_system_status, a, admin_allow},
	    {"GET", "/system/config", get_system_config, d, admin_allow},
	    {"GET", "/api/analytics/conversations", admin_get_analytics, a, admin_allow},
	    {"GET", "/api/stats", admin_get_analytics, a, admin_allow},
	    {"GET", "/api/conversation/{phone}/status", admin_get_conversation_status, a, admin_allow},
	    {"GET", "/api/conversation/{phone}/history", admin_get_conversation_history, a, admin_allow},
	    {"POST", "/api/conversation/{phone}/reset", admin_post_conversation_reset, a, admin_allow},
	    {"DELETE", "/api/conversation/{phone}", erase_delete_conversation, &d->erase, admin_allow},
	    {"POST", "/api/conversation/{phone}/pause", outreach_pause, &d->outreach, admin_allow},
	    {"POST", "/api/conversation/{phone}/resume", outreach_resume, &d->outreach, admin_allow},
	    {"GET", "/api/conversations/{phone}", admin_get_conversation_status, a, admin_allow},
	    {"GET", "/api/dead-letters", admin_get_dead_letters, a, admin_allow},
	    {"POST", "/api/dead-letters/retry", admin_post_dead_letters_retry, a, admin_allow},
	    {"GET", "/api/leads", admin_get_leads, a, admin_allow},
	    {"GET", "/api/profile", get_profile, d, admin_allow},
	    {"GET", "/api/conversations", admin_get_conversations, a, admin_allow},
	    {"POST", "/api/dashboard/link", dashboard_post_link, a, admin_allow},
	    /* The dashboard: its files and logins, then the admin API's handlers behind its session. */
	    {"GET", "/admin", dashboard_get_file, a, NULL},
	    {"GET", "/admin/", dashboard_get_file, a, NULL},
	    {"GET", "/admin/app.js", dashboard_get_file, a, NULL},
	    {"GET", "/admin/app.css", dashboard_get_file, a, NULL},
	    {"GET", "/admin/icon.svg", dashboard_get_file, a, NULL},
	    {"GET", "/admin/chart.js", dashboard_get_file, a, NULL},
	    {"GET", "/admin/login", dashboard_get_login, a, NULL},
	    {"POST", "/admin/login", dashboard_post_login, a, NULL},
	};
	/* What the dashboard's page calls: the API's own handlers (a change: with the CSRF token, audited). */
	const struct dash_route dash[] = {
	    {"GET", "/admin/api/session", a, dashboard_get_session, a, false, NULL},
	    {"POST", "/admin/api/logout", a, dashboard_post_logout, a, true, "session closed"},
	    {"GET", "/admin/api/status", a, admin_get_system_status, a, false, NULL},
	    {"GET", "/admin/api/analytics", a, admin_get_analytics, a, false, NULL},
	    {"GET", "/admin/api/conversations", a, admin_get_conversations, a, false, NULL},
	    {"GET", "/admin/api/conversation/{phone}/status", a, admin_get_conversation_status, a, false, NULL},
	    {"GET", "/admin/api/conversation/{phone}/history", a, admin_get_conversation_history, a, false, NULL},
	    {"POST", "/admin/api/conversation/{phone}/pause", a, outreach_pause, &d->outreach, true, "paused"},
	    {"POST", "/admin/api/conversation/{phone}/resume", a, outreach_resume, &d->outreach, true, "resumed"},
	    {"POST", "/admin/api/conversation/{phone}/reset", a, admin_post_conversation_reset, a, true, "reset"},
	    {"DELETE", "/admin/api/conversation/{phone}", a, erase_delete_conversation, &d->erase, true, "erased"},
	    {"GET", "/admin/api/dead-letters", a, admin_get_dead_letters, a, false, NULL},
	    {"POST", "/admin/api/dead-letters/retry", a, admin_post_dead_letters_retry, a, true,
	        "dead letters retried"},
	};
	struct http_route dash_routes[sizeof(dash) / sizeof(dash[0])];
	size_t i;
#define N(t) (sizeof(t) / sizeof((t)[0]))
	_Static_assert(N(dash) <= DAEMON_MAX_DASH, "DAEMON_MAX_DASH is too small");
	for (i = 0; i < N(dash); i++) {
		d->dash[i] = dash[i];
		dash_routes[i] = (struct http_route){dash[i].method, dash[i].pattern, dashboard_api, &d->dash[i], NULL};
	}
	d->nroutes = add_routes(d->routes, 0, probes, N(probes));
	d->nroutes = add_routes(d->routes, d->nroutes, public, N(public));
	d->nroutes = add_routes(d->routes, d->nroutes, admin, N(admin));
	d->nroutes = add_routes(d->routes, d->nroutes, dash_routes, N(dash_routes));
	d->npublic_routes = add_routes(d->public_routes, 0, probes, N(probes));
	d->npublic_routes = add_routes(d->public_routes, d->npublic_routes, public, N(public));
	d->nadmin_routes = add_routes(d->admin_routes, 0, probes, N(probes));
	d->nadmin_routes = add_routes(d->admin_routes, d->nadmin_routes, admin, N(admin));
	d->nadmin_routes = add_routes(d->admin_routes, d->nadmin_routes, dash_routes, N(dash_routes));
#undef N
}
