/*
 * crmbridged's configuration: one table of keys (type, bounds, default,
 * secret flag, environment variable, systemd credential) applied in order to
 * the defaults, the INI file, systemd credentials and the environment.
 */
#ifndef CRMB_CONF_H
#define CRMB_CONF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf {
	char *path; /* the file that was read, or NULL */

	/* [server] */
	char *listen;
	char *public_url;
	char *admin_token;
	char *admin_listen; /* NULL: admin endpoints on the main listener */
	bool health_public, metrics_public; /* answered without the admin token */
	char *state_dir;
	int log_level;

	/* [dashboard] */
	bool dashboard_enabled;
	uint64_t dashboard_session_ttl_ms, dashboard_link_ttl_ms;
	char *dashboard_chartjs; /* Debian's Chart.js */

	/* [http] */
	uint64_t http_max_body;
	uint64_t http_max_uri;
	long long http_max_connections;
	long long http_max_per_address;
	char *http_proxy_addresses; /* spared from the per-address limit */
	uint64_t http_idle_timeout_ms;
	uint64_t http_request_timeout_ms;
	uint64_t http_connection_memory;
	uint64_t http_body_memory;
	uint64_t shutdown_timeout_ms;

	/* [webhook] */
	bool webhook_verify_signature;
	uint64_t webhook_dedupe_ttl_ms;
	uint64_t webhook_redis_timeout_ms;

	/* [engine] */
	uint64_t engine_coalesce_window_ms;
	uint64_t engine_coalesce_max_ms;
	long long engine_max_turns;
	uint64_t engine_turn_lease_ms;
	long long engine_history;
	long long engine_context_messages;
	uint64_t engine_conversation_ttl_ms;
	long long engine_max_turn_attempts;

	/* [redis] */
	char *redis_url;
	char *redis_key_prefix;
	uint64_t redis_connect_timeout_ms;
	uint64_t redis_ping_interval_ms;

	/* [gemini] */
	char *gemini_api_key;
	char *gemini_model;
	char *gemini_api_base;
	uint64_t gemini_timeout_ms;
	long long gemini_max_output_tokens;
	long long gemini_max_attempts;
	long long gemini_breaker_failures;
	uint64_t gemini_breaker_open_ms;

	/* [classifier] */
	char *classifier_lexicon;
	long long classifier_lead_after_turns;
	bool classifier_create_on_minimum;
	bool classifier_allow_links;
	char *classifier_provider; /* gemini | openai */
	/* [openai]: an OpenAI-compatible chat/completions endpoint */
	char *openai_api_key;
	char *openai_api_base;
	char *openai_model;
	char *openai_max_tokens_param;
	char *openai_audio_model; /* NULL: voice notes are not sent to the OpenAI-compatible model */
	uint64_t openai_timeout_ms;
	long long openai_max_output_tokens, openai_max_attempts, openai_breaker_failures;
	uint64_t openai_breaker_open_ms;
	/* [business]: the business profile (classifier/profile.h) */
	char *business_profile; /* a JSON file: catalogue, facts, ... */
	char *business_name, *business_description, *business_country, *business_currency, *business_cities,
	    *business_languages, *business_hot_needs;
	bool business_catalogue_from_odoo;
	uint64_t business_catalogue_refresh_ms;
	/* [privacy] */
	bool privacy_erase_odoo;
	uint64_t twilio_media_max; /* bytes of one inbound media file fetched for the model */
	bool classifier_media; /* voice notes and images go to the model */
	uint64_t privacy_history_retention_ms; /* 0: as long as the conversation */
	uint64_t privacy_sweep_interval_ms;

	/* [twilio] */
	char *twilio_account_sid;
	char *twilio_auth_token;
	char *twilio_auth_token_secondary;
	char *twilio_whatsapp_from;
	char *twilio_messaging_service_sid;
	char *twilio_api_base;
	char *twilio_content_api_base;
	uint64_t twilio_send_timeout_ms;
	long long twilio_max_attempts;
	long long twilio_max_in_flight;
	bool twilio_status_callback;

	/* [odoo] */
	char *odoo_url;
	char *odoo_db;
	char *odoo_username;
	char *odoo_password;
	uint64_t odoo_timeout_ms;
	char *odoo_protocol;
	char *odoo_lead_type;
	char *odoo_name_template;
	char *odoo_priority_hot, *odoo_priority_warm, *odoo_priority_cold;
	long long odoo_team_id, odoo_user_id;
	char *odoo_tags;
	char *odoo_default_country_code;
	long long odoo_max_attempts;
	uint64_t odoo_create_patience_ms;
	uint64_t
	    odoo_inbox_interval_ms; /* how often the leads' chatter is read for the salespeople's messages; 0: never */
	char *odoo_inbox_resume_command; /* a Log note holding only this gives the customer back to the bot */

	/* [outreach] */
	char *outreach_service_token;
	char *outreach_content_sid;
	char *outreach_content_variables; /* "1=client_name,2=agent_name" */
	char *outreach_skip_statuses; /* recipient.status values that mean no call took place */
	uint64_t outreach_wait_ms;

	/* [window] */
	uint64_t window_margin_ms;
	char *window_content_sid; /* a template for replies outside the 24-hour window, or NULL: none */
	char *window_content_variables;

	/* [optout] */
	bool optout_odoo_blacklist;

	/* [handoff] */
	uint64_t handoff_pause_ms;
	long long handoff_team_id, handoff_user_id;

	/* [followup] */
	char *followup_delays; /* "4h,23h": one follow-up per delay; NULL: none */
	char *followup_content_sid;
	char *followup_content_variables;

	/* [links] */
	char *links_booking_url;
	char *links_stripe_secret_key;
	char *links_stripe_price;
	char *links_stripe_success_url;
	char *links_stripe_api_base;
	uint64_t links_stripe_timeout_ms;

	/* Where each key's value came from, indexed like the key table. */
	char **origin;
	/* Secrets not read here but in the credential store, given to the service at its start (see conf_pending). */
	bool *pending;
};

