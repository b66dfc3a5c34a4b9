/*
 * Building the daemon's service clients from the configuration, shared by
 * crmbridged and crmbridgectl so both talk to Odoo the same way.
 */
#include "config.h"

#include "daemon.h"

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
