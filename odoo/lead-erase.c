/*
 * Erasure of a person from Odoo: every lead of the phone cleared without
 * tracking, crmbridge's own chatter messages deleted, the old lead name that
 * Odoo 17 copies onto every message rewritten, one note without personal
 * data (docs/ODOO.md, "Erasure").
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/form.h"
#include "common/log.h"
#include "common/phone.h"
#include "common/xmalloc.h"
#include "lead-private.h"

/* ---- erasure ---- */

struct erasure {
	struct lead_ctx *x;
	char e164[17];
	int lead_id, uid;
	lead_erase_fn done;
	void *arg;
	json_t *ids, *report;
	json_t *deleted; /* lead id -> how many of its messages went */
	json_t *renamed; /* other users' messages holding the lead's old name (record_name, up to 18) */
	json_t *blanked; /* crmbridge's messages Odoo will not let it delete: rewritten instead */
	size_t noted;
};

#define ERASED_NAME "WhatsApp lead (erased)"

static void
erasure_end(struct erasure *er, const struct odoo_error *e)
{
	er->done(e, er->report, er->arg);
	json_decref(er->ids);
	json_decref(er->report);
	json_decref(er->deleted);
	json_decref(er->renamed);
	json_decref(er->blanked);
	free(er);
}

static bool
erasure_failed(struct erasure *er, const struct odoo_error *e, const char *step)
{
	struct odoo_error err;

	if (e->kind == ODOO_OK)
		return false;
	err = *e;
	/* Odoo's message may quote a customer's value: cut at a character, not inside one. */
	snprintf(err.message, sizeof(err.message), "%s: %.*s", step, (int)utf8_cut(e->message, 200), e->message);
	erasure_end(er, &err);
	return true;
}

