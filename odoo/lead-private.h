/*
 * What odoo/lead.c shares with lead-setup.c, lead-writes.c and lead-erase.c:
 * the context's layout and a few helpers. Not for other folders: lead.h is
 * the interface.
 */
#ifndef CRMB_ODOO_LEAD_PRIVATE_H
#define CRMB_ODOO_LEAD_PRIVATE_H

#include "lead.h"

#define NX 5
/* The five custom fields: x_source, x_product_interest, x_budget_range, x_ai_confidence, x_quality_score. */
extern const char *const lead_x_names[NX];

struct lead_ctx {
	struct odoo *o;
	char *name_template, *lead_type, *prio[3], *source, *cc, *tags;
	int team_id, user_id;
	bool probed, has_x, has_mobile, has_sanitized;
	char type[16]; /* what new leads get: "lead" or "opportunity"; "" until probed */
	char type_why[160];
	int note_subtype; /* mail.mt_note's id, for notes created as mail.message on Odoo 17+; 0 unknown */
	int comment_subtype; /* mail.mt_comment's id ("Send message"), for the inbox (chatter.c); 0 unknown */
	int self_uid; /* crmbridge's own user id (JSON-2 logs in with a key: asked with context_get); 0 unknown */
	int team_auto; /* without odoo.team_id: the first sales team, so the lead shows in a team's pipeline */
	char team_name[64];
	bool utm_done, tags_done;
	int helpdesk; /* 0 unknown, 1 present, -1 absent */
	int source_id, medium_id;
	json_t *tag_ids; /* resolved tag ids, or NULL */
};

/* Posts html to a lead's chatter as an internal note (see lead.c for how, by version). */
void lead_post_note(struct lead_ctx *x, int lead_id, const char *html, odoo_done_fn done, void *arg);
/* The search domain: this phone however it was typed, never a typed e-mail; archived leads included (new). */
json_t *lead_match_domain(const struct lead_ctx *x, const char *e164);
/* Whether a lead the search found is this customer's: the same number, in any form. */
bool lead_matches(json_t *rec, const char *e164);
/* The phone as E.164 into e164 (17 bytes; a national number in the company's country); -1 with e set to the
   data error to report when it is none. */
int lead_e164(const struct lead_ctx *x, const char *phone, char *e164, struct odoo_error *e);

#endif
