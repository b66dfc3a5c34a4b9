/*
 * Configuration loading. Every key is described once in conf_keys[]; the
 * INI file (parsed by libinih), systemd credentials and the environment are
 * all applied through the same typed parser, so a value is checked the same
 * way wherever it comes from. Errors are collected, never the values.
 */
#include "config.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/admin.h"
#include "common/log.h"
#include "common/redis_url.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "daemon/conf.h"
#include "daemon/conf-checks.h"
#include "common/http.h"
#include "classifier/profile.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif

#define CONF_MAX_LINE 4096
#define CRED_MAX 4096

enum ktype { K_STR, K_INT, K_DURATION, K_SIZE, K_LOGLEVEL, K_BOOL };

#define K_SECRET 0x1 /* never shown; a file holding it must be private */
#define K_URLCRED 0x2 /* a URL whose password part is redacted */

typedef const char *(*kcheck)(const char *value);

struct key {
	const char *section;
	const char *name;
	const char *env; /* environment variable, or NULL */
	const char *cred; /* systemd credential name, or NULL */
	enum ktype type;
	unsigned flags;
	long long min, max; /* K_INT: value; K_DURATION: ms; K_SIZE: bytes */
	const char *def; /* default, parsed like any other value; NULL: unset */
	size_t off;
	kcheck check; /* extra check for strings; returns a reason or NULL */
};

#define OFF(f) offsetof(struct conf, f)
#define SEC(x) ((long long)(x)*1000)