static void
on_erase_noted(json_t *r, const struct odoo_error *e, void *arg)
{
	struct erasure *er = arg;
	char note[640];
	time_t t = time(NULL);
	struct tm tm;
	char day[32];

	if (erasure_failed(er, e, "the erasure note"))
		return;
	if (er->noted >= json_array_size(er->ids)) {
		struct odoo_error ok = {.kind = ODOO_OK};
		erasure_end(er, &ok);
		return;
	}
	gmtime_r(&t, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d %H:%M UTC", &tm);
	{
		/* Says what was done on this lead, and holds nothing of the person. */
		int id = (int)json_integer_value(json_array_get(er->ids, er->noted++));
		char key[24];
		snprintf(key, sizeof(key), "%d", id);
		if (json_object_get(er->report, "messages_refused") != NULL)
			snprintf(note, sizeof(note),
			    "<p><b>crmbridge</b>: the customer's WhatsApp data was erased at their request on %s: the "
			    "lead's name, contact name, phone, e-mail, city, description, interest and budget were "
			    "cleared, but Odoo refused to let crmbridge's user delete its chatter messages on this "
			    "lead: "
			    "an Odoo administrator should delete them. Messages and edits by other users are not "
			    "touched.</p>",
			    day);
		else
			snprintf(note, sizeof(note),
			    "<p><b>crmbridge</b>: the customer's WhatsApp data was erased at their request on %s: the "
			    "lead's name, contact name, phone, e-mail, city, description, interest and budget were "
			    "cleared, and %lld chatter messages written by crmbridge on this lead were deleted%s. "
			    "Messages and edits by other users are not touched.</p>",
			    day, json_integer_value(json_object_get(er->deleted, key)),
			    json_integer_value(json_object_get(er->report, "notifications_rewritten")) > 0
			        ? " (Odoo's assignment notifications, which it lets nobody delete, were rewritten)"
			        : "");
		lead_post_note(er->x, id, note, on_erase_noted, er);
	}
}

/* The copies of the old lead name are rewritten (see on_erase_messages); then the notes. */
static void clear_record_names(struct erasure *er);

/*
 * Odoo's "You have been assigned to the Lead <name>" to a salesperson (message_type user_notification) is
 * recorded as written by whoever assigned the lead: crmbridge, at a hand-off. Odoo lets nobody but its
 * superuser delete such a message (real 17 and 19), but lets its author rewrite it: its body (and its copy of
 * the lead's name, up to 18) become the erased text.
 */
static void
on_erase_blanked(json_t *r, const struct odoo_error *e, void *arg)
{
	struct erasure *er = arg;

	if (e->kind == ODOO_TRANSIENT) {
		erasure_failed(er, e, "rewriting Odoo's assignment notifications");
		return;
	}
	if (e->kind != ODOO_OK)
		json_object_set_new(er->report, "notifications_refused", json_string(e->message));
	else
		json_object_set_new(
		    er->report, "notifications_rewritten", json_integer((json_int_t)json_array_size(er->blanked)));
	clear_record_names(er);
}

static void
blank_notifications(struct erasure *er)
{
	struct odoo_info info;
	json_t *vals;

	if (json_array_size(er->blanked) == 0) {
		clear_record_names(er);
		return;
	}
	odoo_get_info(er->x->o, &info);
	vals = json_pack("{s:s}", "body", "<p>" ERASED_NAME "</p>");
	if (info.major < 19)
		json_object_set_new(vals, "record_name", json_string(ERASED_NAME));
	odoo_call(
	    er->x->o, "mail.message", "write", json_pack("[O, o]", er->blanked, vals), NULL, on_erase_blanked, er);
}

static void
on_record_names_cleared(json_t *r, const struct odoo_error *e, void *arg)
{
	struct erasure *er = arg;

	if (e->kind != ODOO_OK && e->kind != ODOO_TRANSIENT) {
		json_object_set_new(er->report, "record_names_refused", json_string(e->message));
		on_erase_noted(NULL, &(struct odoo_error){.kind = ODOO_OK}, er);
		return;
	}
	on_erase_noted(NULL, e, er);
}

static void
clear_record_names(struct erasure *er)
{
	json_object_set_new(er->report, "record_names_cleared", json_integer((json_int_t)json_array_size(er->renamed)));
	if (json_array_size(er->renamed) == 0) {
		on_erase_noted(NULL, &(struct odoo_error){.kind = ODOO_OK}, er);
		return;
	}
	odoo_call(er->x->o, "mail.message", "write", json_pack("[O, {s:s}]", er->renamed, "record_name", ERASED_NAME),
	    NULL, on_record_names_cleared, er);
}

static void
on_erase_unlinked(json_t *r, const struct odoo_error *e, void *arg)
{
	struct erasure *er = arg;

	if (e->kind != ODOO_OK) {
		if (e->kind == ODOO_TRANSIENT) {
			erasure_failed(er, e, "deleting crmbridge's chatter messages");
			return;
		}
		/* Odoo refused (rights): the fields are cleared, the messages stay; the answer says so. */
		json_object_set_new(er->report, "messages_deleted", json_integer(0));
		json_object_set_new(er->report, "messages_refused", json_string(e->message));
		json_object_clear(er->deleted);
	}
	blank_notifications(er);
}

/*
 * Every message on the erased leads, in one read: crmbridge's own (its notes,
 * and the tracking messages of its writes, whose tracking values go with
 * them) are deleted. Up to Odoo 18 every message also keeps a copy of its
 * lead's name as it was when posted (mail.message.record_name, stored), the
 * salesperson's messages too: those copies are rewritten (any user who can
 * write the lead may); 19 computes record_name from the lead.
 */
static void
on_erase_messages(json_t *r, const struct odoo_error *e, void *arg)
{
	struct erasure *er = arg;
	json_t *ours = json_array(), *m;
	size_t i;

	if (erasure_failed(er, e, "reading the leads' chatter messages")) {
		json_decref(ours);
		return;
	}
	json_array_foreach(r, i, m)
	{
		const char *rn = json_string_value(json_object_get(m, "record_name"));
		json_t *id = json_object_get(m, "id");
		const char *type = json_string_value(json_object_get(m, "message_type"));
		if (json_integer_value(json_array_get(json_object_get(m, "create_uid"), 0)) == er->uid &&
		    type != NULL && strcmp(type, "user_notification") == 0) {
			json_array_append(er->blanked, id);
		} else if (json_integer_value(json_array_get(json_object_get(m, "create_uid"), 0)) == er->uid) {
			char key[24];
			snprintf(key, sizeof(key), "%lld", (long long)json_integer_value(json_object_get(m, "res_id")));
			json_object_set_new(
			    er->deleted, key, json_integer(json_integer_value(json_object_get(er->deleted, key)) + 1));
			json_array_append(ours, id);
		} else if (rn != NULL && strcmp(rn, ERASED_NAME) != 0) {
			json_array_append(er->renamed, id);
		}
	}
	json_object_set_new(er->report, "messages_deleted", json_integer((json_int_t)json_array_size(ours)));
	if (json_array_size(ours) == 0) {
		json_decref(ours);
		blank_notifications(er);
		return;
	}
	odoo_call(er->x->o, "mail.message", "unlink", json_pack("[o]", ours), NULL, on_erase_unlinked, er);
}

static void
on_erase_written(json_t *r, const struct odoo_error *e, void *arg)
{
	struct erasure *er = arg;
	struct odoo_info info;
	json_t *fields = json_pack("[s, s, s, s]", "id", "res_id", "create_uid", "message_type");

	if (erasure_failed(er, e, "clearing the leads")) {
		json_decref(fields);
		return;
	}
	odoo_get_info(er->x->o, &info);
	if (info.major < 19)
		json_array_append_new(fields, json_string("record_name"));
	odoo_call(er->x->o, "mail.message", "search_read",
	    json_pack("[[[s, s, s], [s, s, O]]]", "model", "=", "crm.lead", "res_id", "in", er->ids),
	    json_pack("{s:o}", "fields", fields), on_erase_messages, er);
}

static void
on_erase_found(json_t *r, const struct odoo_error *e, void *arg)
{
	struct erasure *er = arg;
	struct lead_ctx *x = er->x;
	json_t *rec, *vals;
	size_t i;

	if (erasure_failed(er, e, "finding the leads"))
		return;
	json_array_foreach(r, i, rec)
	{
		int id = (int)json_integer_value(json_object_get(rec, "id"));
		if (id == er->lead_id || lead_matches(rec, er->e164))
			json_array_append_new(er->ids, json_integer(id));
	}
	json_object_set(er->report, "leads", er->ids);
	if (json_array_size(er->ids) == 0) {
		struct odoo_error ok = {.kind = ODOO_OK};
		erasure_end(er, &ok);
		return;
	}
	/* What came from WhatsApp about the person; the leads, their stages and scores stay for the team. */
	vals = json_pack("{s:s, s:b, s:b, s:b, s:b, s:s}", "name", ERASED_NAME, "phone", 0, "contact_name", 0,
	    "email_from", 0, "city", 0, "description", "<p>Erased at the customer's request.</p>");
	if (x->has_mobile)
		json_object_set_new(vals, "mobile", json_false());
	if (x->has_x) {
		json_object_set_new(vals, "x_product_interest", json_false());
		json_object_set_new(vals, "x_budget_range", json_false());
	}
	/* Without tracking: Odoo would otherwise keep the old values in the chatter ("Phone +57... -> False"). */
	odoo_call(x->o, "crm.lead", "write", json_pack("[O, o]", er->ids, vals),
	    json_pack("{s:{s:b, s:b}}", "context", "tracking_disable", 1, "mail_notrack", 1), on_erase_written, er);
}

static void
on_erase_uid(json_t *r, const struct odoo_error *e, void *arg)
{
	struct erasure *er = arg;
	struct lead_ctx *x = er->x;
	json_t *domain, *fields;

	if (erasure_failed(er, e, "reading crmbridge's own user"))
		return;
	er->uid = (int)json_integer_value(json_object_get(r, "uid"));
	domain = lead_match_domain(x, er->e164);
	if (er->lead_id > 0) {
		/* ["|", ["id", "=", lead], <the phone's domain>] */
		json_t *d2 = json_pack("[s, [s, s, i]]", "|", "id", "=", er->lead_id);
		json_t *active = json_array_get(domain, json_array_size(domain) - 1);
		json_incref(active);
		json_array_remove(domain, json_array_size(domain) - 1);
		json_array_extend(d2, domain);
		json_decref(domain);
		domain = json_pack("[s]", "&");
		json_array_append_new(domain, active);
		json_array_extend(domain, d2);
		json_decref(d2);
	}
	fields = json_pack("[s, s, s]", "id", "phone", "phone_sanitized");
	if (x->has_mobile)
		json_array_append_new(fields, json_string("mobile"));
	odoo_call(x->o, "crm.lead", "search_read", json_pack("[o]", domain),
	    json_pack("{s:o, s:i}", "fields", fields, "limit", 200), on_erase_found, er);
}

static void
on_erase_probed(const struct lead_result *r, void *arg)
{
	struct erasure *er = arg;

	if (erasure_failed(er, &r->err, "reading crm.lead's fields"))
		return;
	odoo_call(er->x->o, "res.users", "context_get", json_array(), NULL, on_erase_uid, er);
}

void
lead_erase(struct lead_ctx *x, const char *phone, int lead_id, lead_erase_fn done, void *arg)
{
	struct erasure *er = xcalloc(1, sizeof(*er));
	struct odoo_error e;

	er->x = x;
	er->lead_id = lead_id;
	er->done = done;
	er->arg = arg;
	er->ids = json_array();
	er->report = json_object();
	er->deleted = json_object();
	er->renamed = json_array();
	er->blanked = json_array();
	if (lead_e164(x, phone, er->e164, &e) < 0) {
		erasure_end(er, &e);
		return;
	}
	if (!x->probed) {
		lead_probe(x, on_erase_probed, er);
		return;
	}
	odoo_call(x->o, "res.users", "context_get", json_array(), NULL, on_erase_uid, er);
}
