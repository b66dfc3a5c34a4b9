/*
 * Building the daemon's service clients (classifier, Odoo, Stripe, the templates' text) and the engine's
 * outbound rules from the configuration, shared by crmbridged and crmbridgectl so both talk to Odoo the
 * same way.
 */
#include "config.h"

#include <string.h>

#include "classifier/profile.h"
#include "daemon/daemon.h"

struct odoo *
daemon_odoo(sd_event *e, struct curlev *cv, const struct conf *c, struct lead_ctx **leads)
{
	struct odoo_options oo = {
	    .url = c->odoo_url,
	    .db = c->odoo_db,
	    .username = c->odoo_username,
	    .password = c->odoo_password,
	    .protocol = (enum odoo_protocol)odoo_protocol_from_name(c->odoo_protocol),
	    .timeout_ms = c->odoo_timeout_ms,
	    .max_attempts = (unsigned)c->odoo_max_attempts,
	};
	struct lead_options lo = {
	    .name_template = c->odoo_name_template,
	    .lead_type = c->odoo_lead_type,
	    .priority_hot = c->odoo_priority_hot,
	    .priority_warm = c->odoo_priority_warm,
	    .priority_cold = c->odoo_priority_cold,
	    .source_name = "WhatsApp",
	    .default_cc = c->odoo_default_country_code,
	    .team_id = (int)c->odoo_team_id,
	    .user_id = (int)c->odoo_user_id,
	    .tags = c->odoo_tags,
	};
	struct odoo *o;

	*leads = NULL;
	if (c->odoo_url == NULL)
		return NULL;
	o = odoo_new(e, cv, &oo);
	*leads = lead_ctx_new(o, &lo);
	return o;
}

struct profile *
daemon_profile(const struct conf *c, char *err, size_t errlen)
{
	struct profile_settings s = {
	    .file = c->business_profile,
	    .name = c->business_name,
	    .description = c->business_description,
	    .country = c->business_country,
	    .currency = c->business_currency,
	    .cities = c->business_cities,
	    .languages = c->business_languages,
	    .hot_needs = c->business_hot_needs,
	};

	return profile_load(&s, err, errlen);
}

int
daemon_classifier(struct daemon *d, const struct conf *c, struct lexicon **lx, struct profile **prof, struct gemini **g,
    struct classifier **cl, char *err, size_t errlen)
{
	struct policy p;

	*g = NULL;
	*cl = NULL;
	*prof = NULL;
	if ((*lx = lexicon_load(c->classifier_lexicon, err, errlen)) == NULL)
		return -1;
	if ((*prof = daemon_profile(c, err, errlen)) == NULL) {
		lexicon_free(*lx);
		*lx = NULL;
		return -1;
	}
	profile_apply(*prof, *lx);
	policy_defaults(&p);
	p.lead_after_turns = (unsigned)c->classifier_lead_after_turns;
	p.create_on_minimum = c->classifier_create_on_minimum;
	if (conf_model_on(c) && d != NULL && d->curl != NULL) {
		bool oa = conf_model_provider(c) == PROVIDER_OPENAI;
		struct gemini_options o = {
		    .provider = oa ? PROVIDER_OPENAI : PROVIDER_GEMINI,
		    .api_base = oa ? c->openai_api_base : c->gemini_api_base,
		    .model = oa ? c->openai_model : c->gemini_model,
		    .api_key = oa ? c->openai_api_key : c->gemini_api_key,
		    .max_tokens_param = c->openai_max_tokens_param,
		    .audio_model = oa ? c->openai_audio_model : NULL,
		    .timeout_ms = oa ? c->openai_timeout_ms : c->gemini_timeout_ms,
		    .max_attempts = (unsigned)(oa ? c->openai_max_attempts : c->gemini_max_attempts),
		    .max_output_tokens = (unsigned)(oa ? c->openai_max_output_tokens : c->gemini_max_output_tokens),
		    .breaker_threshold = (unsigned)(oa ? c->openai_breaker_failures : c->gemini_breaker_failures),
		    .breaker_open_ms = oa ? c->openai_breaker_open_ms : c->gemini_breaker_open_ms,
		};
		*g = gemini_new(d->event, d->curl, &o);
	}
	*cl = classifier_new(*lx, &p, *g, c->classifier_allow_links);
	/* The only URL the bot itself sends; Stripe's Checkout links are made per lead and added after the check. */
	classifier_set_links(*cl, (const char *const[]){c->links_booking_url}, 1);
	classifier_set_media(*cl, c->classifier_media);
	classifier_set_profile(*cl, *prof);
	return 0;
}

void
daemon_outbound_options(const struct conf *c, struct engine_options *eo)
{
	int n;

	eo->window_margin_ms = c->window_margin_ms;
	eo->history_retention_ms = c->privacy_history_retention_ms;
	eo->window_content_sid = c->window_content_sid;
	eo->window_variables = c->window_content_variables;
	eo->optout_blacklist = c->optout_odoo_blacklist;
	eo->handoff_pause_ms = c->handoff_pause_ms;
	eo->handoff_team_id = (int)c->handoff_team_id;
	eo->handoff_user_id = (int)c->handoff_user_id;
	memset(eo->followup_delays, 0, sizeof(eo->followup_delays));
	n = c->followup_delays != NULL ? conf_parse_delays(c->followup_delays, eo->followup_delays, 8) : 0;
	eo->nfollowups = n > 0 ? (unsigned)n : 0;
	eo->followup_content_sid = c->followup_content_sid;
	eo->followup_variables = c->followup_content_variables;
	eo->booking_url = c->links_booking_url;
	eo->odoo_create_patience_ms = c->odoo_create_patience_ms;
	eo->inbox_interval_ms = c->odoo_inbox_interval_ms;
	eo->inbox_resume_command = c->odoo_inbox_resume_command;
}

/* The templates this configuration sends, so that their text is known before the first one goes. */
struct content *
daemon_content(struct daemon *d, const struct conf *c)
{
	struct content_options co = {0};

	co.api_base = c->twilio_content_api_base;
	co.account_sid = c->twilio_account_sid;
	co.auth_token = c->twilio_auth_token;
	co.sids[0] = c->outreach_content_sid;
	co.sids[1] = c->window_content_sid;
	co.sids[2] = c->followup_content_sid;
	co.timeout_ms = c->twilio_send_timeout_ms;
	return content_new(d->event, d->curl, &co);
}

struct stripe *
daemon_stripe(struct daemon *d, const struct conf *c)
{
	struct stripe_options so = {0};

	if (c->links_stripe_secret_key == NULL)
		return NULL;
	so.api_base = c->links_stripe_api_base;
	so.secret_key = c->links_stripe_secret_key;
	so.price = c->links_stripe_price;
	so.success_url = c->links_stripe_success_url;
	so.timeout_ms = c->links_stripe_timeout_ms;
	return stripe_new(d->curl, &so);
}
