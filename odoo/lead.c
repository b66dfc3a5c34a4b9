/*
 * Lead upsert as a chain of Odoo calls: probe (once: fields, the type the
 * Leads setting gives, the first team, the Note subtype) -> UTM source/medium
 * and tags (once) -> search (the conversation's lead by id, or the phone in
 * any form, never the e-mail; archived included) -> write what crmbridge owns and
 * nobody changed, or create -> a chatter note when something changed.
 * Set-up and statistics are in lead-setup.c, the blacklist and hand-off in
 * lead-writes.c, erasure in lead-erase.c.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/form.h"
#include "common/log.h"
#include "common/phone.h"
#include "common/template.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "lead-private.h"

const char *const lead_x_names[NX] = {
    "x_source", "x_product_interest", "x_budget_range", "x_ai_confidence", "x_quality_score"};

/* The fields whose value crmbridge writes from the conversation and remembers writing (docs/ODOO.md). */
static const char *const owned[] = {
    "contact_name", "email_from", "city", "x_product_interest", "x_budget_range", "x_quality_score", NULL};

struct up {
	struct lead_ctx *x;
	int extra_tag_id;
	bool extra_done;
	json_t *written; /* what crmbridge has written on the lead (a copy of in.written, then updated) */
	json_t *changes; /* for the note: [label, value] pairs of what this write filled or changed */
	json_t *kept; /* for the note: [label, customer's value, lead's value] of what a person changed */
	bool quality_changed;
	bool adopted; /* the lead an unanswered create made, found by a later attempt: a new lead all the same */
	struct lead_input in;
	char e164[17];
	lead_done_fn done;
	void *arg;
	struct lead_result r;
	int step;
	json_t *found; /* search result */
	char **copies; /* strings of in, owned */
	size_t ncopies;
	size_t tag_i;
};