static const struct key conf_keys[] = {
    {"server", "listen", "CRMBRIDGE_LISTEN", NULL, K_STR, 0, 0, 0, "127.0.0.1:8080", OFF(listen), check_listen},
    {"server", "public_url", "CRMBRIDGE_PUBLIC_URL", NULL, K_STR, K_URLCRED, 0, 0, NULL, OFF(public_url),
        check_public_url},
    {"server", "admin_token", "CRMBRIDGE_ADMIN_TOKEN", "admin_token", K_STR, K_SECRET, 0, 0, NULL, OFF(admin_token),
        check_admin_token},
    {"server", "admin_listen", "CRMBRIDGE_ADMIN_LISTEN", NULL, K_STR, 0, 0, 0, NULL, OFF(admin_listen), check_listen},
    {"server", "health_public", NULL, NULL, K_BOOL, 0, 0, 0, "yes", OFF(health_public), NULL},
    {"server", "metrics_public", NULL, NULL, K_BOOL, 0, 0, 0, "no", OFF(metrics_public), NULL},
    {"server", "state_dir", "CRMBRIDGE_STATE_DIR", NULL, K_STR, 0, 0, 0, LOCALSTATEDIR "/lib/crmbridge", OFF(state_dir),
        check_abs_path},
    {"server", "log_level", "CRMBRIDGE_LOG_LEVEL", NULL, K_LOGLEVEL, 0, 0, 0, "info", OFF(log_level), NULL},

    {"dashboard", "enabled", NULL, NULL, K_BOOL, 0, 0, 0, "yes", OFF(dashboard_enabled), NULL},
    {"dashboard", "session_ttl", NULL, NULL, K_DURATION, 0, SEC(60), SEC(30 * 86400), "12h",
        OFF(dashboard_session_ttl_ms), NULL},
    {"dashboard", "link_ttl", NULL, NULL, K_DURATION, 0, SEC(1), SEC(3600), "5m", OFF(dashboard_link_ttl_ms), NULL},
    {"dashboard", "chartjs", NULL, NULL, K_STR, 0, 0, 0, "/usr/share/javascript/chart.js/chart.min.js",
        OFF(dashboard_chartjs), check_abs_path},

    {"http", "max_body", NULL, NULL, K_SIZE, 0, 1024, 65536, "64KiB", OFF(http_max_body), NULL},
    {"http", "max_uri", NULL, NULL, K_SIZE, 0, 256, 1048576, "8KiB", OFF(http_max_uri), NULL},
    {"http", "max_connections", NULL, NULL, K_INT, 0, 1, 65536, "1024", OFF(http_max_connections), NULL},
    {"http", "max_connections_per_address", NULL, NULL, K_INT, 0, 0, 65536, "64", OFF(http_max_per_address), NULL},
    {"http", "proxy_addresses", "CRMBRIDGE_PROXY_ADDRESSES", NULL, K_STR, 0, 0, 0, "127.0.0.1 ::1",
        OFF(http_proxy_addresses), check_addresses},
    {"http", "idle_timeout", NULL, NULL, K_DURATION, 0, SEC(1), SEC(3600), "30s", OFF(http_idle_timeout_ms), NULL},
    {"http", "request_timeout", NULL, NULL, K_DURATION, 0, SEC(1), SEC(600), "10s", OFF(http_request_timeout_ms), NULL},
    {"http", "connection_memory", NULL, NULL, K_SIZE, 0, 8192, 1048576, "32KiB", OFF(http_connection_memory), NULL},
    {"http", "body_memory", NULL, NULL, K_SIZE, 0, 65536, 1073741824LL, "16MiB", OFF(http_body_memory), NULL},
    {"http", "shutdown_timeout", NULL, NULL, K_DURATION, 0, 0, SEC(300), "10s", OFF(shutdown_timeout_ms), NULL},

    {"webhook", "verify_signature", NULL, NULL, K_BOOL, 0, 0, 0, "yes", OFF(webhook_verify_signature), NULL},
    {"webhook", "dedupe_ttl", NULL, NULL, K_DURATION, 0, SEC(60), SEC(30 * 86400), "48h", OFF(webhook_dedupe_ttl_ms),
        NULL},
    {"webhook", "redis_timeout", NULL, NULL, K_DURATION, 0, 50, SEC(10), "1s", OFF(webhook_redis_timeout_ms), NULL},

    {"engine", "coalesce_window", NULL, NULL, K_DURATION, 0, 0, SEC(30), "2s", OFF(engine_coalesce_window_ms), NULL},
    {"engine", "coalesce_max", NULL, NULL, K_DURATION, 0, 0, SEC(60), "8s", OFF(engine_coalesce_max_ms), NULL},
    {"engine", "max_turns", NULL, NULL, K_INT, 0, 1, 10000, "256", OFF(engine_max_turns), NULL},
    {"engine", "turn_lease", NULL, NULL, K_DURATION, 0, SEC(5), SEC(3600), "60s", OFF(engine_turn_lease_ms), NULL},
    {"engine", "history", NULL, NULL, K_INT, 0, 4, 1000, "50", OFF(engine_history), NULL},
    {"engine", "context_messages", NULL, NULL, K_INT, 0, 1, 200, "20", OFF(engine_context_messages), NULL},
    {"engine", "conversation_ttl", NULL, NULL, K_DURATION, 0, SEC(3600), SEC(365 * 86400), "7d",
        OFF(engine_conversation_ttl_ms), NULL},
    {"engine", "max_turn_attempts", NULL, NULL, K_INT, 0, 1, 100, "5", OFF(engine_max_turn_attempts), NULL},

    {"redis", "url", "REDIS_URL", "redis_url", K_STR, K_URLCRED, 0, 0, "redis://127.0.0.1:6379/0", OFF(redis_url),
        check_redis_url},
    {"redis", "key_prefix", "CRMBRIDGE_REDIS_PREFIX", NULL, K_STR, 0, 0, 0, "crmbridge:", OFF(redis_key_prefix),
        check_word},
    {"redis", "connect_timeout", NULL, NULL, K_DURATION, 0, 100, SEC(60), "2s", OFF(redis_connect_timeout_ms), NULL},
    {"redis", "ping_interval", NULL, NULL, K_DURATION, 0, 100, SEC(300), "5s", OFF(redis_ping_interval_ms), NULL},

    {"gemini", "api_key", "GOOGLE_API_KEY", "google_api_key", K_STR, K_SECRET, 0, 0, NULL, OFF(gemini_api_key), NULL},
    {"gemini", "model", "GEMINI_MODEL", NULL, K_STR, 0, 0, 0, "gemini-3.5-flash-lite", OFF(gemini_model), check_word},
    {"gemini", "api_base", "GEMINI_API_BASE", NULL, K_STR, K_URLCRED, 0, 0, "https://generativelanguage.googleapis.com",
        OFF(gemini_api_base), check_http_url},
    {"gemini", "timeout", NULL, NULL, K_DURATION, 0, 100, SEC(120), "15s", OFF(gemini_timeout_ms), NULL},

    {"gemini", "max_output_tokens", NULL, NULL, K_INT, 0, 64, 8192, "1024", OFF(gemini_max_output_tokens), NULL},
    {"gemini", "max_attempts", NULL, NULL, K_INT, 0, 1, 10, "3", OFF(gemini_max_attempts), NULL},
    {"gemini", "breaker_failures", NULL, NULL, K_INT, 0, 1, 100, "5", OFF(gemini_breaker_failures), NULL},
    {"gemini", "breaker_open", NULL, NULL, K_DURATION, 0, SEC(1), SEC(3600), "60s", OFF(gemini_breaker_open_ms), NULL},

    {"classifier", "lexicon", "CRMBRIDGE_LEXICON", NULL, K_STR, 0, 0, 0, NULL, OFF(classifier_lexicon), check_abs_path},
    {"classifier", "lead_after_turns", NULL, NULL, K_INT, 0, 1, 50, "4", OFF(classifier_lead_after_turns), NULL},
    {"classifier", "create_on_minimum", NULL, NULL, K_BOOL, 0, 0, 0, "no", OFF(classifier_create_on_minimum), NULL},
    {"classifier", "allow_links", NULL, NULL, K_BOOL, 0, 0, 0, "no", OFF(classifier_allow_links), NULL},
    {"classifier", "provider", "CRMBRIDGE_CLASSIFIER_PROVIDER", NULL, K_STR, 0, 0, 0, "gemini",
        OFF(classifier_provider), check_provider},

    {"business", "profile", "CRMBRIDGE_BUSINESS_PROFILE", NULL, K_STR, 0, 0, 0, NULL, OFF(business_profile),
        check_abs_path},
    {"business", "name", NULL, NULL, K_STR, 0, 0, 0, NULL, OFF(business_name), NULL},
    {"business", "description", NULL, NULL, K_STR, 0, 0, 0, NULL, OFF(business_description), NULL},
    {"business", "country", NULL, NULL, K_STR, 0, 0, 0, NULL, OFF(business_country), check_country},
    {"business", "currency", NULL, NULL, K_STR, 0, 0, 0, NULL, OFF(business_currency), check_currency},
    {"business", "cities", NULL, NULL, K_STR, 0, 0, 0, NULL, OFF(business_cities), NULL},
    {"business", "languages", NULL, NULL, K_STR, 0, 0, 0, NULL, OFF(business_languages), NULL},
    {"business", "hot_needs", NULL, NULL, K_STR, 0, 0, 0, NULL, OFF(business_hot_needs), check_hot_needs},
    {"business", "catalogue_from_odoo", NULL, NULL, K_BOOL, 0, 0, 0, "no", OFF(business_catalogue_from_odoo), NULL},
    {"business", "catalogue_refresh", NULL, NULL, K_DURATION, 0, SEC(60), SEC(7 * 86400), "6h",
        OFF(business_catalogue_refresh_ms), NULL},

    {"twilio", "media_max", NULL, NULL, K_SIZE, 0, 1024, 20LL * 1048576, "16MiB", OFF(twilio_media_max), NULL},
    {"classifier", "media", NULL, NULL, K_BOOL, 0, 0, 0, "yes", OFF(classifier_media), NULL},
    {"privacy", "erase_odoo", NULL, NULL, K_BOOL, 0, 0, 0, "no", OFF(privacy_erase_odoo), NULL},
    {"privacy", "history_retention", NULL, NULL, K_DURATION, 0, 0, SEC(3650LL * 86400), "0",
        OFF(privacy_history_retention_ms), NULL},
    {"privacy", "sweep_interval", NULL, NULL, K_DURATION, 0, SEC(1), SEC(86400), "1h", OFF(privacy_sweep_interval_ms),
        NULL},

    {"openai", "api_key", "OPENAI_API_KEY", "openai_api_key", K_STR, K_SECRET, 0, 0, NULL, OFF(openai_api_key), NULL},
    {"openai", "api_base", "OPENAI_API_BASE", NULL, K_STR, K_URLCRED, 0, 0, OPENAI_DEFAULT_BASE, OFF(openai_api_base),
        check_http_url},
    {"openai", "model", "OPENAI_MODEL", NULL, K_STR, 0, 0, 0, "gpt-4o-mini", OFF(openai_model), check_model},
    {"openai", "max_tokens_param", NULL, NULL, K_STR, 0, 0, 0, "max_completion_tokens", OFF(openai_max_tokens_param),
        check_max_tokens_param},
    /* input_audio needs an audio model: gpt-4o-mini takes text and images only. */
    {"openai", "audio_model", "OPENAI_AUDIO_MODEL", NULL, K_STR, 0, 0, 0, NULL, OFF(openai_audio_model), check_model},
    /* Its own limits: a model on one's own server is often slower than Gemini's or OpenAI's. */
    {"openai", "timeout", NULL, NULL, K_DURATION, 0, 100, SEC(300), "30s", OFF(openai_timeout_ms), NULL},
    {"openai", "max_output_tokens", NULL, NULL, K_INT, 0, 64, 8192, "1024", OFF(openai_max_output_tokens), NULL},
    {"openai", "max_attempts", NULL, NULL, K_INT, 0, 1, 10, "3", OFF(openai_max_attempts), NULL},
    {"openai", "breaker_failures", NULL, NULL, K_INT, 0, 1, 100, "5", OFF(openai_breaker_failures), NULL},
    {"openai", "breaker_open", NULL, NULL, K_DURATION, 0, SEC(1), SEC(3600), "60s", OFF(openai_breaker_open_ms), NULL},

    {"twilio", "account_sid", "TWILIO_ACCOUNT_SID", NULL, K_STR, 0, 0, 0, NULL, OFF(twilio_account_sid),
        check_account_sid},
    {"twilio", "auth_token", "TWILIO_AUTH_TOKEN", "twilio_auth_token", K_STR, K_SECRET, 0, 0, NULL,
        OFF(twilio_auth_token), NULL},
    {"twilio", "auth_token_secondary", "TWILIO_AUTH_TOKEN_SECONDARY", "twilio_auth_token_secondary", K_STR, K_SECRET, 0,
        0, NULL, OFF(twilio_auth_token_secondary), NULL},
    {"twilio", "whatsapp_from", "TWILIO_WHATSAPP_FROM", NULL, K_STR, 0, 0, 0, NULL, OFF(twilio_whatsapp_from),
        check_whatsapp_from},
    {"twilio", "messaging_service_sid", "TWILIO_MESSAGING_SERVICE_SID", NULL, K_STR, 0, 0, 0, NULL,
        OFF(twilio_messaging_service_sid), check_service_sid},
    {"twilio", "api_base", "TWILIO_API_BASE", NULL, K_STR, K_URLCRED, 0, 0, "https://api.twilio.com",
        OFF(twilio_api_base), check_http_url},
    {"twilio", "content_api_base", "TWILIO_CONTENT_API_BASE", NULL, K_STR, K_URLCRED, 0, 0,
        "https://content.twilio.com", OFF(twilio_content_api_base), check_http_url},

    {"twilio", "send_timeout", NULL, NULL, K_DURATION, 0, SEC(1), SEC(120), "15s", OFF(twilio_send_timeout_ms), NULL},
    {"twilio", "max_attempts", NULL, NULL, K_INT, 0, 1, 100, "10", OFF(twilio_max_attempts), NULL},
    {"twilio", "max_in_flight", NULL, NULL, K_INT, 0, 1, 4096, "64", OFF(twilio_max_in_flight), NULL},
    {"twilio", "status_callback", NULL, NULL, K_BOOL, 0, 0, 0, "yes", OFF(twilio_status_callback), NULL},

    {"odoo", "url", "ODOO_URL", NULL, K_STR, K_URLCRED, 0, 0, NULL, OFF(odoo_url), check_http_url},
    {"odoo", "db", "ODOO_DB", NULL, K_STR, 0, 0, 0, NULL, OFF(odoo_db), NULL},
    {"odoo", "username", "ODOO_USERNAME", NULL, K_STR, 0, 0, 0, NULL, OFF(odoo_username), NULL},
    {"odoo", "password", "ODOO_PASSWORD", "odoo_password", K_STR, K_SECRET, 0, 0, NULL, OFF(odoo_password), NULL},
    {"odoo", "timeout", NULL, NULL, K_DURATION, 0, 100, SEC(300), "30s", OFF(odoo_timeout_ms), NULL},
    {"odoo", "protocol", "ODOO_PROTOCOL", NULL, K_STR, 0, 0, 0, "auto", OFF(odoo_protocol), check_protocol},
    {"odoo", "lead_type", NULL, NULL, K_STR, 0, 0, 0, "auto", OFF(odoo_lead_type), check_lead_type},
    {"odoo", "create_patience", NULL, NULL, K_DURATION, 0, 0, SEC(3600), "120s", OFF(odoo_create_patience_ms), NULL},
    {"odoo", "name_template", NULL, NULL, K_STR, 0, 0, 0, "{contact} - {interest}", OFF(odoo_name_template), NULL},
    {"odoo", "priority_hot", NULL, NULL, K_STR, 0, 0, 0, "2", OFF(odoo_priority_hot), check_priority},
    {"odoo", "priority_warm", NULL, NULL, K_STR, 0, 0, 0, "1", OFF(odoo_priority_warm), check_priority},
    {"odoo", "priority_cold", NULL, NULL, K_STR, 0, 0, 0, "0", OFF(odoo_priority_cold), check_priority},
    {"odoo", "team_id", NULL, NULL, K_INT, 0, 0, 2147483647LL, "0", OFF(odoo_team_id), NULL},
    {"odoo", "user_id", NULL, NULL, K_INT, 0, 0, 2147483647LL, "0", OFF(odoo_user_id), NULL},
    {"odoo", "tags", NULL, NULL, K_STR, 0, 0, 0, NULL, OFF(odoo_tags), NULL},
    {"odoo", "default_country_code", NULL, NULL, K_STR, 0, 0, 0, NULL, OFF(odoo_default_country_code), check_digits},
    {"odoo", "max_attempts", NULL, NULL, K_INT, 0, 1, 20, "4", OFF(odoo_max_attempts), NULL},
    {"odoo", "inbox_interval", NULL, NULL, K_DURATION, 0, 0, SEC(3600), "5s", OFF(odoo_inbox_interval_ms), NULL},
    {"odoo", "inbox_resume_command", NULL, NULL, K_STR, 0, 0, 0, "/bot", OFF(odoo_inbox_resume_command), NULL},

    {"outreach", "service_token", "CRMBRIDGE_SERVICE_TOKEN", "service_token", K_STR, K_SECRET, 0, 0, NULL,
        OFF(outreach_service_token), check_admin_token},
    {"outreach", "content_sid", "CRMBRIDGE_OUTREACH_CONTENT_SID", NULL, K_STR, 0, 0, 0, NULL, OFF(outreach_content_sid),
        check_content_sid},
    {"outreach", "content_variables", NULL, NULL, K_STR, 0, 0, 0, "1=client_name", OFF(outreach_content_variables),
        check_variables},
    {"outreach", "skip_statuses", NULL, NULL, K_STR, 0, 0, 0,
        "failed,cancelled,canceled,busy,no-answer,no_answer,voicemail,unreachable", OFF(outreach_skip_statuses), NULL},
    {"outreach", "wait", NULL, NULL, K_DURATION, 0, 0, SEC(60), "10s", OFF(outreach_wait_ms), NULL},

    {"window", "margin", NULL, NULL, K_DURATION, 0, 0, SEC(12 * 3600), "1h", OFF(window_margin_ms), NULL},
    {"window", "content_sid", "CRMBRIDGE_WINDOW_CONTENT_SID", NULL, K_STR, 0, 0, 0, NULL, OFF(window_content_sid),
        check_content_sid},
    {"window", "content_variables", NULL, NULL, K_STR, 0, 0, 0, "1=name", OFF(window_content_variables),
        check_variables},

    {"optout", "odoo_blacklist", NULL, NULL, K_BOOL, 0, 0, 0, "no", OFF(optout_odoo_blacklist), NULL},

    {"handoff", "pause", NULL, NULL, K_DURATION, 0, SEC(60), SEC(30 * 86400), "24h", OFF(handoff_pause_ms), NULL},
    {"handoff", "team_id", NULL, NULL, K_INT, 0, 0, 2147483647LL, "0", OFF(handoff_team_id), NULL},
    {"handoff", "user_id", NULL, NULL, K_INT, 0, 0, 2147483647LL, "0", OFF(handoff_user_id), NULL},

    {"followup", "delays", NULL, NULL, K_STR, 0, 0, 0, NULL, OFF(followup_delays), check_delays},
    {"followup", "content_sid", "CRMBRIDGE_FOLLOWUP_CONTENT_SID", NULL, K_STR, 0, 0, 0, NULL, OFF(followup_content_sid),
        check_content_sid},
    {"followup", "content_variables", NULL, NULL, K_STR, 0, 0, 0, "1=name", OFF(followup_content_variables),
        check_variables},

    {"links", "booking_url", "CRMBRIDGE_BOOKING_URL", NULL, K_STR, 0, 0, 0, NULL, OFF(links_booking_url),
        check_http_url},
    {"links", "stripe_secret_key", "STRIPE_SECRET_KEY", "stripe_secret_key", K_STR, K_SECRET, 0, 0, NULL,
        OFF(links_stripe_secret_key), check_stripe_key},
    {"links", "stripe_price", "STRIPE_PRICE", NULL, K_STR, 0, 0, 0, NULL, OFF(links_stripe_price), check_stripe_price},
    {"links", "stripe_success_url", NULL, NULL, K_STR, 0, 0, 0, NULL, OFF(links_stripe_success_url), check_http_url},
    {"links", "stripe_api_base", "STRIPE_API_BASE", NULL, K_STR, K_URLCRED, 0, 0, "https://api.stripe.com",
        OFF(links_stripe_api_base), check_http_url},
    {"links", "stripe_timeout", NULL, NULL, K_DURATION, 0, 500, SEC(60), "5s", OFF(links_stripe_timeout_ms), NULL},
};
#define NKEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

