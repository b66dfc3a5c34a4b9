/*
 * Around the lead upsert: the five custom x_ fields on crm.lead (created by
 * crmbridgectl odoo-setup) and the lead statistics the analytics show.
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

/* ---- set-up of the custom fields ---- */

struct setup {
	struct lead_ctx *x;
	lead_setup_fn done;
	void *arg;
	int model_id;
	json_t *created, *present;
	int i;
	bool relabel; /* x_source still has the label "Source", the same as Odoo's own UTM source_id */
};

/* x_source's label; "Source" was the first one, which Odoo warns is the same as source_id's. */
#define X_SOURCE_LABEL "Lead source (crmbridge)"

static void setup_next(struct setup *s);
static void on_relabel_found(json_t *r, const struct odoo_error *e, void *arg);

static void
setup_end(struct setup *s, const struct odoo_error *e)
{
	s->done(e, s->created, s->present, s->arg);
	json_decref(s->created);
	json_decref(s->present);
	free(s);
}

static void
on_field_created(json_t *r, const struct odoo_error *e, void *arg)
{
	struct setup *s = arg;

	if (e->kind != ODOO_OK) {
		setup_end(s, e);
		return;
	}
	json_array_append_new(s->created, json_string(lead_x_names[s->i]));
	s->i++;
	setup_next(s);
}

static void
setup_next(struct setup *s)
{
	static const char *const ttype[] = {"char", "char", "char", "float", "selection"};
	static const char *const label[] = {
	    X_SOURCE_LABEL, "Product interest", "Budget range", "AI confidence", "Quality score"};
	struct odoo_error ok = {.kind = ODOO_OK};

	for (; s->i < NX; s->i++) {
		bool have = false;
		size_t k;
		json_t *v;
		json_array_foreach(s->present, k, v) have |= strcmp(json_string_value(v), lead_x_names[s->i]) == 0;
		if (have)
			continue;
		json_t *vals = json_pack("{s:i, s:s, s:s, s:s, s:s}", "model_id", s->model_id, "name",
		    lead_x_names[s->i], "ttype", ttype[s->i], "field_description", label[s->i], "state", "manual");
		if (strcmp(ttype[s->i], "selection") == 0)
			json_object_set_new(vals, "selection_ids",
			    json_pack("[[i,i,{s:s,s:s,s:i}], [i,i,{s:s,s:s,s:i}], [i,i,{s:s,s:s,s:i}]]", 0, 0, "value",
			        "hot", "name", "Hot", "sequence", 1, 0, 0, "value", "warm", "name", "Warm", "sequence",
			        2, 0, 0, "value", "cold", "name", "Cold", "sequence", 3));
		odoo_call(s->x->o, "ir.model.fields", "create", json_pack("[o]", vals), NULL, on_field_created, s);
		return;
	}
	if (s->relabel) {
		s->relabel = false;
		odoo_call(s->x->o, "ir.model.fields", "search_read",
		    json_pack("[[[s, s, s], [s, s, s]]]", "model", "=", "crm.lead", "name", "=", "x_source"),
		    json_pack("{s:[s]}", "fields", "id"), on_relabel_found, s);
		return;
	}
	s->x->probed = false; /* the next upsert sees the new fields */
	setup_end(s, &ok);
}

static void
on_relabelled(json_t *r, const struct odoo_error *e, void *arg)
{
	struct setup *s = arg;

	if (e->kind != ODOO_OK) {
		setup_end(s, e);
		return;
	}
	setup_next(s);
}

static void
on_relabel_found(json_t *r, const struct odoo_error *e, void *arg)
{
	struct setup *s = arg;
	json_t *f = json_array_get(r, 0);

	if (e->kind != ODOO_OK || f == NULL) {
		setup_next(s); /* nothing to relabel after all */
		return;
	}
	odoo_call(s->x->o, "ir.model.fields", "write",
	    json_pack(
	        "[[I], {s:s}]", json_integer_value(json_object_get(f, "id")), "field_description", X_SOURCE_LABEL),
	    NULL, on_relabelled, s);
}

static void
on_fields(json_t *r, const struct odoo_error *e, void *arg)
{
	struct setup *s = arg;
	int i;

	if (e->kind != ODOO_OK) {
		setup_end(s, e);
		return;
	}
	for (i = 0; i < NX; i++)
		if (json_object_get(r, lead_x_names[i]) != NULL)
			json_array_append_new(s->present, json_string(lead_x_names[i]));
	s->relabel =
	    strcmp(json_string_value(json_object_get(json_object_get(r, "x_source"), "string")) ?: "", "Source") == 0;
	setup_next(s);
}

static void
on_model(json_t *r, const struct odoo_error *e, void *arg)
{
	struct setup *s = arg;
	json_t *names = json_array();
	int i;

	if (e->kind != ODOO_OK || json_array_size(r) == 0) {
		struct odoo_error err = *e;
		if (e->kind == ODOO_OK) {
			err.kind = ODOO_CONFIG;
			snprintf(
			    err.message, sizeof(err.message), "the model crm.lead does not exist (is CRM installed?)");
		}
		json_decref(names);
		setup_end(s, &err);
		return;
	}
	s->model_id = (int)json_integer_value(json_array_get(r, 0));
	for (i = 0; i < NX; i++)
		json_array_append_new(names, json_string(lead_x_names[i]));
	odoo_call(s->x->o, "crm.lead", "fields_get", json_pack("[o]", names),
	    json_pack("{s:[s, s]}", "attributes", "type", "string"), on_fields, s);
}