/* Errors collected while loading; every message names where and which key, never the value. */
struct conf_errors {
	char **msg;
	size_t n;
};

/*
 * Loads the configuration: defaults, then the file at path (NULL: none; a
 * missing file is an error only if required), then $CREDENTIALS_DIRECTORY,
 * then the environment. Returns a new conf (free with conf_free) or NULL,
 * with every problem appended to errs.
 */
struct conf *conf_load(const char *path, bool required, struct conf_errors *errs);
/*
 * Secrets that are unset here but whose credential is in the credential store (/etc/credstore.encrypted, ...;
 * only when $CREDENTIALS_DIRECTORY is unset, i.e. outside the service): systemd gives them to the service at
 * its start. Writes "section.key (credential name), ..." to out and returns how many. crmbridged -n and
 * crmbridgectl accept them; the daemon refuses to run without their values.
 */
size_t conf_pending(const struct conf *c, char *out, size_t size);
/* True when the string key at field (&c->twilio_auth_token, ...) is set, or pending in the credential store. */
bool conf_given(const struct conf *c, const void *field);
/* Sets the key that takes credential cred (read by the caller from the store) to value; -1 with why if invalid. */
int conf_set_credential(struct conf *c, const char *cred, const char *value, char *why, size_t size);
/* The credential store's file for a credential name (systemd's search path), or false. */
bool conf_credstore_find(const char *cred, char *path, size_t size);
/* Frees a conf; NULL is fine. */
void conf_free(struct conf *c);
/* Frees the messages held by errs and empties it. */
void conf_errors_clear(struct conf_errors *errs);
/*
 * The effective configuration as a JSON object of sections, every secret
 * replaced by "<redacted>" (or null when unset) and passwords removed from
 * URLs. Caller owns the reference.
 */
json_t *conf_to_json(const struct conf *c);
/* Returns a copy of url with any password replaced by "<redacted>"; caller frees. */
char *conf_redact_url(const char *url);
/*
 * Parses a list of durations ("4h,23h,3d") into out (up to max); returns how
 * many, or -1 if one is malformed or out of 1 s .. 30 days.
 */
int conf_parse_delays(const char *s, uint64_t *out, size_t max);
/*
 * Parses ContentVariables mappings ("1=client_name,2=agent_name") into
 * slots/names (up to max, pointing into a copy the caller frees as *buf);
 * returns how many, or -1 if malformed.
 */
int conf_parse_variables(const char *s, char **buf, const char **slots, const char **names, size_t max);
/* The default path of the configuration file ($sysconfdir/crmbridge/crmbridge.conf). */
const char *conf_default_path(void);
/* The classifier's model provider (PROVIDER_GEMINI or PROVIDER_OPENAI, as classifier/gemini.h numbers them). */
int conf_model_provider(const struct conf *c);
/* True when the configured provider can be called: a key, or for openai a base URL of one's own. */
bool conf_model_on(const struct conf *c);

#endif