#define FIELD(c, k, type) ((type *)(void *)((char *)(c) + (k)->off))
#define CFIELD(c, k, type) ((const type *)(const void *)((const char *)(c) + (k)->off))

/* ---- errors ---- */

static void __attribute__((format(printf, 2, 3))) conf_error(struct conf_errors *errs, const char *fmt, ...)
{
	va_list ap;
	char *m;

	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0)
		fatalx("out of memory");
	va_end(ap);
	errs->msg = xreallocarray(errs->msg, errs->n + 1, sizeof(char *));
	errs->msg[errs->n++] = m;
}

void
conf_errors_clear(struct conf_errors *errs)
{
	size_t i;

	for (i = 0; i < errs->n; i++)
		free(errs->msg[i]);
	free(errs->msg);
	errs->msg = NULL;
	errs->n = 0;
}

/* ---- typed values ---- */

/*
 * Parses value for key k into c. Returns NULL on success or the reason it
 * is invalid. An empty string unsets an optional string.
 */
static const char *
set_value(struct conf *c, const struct key *k, const char *value)
{
	long long ll;
	uint64_t u;
	int lvl;

	switch (k->type) {
	case K_STR: {
		char **f = FIELD(c, k, char *);
		const char *why;

		if (*value == '\0') {
			if (k->def != NULL)
				return "must not be empty";
			free(*f);
			*f = NULL;
			return NULL;
		}
		if (strlen(value) > CONF_MAX_LINE)
			return "too long";
		if (k->check != NULL && (why = k->check(value)) != NULL)
			return why;
		free(*f);
		*f = xstrdup(value);
		return NULL;
	}
	case K_INT:
		if (parse_ll(value, k->min, k->max, &ll) < 0)
			return "must be an integer within bounds";
		*FIELD(c, k, long long) = ll;
		return NULL;
	case K_DURATION:
		if (parse_duration_ms(value, &u) < 0)
			return "must be a duration such as 500ms, 30s, 5m, 48h";
		if (u < (uint64_t)k->min || u > (uint64_t)k->max)
			return "duration out of bounds";
		*FIELD(c, k, uint64_t) = u;
		return NULL;
	case K_SIZE:
		if (parse_size(value, &u) < 0)
			return "must be a size such as 4096, 64KiB, 16MiB";
		if (u < (uint64_t)k->min || u > (uint64_t)k->max)
			return "size out of bounds";
		*FIELD(c, k, uint64_t) = u;
		return NULL;
	case K_BOOL:
		if (parse_bool(value, FIELD(c, k, bool)) < 0)
			return "must be yes or no";
		return NULL;
	case K_LOGLEVEL:
		if ((lvl = log_level_from_name(value)) < 0)
			return "must be one of error, warning, notice, info, debug";
		*FIELD(c, k, int) = lvl;
		return NULL;
	}
	return "unknown type";
}