void
lead_setup_fields(struct lead_ctx *x, lead_setup_fn done, void *arg)
{
	struct setup *s = xcalloc(1, sizeof(*s));

	s->x = x;
	s->done = done;
	s->arg = arg;
	s->created = json_array();
	s->present = json_array();
	odoo_call(x->o, "ir.model", "search", json_pack("[[[s, s, s]]]", "model", "=", "crm.lead"), NULL, on_model, s);
}

/* ---- statistics ---- */

struct stats {
	struct lead_ctx *x;
	lead_stats_fn done;
	void *arg;
	json_t *out;
	unsigned days;
};

static void
stats_end(struct stats *st, const struct odoo_error *e)
{
	st->done(e, e->kind == ODOO_OK ? st->out : NULL, st->arg);
	json_decref(st->out);
	free(st);
}

static void
on_days(json_t *r, const struct odoo_error *e, void *arg)
{
	struct stats *st = arg;
	json_t *by_day = json_object(), *rec;
	size_t i;

	if (e->kind != ODOO_OK) {
		json_decref(by_day);
		stats_end(st, e);
		return;
	}
	json_array_foreach(r, i, rec)
	{
		const char *d = json_string_value(json_object_get(rec, "create_date"));
		char day[11];
		if (d == NULL || strlen(d) < 10)
			continue;
		snprintf(day, sizeof(day), "%.10s", d);
		json_object_set_new(by_day, day, json_integer(json_integer_value(json_object_get(by_day, day)) + 1));
	}
	json_object_set_new(st->out, "by_day", by_day);
	json_object_set_new(st->out, "total_recent", json_integer((json_int_t)json_array_size(r)));
	stats_end(st, e);
}

static void
on_groups(json_t *r, const struct odoo_error *e, void *arg)
{
	struct stats *st = arg;
	json_t *byq = json_object(), *row;
	size_t i;
	char since[32];
	time_t t = time(NULL) - (time_t)st->days * 86400;
	struct tm tm;

	if (e->kind != ODOO_OK) {
		json_decref(byq);
		stats_end(st, e);
		return;
	}
	json_array_foreach(r, i, row)
	{
		const char *q = json_string_value(json_object_get(row, "x_quality_score"));
		json_object_set_new(
		    byq, q != NULL ? q : "unset", json_integer(json_integer_value(json_object_get(row, "__count"))));
	}
	json_object_set_new(st->out, "by_quality", byq);
	gmtime_r(&t, &tm);
	strftime(since, sizeof(since), "%Y-%m-%d %H:%M:%S", &tm);
	/* Without the x_ fields, crmbridge's leads are the ones of the UTM source it sets. */
	odoo_call(st->x->o, "crm.lead", "search_read",
	    st->x->has_x
	        ? json_pack("[[[s, s, s], [s, s, s]]]", "x_source", "=", st->x->source, "create_date", ">=", since)
	        : json_pack(
	              "[[[s, s, s], [s, s, s]]]", "source_id.name", "=", st->x->source, "create_date", ">=", since),
	    json_pack("{s:[s], s:i}", "fields", "create_date", "limit", 10000), on_days, st);
}

static void
stats_start(const struct lead_result *r, void *arg)
{
	struct stats *st = arg;
	struct lead_ctx *x = st->x;
	struct odoo_info info;

	if (r != NULL && r->err.kind != ODOO_OK) {
		stats_end(st, &r->err);
		return;
	}
	if (!x->has_x) {
		/* No x_quality_score to group by (and no "Invalid field" at every refresh): by day only. */
		struct odoo_error ok = {.kind = ODOO_OK};
		json_t *none = json_array();
		on_groups(none, &ok, st);
		json_decref(none);
		return;
	}
	odoo_get_info(x->o, &info);
	if (info.major >= 19) /* read_group is deprecated there and logs a warning at every call */
		odoo_call(x->o, "crm.lead", "formatted_read_group",
		    json_pack("[[[s, s, s]], [s], [s]]", "x_source", "=", x->source, "x_quality_score", "__count"),
		    NULL, on_groups, st);
	else
		odoo_call(x->o, "crm.lead", "read_group",
		    json_pack(
		        "[[[s, s, s]], [s], [s]]", "x_source", "=", x->source, "x_quality_score", "x_quality_score"),
		    json_pack("{s:b}", "lazy", 0), on_groups, st);
}

void
lead_stats(struct lead_ctx *x, unsigned days, lead_stats_fn done, void *arg)
{
	struct stats *st = xcalloc(1, sizeof(*st));

	st->x = x;
	st->done = done;
	st->arg = arg;
	st->days = days;
	st->out = json_object();
	if (!x->probed) {
		lead_probe(x, stats_start, st);
		return;
	}
	stats_start(NULL, st);
}
