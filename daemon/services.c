/*
 * Building the daemon's service clients (classifier, Odoo) from the configuration, shared by
 * crmbridged and crmbridgectl so both talk to Odoo the same way.
 */
#include "config.h"

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

int
daemon_classifier(struct daemon *d, const struct conf *c, struct lexicon **lx, struct gemini **g,
    struct classifier **cl, char *err, size_t errlen)
{
	struct policy p;

	*g = NULL;
	*cl = NULL;
	if ((*lx = lexicon_load(c->classifier_lexicon, err, errlen)) == NULL)
		return -1;
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
	return 0;
}