static void set_origin(struct conf *c, size_t i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
set_origin(struct conf *c, size_t i, const char *fmt, ...)
{
	va_list ap;

	free(c->origin[i]);
	va_start(ap, fmt);
	if (vasprintf(&c->origin[i], fmt, ap) < 0)
		fatalx("out of memory");
	va_end(ap);
}

static const char *
bounds_text(const struct key *k, char *buf, size_t size)
{
	switch (k->type) {
	case K_INT: snprintf(buf, size, " (%lld..%lld)", k->min, k->max); break;
	case K_DURATION: snprintf(buf, size, " (%lldms..%llds)", k->min, k->max / 1000); break;
	case K_SIZE: snprintf(buf, size, " (%lld..%lld bytes)", k->min, k->max); break;
	default: buf[0] = '\0';
	}
	return buf;
}

/* ---- the INI file ---- */

struct file_ctx {
	struct conf *c;
	struct conf_errors *errs;
	const char *path;
	FILE *fp;
	int lineno;
	int seen[NKEYS];
	const struct key *secret_key; /* first secret set in the file */
	int secret_line;
};

static char *
file_reader(char *str, int num, void *stream)
{
	struct file_ctx *x = stream;
	size_t n;
	int ch;

	if (fgets(str, num, x->fp) == NULL)
		return NULL;
	x->lineno++;
	n = strlen(str);
	if (n == (size_t)num - 1 && str[n - 1] != '\n') {
		/* Too long for the buffer: skip the rest, blank the line and say so. */
		while ((ch = fgetc(x->fp)) != EOF && ch != '\n')
			;
		conf_error(x->errs, "%s:%d: line longer than %d bytes", x->path, x->lineno, num - 2);
		str[0] = '\n';
		str[1] = '\0';
	}
	return str;
}

/* True if a URL carries a password (redis://:pw@host), which makes it a secret. */
static bool
url_has_password(const char *v)
{
	CURLU *h = curl_url();
	char *pw = NULL;
	bool has = false;

	if (h != NULL && curl_url_set(h, CURLUPART_URL, v, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
	    curl_url_get(h, CURLUPART_PASSWORD, &pw, 0) == CURLUE_OK)
		has = pw != NULL && *pw != '\0';
	curl_free(pw);
	curl_url_cleanup(h);
	return has;
}

static const struct key *
find_key(const char *section, const char *name, size_t *idx)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		if (strcmp(conf_keys[i].section, section) == 0 && strcmp(conf_keys[i].name, name) == 0) {
			*idx = i;
			return &conf_keys[i];
		}
	}
	return NULL;
}

