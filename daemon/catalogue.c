/*
 * The business profile's catalogue from Odoo (business.catalogue_from_odoo = yes): the products that can be
 * sold (product.template with sale_ok; archived ones are left out by Odoo itself) with their categories, read
 * once Odoo has answered its probe and then every business.catalogue_refresh. They join the profile's own
 * catalogue: the lexicon is rebuilt with them and the model's instruction names them. Without the product module
 * (Odoo's Sales or Inventory app) there is no product.template: that is logged, shown by GET /api/profile and
 * crmbridgectl profile, and the profile's own catalogue stays.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifier/classifier.h"
#include "classifier/profile.h"
#include "common/log.h"
#include "common/util.h"
#include "daemon/daemon.h"

#define CATALOGUE_LIMIT 1000 /* products read; a shop with more names its own in business.profile */

/*
 * "All / Saleable / Sofás" -> "Sofás"; NULL for the categories every database starts with (17: All, Saleable,
 * Expenses; 19: Goods, Expenses, Services; recorded), which say nothing about what the business sells.
 */
static const char *
category_of(const char *s)
{
	static const char *const stock[] = {"All", "Saleable", "Expenses", "Goods", "Services", "Todos", "Vendible",
	    "Gastos", "Bienes", "Servicios", "Tudo", "Vendável", "Despesas", "Bens", "Serviços"};
	const char *p = strrchr(s, '/');

	if (p != NULL) {
		p++;
		while (*p == ' ')
			p++;
	} else {
		p = s;
	}
	for (size_t i = 0; i < sizeof(stock) / sizeof(stock[0]); i++)
		if (strcmp(p, stock[i]) == 0)
			return NULL;
	return *p != '\0' ? p : NULL;
}

/* Teaches a new lexicon the profile (with Odoo's items) and swaps it in. */
static void
relearn(struct daemon *d)
{
	char err[256];
	struct lexicon *lx = lexicon_load(d->conf->classifier_lexicon, err, sizeof(err));

	if (lx == NULL) {
		log_error("business: the catalogue from Odoo is not used: classifier.lexicon: %s", err);
		return;
	}
	profile_apply(d->profile, lx);
	classifier_set_lexicon(d->classifier, lx);
	classifier_set_profile(d->classifier, d->profile);
	lexicon_free(d->lexicon);
	d->lexicon = lx;
}

static void
on_products(json_t *result, const struct odoo_error *e, void *arg)
{
	struct daemon *d = arg;
	json_t *items, *v;
	size_t i;

	d->catalogue.busy = false;
	if (e->kind == ODOO_TRANSIENT && strstr(e->message, "shutting down") != NULL)
		return; /* a reload or the stop ended the call: nothing was read, nothing failed */
	d->catalogue.at_ms = realtime_usec() / 1000;
	if (e->kind != ODOO_OK) {
		snprintf(d->catalogue.error, sizeof(d->catalogue.error), "%s error: %s", odoo_kind_name(e->kind),
		    e->message);
		log_warnx(
		    "business.catalogue_from_odoo: Odoo did not list the products that can be sold "
		    "(product.template: %s); install Odoo's Sales or Inventory app (the product module), give "
		    "crmbridge's Odoo user read access to products, or set business.catalogue_from_odoo = no; the "
		    "profile's own catalogue stays",
		    d->catalogue.error);
		return;
	}
	if (d->profile == NULL || d->classifier == NULL)
		return;
	d->catalogue.error[0] = '\0';
	items = json_array();
	json_array_foreach(result, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "name"));
		json_t *categ = json_object_get(v, "categ_id");
		const char *cat = json_string_value(json_array_get(categ, 1));
		if (cat != NULL)
			cat = category_of(cat);
		if (name == NULL || *name == '\0')
			continue;
		json_array_append_new(items,
		    cat != NULL ? json_pack("{s:s, s:s}", "name", name, "category", cat)
		                : json_pack("{s:s}", "name", name));
	}
	d->catalogue.items = json_array_size(items);
	profile_set_items(d->profile, "odoo", items);
	json_decref(items);
	relearn(d);
	log_info("business: %zu product%s that can be sold read from Odoo into the catalogue", d->catalogue.items,
	    d->catalogue.items == 1 ? "" : "s");
}

void
daemon_catalogue_fetch(struct daemon *d)
{
	if (!d->conf->business_catalogue_from_odoo || d->odoo == NULL || d->catalogue.busy)
		return;
	d->catalogue.busy = true;
	odoo_call(d->odoo, "product.template", "search_read", json_pack("[[[s, s, b]]]", "sale_ok", "=", 1),
	    json_pack("{s:[s, s], s:i, s:s}", "fields", "name", "categ_id", "limit", CATALOGUE_LIMIT, "order", "id"),
	    on_products, d);
}

static int
on_refresh(sd_event_source *es, uint64_t usec, void *arg)
{
	struct daemon *d = arg;

	(void)usec;
	daemon_catalogue_fetch(d);
	sd_event_source_set_time(es, now_usec() + d->conf->business_catalogue_refresh_ms * 1000);
	return 0;
}

void
daemon_catalogue_start(struct daemon *d)
{
	if (d->catalogue.timer == NULL &&
	    sd_event_add_time(d->event, &d->catalogue.timer, CLOCK_MONOTONIC,
	        now_usec() + d->conf->business_catalogue_refresh_ms * 1000, 1000000, on_refresh, d) < 0)
		log_error("business: cannot schedule the catalogue's refresh from Odoo");
}

void
daemon_catalogue_stop(struct daemon *d)
{
	d->catalogue.timer = sd_event_source_disable_unref(d->catalogue.timer);
}

void
daemon_catalogue_carry(const struct conf *c, const struct profile *old, struct profile *to, struct lexicon *lx)
{
	json_t *items = json_array();

	for (size_t i = 0; old != NULL && i < old->nitems; i++)
		if (strcmp(old->items[i].source, "odoo") == 0)
			json_array_append_new(items,
			    old->items[i].category != NULL ? json_pack("{s:s, s:s}", "name", old->items[i].name,
			                                         "category", old->items[i].category)
			                                   : json_pack("{s:s}", "name", old->items[i].name));
	if (json_array_size(items) > 0 && c->business_catalogue_from_odoo) {
		profile_set_items(to, "odoo", items);
		profile_apply_items(to, lx, "odoo");
	}
	json_decref(items);
}

json_t *
daemon_catalogue_json(const struct daemon *d)
{
	if (!d->conf->business_catalogue_from_odoo)
		return json_pack("{s:b}", "enabled", 0);
	return json_pack("{s:b, s:I, s:o, s:s?}", "enabled", 1, "items", (json_int_t)d->catalogue.items, "read_at_ms",
	    d->catalogue.at_ms > 0 ? json_integer((json_int_t)d->catalogue.at_ms) : json_null(), "error",
	    d->catalogue.error[0] != '\0' ? d->catalogue.error : NULL);
}
