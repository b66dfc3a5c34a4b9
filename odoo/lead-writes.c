/*
 * Odoo writes beside the lead upsert: the phone blacklist (opt-out) and a
 * hand-off's assignment and note.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/phone.h"
#include "common/xmalloc.h"
#include "lead-private.h"

/* ---- the phone blacklist and hand-offs ---- */

struct small {
	struct lead_ctx *x;
	char e164[17];
	bool add;
	int lead_id;
	char *note;
	lead_simple_fn done;
	void *arg;
};

static void
small_end(struct small *sm, const struct odoo_error *e)
{
	sm->done(e, sm->arg);
	free(sm->note);
	free(sm);
}

/* The last call of a blacklist update or a hand-off: its outcome is the operation's. */
static void
on_small_done(json_t *r, const struct odoo_error *e, void *arg)
{
	small_end(arg, e);
}

static void
on_bl_found(json_t *r, const struct odoo_error *e, void *arg)
{
	struct small *sm = arg;
	json_t *rec = json_array_get(r, 0);
	struct odoo_error ok = {.kind = ODOO_OK};

	if (e->kind != ODOO_OK) {
		small_end(sm, e);
		return;
	}
	if (rec == NULL) {
		if (!sm->add) {
			small_end(sm, &ok); /* not blacklisted: nothing to remove */
			return;
		}
		/* Odoo sanitises the number itself and answers with the existing entry when there is one. */
		odoo_call(sm->x->o, "phone.blacklist", "create", json_pack("[{s:s}]", "number", sm->e164), NULL,
		    on_small_done, sm);
		return;
	}
	if (json_is_true(json_object_get(rec, "active")) == sm->add) {
		small_end(sm, &ok);
		return;
	}
	/* An archived entry is how Odoo records an unblacklisting: (re)activate or archive it. */
	odoo_call(sm->x->o, "phone.blacklist", "write",
	    json_pack("[[I], {s:b}]", json_integer_value(json_object_get(rec, "id")), "active", sm->add), NULL,
	    on_small_done, sm);
}

void
lead_blacklist(struct lead_ctx *x, const char *phone, bool add, lead_simple_fn done, void *arg)
{
	struct small *sm = xcalloc(1, sizeof(*sm));
	struct odoo_error e;

	sm->x = x;
	sm->add = add;
	sm->done = done;
	sm->arg = arg;
	if (lead_e164(x, phone, sm->e164, &e) < 0) {
		small_end(sm, &e);
		return;
	}
	odoo_call(x->o, "phone.blacklist", "search_read", json_pack("[[[s, s, s]]]", "number", "=", sm->e164),
	    json_pack("{s:[s, s], s:{s:b}}", "fields", "id", "active", "context", "active_test", 0), on_bl_found, sm);
}

static void
on_handoff_assigned(json_t *r, const struct odoo_error *e, void *arg)
{
	struct small *sm = arg;
	char *esc, *body;

	if (e->kind != ODOO_OK) {
		small_end(sm, e);
		return;
	}
	esc = html_escape(sm->note);
	xasprintf(&body, "<p><b>crmbridge</b>: %s</p>", esc);
	lead_post_note(sm->x, sm->lead_id, body, on_small_done, sm);
	free(esc);
	free(body);
}

void
lead_handoff(
    struct lead_ctx *x, int lead_id, int team_id, int user_id, const char *note, lead_simple_fn done, void *arg)
{
	struct small *sm = xcalloc(1, sizeof(*sm));
	struct odoo_error ok = {.kind = ODOO_OK};
	json_t *vals = json_object();

	sm->x = x;
	sm->lead_id = lead_id;
	sm->note = xstrdup(note);
	sm->done = done;
	sm->arg = arg;
	if (team_id > 0)
		json_object_set_new(vals, "team_id", json_integer(team_id));
	if (user_id > 0)
		json_object_set_new(vals, "user_id", json_integer(user_id));
	if (json_object_size(vals) == 0) {
		json_decref(vals);
		on_handoff_assigned(NULL, &ok, sm);
		return;
	}
	odoo_call(x->o, "crm.lead", "write", json_pack("[[i], o]", lead_id, vals), NULL, on_handoff_assigned, sm);
}