static bool
known_section(const char *section)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(conf_keys[i].section, section) == 0)
			return true;
	return false;
}

/* Edit distance of a and b (short names), capped at 9. */
static unsigned
distance(const char *a, const char *b)
{
	unsigned row[40], n = (unsigned)strlen(b), i, j;

	if (strlen(a) >= 39 || n >= 39)
		return 9;
	for (j = 0; j <= n; j++)
		row[j] = j;
	for (i = 1; a[i - 1] != '\0'; i++) {
		unsigned diag = row[0], tmp;
		row[0] = i;
		for (j = 1; j <= n; j++) {
			tmp = row[j];
			row[j] = a[i - 1] == b[j - 1] ? diag
			                              : 1 +
			        (diag < row[j] ? (diag < row[j - 1] ? diag : row[j - 1])
			                       : (row[j] < row[j - 1] ? row[j] : row[j - 1]));
			diag = tmp;
		}
	}
	return row[n] > 9 ? 9 : row[n];
}

/*
 * The key a mistyped one most likely meant ("twilio.auth_tokn", "[odo] url", "gemini.api_key" under [openai]):
 * the nearest name within two edits, in the section first, else the same name in another section. NULL if none.
 */
static const struct key *
nearest_key(const char *section, const char *name)
{
	const struct key *best = NULL;
	unsigned bd = 3;

	for (size_t i = 0; i < NKEYS; i++) {
		unsigned d = distance(conf_keys[i].name, name) + distance(conf_keys[i].section, section);
		if (d < bd) {
			bd = d;
			best = &conf_keys[i];
		}
	}
	for (size_t i = 0; best == NULL && i < NKEYS; i++)
		if (strcmp(conf_keys[i].name, name) == 0)
			best = &conf_keys[i];
	return best;
}

