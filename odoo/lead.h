/*
 * One crm.lead per customer: find by phone (phone_sanitized, phone, mobile)
 * or e-mail, including archived leads; update an open lead without
 * overwriting what a salesperson typed; create a new lead (mentioning the
 * old one) when the match was won, lost or archived; post the analysis to
 * the chatter. Works without the x_ fields (their values go to the
 * description). Also: custom field set-up, checks and lead statistics.
 */
#ifndef CRMB_ODOO_LEAD_H
#define CRMB_ODOO_LEAD_H

#include <stdbool.h>

#include "client.h"

struct lead_input {
	const char *phone; /* any form; normalised to E.164 */
	const char *contact_name, *email, *city, *product, *budget, *urgency, *need;
	const char *quality; /* hot, warm, cold */
	double confidence;
	const char *intent;
	const char *missing; /* "email, city" */
	const char *reasoning;
	const char *const *last_messages; /* for the chatter note, oldest first */
	size_t nlast;
	bool post_note;
	const char *extra_tag; /* a crm.tag name added to this lead ("Support"), or NULL */
};

struct lead_options {
	const char *name_template; /* "{contact} - {interest}" */
	const char *lead_type; /* "lead" or "opportunity" */
	const char *priority_hot, *priority_warm, *priority_cold; /* '0'..'3' */
	const char *source_name; /* x_source and the utm.source/medium name: "WhatsApp" */
	const char *default_cc; /* country code for national numbers, or NULL */
	int team_id, user_id; /* 0: unset */
	const char *tags; /* comma-separated crm.tag names, or NULL */
};

struct lead_result {
	struct odoo_error err; /* kind ODOO_OK on success */
	int lead_id;
	bool created, updated; /* neither: nothing to change */
	int previous_id; /* a won/lost/archived lead this one follows */
	int note_id;
	bool degraded; /* the x_ fields are missing */
};

typedef void (*lead_done_fn)(const struct lead_result *r, void *arg);

/* What is known about the Odoo database, probed once and reused. */
struct lead_ctx;

struct lead_ctx *lead_ctx_new(struct odoo *o, const struct lead_options *opt);
/* Frees the context; free its Odoo client first (pending upserts finish with an error then). */
void lead_ctx_free(struct lead_ctx *x);
/* Forgets the probe (after a reload, or to see new fields). */
void lead_ctx_reset(struct lead_ctx *x);
/* True once probed and the five x_ fields exist. */
bool lead_ctx_has_x_fields(const struct lead_ctx *x);
bool lead_ctx_probed(const struct lead_ctx *x);

/* Creates or updates the customer's lead. in is copied. */
void lead_upsert(struct lead_ctx *x, const struct lead_input *in, lead_done_fn done, void *arg);

/*
 * A support case: a helpdesk.ticket when that model exists in this Odoo
 * (r->lead_id is then the ticket's id and r->created true), otherwise the
 * customer's lead tagged "Support" with the analysis in the chatter.
 */
void lead_support(struct lead_ctx *x, const struct lead_input *in, lead_done_fn done, void *arg);
/* True once a support case has found helpdesk.ticket in this Odoo. */
bool lead_ctx_has_helpdesk(const struct lead_ctx *x);

/* Probes fields_get and reports (in r->degraded) whether the x_ fields are missing. */
void lead_probe(struct lead_ctx *x, lead_done_fn done, void *arg);

/* Creates the missing x_ fields; out_created lists what it did (a JSON array of names). */
typedef void (*lead_setup_fn)(const struct odoo_error *e, json_t *created, json_t *present, void *arg);
void lead_setup_fields(struct lead_ctx *x, lead_setup_fn done, void *arg);

/* Lead statistics: {"by_quality": {...}, "by_day": {"YYYY-MM-DD": n}, "total": n}. */
typedef void (*lead_stats_fn)(const struct odoo_error *e, json_t *stats, void *arg);
void lead_stats(struct lead_ctx *x, unsigned days, lead_stats_fn done, void *arg);

typedef void (*lead_simple_fn)(const struct odoo_error *e, void *arg);
/*
 * Adds the phone to Odoo's phone blacklist (phone.blacklist, the list mass
 * SMS and WhatsApp marketing honour), or takes it off (archives the entry).
 */
void lead_blacklist(struct lead_ctx *x, const char *phone, bool add, lead_simple_fn done, void *arg);
/* Assigns a lead to team_id / user_id (0: left as is) and posts note (plain text) to its chatter. */
void lead_handoff(
    struct lead_ctx *x, int lead_id, int team_id, int user_id, const char *note, lead_simple_fn done, void *arg);

/*
 * Erasure: clears what came from WhatsApp about the person on lead_id (name,
 * phone, mobile, contact name, e-mail, city, description, product interest
 * and budget) and posts note to its chatter.
 */
void lead_erase(struct lead_ctx *x, int lead_id, const char *note, lead_simple_fn done, void *arg);

/* Escapes text for Odoo's HTML fields; caller frees. */
char *html_escape(const char *s);

#endif
