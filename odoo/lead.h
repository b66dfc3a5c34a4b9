/*
 * One crm.lead per customer: find by phone (phone_sanitized, phone, mobile,
 * a number typed in national form), never by a typed e-mail, including
 * archived leads;
 * update an open lead without overwriting what a salesperson changed;
 * create a new lead (mentioning the old one) when the match was won, lost or
 * archived, never a second one while an earlier create's outcome is unknown;
 * post the analysis to the chatter when something a salesperson cares about
 * changed. Works without the x_ fields (their values go to the description).
 * Also: custom field set-up, checks, lead statistics, erasure.
 * docs/ODOO.md says what crmbridge writes and owns.
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
	/* The customer's question after the lead, which the bot left to the salesperson: noted on the lead; NULL: none. */
	const char *question;
	const char *const *last_messages; /* for the chatter note, oldest first */
	const bool
	    *last_outbound; /* per message: the bot's (true) or the customer's (false); NULL: all the customer's */
	const char *const *last_by; /* per message: a salesperson who wrote an outbound one, NULL: the bot; or NULL */
	size_t nlast;
	/*
	 * What crmbridge last wrote on the lead ({"contact_name": "...", ...}, as
	 * lead_result.written gave it), or NULL: a field whose value in Odoo is no
	 * longer that value was changed by a person and is not overwritten.
	 */
	const json_t *written;
	/*
	 * A create whose outcome was unknown (lead_result.create_unknown) may
	 * still show up: until this time (ms since the epoch) no lead is created
	 * if the search finds none; the call fails as transient instead. 0: none.
	 */
	uint64_t create_after_ms;
	/*
	 * The lead this conversation already has (0: none yet): looked up by id
	 * (and the exact phone) instead of by every form of the number, which
	 * scans crm_lead; kept even if a person changed its phone since.
	 */
	int lead_id;
	bool post_note;
	const char *extra_tag; /* a crm.tag name added to this lead ("Support"), or NULL */
};

struct lead_options {
	const char *name_template; /* "{contact} - {interest}" */
	const char *lead_type; /* "auto" (what the server's Leads setting gives), "lead" or "opportunity" */
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
	bool create_unknown; /* a create was sent and no answer came: it may exist (err is transient) */
	bool adopted; /* created is true because an earlier unanswered create made it, found now */
	/* What crmbridge has written on the lead, to give back as lead_input.written; borrowed, NULL on error. */
	json_t *written;
	unsigned kept; /* fields a person changed that the customer said otherwise: noted, not overwritten */
	struct odoo_error note_error; /* the note alone failed (kind ODOO_OK if not): not posted again */
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
/*
 * The type new leads get ("lead" or "opportunity") and why, once probed:
 * with lead_type auto, what Odoo's crm.lead.default_get gives crmbridge's
 * user (the "Leads" setting, crm.group_use_lead). NULL before the probe.
 */
const char *lead_ctx_lead_type(const struct lead_ctx *x, const char **why);
/*
 * The sales team new leads go to: odoo.team_id (returns NULL), or without it
 * the first team by sequence (returns its name). *id is 0 when there is none.
 */
const char *lead_ctx_team(const struct lead_ctx *x, int *id);

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
 * Erasure of a person from Odoo: every lead of phone (and lead_id, the
 * conversation's lead), archived, won and lost included, never a lead found
 * by e-mail (a typed address proves nothing), loses what came from WhatsApp
 * (name, phone, mobile, contact name, e-mail, city, description, product
 * interest, budget), written without tracking; the chatter messages
 * crmbridge's user wrote on those leads (its notes, and the tracking
 * messages of its writes) are deleted; then a note without personal data
 * says what was done. report (a JSON object, caller owns) says which leads,
 * how many messages went and what Odoo refused.
 */
typedef void (*lead_erase_fn)(const struct odoo_error *e, json_t *report, void *arg);
void lead_erase(struct lead_ctx *x, const char *phone, int lead_id, lead_erase_fn done, void *arg);

/* Escapes text for Odoo's HTML fields; caller frees. */
char *html_escape(const char *s);

#endif