static int
file_handler(void *user, const char *section, const char *name, const char *value)
{
	struct file_ctx *x = user;
	const struct key *k;
	const char *why;
	char *unq = NULL;
	char b[64];
	size_t i, n;

	if (*section == '\0') {
		conf_error(x->errs, "%s:%d: key '%s' outside a [section]", x->path, x->lineno, name);
		return 1;
	}
	if ((k = find_key(section, name, &i)) == NULL) {
		const struct key *near = nearest_key(section, name);
		if (!known_section(section))
			conf_error(x->errs, "%s:%d: unknown section [%s]%s%s%s%s%s", x->path, x->lineno, section,
			    near != NULL ? "; did you mean [" : "", near != NULL ? near->section : "",
			    near != NULL ? "] " : "", near != NULL ? near->name : "", near != NULL ? "?" : "");
		else
			conf_error(x->errs, "%s:%d: unknown key '%s.%s'%s%s%s%s%s", x->path, x->lineno, section, name,
			    near != NULL ? "; did you mean '" : "", near != NULL ? near->section : "",
			    near != NULL ? "." : "", near != NULL ? near->name : "", near != NULL ? "'?" : "");
		return 1;
	}
	if (x->seen[i] != 0) {
		conf_error(x->errs, "%s:%d: key '%s.%s' set twice (first at line %d)", x->path, x->lineno, section,
		    name, x->seen[i]);
		return 1;
	}
	x->seen[i] = x->lineno;
	/* A value in double quotes loses them, so "a ; b" can be written. */
	n = strlen(value);
	if (n >= 2 && value[0] == '"' && value[n - 1] == '"') {
		unq = xstrndup(value + 1, n - 2);
		value = unq;
	}
	if ((why = set_value(x->c, k, value)) != NULL)
		conf_error(x->errs, "%s:%d: key '%s.%s': invalid: %s%s", x->path, x->lineno, section, name, why,
		    bounds_text(k, b, sizeof(b)));
	else
		set_origin(x->c, i, "%s:%d", x->path, x->lineno);
	if (((k->flags & K_SECRET) && *value != '\0') || ((k->flags & K_URLCRED) && url_has_password(value))) {
		if (x->secret_key != NULL)
			goto out;
		x->secret_key = k;
		x->secret_line = x->lineno;
	}
out:
	free(unq);
	return 1;
}

static void
load_file(struct conf *c, const char *path, bool required, struct conf_errors *errs)
{
	struct file_ctx x;
	struct stat st;
	int fd, r;

	memset(&x, 0, sizeof(x));
	x.c = c;
	x.errs = errs;
	x.path = path;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		if (errno == ENOENT && !required)
			return;
		conf_error(errs, "%s: cannot open: %s", path, strerror(errno));
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		conf_error(errs, "%s: not a regular file", path);
		close(fd);
		return;
	}
	if ((x.fp = fdopen(fd, "r")) == NULL) {
		conf_error(errs, "%s: %s", path, strerror(errno));
		close(fd);
		return;
	}
	c->path = xstrdup(path);
#if HAVE_DECL_INI_MAX_LINE
	ini_use_stack = false;
	ini_allow_realloc = false;
	ini_initial_alloc = CONF_MAX_LINE + 2;
	ini_max_line = CONF_MAX_LINE + 2;
	ini_allow_multiline = false;
#endif
#if HAVE_DECL_INI_ALLOW_INLINE_COMMENTS
	/* Secrets and URLs may contain ';': comments go on their own lines. */
	ini_allow_inline_comments = false;
#endif
	r = ini_parse_stream(file_reader, &x, file_handler, &x);
	if (r > 0)
		conf_error(errs, "%s:%d: syntax error: expected [section] or key = value", path, r);
	else if (r < 0)
		conf_error(errs, "%s: cannot be read", path);
	/* The unit runs the daemon as a dynamic user, which cannot read a root-owned private file: the way that
	 * works is the secret out of the file, in an encrypted credential. */
	if (x.secret_key != NULL && (st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
		const struct key *k = x.secret_key;
		if (k->cred != NULL)
			conf_error(errs,
			    "%s:%d: key '%s.%s' is a secret but the file is readable by group or others (mode %04o): "
			    "take it out of the file and give it as the systemd credential '%s' (systemd-creds encrypt "
			    "--name=%s - /etc/credstore.encrypted/%s, and LoadCredentialEncrypted=%s in the unit: "
			    "docs/DEPLOY.md); a daemon run by hand as the file's owner may instead chmod 600 it",
			    path, x.secret_line, k->section, k->name, (unsigned)(st.st_mode & 07777), k->cred, k->cred,
			    k->cred, k->cred);
		else
			conf_error(errs,
			    "%s:%d: key '%s.%s' holds a password but the file is readable by group or others "
			    "(mode %04o): give it in the environment (%s, e.g. Environment= in a drop-in only root "
			    "reads) or chmod 600 the file",
			    path, x.secret_line, k->section, k->name, (unsigned)(st.st_mode & 07777), k->env);
	}
	fclose(x.fp);
}

/* ---- systemd credentials ---- */

static void
load_credentials(struct conf *c, struct conf_errors *errs)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	size_t i;

	if (dir == NULL || *dir == '\0')
		return;
	for (i = 0; i < NKEYS; i++) {
		const struct key *k = &conf_keys[i];
		char path[4096], buf[CRED_MAX + 1];
		struct stat st;
		ssize_t n;
		size_t len = 0;
		const char *why;
		int fd;

		if (k->cred == NULL)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, k->cred);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
			if (errno != ENOENT)
				conf_error(errs, "credential %s: cannot open: %s", k->cred, strerror(errno));
			continue;
		}
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			conf_error(errs, "credential %s: not a regular file", k->cred);
			close(fd);
			continue;
		}
		/* Every credential is private: systemd makes them 0400, anything looser is a mistake. */
		if ((st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
			conf_error(errs, "credential %s: readable by group or others (mode %04o)", k->cred,
			    (unsigned)(st.st_mode & 07777));
			close(fd);
			continue;
		}
		while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) > 0)
			len += (size_t)n;
		close(fd);
		if (len > CRED_MAX) {
			conf_error(errs, "credential %s: larger than %d bytes", k->cred, CRED_MAX);
			continue;
		}
		buf[len] = '\0';
		/* systemd-creds and echo both leave a final newline. */
		while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
			buf[--len] = '\0';
		if (memchr(buf, '\0', len) != NULL) {
			conf_error(errs, "credential %s: contains a NUL byte", k->cred);
			continue;
		}
		if ((why = set_value(c, k, buf)) != NULL)
			conf_error(errs, "credential %s: key '%s.%s': invalid: %s", k->cred, k->section, k->name, why);
		else
			set_origin(c, i, "credential %s", k->cred);
		explicit_bzero(buf, sizeof(buf));
	}
}

/* ---- credentials in the credential store, outside the service ---- */