char *
html_escape(const char *s)
{
	size_t n = 0, i;
	char *out, *o;

	for (i = 0; s[i] != '\0'; i++)
		n += s[i] == '&' ? 5 : s[i] == '<' || s[i] == '>' ? 4 : s[i] == '"' ? 6 : s[i] == '\'' ? 5 : 1;
	o = out = xmalloc(n + 1);
	for (i = 0; s[i] != '\0'; i++) {
		const char *rep = s[i] == '&' ? "&amp;"
		    : s[i] == '<'             ? "&lt;"
		    : s[i] == '>'             ? "&gt;"
		    : s[i] == '"'             ? "&quot;"
		    : s[i] == '\''            ? "&#39;"
		                              : NULL;
		if (rep != NULL) {
			memcpy(o, rep, strlen(rep));
			o += strlen(rep);
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/* ---- context ---- */

static char *
dup_or(const char *s, const char *def)
{
	return xstrdup(s != NULL && *s != '\0' ? s : def);
}

struct lead_ctx *
lead_ctx_new(struct odoo *o, const struct lead_options *opt)
{
	struct lead_ctx *x = xcalloc(1, sizeof(*x));

	x->o = o;
	x->name_template = dup_or(opt->name_template, "{contact} - {interest}");
	x->lead_type = dup_or(opt->lead_type, "auto");
	x->prio[0] = dup_or(opt->priority_cold, "0");
	x->prio[1] = dup_or(opt->priority_warm, "1");
	x->prio[2] = dup_or(opt->priority_hot, "2");
	x->source = dup_or(opt->source_name, "WhatsApp");
	x->cc = opt->default_cc != NULL ? xstrdup(opt->default_cc) : NULL;
	x->tags = opt->tags != NULL && *opt->tags != '\0' ? xstrdup(opt->tags) : NULL;
	x->team_id = opt->team_id;
	x->user_id = opt->user_id;
	return x;
}

void
lead_ctx_reset(struct lead_ctx *x)
{
	x->probed = x->utm_done = x->tags_done = false;
	x->type[0] = '\0';
	x->note_subtype = 0;
	x->team_auto = 0;
	x->team_name[0] = '\0';
	x->source_id = x->medium_id = 0;
	json_decref(x->tag_ids);
	x->tag_ids = NULL;
}

void
lead_ctx_free(struct lead_ctx *x)
{
	if (x == NULL)
		return;
	free(x->name_template);
	free(x->lead_type);
	free(x->prio[0]);
	free(x->prio[1]);
	free(x->prio[2]);
	free(x->source);
	free(x->cc);
	free(x->tags);
	json_decref(x->tag_ids);
	free(x);
}

bool
lead_ctx_has_x_fields(const struct lead_ctx *x)
{
	return x->has_x;
}

bool
lead_ctx_probed(const struct lead_ctx *x)
{
	return x->probed;
}

/* ---- the chain ---- */

static void step(struct up *u);

static void
up_finish(struct up *u)
{
	size_t i;

	u->r.degraded = u->x->probed && !u->x->has_x;
	u->r.written = u->r.err.kind == ODOO_OK ? u->written : NULL;
	u->r.created |= u->adopted && u->r.err.kind == ODOO_OK; /* it was created, by the unanswered call */
	u->r.adopted = u->adopted && u->r.err.kind == ODOO_OK;
	u->done(&u->r, u->arg);
	json_decref(u->found);
	json_decref(u->written);
	json_decref(u->changes);
	json_decref(u->kept);
	free((void *)(uintptr_t)u->in.last_outbound);
	free((void *)(uintptr_t)u->in.last_by);
	for (i = 0; i < u->ncopies; i++)
		free(u->copies[i]);
	free(u->copies);
	free((void *)(uintptr_t)u->in.last_messages);
	free(u);
}

/* Stops the chain on an error (a transient one means: try the whole upsert again later). */
static bool
failed(struct up *u, const struct odoo_error *e)
{
	if (e->kind == ODOO_OK)
		return false;
	u->r.err = *e;
	u->r.create_unknown = e->unknown && u->r.created; /* the create may exist: look for it before another */
	if (e->kind == ODOO_CONFIG && strstr(e->message, "Invalid field") != NULL) {
		/* A field went away (uninstalled, renamed): probe again, and write without it meanwhile. */
		u->x->probed = false;
		u->x->has_x = false;
	}
	up_finish(u);
	return true;
}

static void
on_note_subtype(json_t *r, const struct odoo_error *e, void *arg)
{
	struct up *u = arg;

	if (failed(u, e))
		return;
	u->x->note_subtype = (int)json_integer_value(json_array_get(r, 1));
	u->x->probed = true;
	step(u);
}

static void on_team(json_t *r, const struct odoo_error *e, void *arg);
static void probe_subtype(struct up *u);

static void
on_default_type(json_t *r, const struct odoo_error *e, void *arg)
{
	struct up *u = arg;
	struct lead_ctx *x = u->x;
	const char *server = json_string_value(json_object_get(r, "type"));

	if (failed(u, e))
		return;
	if (server == NULL || (strcmp(server, "lead") != 0 && strcmp(server, "opportunity") != 0))
		server = "opportunity";
	bool leads_on = strcmp(server, "lead") == 0;
	if (strcmp(x->lead_type, "auto") == 0) {
		snprintf(x->type, sizeof(x->type), "%s", server);
		snprintf(x->type_why, sizeof(x->type_why), "%s",
		    leads_on ? "the Leads setting is on: new leads go to CRM > Leads"
		             : "the Leads setting is off: new leads go to the CRM pipeline as opportunities");
	} else {
		snprintf(x->type, sizeof(x->type), "%s", x->lead_type);
		if (strcmp(x->lead_type, "lead") == 0 && !leads_on)
			snprintf(x->type_why, sizeof(x->type_why), "%s",
			    "odoo.lead_type = lead, but the Leads setting is off: the sales team will NOT see these "
			    "leads (CRM > Leads is hidden); use auto or turn the setting on");
		else
			snprintf(x->type_why, sizeof(x->type_why), "odoo.lead_type = %s (the Leads setting is %s)",
			    x->lead_type, leads_on ? "on" : "off");
	}
	if (x->team_id == 0) {
		/* No salesperson is set (the team picks the lead up), so no team would follow from one: the first. */
		odoo_call(x->o, "crm.team", "search_read", json_pack("[[]]"),
		    json_pack("{s:[s, s], s:s, s:i}", "fields", "id", "name", "order", "sequence, id", "limit", 1),
		    on_team, u);
		return;
	}
	probe_subtype(u);
}

static void
on_team(json_t *r, const struct odoo_error *e, void *arg)
{
	struct up *u = arg;
	json_t *t = json_array_get(r, 0);

	if (failed(u, e))
		return;
	u->x->team_auto = (int)json_integer_value(json_object_get(t, "id"));
	snprintf(u->x->team_name, sizeof(u->x->team_name), "%s", json_string_value(json_object_get(t, "name")) ?: "");
	probe_subtype(u);
}

static void
probe_subtype(struct up *u)
{
	struct lead_ctx *x = u->x;
	struct odoo_info info;

	odoo_get_info(x->o, &info);
	if (info.major >= 17 && x->note_subtype == 0) {
		/* Notes go in as mail.message records there (see post_note): the Note subtype's id. */
		odoo_call(x->o, "ir.model.data", "check_object_reference", json_pack("[s, s]", "mail", "mt_note"), NULL,
		    on_note_subtype, u);
		return;
	}
	x->probed = true;
	step(u);
}

const char *
lead_ctx_team(const struct lead_ctx *x, int *id)
{
	*id = x->team_id > 0 ? x->team_id : x->team_auto;
	return x->team_id > 0 ? NULL : x->team_name;
}

const char *
lead_ctx_lead_type(const struct lead_ctx *x, const char **why)
{
	if (why != NULL)
		*why = x->type_why;
	return x->probed && x->type[0] != '\0' ? x->type : NULL;
}

static void
on_probe(json_t *r, const struct odoo_error *e, void *arg)
{
	struct up *u = arg;
	int i, n = 0;

	if (failed(u, e))
		return;
	for (i = 0; i < NX; i++)
		n += json_object_get(r, lead_x_names[i]) != NULL;
	u->x->has_x = n == NX;
	u->x->has_mobile = json_object_get(r, "mobile") != NULL; /* gone in Odoo 19 */
	u->x->has_sanitized = json_object_get(r, "phone_sanitized") != NULL;
	if (!u->x->has_x)
		log_debug("odoo: crm.lead lacks %d of the x_ fields: degraded mode", NX - n);
	/* Where would Odoo put a lead of crmbridge's user? crm.lead's default type follows the Leads setting. */
	odoo_call(u->x->o, "crm.lead", "default_get", json_pack("[[s]]", "type"), NULL, on_default_type, u);
}

/* Finds or creates a record by name in a simple model (utm.source, utm.medium, crm.tag). */
struct named {
	struct up *u;
	const char *model;
	int *out;
	json_t *ids; /* for tags */
	char *name;
};

static void named_created(json_t *r, const struct odoo_error *e, void *arg);

static void
named_found(json_t *r, const struct odoo_error *e, void *arg)
{
	struct named *nm = arg;
	struct up *u = nm->u;
	int id = 0;

	if (e->kind != ODOO_OK) {
		/* No UTM or tags module, or no rights on it: carry on without. */
		log_debug("odoo: %s: %s; leads go without it", nm->model, e->message);
		if (e->kind == ODOO_TRANSIENT) {
			free(nm->name);
			free(nm);
			failed(u, e);
			return;
		}
	} else if (json_array_size(r) > 0) {
		id = (int)json_integer_value(json_object_get(json_array_get(r, 0), "id"));
	} else {
		odoo_call(
		    u->x->o, nm->model, "create", json_pack("[{s:s}]", "name", nm->name), NULL, named_created, nm);
		return;
	}
	if (nm->out != NULL)
		*nm->out = id;
	else if (id > 0)
		json_array_append_new(u->x->tag_ids, json_integer(id));
	free(nm->name);
	free(nm);
	step(u);
}

static void
named_created(json_t *r, const struct odoo_error *e, void *arg)
{
	struct named *nm = arg;
	struct up *u = nm->u;

	if (e->kind == ODOO_TRANSIENT) {
		free(nm->name);
		free(nm);
		failed(u, e);
		return;
	}
	if (e->kind == ODOO_OK && json_is_integer(r)) {
		if (nm->out != NULL)
			*nm->out = (int)json_integer_value(r);
		else
			json_array_append_new(u->x->tag_ids, json_integer(json_integer_value(r)));
	}
	free(nm->name);
	free(nm);
	step(u);
}

static void
find_named(struct up *u, const char *model, const char *name, int *out)
{
	struct named *nm = xcalloc(1, sizeof(*nm));

	nm->u = u;
	nm->model = model;
	nm->out = out;
	nm->name = xstrdup(name);
	odoo_call(u->x->o, model, "search_read", json_pack("[[[s, s, s]]]", "name", "=", name),
	    json_pack("{s:[s], s:i}", "fields", "id", "limit", 1), named_found, nm);
}

static const char *
str(json_t *rec, const char *k)
{
	json_t *v = json_object_get(rec, k);

	return json_is_string(v) && *json_string_value(v) != '\0' ? json_string_value(v) : NULL;
}

static int
quality_index(const char *q)
{
	return q == NULL ? 0 : strcmp(q, "hot") == 0 ? 2 : strcmp(q, "warm") == 0 ? 1 : 0;
}

/* Appends <li><b>label</b>: value</li> with value escaped. */
static void
li(char **html, const char *label, const char *value)
{
	char *e, *n;

	if (value == NULL || *value == '\0')
		return;
	e = html_escape(value);
	xasprintf(&n, "%s<li><b>%s</b>: %s</li>", *html, label, e);
	free(*html);
	free(e);
	*html = n;
}

static char *
description(struct up *u, int previous, bool previous_won)
{
	const struct lead_input *in = &u->in;
	char *h = xstrdup(""), *out, conf[32];

	li(&h, "Interest", in->product);
	li(&h, "Specific need", in->need);
	li(&h, "Budget", in->budget);
	li(&h, "Urgency", in->urgency);
	li(&h, "City", in->city);
	if (!u->x->has_x) {
		/* Without the x_ fields, their values live here. */
		snprintf(conf, sizeof(conf), "%.2f", in->confidence);
		li(&h, "Source", u->x->source);
		li(&h, "AI quality", in->quality);
		li(&h, "AI confidence", conf);
	}
	if (previous > 0)
		xasprintf(&out, "<p>Lead from %s, via crmbridge. It follows lead #%d (%s).</p><ul>%s</ul>",
		    u->x->source, previous, previous_won ? "won" : "lost or archived", h);
	else
		xasprintf(&out, "<p>Lead from %s, via crmbridge.</p><ul>%s</ul>", u->x->source, h);
	free(h);
	return out;
}

static char *
lead_name(struct up *u)
{
	static const char *const keys[] = {"contact", "interest", "phone"};
	const char *vals[] = {u->in.contact_name != NULL ? u->in.contact_name : u->e164,
	    u->in.product != NULL    ? u->in.product
	        : u->in.need != NULL ? u->in.need
	                             : u->x->source,
	    u->e164};

	return template_expand(u->x->name_template, keys, vals, 3);
}

static void
on_saved(json_t *r, const struct odoo_error *e, void *arg)
{
	struct up *u = arg;

	if (failed(u, e))
		return;
	if (u->r.created)
		u->r.lead_id = (int)json_integer_value(r);
	step(u);
}

static void
on_note(json_t *r, const struct odoo_error *e, void *arg)
{
	struct up *u = arg;

	if (e->kind != ODOO_OK) {
		/*
		 * The lead is written; only its note failed. Redoing the upsert would post the note again if this one
		 * went through unanswered: a missing note is better than two. The caller hears of it.
		 */
		u->r.note_error = *e;
		step(u);
		return;
	}
	u->r.note_id = json_is_integer(r) ? (int)json_integer_value(r) : (int)json_integer_value(json_array_get(r, 0));
	step(u);
}

static void
on_found(json_t *r, const struct odoo_error *e, void *arg)
{
	struct up *u = arg;

	if (failed(u, e))
		return;
	u->found = json_incref(r);
	step(u);
}

/* "%3%0%0%1%1%1%2%2%3%3": the national digits with anything between them, for numbers Odoo could not sanitize. */
static char *
digits_pattern(const char *digits)
{
	char *out = xmalloc(2 * strlen(digits) + 1), *o = out;

	for (; *digits != '\0'; digits++) {
		*o++ = '%';
		*o++ = *digits;
	}
	*o = '\0';
	return out;
}

/*
 * The search domain: this phone however it was typed; archived leads included. Only the number WhatsApp
 * verified says whose lead it is: an e-mail the sender typed proves nothing (anyone can type anyone's), so it
 * never finds a lead. Odoo's own "Similar Leads" (duplicate_lead_ids: the same e-mail, or its company
 * domain) shows the salesperson a lead with the same address.
 */
json_t *
lead_match_domain(const struct lead_ctx *x, const char *e164)
{
	json_t *terms = json_array(), *domain = json_array();
	size_t i, n, cl = phone_cc_len(e164);
	char *pat = digits_pattern(e164 + 1 + cl);

	if (x->has_sanitized)
		json_array_append_new(terms, json_pack("[s, s, s]", "phone_sanitized", "=", e164));
	json_array_append_new(terms, json_pack("[s, s, s]", "phone", "=", e164));
	/* Typed by hand in a national form ("300 111 2233") where the company has no country: Odoo could not
	   sanitize it. The pattern (digits only: nothing of the sender's text) finds candidates; lead_matches()
	   keeps only the same number. */
	json_array_append_new(terms, json_pack("[s, s, s]", "phone", "=ilike", pat));
	if (x->has_mobile) {
		json_array_append_new(terms, json_pack("[s, s, s]", "mobile", "=", e164));
		json_array_append_new(terms, json_pack("[s, s, s]", "mobile", "=ilike", pat));
	}
	free(pat);
	/* Prefix notation: n-1 ORs, then the terms; archived (lost) leads included. */
	n = json_array_size(terms);
	for (i = 1; i < n; i++)
		json_array_append_new(domain, json_string("|"));
	json_array_extend(domain, terms);
	json_decref(terms);
	json_array_append_new(domain, json_pack("[s, s, [b, b]]", "active", "in", 1, 0));
	return domain;
}

int
lead_e164(const struct lead_ctx *x, const char *phone, char *e164, struct odoo_error *e)
{
	if (phone != NULL && phone_e164(phone, x->cc, e164) == 0)
		return 0;
	memset(e, 0, sizeof(*e));
	e->kind = ODOO_DATA;
	snprintf(e->message, sizeof(e->message), "the phone number is not a valid international number");
	return -1;
}

/* Whether a lead the search found is this customer's: the same number, in any form. */
bool
lead_matches(json_t *rec, const char *e164)
{
	static const char *const ph[] = {"phone_sanitized", "phone", "mobile"};
	const char *v;
	size_t i;

	for (i = 0; i < 3; i++)
		if ((v = json_string_value(json_object_get(rec, ph[i]))) != NULL && phone_same(v, e164))
			return true;
	return false;
}

/*
 * Once the conversation has its lead, that lead by id, or a lead of the exact number (both indexed); before,
 * the number in every form it may have been typed in. Never the e-mail (see lead_match_domain).
 */
static json_t *
search_domain(const struct up *u)
{
	if (u->in.lead_id <= 0)
		return lead_match_domain(u->x, u->e164);
	if (!u->x->has_sanitized)
		return json_pack("[[s, s, i], [s, s, [b, b]]]", "id", "=", u->in.lead_id, "active", "in", 1, 0);
	return json_pack("[s, [s, s, i], [s, s, s], [s, s, [b, b]]]", "|", "id", "=", u->in.lead_id, "phone_sanitized",
	    "=", u->e164, "active", "in", 1, 0);
}

static void
search(struct up *u)
{
	json_t *fields;
	size_t i;

	fields = json_pack("[s, s, s, s, s, s, s, s, s]", "id", "name", "active", "probability", "contact_name",
	    "email_from", "city", "phone", "phone_sanitized");
	if (u->x->has_mobile)
		json_array_append_new(fields, json_string("mobile"));
	if (u->x->has_x)
		for (i = 0; i < NX; i++)
			json_array_append_new(fields, json_string(lead_x_names[i]));
	odoo_call(u->x->o, "crm.lead", "search_read", json_pack("[o]", search_domain(u)),
	    json_pack("{s:o, s:s, s:i}", "fields", fields, "order", "id desc", "limit", 20), on_found, u);
}

/*
 * One field crmbridge may write on an open lead: value is what the customer
 * said. Odoo's current value wins when a person changed it (it is neither
 * empty nor what crmbridge last wrote): the customer's differing value is
 * then kept for the note, once. A vaguer value never replaces a more
 * specific one.
 */
static void
own_field(struct up *u, json_t *open, json_t *vals, const char *field, const char *label, const char *value)
{
	const char *cur = str(open, field);
	const char *mine = json_string_value(json_object_get(u->written, field));

	if (value == NULL || (cur != NULL && strcmp(cur, value) == 0))
		return;
	if (cur == NULL || (mine != NULL && strcmp(cur, mine) == 0)) {
		if (cur != NULL && text_vaguer(value, cur))
			return; /* "sofás" after "sofá de 3 puestos": the lead keeps the more specific one */
		json_object_set_new(vals, field, json_string(value));
		json_object_set_new(u->written, field, json_string(value));
		if (label != NULL)
			json_array_append_new(u->changes, json_pack("[s, s]", label, value));
		return;
	}
	/* A person changed it. Say so once for each thing the customer says (mine then holds it). */
	if (mine != NULL && strcmp(mine, value) == 0)
		return;
	json_object_set_new(u->written, field, json_string(value));
	if (text_vaguer(value, cur))
		return; /* says less than what the team set: nothing to point out */
	if (label != NULL)
		json_array_append_new(u->kept, json_pack("[s, s, s]", label, value, cur));
	u->r.kept++;
}

/*
 * An earlier create got no answer, so there was no open lead before it: the open lead found now is the one it
 * made. What it holds is what crmbridge wrote, and it gets the new lead's note.
 */
static void
adopt(struct up *u, json_t *open)
{
	size_t i;

	u->adopted = true;
	json_decref(u->written);
	u->written = json_object();
	for (i = 0; owned[i] != NULL; i++)
		if (str(open, owned[i]) != NULL)
			json_object_set_new(u->written, owned[i], json_string(str(open, owned[i])));
	if (json_is_number(json_object_get(open, "x_ai_confidence")))
		json_object_set(u->written, "_conf", json_object_get(open, "x_ai_confidence"));
	if (str(open, "x_quality_score") != NULL)
		json_object_set_new(u->written, "_quality", json_string(str(open, "x_quality_score")));
}

/* The AI's confidence follows its quality, unless a person changed it since crmbridge wrote it. */
static void
own_confidence(struct up *u, json_t *open, json_t *vals, double conf)
{
	double cur = json_number_value(json_object_get(open, "x_ai_confidence"));
	json_t *mine = json_object_get(u->written, "_conf");

	if (json_object_get(vals, "x_quality_score") == NULL && mine != NULL &&
	    fabs(cur - json_number_value(mine)) >= 0.005)
		return;
	if (fabs(cur - conf) > 0.005)
		json_object_set_new(vals, "x_ai_confidence", json_real(conf));
	json_object_set_new(u->written, "_conf", json_real(conf));
}

/* Without the x_ fields: a value the notes report when it is new and not vaguer than the last one. */
static void
noted_value(struct up *u, const char *key, const char *label, const char *value)
{
	const char *last = json_string_value(json_object_get(u->written, key));

	if (value == NULL || (last != NULL && (strcmp(last, value) == 0 || text_vaguer(value, last))))
		return;
	json_array_append_new(u->changes, json_pack("[s, s]", label, value));
	json_object_set_new(u->written, key, json_string(value));
}

static void
save(struct up *u)
{
	struct lead_ctx *x = u->x;
	json_t *open = NULL, *prev = NULL, *rec, *vals = json_object();
	size_t i;
	char conf[32];

	json_array_foreach(u->found, i, rec)
	{
		bool active = json_is_true(json_object_get(rec, "active"));
		double p = json_number_value(json_object_get(rec, "probability"));
		if (!lead_matches(rec, u->e164) && json_integer_value(json_object_get(rec, "id")) != u->in.lead_id)
			continue; /* the pattern's near miss: another number with the same digits inside */
		if (active && p < 100) {
			open = rec;
			break;
		}
		if (prev == NULL)
			prev = rec;
	}
	snprintf(conf, sizeof(conf), "%.2f", u->in.confidence);
	if (open != NULL) {
		/* Fill what is empty, update what crmbridge wrote and nobody changed since; leave the rest. */
		const char *q;
		if (u->in.create_after_ms > 0) {
			/* Its name and description were made from the conversation as it was then: made again. */
			char *name, *desc;
			adopt(u, open);
			name = lead_name(u);
			desc = description(u, 0, false);
			json_object_set_new(vals, "name", json_string(name));
			json_object_set_new(vals, "description", json_string(desc));
			free(name);
			free(desc);
		}
		q = json_string_value(json_object_get(u->written, "_quality"));
		u->quality_changed = u->in.quality != NULL && (q == NULL || strcmp(q, u->in.quality) != 0);
		u->r.lead_id = (int)json_integer_value(json_object_get(open, "id"));
		own_field(u, open, vals, "contact_name", "Name", u->in.contact_name);
		own_field(u, open, vals, "email_from", "E-mail", u->in.email);
		own_field(u, open, vals, "city", "City", u->in.city);
		if (str(open, "phone") == NULL && str(open, "mobile") == NULL)
			json_object_set_new(vals, "phone", json_string(u->e164));
		if (x->has_x) {
			own_field(u, open, vals, "x_product_interest", "Interest", u->in.product);
			own_field(u, open, vals, "x_budget_range", "Budget", u->in.budget);
			own_field(u, open, vals, "x_quality_score", NULL, u->in.quality);
			own_confidence(u, open, vals, atof(conf));
			if (str(open, "x_source") == NULL)
				json_object_set_new(vals, "x_source", json_string(x->source));
		} else {
			/* No x_ fields to hold them: the notes carry what changed. */
			noted_value(u, "_product", "Interest", u->in.product);
			noted_value(u, "_budget", "Budget", u->in.budget);
		}
		if (u->in.quality != NULL)
			json_object_set_new(u->written, "_quality", json_string(u->in.quality));
		if (u->extra_tag_id > 0)
			json_object_set_new(vals, "tag_ids", json_pack("[[i, i]]", 4, u->extra_tag_id));
		if (json_object_size(vals) == 0) {
			json_decref(vals);
			step(u); /* nothing changed: no write */
			return;
		}
		u->r.updated = true;
		odoo_call(x->o, "crm.lead", "write", json_pack("[[i], o]", u->r.lead_id, vals), NULL, on_saved, u);
		return;
	}
	if (u->in.create_after_ms > 0 && realtime_usec() / 1000 < u->in.create_after_ms) {
		/* An earlier create got no answer and has not shown up yet: it may still be committing. */
		json_decref(vals);
		u->r.err.kind = ODOO_TRANSIENT;
		u->r.create_unknown = true;
		snprintf(u->r.err.message, sizeof(u->r.err.message),
		    "an earlier crm.lead create got no answer and its lead has not shown up yet; no second lead is "
		    "created before %llu s have passed",
		    (unsigned long long)((u->in.create_after_ms - realtime_usec() / 1000 + 999) / 1000));
		up_finish(u);
		return;
	}
	{
		char *name = lead_name(u), *desc;
		bool won = prev != NULL && json_number_value(json_object_get(prev, "probability")) >= 100;
		u->r.previous_id = prev != NULL ? (int)json_integer_value(json_object_get(prev, "id")) : 0;
		desc = description(u, u->r.previous_id, won);
		json_decref(u->written);
		u->written = json_object(); /* a new lead: what crmbridge knows of it starts here */
		json_object_set_new(vals, "type", json_string(x->type[0] != '\0' ? x->type : "opportunity"));
		json_object_set_new(vals, "name", json_string(name));
		json_object_set_new(vals, "phone", json_string(u->e164));
		if (u->in.contact_name != NULL)
			json_object_set_new(vals, "contact_name", json_string(u->in.contact_name));
		if (u->in.email != NULL)
			json_object_set_new(vals, "email_from", json_string(u->in.email));
		if (u->in.city != NULL)
			json_object_set_new(vals, "city", json_string(u->in.city));
		json_object_set_new(vals, "description", json_string(desc));
		json_object_set_new(vals, "priority", json_string(x->prio[quality_index(u->in.quality)]));
		if (x->has_x) {
			json_object_set_new(vals, "x_source", json_string(x->source));
			if (u->in.product != NULL)
				json_object_set_new(vals, "x_product_interest", json_string(u->in.product));
			if (u->in.budget != NULL)
				json_object_set_new(vals, "x_budget_range", json_string(u->in.budget));
			json_object_set_new(vals, "x_ai_confidence", json_real(atof(conf)));
			json_object_set_new(u->written, "_conf", json_real(atof(conf)));
			if (u->in.quality != NULL)
				json_object_set_new(vals, "x_quality_score", json_string(u->in.quality));
		} else {
			if (u->in.product != NULL)
				json_object_set_new(u->written, "_product", json_string(u->in.product));
			if (u->in.budget != NULL)
				json_object_set_new(u->written, "_budget", json_string(u->in.budget));
		}
		if (u->in.quality != NULL)
			json_object_set_new(u->written, "_quality", json_string(u->in.quality));
		{
			for (i = 0; owned[i] != NULL; i++)
				if (json_is_string(json_object_get(vals, owned[i])))
					json_object_set(u->written, owned[i], json_object_get(vals, owned[i]));
		}
		if (x->team_id > 0 || x->team_auto > 0)
			json_object_set_new(vals, "team_id", json_integer(x->team_id > 0 ? x->team_id : x->team_auto));
		/* Unassigned unless configured: Odoo would make crmbridge's own user the salesperson. */
		json_object_set_new(vals, "user_id", x->user_id > 0 ? json_integer(x->user_id) : json_false());
		if (x->source_id > 0)
			json_object_set_new(vals, "source_id", json_integer(x->source_id));
		if (x->medium_id > 0)
			json_object_set_new(vals, "medium_id", json_integer(x->medium_id));
		{
			json_t *ids = x->tag_ids != NULL ? json_deep_copy(x->tag_ids) : json_array();
			if (u->extra_tag_id > 0)
				json_array_append_new(ids, json_integer(u->extra_tag_id));
			if (json_array_size(ids) > 0)
				json_object_set_new(vals, "tag_ids", json_pack("[[i, i, O]]", 6, 0, ids));
			json_decref(ids);
		}
		free(name);
		free(desc);
		u->r.created = true;
		/* crmbridge's user does not follow the lead: a salesperson's messages on it would e-mail it (17, 19). */
		odoo_call(x->o, "crm.lead", "create", json_pack("[o]", vals),
		    json_pack("{s:{s:b}}", "context", "mail_create_nosubscribe", 1), on_saved, u);
	}
}

/*
 * Posts html to a lead's chatter as an internal note. From 17 message_post
 * escapes a body unless body_is_html says it is HTML, and the flag logs a
 * warning on every call (Odoo wants a Markup, which RPC cannot send; seen on
 * real 17.0 and 19.0 servers), so the note is created as a mail.message of
 * subtype Note, which is what message_post stores for a note (no one is
 * notified of a note). Before 17 a body is HTML already: message_post.
 */
void
lead_post_note(struct lead_ctx *x, int lead_id, const char *html, odoo_done_fn done, void *arg)
{
	struct odoo_info info;

	odoo_get_info(x->o, &info);
	if (info.major >= 17 && x->note_subtype > 0)
		odoo_call(x->o, "mail.message", "create",
		    json_pack("[{s:s, s:i, s:s, s:s, s:i}]", "model", "crm.lead", "res_id", lead_id, "body", html,
		        "message_type", "comment", "subtype_id", x->note_subtype),
		    NULL, done, arg);
	else if (info.major == 0 || info.major >= 17)
		odoo_call(x->o, "crm.lead", "message_post", json_pack("[[i]]", lead_id),
		    json_pack("{s:s, s:b, s:s, s:s}", "body", html, "body_is_html", 1, "message_type", "comment",
		        "subtype_xmlid", "mail.mt_note"),
		    done, arg);
	else
		odoo_call(x->o, "crm.lead", "message_post", json_pack("[[i]]", lead_id),
		    json_pack(
		        "{s:s, s:s, s:s}", "body", html, "message_type", "comment", "subtype_xmlid", "mail.mt_note"),
		    done, arg);
}

/* A note is worth a salesperson's attention when the lead is new, its quality moved, or a field changed. */
static bool
note_needed(const struct up *u)
{
	return u->r.created || u->adopted || u->quality_changed || json_array_size(u->changes) > 0 ||
	    json_array_size(u->kept) > 0 || u->in.question != NULL;
}

/* Appends s to *h. */
static void
cat(char **h, const char *s)
{
	char *n;

	xasprintf(&n, "%s%s", *h, s);
	free(*h);
	*h = n;
}

static void
note(struct up *u)
{
	char *h, conf[32];
	size_t i;
	json_t *c;
	bool fresh = u->r.created || u->adopted;

	snprintf(conf, sizeof(conf), "%.2f", u->in.confidence);
	{
		char *q = html_escape(u->in.quality ? u->in.quality : "?"),
		     *it = html_escape(u->in.intent ? u->in.intent : "?");
		xasprintf(&h, "<p><b>AI analysis (crmbridge)</b>%s: quality <b>%s</b>, confidence %s, intent %s</p>",
		    fresh ? ", new lead" : "", q, conf, it);
		free(q);
		free(it);
	}
	if (u->in.question != NULL) {
		char cut[504], *q;
		snprintf(cut, sizeof(cut), "%.*s", (int)utf8_cut(u->in.question, 500), u->in.question);
		q = html_escape(cut);
		cat(&h, "<p><b>The customer asks</b> (the bot told them their advisor will answer): ");
		cat(&h, q);
		cat(&h, "</p>");
		free(q);
	}
	if (fresh) {
		cat(&h, "<ul>");
		li(&h, "Name", u->in.contact_name);
		li(&h, "E-mail", u->in.email);
		li(&h, "Phone", u->e164);
		li(&h, "City", u->in.city);
		li(&h, "Interest", u->in.product);
		li(&h, "Specific need", u->in.need);
		li(&h, "Budget", u->in.budget);
		li(&h, "Urgency", u->in.urgency);
		li(&h, "Missing", u->in.missing);
		li(&h, "Reasoning", u->in.reasoning);
		cat(&h, "</ul>");
	} else {
		/* Only what changed is listed as such; the rest of the analysis follows apart. */
		if (json_array_size(u->changes) > 0 || u->quality_changed) {
			cat(&h, "<p>What changed:</p><ul>");
			json_array_foreach(u->changes, i, c)
			    li(&h, json_string_value(json_array_get(c, 0)), json_string_value(json_array_get(c, 1)));
			if (u->quality_changed)
				li(&h, "Quality", u->in.quality);
			cat(&h, "</ul>");
		}
		if ((json_array_size(u->changes) > 0 || u->quality_changed) &&
		    (u->in.missing != NULL || u->in.reasoning != NULL)) {
			cat(&h, "<ul>");
			li(&h, "Missing", u->in.missing);
			li(&h, "Reasoning", u->in.reasoning);
			cat(&h, "</ul>");
		}
	}
	if (json_array_size(u->kept) > 0) {
		/* A person changed these on the lead: the customer's words are here for them to judge. */
		cat(&h, "<p>Not changed on the lead (edited by your team); the customer now says:</p><ul>");
		json_array_foreach(u->kept, i, c)
		{
			char *v = html_escape(json_string_value(json_array_get(c, 1))),
			     *lv = html_escape(json_string_value(json_array_get(c, 2))), *line;
			xasprintf(&line, "<li><b>%s</b>: %s (the lead says: %s)</li>",
			    json_string_value(json_array_get(c, 0)), v, lv);
			cat(&h, line);
			free(line);
			free(v);
			free(lv);
		}
		cat(&h, "</ul>");
	}
	if (u->in.nlast > 0) {
		cat(&h, "<p>Last messages:</p><ul>");
		for (i = 0; i < u->in.nlast; i++) {
			char cut[304], who[96], *ew;
			/* Cut at a character: half an "ñ" is invalid UTF-8, which jansson (and Odoo) refuse. */
			snprintf(cut, sizeof(cut), "%.*s", (int)utf8_cut(u->in.last_messages[i], 300),
			    u->in.last_messages[i]);
			if (u->in.last_outbound != NULL && u->in.last_outbound[i])
				snprintf(who, sizeof(who), "%.*s", (int)utf8_cut(u->in.last_by[i] ?: "Bot", 60),
				    u->in.last_by[i] ?: "Bot"); /* the bot, or a salesperson from the chatter */
			else if (u->in.contact_name != NULL)
				snprintf(who, sizeof(who), "Customer (%.*s)", (int)utf8_cut(u->in.contact_name, 60),
				    u->in.contact_name);
			else
				snprintf(who, sizeof(who), "Customer");
			ew = html_escape(who);
			li(&h, ew, cut);
			free(ew);
		}
		cat(&h, "</ul>");
	}
	lead_post_note(u->x, u->r.lead_id, h, on_note, u);
	free(h);
}

/* Runs the next step of the chain. */
static void
step(struct up *u)
{
	struct lead_ctx *x = u->x;

	for (;;) {
		switch (u->step++) {
		case 0:
			if (!x->probed) {
				json_t *names = json_pack("[s, s, s, s, s, s]", "name", "phone", "mobile",
				    "phone_sanitized", "email_from", "contact_name");
				for (int i = 0; i < NX; i++)
					json_array_append_new(names, json_string(lead_x_names[i]));
				odoo_call(x->o, "crm.lead", "fields_get", json_pack("[o]", names),
				    json_pack("{s:[s]}", "attributes", "type"), on_probe, u);
				return;
			}
			break;
		case 1:
			if (u->in.phone == NULL) { /* a probe only */
				up_finish(u);
				return;
			}
			if (!x->utm_done) {
				find_named(u, "utm.source", x->source, &x->source_id);
				return;
			}
			u->step = 3;
			break;
		case 2: find_named(u, "utm.medium", x->source, &x->medium_id); return;
		case 3:
			x->utm_done = true;
			if (x->tags != NULL && !x->tags_done) {
				json_decref(x->tag_ids);
				x->tag_ids = json_array();
				u->tag_i = 0;
			}
			break;
		case 4: {
			/* One tag at a time: "vip, whatsapp". */
			char *list, *save = NULL, *t;
			size_t k = 0;
			if (x->tags == NULL || x->tags_done)
				break;
			list = xstrdup(x->tags);
			for (t = strtok_r(list, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save), k++) {
				while (*t == ' ')
					t++;
				if (k == u->tag_i && *t != '\0') {
					u->tag_i++;
					u->step = 4;
					find_named(u, "crm.tag", t, NULL);
					free(list);
					return;
				}
			}
			free(list);
			x->tags_done = true;
			break;
		}
		case 5:
			if (u->in.extra_tag != NULL && !u->extra_done) {
				/* The case's own tag ("Support"), found or created. */
				u->extra_done = true;
				u->step = 5;
				find_named(u, "crm.tag", u->in.extra_tag, &u->extra_tag_id);
				return;
			}
			search(u);
			return;
		case 6: save(u); return;
		case 7:
			if (u->in.post_note && u->r.lead_id > 0 && note_needed(u)) {
				note(u);
				return;
			}
			break;
		default: up_finish(u); return;
		}
	}
}

static const char *
keep(struct up *u, const char *s)
{
	if (s == NULL || *s == '\0')
		return NULL;
	u->copies = xreallocarray(u->copies, u->ncopies + 1, sizeof(char *));
	u->copies[u->ncopies] = xstrdup(s);
	return u->copies[u->ncopies++];
}

static struct up *
up_new(struct lead_ctx *x, const struct lead_input *in, lead_done_fn done, void *arg)
{
	struct up *u = xcalloc(1, sizeof(*u));
	size_t i;

	u->x = x;
	u->done = done;
	u->arg = arg;
	u->r.err.kind = ODOO_OK;
	if (in != NULL) {
		u->in = *in;
		u->in.phone = keep(u, in->phone);
		u->in.contact_name = keep(u, in->contact_name);
		u->in.email = keep(u, in->email);
		u->in.city = keep(u, in->city);
		u->in.product = keep(u, in->product);
		u->in.budget = keep(u, in->budget);
		u->in.urgency = keep(u, in->urgency);
		u->in.need = keep(u, in->need);
		u->in.quality = keep(u, in->quality);
		u->in.intent = keep(u, in->intent);
		u->in.missing = keep(u, in->missing);
		u->in.reasoning = keep(u, in->reasoning);
		u->in.question = keep(u, in->question);
		u->in.extra_tag = keep(u, in->extra_tag);
		if (in->nlast > 0) {
			const char **lm = xcalloc(in->nlast, sizeof(char *)), **lb = xcalloc(in->nlast, sizeof(char *));
			bool *lo = xcalloc(in->nlast, sizeof(bool));
			for (i = 0; i < in->nlast; i++) {
				lm[i] = keep(u, in->last_messages[i]) ?: "";
				lo[i] = in->last_outbound != NULL && in->last_outbound[i];
				lb[i] = in->last_by != NULL ? keep(u, in->last_by[i]) : NULL;
			}
			u->in.last_messages = lm;
			u->in.last_outbound = lo;
			u->in.last_by = lb;
		} else {
			u->in.last_messages = NULL;
			u->in.last_outbound = NULL;
			u->in.last_by = NULL;
		}
		u->in.written = NULL;
	}
	u->written = in != NULL && json_is_object(in->written) ? json_deep_copy(in->written) : json_object();
	u->changes = json_array();
	u->kept = json_array();
	return u;
}

void
lead_upsert(struct lead_ctx *x, const struct lead_input *in, lead_done_fn done, void *arg)
{
	struct up *u = up_new(x, in, done, arg);

	if (lead_e164(x, u->in.phone, u->e164, &u->r.err) < 0) {
		up_finish(u);
		return;
	}
	step(u);
}

bool
lead_ctx_has_helpdesk(const struct lead_ctx *x)
{
	return x->helpdesk == 1;
}

static void
on_ticket(json_t *r, const struct odoo_error *e, void *arg)
{
	struct up *u = arg;

	if (e->kind == ODOO_OK && json_is_integer(r)) {
		u->x->helpdesk = 1;
		u->r.lead_id = (int)json_integer_value(r);
		u->r.created = true;
		up_finish(u);
		return;
	}
	if (e->kind == ODOO_TRANSIENT) {
		failed(u, e);
		return;
	}
	/* No Helpdesk app (or no rights on it): the customer's lead, tagged for support. */
	u->x->helpdesk = -1;
	u->in.extra_tag = keep(u, "Support");
	step(u);
}

void
lead_support(struct lead_ctx *x, const struct lead_input *in, lead_done_fn done, void *arg)
{
	struct up *u = up_new(x, in, done, arg);
	struct odoo_error none = {.kind = ODOO_CONFIG};
	char *desc, *name;

	if (lead_e164(x, u->in.phone, u->e164, &u->r.err) < 0) {
		up_finish(u);
		return;
	}
	if (x->helpdesk < 0) {
		on_ticket(NULL, &none, u);
		return;
	}
	desc = description(u, 0, false);
	xasprintf(&name, "WhatsApp: %s", u->in.contact_name != NULL ? u->in.contact_name : u->e164);
	odoo_call(x->o, "helpdesk.ticket", "create",
	    json_pack("[{s:s, s:s, s:s, s:s?, s:s?}]", "name", name, "description", desc, "partner_phone", u->e164,
	        "partner_name", u->in.contact_name, "partner_email", u->in.email),
	    NULL, on_ticket, u);
	free(desc);
	free(name);
}

void
lead_probe(struct lead_ctx *x, lead_done_fn done, void *arg)
{
	struct up *u = up_new(x, NULL, done, arg);

	x->probed = false;
	step(u);
}