/* Where systemd looks for LoadCredential(Encrypted)=NAME without a path; CRMBRIDGE_CREDSTORE (directories separated
 * by ':') replaces the list, for tests. */
static const char *
credstore_dirs(void)
{
	const char *e = getenv("CRMBRIDGE_CREDSTORE");
	return e != NULL ? e : "/etc/credstore.encrypted:/run/credstore.encrypted:/etc/credstore:/run/credstore";
}

bool
conf_credstore_find(const char *cred, char *path, size_t size)
{
	const char *p = credstore_dirs(), *end;

	for (; *p != '\0'; p = *end != '\0' ? end + 1 : end) {
		end = p + strcspn(p, ":");
		if (end == p)
			continue;
		snprintf(path, size, "%.*s/%s", (int)(end - p), p, cred);
		if (access(path, F_OK) == 0)
			return true;
	}
	return false;
}

/* Outside the service (crmbridged -n or crmbridgectl run by an admin, no $CREDENTIALS_DIRECTORY), a secret that is in
 * the credential store is not read but known to be given at the service's start: it is pending, so that the rules
 * between keys hold and nobody is told to put it in the file. The daemon itself refuses to run on a pending secret. */
static void
find_pending(struct conf *c)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char path[4096];
	size_t i;

	if (dir != NULL && *dir != '\0')
		return;
	for (i = 0; i < NKEYS; i++) {
		const struct key *k = &conf_keys[i];
		if (k->cred == NULL || k->type != K_STR || *FIELD(c, k, char *) != NULL)
			continue;
		if (conf_credstore_find(k->cred, path, sizeof(path))) {
			c->pending[i] = true;
			set_origin(c, i, "credential %s (%s), loaded by the service at its start", k->cred, path);
		}
	}
}

/* The key whose value is at field (&c->twilio_auth_token, ...). */
static const struct key *
key_at(const struct conf *c, const void *field)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if ((const char *)c + conf_keys[i].off == (const char *)field)
			return &conf_keys[i];
	abort(); /* not a field of struct conf: a programming mistake */
}

/* True when section.name has a value here or is a pending credential. */
bool
conf_given(const struct conf *c, const void *field)
{
	return *(char *const *)field != NULL || c->pending[key_at(c, field) - conf_keys];
}

/* A secret that another key needs: the error names its credential and what to check under systemd. */
static void
require_secret(const struct conf *c, struct conf_errors *errs, const void *field, const char *when)
{
	const struct key *k = key_at(c, field);

	if (!conf_given(c, field))
		conf_error(errs,
		    "key '%s.%s' (credential %s, or %s): required %s; under systemd: is LoadCredentialEncrypted=%s in "
		    "the unit's drop-in, and the file in /etc/credstore.encrypted?",
		    k->section, k->name, k->cred, k->env, when, k->cred);
}

int
conf_set_credential(struct conf *c, const char *cred, const char *value, char *why, size_t size)
{
	size_t i;
	const char *e;

	for (i = 0; i < NKEYS; i++) {
		const struct key *k = &conf_keys[i];
		if (k->cred == NULL || strcmp(k->cred, cred) != 0)
			continue;
		if ((e = set_value(c, k, value)) != NULL) {
			snprintf(why, size, "credential %s: key '%s.%s': invalid: %s", cred, k->section, k->name, e);
			return -1;
		}
		c->pending[i] = false;
		set_origin(c, i, "credential %s", cred);
		return 0;
	}
	snprintf(why, size, "no key takes the credential %s", cred);
	return -1;
}

size_t
conf_pending(const struct conf *c, char *out, size_t size)
{
	size_t i, n = 0, len = 0;

	if (size > 0)
		out[0] = '\0';
	for (i = 0; i < NKEYS; i++) {
		if (!c->pending[i])
			continue;
		if (len < size)
			len += (size_t)snprintf(out + len, size - len, "%s%s.%s (credential %s)", n > 0 ? ", " : "",
			    conf_keys[i].section, conf_keys[i].name, conf_keys[i].cred);
		n++;
	}
	return n;
}

/* ---- the environment ---- */

static void
load_env(struct conf *c, struct conf_errors *errs)
{
	size_t i;
	char b[64];

	for (i = 0; i < NKEYS; i++) {
		const struct key *k = &conf_keys[i];
		const char *v, *why;

		if (k->env == NULL || (v = getenv(k->env)) == NULL)
			continue;
		if (*v == '\0' && k->def != NULL)
			continue; /* VAR= means "not set" for keys with a default */
		if ((why = set_value(c, k, v)) != NULL)
			conf_error(errs, "environment %s: key '%s.%s': invalid: %s%s", k->env, k->section, k->name, why,
			    bounds_text(k, b, sizeof(b)));
		else
			set_origin(c, i, "environment %s", k->env);
	}
}

/* ---- consistency between keys ---- */

static void
check_consistency(struct conf *c, struct conf_errors *errs)
{
	if (c->odoo_url != NULL) {
		if (c->odoo_db == NULL)
			conf_error(errs, "key 'odoo.db' (ODOO_DB): required when odoo.url is set");
		if (c->odoo_username == NULL)
			conf_error(errs, "key 'odoo.username' (ODOO_USERNAME): required when odoo.url is set");
		require_secret(c, errs, &c->odoo_password, "when odoo.url is set");
	} else if (c->odoo_db != NULL || c->odoo_username != NULL || c->odoo_password != NULL) {
		conf_error(errs, "key 'odoo.url' (ODOO_URL): required when other odoo keys are set");
	}
	if (c->twilio_account_sid != NULL)
		require_secret(c, errs, &c->twilio_auth_token, "when twilio.account_sid is set");
	if (c->twilio_whatsapp_from != NULL && strncmp(c->twilio_whatsapp_from, "whatsapp:", 9) != 0) {
		/* "+14155238886": Twilio would refuse every send (21910, From and To on different channels). */
		char *w;
		xasprintf(&w, "whatsapp:%s", c->twilio_whatsapp_from);
		free(c->twilio_whatsapp_from);
		c->twilio_whatsapp_from = w;
	}
	if ((c->twilio_whatsapp_from != NULL || c->twilio_messaging_service_sid != NULL) &&
	    c->twilio_account_sid == NULL)
		conf_error(errs, "key 'twilio.account_sid' (TWILIO_ACCOUNT_SID): required to send replies");
	if (c->twilio_auth_token_secondary != NULL && !conf_given(c, &c->twilio_auth_token))
		conf_error(errs, "key 'twilio.auth_token': required when twilio.auth_token_secondary is set");
	if (c->http_body_memory < c->http_max_body)
		conf_error(errs, "key 'http.body_memory': must be at least http.max_body");
	if (c->http_max_uri * 2 > c->http_connection_memory)
		conf_error(errs,
		    "key 'http.max_uri': must be at most half of http.connection_memory (the request line and headers "
		    "share it): lower max_uri or raise connection_memory");
	if (conf_given(c, &c->links_stripe_secret_key) &&
	    (c->links_stripe_price == NULL || c->links_stripe_success_url == NULL))
		conf_error(errs,
		    "key 'links.stripe_price' (STRIPE_PRICE) and 'links.stripe_success_url': required when "
		    "links.stripe_secret_key is set");
}

/* ---- public API ---- */

const char *
conf_default_path(void)
{
	return SYSCONFDIR "/crmbridge/crmbridge.conf";
}

struct conf *
conf_load(const char *path, bool required, struct conf_errors *errs)
{
	struct conf *c = xcalloc(1, sizeof(*c));
	size_t before = errs->n, i;
	const char *sd;

	c->origin = xcalloc(NKEYS, sizeof(char *));
	c->pending = xcalloc(NKEYS, sizeof(bool));
	for (i = 0; i < NKEYS; i++) {
		const char *why;

		if (conf_keys[i].def != NULL && (why = set_value(c, &conf_keys[i], conf_keys[i].def)) != NULL)
			fatalx("built-in default of %s.%s: %s", conf_keys[i].section, conf_keys[i].name, why);
		set_origin(c, i, "default");
	}
	/* Under systemd, StateDirectory= tells where our state belongs. */
	if ((sd = getenv("STATE_DIRECTORY")) != NULL && sd[0] == '/') {
		free(c->state_dir);
		c->state_dir = xstrndup(sd, strcspn(sd, ":"));
		for (i = 0; i < NKEYS; i++)
			if (conf_keys[i].off == OFF(state_dir))
				set_origin(c, i, "environment STATE_DIRECTORY");
	}
	if (path != NULL)
		load_file(c, path, required, errs);
	load_credentials(c, errs);
	load_env(c, errs);
	find_pending(c);
	check_consistency(c, errs);
	if (errs->n > before) {
		conf_free(c);
		return NULL;
	}
	return c;
}

void
conf_free(struct conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < NKEYS; i++) {
		if (conf_keys[i].type == K_STR) {
			char **f = FIELD(c, &conf_keys[i], char *);
			if (*f != NULL && (conf_keys[i].flags & K_SECRET))
				explicit_bzero(*f, strlen(*f));
			free(*f);
		}
		if (c->origin != NULL)
			free(c->origin[i]);
	}
	free(c->origin);
	free(c->pending);
	free(c->path);
	free(c);
}

char *
conf_redact_url(const char *url)
{
	CURLU *h;
	char *pw = NULL, *out = NULL, *copy;

	/*
	 * A socket URL (unix://PATH[?db=N], common/redis_url.c) holds no credentials, and curl would read
	 * PATH's first segment as a host and print unix:///run/x.sock as unix://run/x.sock: shown as written.
	 */
	if (strncmp(url, "unix:", 5) == 0 && strchr(url, '@') == NULL)
		return xstrdup(url);
	if ((h = curl_url()) == NULL)
		return xstrdup("<redacted>");
	if (curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
		curl_url_cleanup(h);
		return xstrdup("<redacted>");
	}
	if (curl_url_get(h, CURLUPART_PASSWORD, &pw, 0) == CURLUE_OK) {
		curl_url_set(h, CURLUPART_PASSWORD, "<redacted>", 0);
		curl_free(pw);
	}
	if (curl_url_get(h, CURLUPART_URL, &out, 0) != CURLUE_OK) {
		curl_url_cleanup(h);
		return xstrdup("<redacted>");
	}
	copy = xstrdup(out);
	curl_free(out);
	curl_url_cleanup(h);
	return copy;
}

static json_t *
format_ms(uint64_t ms)
{
	if (ms % 3600000 == 0 && ms != 0)
		return json_sprintf("%" PRIu64 "h", ms / 3600000);
	if (ms % 60000 == 0 && ms != 0)
		return json_sprintf("%" PRIu64 "m", ms / 60000);
	if (ms % 1000 == 0)
		return json_sprintf("%" PRIu64 "s", ms / 1000);
	return json_sprintf("%" PRIu64 "ms", ms);
}

json_t *
conf_to_json(const struct conf *c)
{
	json_t *root = json_object(), *sec;
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		const struct key *k = &conf_keys[i];
		json_t *v = NULL;

		if ((sec = json_object_get(root, k->section)) == NULL) {
			sec = json_object();
			json_object_set_new(root, k->section, sec);
		}
		switch (k->type) {
		case K_STR: {
			const char *s = *(char *const *)(const void *)((const char *)c + k->off);
			if (s == NULL)
				v = json_null();
			else if (k->flags & K_SECRET)
				v = json_string("<redacted>");
			else if (k->flags & K_URLCRED) {
				char *r = conf_redact_url(s);
				v = json_string(r);
				free(r);
			} else
				v = json_string(s);
			break;
		}
		case K_INT: v = json_integer(*CFIELD(c, k, long long)); break;
		case K_DURATION: v = format_ms(*CFIELD(c, k, uint64_t)); break;
		case K_SIZE: v = json_integer((json_int_t)*CFIELD(c, k, uint64_t)); break;
		case K_LOGLEVEL: v = json_string(log_level_name(*CFIELD(c, k, int))); break;
		case K_BOOL: v = json_boolean(*CFIELD(c, k, bool)); break;
		}
		json_object_set_new(sec, k->name, v != NULL ? v : json_null());
	}
	return root;
}
