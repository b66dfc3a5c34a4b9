/* The business profile: loading, merging with Odoo's catalogue, and its uses. */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "common/xmalloc.h"
#include "profile.h"
#include "text.h"

#define MAX_INSTRUCTION_ITEMS 150 /* catalogue items named in the model's instruction */

static void
strv_free(char **v)
{
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

static size_t
strv_len(char *const *v)
{
	size_t n = 0;

	while (v != NULL && v[n] != NULL)
		n++;
	return n;
}

static void
strv_add(char ***v, const char *s)
{
	size_t n = strv_len(*v);

	*v = xreallocarray(*v, n + 2, sizeof(char *));
	(*v)[n] = xstrdup(s);
	(*v)[n + 1] = NULL;
}

/* "Bogotá, Chía ,Soacha" -> ["Bogotá", "Chía", "Soacha"]. */
static char **
split_list(const char *s)
{
	char **v = NULL, *copy = xstrdup(s), *save = NULL, *t;

	for (t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		char *e = t + strlen(t);
		while (isspace((unsigned char)*t))
			t++;
		while (e > t && isspace((unsigned char)e[-1]))
			*--e = '\0';
		if (*t != '\0')
			strv_add(&v, t);
	}
	free(copy);
	return v;
}

/* A JSON array of strings, or a comma-separated string, as a list. NULL if absent. */
static char **
json_list(json_t *v, const char *key, const char *file, char *err, size_t errlen, bool *bad)
{
	char **out = NULL;
	json_t *x;
	size_t i;

	if (v == NULL)
		return NULL;
	if (json_is_string(v))
		return split_list(json_string_value(v));
	if (!json_is_array(v)) {
		snprintf(err, errlen, "%s: \"%s\" must be a list of strings", file, key);
		*bad = true;
		return NULL;
	}
	json_array_foreach(v, i, x)
	{
		if (!json_is_string(x)) {
			snprintf(err, errlen, "%s: \"%s\" must be a list of strings", file, key);
			*bad = true;
			strv_free(out);
			return NULL;
		}
		strv_add(&out, json_string_value(x));
	}
	return out;
}

bool
profile_parse_hot(const char *s, unsigned *fields, bool *all)
{
	char *copy = xstrdup(s), *save = NULL, *w;
	bool ok = true, saw_and = false, saw_or = false;

	*fields = 0;
	for (w = strtok_r(copy, " ,", &save); w != NULL; w = strtok_r(NULL, " ,", &save)) {
		int f;
		if (strcmp(w, "and") == 0 || strcmp(w, "+") == 0) {
			saw_and = true;
			continue;
		}
		if (strcmp(w, "or") == 0 || strcmp(w, "|") == 0) {
			saw_or = true;
			continue;
		}
		if (strcmp(w, "budget") == 0)
			f = F_BUDGET;
		else if ((f = field_from_name(w)) < 0 || f == F_NAME || f == F_PRODUCT) {
			ok = false;
			break;
		}
		*fields |= 1u << f;
	}
	free(copy);
	*all = saw_and && !saw_or;
	return ok && *fields != 0 && !(saw_and && saw_or);
}

static void
item_free(struct profile_item *it)
{
	free(it->name);
	for (size_t k = 0; k < it->nsyn; k++)
		free(it->syn[k]);
	free(it->syn);
	free(it->category);
	free(it->source);
}

void
profile_set_items(struct profile *p, const char *source, json_t *items)
{
	size_t i, k = 0;
	json_t *x;

	/* Drop the source's previous items. */
	for (i = 0; i < p->nitems; i++) {
		if (strcmp(p->items[i].source, source) == 0)
			item_free(&p->items[i]);
		else
			p->items[k++] = p->items[i];
	}
	p->nitems = k;
	json_array_foreach(items, i, x)
	{
		struct profile_item it = {0};
		json_t *syn = json_object_get(x, "synonyms"), *s;
		size_t j;
		const char *name =
		    json_is_string(x) ? json_string_value(x) : json_string_value(json_object_get(x, "name"));
		const char *cat = json_string_value(json_object_get(x, "category"));

		if (name == NULL || *name == '\0')
			continue;
		it.name = xstrdup(name);
		it.category = cat != NULL && *cat != '\0' ? xstrdup(cat) : NULL;
		it.source = xstrdup(source);
		json_array_foreach(syn, j, s) if (json_is_string(s))
		{
			it.syn = xreallocarray(it.syn, it.nsyn + 1, sizeof(char *));
			it.syn[it.nsyn++] = xstrdup(json_string_value(s));
		}
		p->items = xreallocarray(p->items, p->nitems + 1, sizeof(*p->items));
		p->items[p->nitems++] = it;
	}
}

/* {"topic": "hours", "text": "…" | {"es": "…", "en": "…"}, "keywords": [...]} */
static int
load_fact(json_t *x, struct profile_fact *f, const char *file, char *err, size_t errlen)
{
	const char *topic = json_string_value(json_object_get(x, "topic"));
	json_t *text = json_object_get(x, "text"), *v;
	const char *lang;
	bool bad = false;

	if (topic == NULL || (!json_is_string(text) && !json_is_object(text))) {
		snprintf(err, errlen,
		    "%s: each fact needs \"topic\" (a word) and \"text\" (a string, or one per language)", file);
		return -1;
	}
	f->topic = xstrdup(topic);
	f->keywords = json_list(json_object_get(x, "keywords"), "keywords", file, err, errlen, &bad);
	if (bad)
		return -1;
	if (json_is_string(text)) {
		f->text[f->ntext++] = xstrdup(json_string_value(text));
		return 0;
	}
	json_object_foreach(text, lang, v)
	{
		if (strlen(lang) != 2 || !json_is_string(v) || f->ntext == LEX_MAX_LANGS) {
			snprintf(
			    err, errlen, "%s: fact \"%s\": \"text\" maps two-letter languages to strings", file, topic);
			return -1;
		}
		memcpy(f->lang[f->ntext], lang, 3);
		f->text[f->ntext++] = xstrdup(json_string_value(v));
	}
	return 0;
}

/* The file's fields into p. */

static int
load_file(struct profile *p, const char *path, char *err, size_t errlen)
{
	json_error_t je;
	json_t *doc = json_load_file(path, 0, &je), *facts, *x;
	bool bad = false;
	size_t i;
	static const struct {
		const char *key;
		size_t off;
	} strs[] = {{"name", offsetof(struct profile, name)}, {"description", offsetof(struct profile, description)},
	    {"country", offsetof(struct profile, country)}, {"currency", offsetof(struct profile, currency)},
	    {"hot_needs", offsetof(struct profile, hot_needs)}};

	if (doc == NULL) {
		snprintf(err, errlen, "business.profile: %s:%d: %s", path, je.line, je.text);
		return -1;
	}
	if (!json_is_object(doc)) {
		snprintf(err, errlen, "business.profile: %s: must hold a JSON object", path);
		json_decref(doc);
		return -1;
	}
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		json_t *v = json_object_get(doc, strs[i].key);
		if (v != NULL && !json_is_string(v)) {
			snprintf(err, errlen, "business.profile: %s: \"%s\" must be a string", path, strs[i].key);
			json_decref(doc);
			return -1;
		}
		if (v != NULL)
			*(char **)((char *)p + strs[i].off) = xstrdup(json_string_value(v));
	}
	if ((p->country != NULL && !is_upper_code(p->country, 2)) ||
	    (p->currency != NULL && !is_upper_code(p->currency, 3))) {
		snprintf(err, errlen,
		    "business.profile: %s: \"country\" is two capital letters (ISO 3166: CO) and \"currency\" three "
		    "(ISO 4217: COP)",
		    path);
		json_decref(doc);
		return -1;
	}
	p->cities = json_list(json_object_get(doc, "cities"), "cities", path, err, errlen, &bad);
	if (!bad)
		p->languages = json_list(json_object_get(doc, "languages"), "languages", path, err, errlen, &bad);
	if (!bad && (x = json_object_get(doc, "catalogue")) != NULL) {
		if (!json_is_array(x)) {
			snprintf(err, errlen, "business.profile: %s: \"catalogue\" must be a list of products", path);
			bad = true;
		} else {
			profile_set_items(p, "config", x);
		}
	}
	facts = json_object_get(doc, "facts");
	if (!bad && facts != NULL && !json_is_array(facts)) {
		snprintf(err, errlen, "business.profile: %s: \"facts\" must be a list", path);
		bad = true;
	}
	json_array_foreach(facts, i, x)
	{
		if (bad)
			break;
		p->facts = xreallocarray(p->facts, p->nfacts + 1, sizeof(*p->facts));
		memset(&p->facts[p->nfacts], 0, sizeof(p->facts[0]));
		if (load_fact(x, &p->facts[p->nfacts++], path, err, errlen) < 0)
			bad = true;
	}
	json_decref(doc);
	return bad ? -1 : 0;
}

/* Replaces *dst with a copy of s when s is set. */
static void
set_str(char **dst, const char *s)
{
	if (s != NULL) {
		free(*dst);
		*dst = xstrdup(s);
	}
}

struct profile *
profile_load(const struct profile_settings *s, char *err, size_t errlen)
{
	struct profile *p = xcalloc(1, sizeof(*p));

	if (s->file != NULL && load_file(p, s->file, err, errlen) < 0) {
		profile_free(p);
		return NULL;
	}
	p->file = s->file != NULL ? xstrdup(s->file) : NULL;
	set_str(&p->name, s->name);
	set_str(&p->description, s->description);
	set_str(&p->country, s->country);
	set_str(&p->currency, s->currency);
	set_str(&p->hot_needs, s->hot_needs);
	if (s->cities != NULL) {
		strv_free(p->cities);
		p->cities = split_list(s->cities);
	}
	if (s->languages != NULL) {
		strv_free(p->languages);
		p->languages = split_list(s->languages);
	}
	for (size_t i = 0; p->languages != NULL && p->languages[i] != NULL; i++)
		if (strlen(p->languages[i]) != 2) {
			snprintf(err, errlen,
			    "business.languages: \"%s\" is not a two-letter language code (es, en, pt, ...)",
			    p->languages[i]);
			profile_free(p);
			return NULL;
		}
	p->hot_fields = (1u << F_BUDGET) | (1u << F_URGENCY);
	p->hot_all = false;
	if (p->hot_needs != NULL && !profile_parse_hot(p->hot_needs, &p->hot_fields, &p->hot_all)) {
		snprintf(err, errlen,
		    "business.hot_needs: \"%s\": say which of budget, urgency, city, email, phone a hot lead needs, "
		    "joined by \"or\" or by \"and\" (e.g. \"budget or urgency\")",
		    p->hot_needs);
		profile_free(p);
		return NULL;
	}
	return p;
}

void
profile_free(struct profile *p)
{
	if (p == NULL)
		return;
	free(p->name);
	free(p->description);
	free(p->country);
	free(p->currency);
	free(p->hot_needs);
	free(p->file);
	strv_free(p->cities);
	strv_free(p->languages);
	for (size_t i = 0; i < p->nitems; i++)
		item_free(&p->items[i]);
	free(p->items);
	for (size_t i = 0; i < p->nfacts; i++) {
		free(p->facts[i].topic);
		strv_free(p->facts[i].keywords);
		for (size_t k = 0; k < p->facts[i].ntext; k++)
			free(p->facts[i].text[k]);
	}
	free(p->facts);
	free(p);
}

bool
profile_empty(const struct profile *p)
{
	return p == NULL ||
	    (p->name == NULL && p->description == NULL && p->country == NULL && p->currency == NULL &&
	        p->hot_needs == NULL && p->cities == NULL && p->languages == NULL && p->nitems == 0 && p->nfacts == 0);
}

void
profile_apply_items(const struct profile *p, struct lexicon *lx, const char *source)
{
	for (size_t i = 0; p != NULL && i < p->nitems; i++) {
		const struct profile_item *it = &p->items[i];
		if (source != NULL && strcmp(it->source, source) != 0)
			continue;
		lexicon_add(lx, LEX_PRODUCTS, it->name, (const char *const *)it->syn, it->nsyn);
		/* A category alone ("Sofás") is a vague interest, as "muebles" is (added once). */
		if (it->category != NULL)
			lexicon_add(lx, LEX_GENERIC, it->category, NULL, 0);
	}
}

void
profile_apply(const struct profile *p, struct lexicon *lx)
{
	size_t i;

	if (profile_empty(p))
		return;
	profile_apply_items(p, lx, NULL);
	for (i = 0; p->cities != NULL && p->cities[i] != NULL; i++)
		lexicon_add(lx, LEX_CITIES, p->cities[i], NULL, 0);
	if (p->currency != NULL)
		lexicon_add(lx, LEX_UNITS, p->currency, NULL, 0);
	/* The first language the business speaks is the default, if the lexicon has its questions. */
	if (p->languages != NULL && p->languages[0] != NULL &&
	    lexicon_question(lx, p->languages[0], QK_ASK_INTEREST, 0) != NULL) {
		for (size_t k = 0; k < lx->nquestions; k++)
			if (strcmp(lx->questions[k].lang, p->languages[0]) == 0)
				memcpy(lx->default_lang, p->languages[0], 3);
	}
}

/* Appends "label: value" to *out when value is set. */
static void
add_line(char **out, const char *label, const char *value)
{
	char *n;

	if (value == NULL || *value == '\0')
		return;
	xasprintf(&n, "%s\n%s: %s", *out, label, value);
	free(*out);
	*out = n;
}

static char *
join(char *const *v, size_t max, const char *sep)
{
	char *out = xstrdup(""), *n;

	for (size_t i = 0; v != NULL && v[i] != NULL && i < max; i++) {
		xasprintf(&n, "%s%s%s", out, i > 0 ? sep : "", v[i]);
		free(out);
		out = n;
	}
	return out;
}

/* What a hot lead needs besides contact and a specific product: "budget or urgency". Caller frees. */
static char *
hot_text(const struct profile *p)
{
	char *s = xstrdup(""), *n;

	for (unsigned f = 0; f < F_COUNT; f++)
		if (p->hot_fields & (1u << f)) {
			xasprintf(&n, "%s%s%s", s, *s != '\0' ? (p->hot_all ? " and " : " or ") : "",
			    f == F_BUDGET ? "budget" : field_name((enum field)f));
			free(s);
			s = n;
		}
	return s;
}

char *
profile_instruction(const struct profile *p)
{
	char *out, *s, **names = NULL;

	if (profile_empty(p))
		return NULL;
	out = xstrdup("The business you answer for (its own profile, not the customer's words):");
	add_line(&out, "Name", p->name);
	add_line(&out, "What it is and sells", p->description);
	add_line(&out, "Country", p->country);
	add_line(&out, "Currency", p->currency);
	add_line(&out, "Cities it serves", s = join(p->cities, 100, ", "));
	free(s);
	add_line(&out, "Languages", s = join(p->languages, 10, ", "));
	free(s);
	for (size_t i = 0; i < p->nitems && i < MAX_INSTRUCTION_ITEMS; i++) {
		char *e;
		if (p->items[i].category != NULL)
			xasprintf(&e, "%s (%s)", p->items[i].name, p->items[i].category);
		else
			e = xstrdup(p->items[i].name);
		strv_add(&names, e);
		free(e);
	}
	add_line(&out, "Catalogue", s = join(names, MAX_INSTRUCTION_ITEMS, "; "));
	free(s);
	strv_free(names);
	for (size_t i = 0; i < p->nfacts; i++) {
		char *label;
		xasprintf(&label, "Fact you may state (%s)", p->facts[i].topic);
		for (size_t k = 0; k < p->facts[i].ntext; k++)
			add_line(&out, label, p->facts[i].text[k]);
		free(label);
	}
	if (p->nfacts > 0)
		add_line(&out, "Facts",
		    "answer a question from these facts only; never state a price, stock, date or "
		    "policy that is not here: say an advisor will answer it");
	s = hot_text(p);
	{
		char *hot;
		xasprintf(&hot, "contact + a specific product or service + %s", s);
		add_line(&out, "A hot lead for this business", hot);
		free(hot);
	}
	free(s);
	return out;
}

static json_t *
strv_json(char *const *v)
{
	json_t *a = json_array();

	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

json_t *
profile_to_json(const struct profile *p)
{
	json_t *j = json_object(), *items = json_array(), *facts = json_array();

	json_object_set_new(j, "configured", json_boolean(!profile_empty(p)));
	if (p == NULL)
		return j;
	json_object_set_new(j, "file", p->file != NULL ? json_string(p->file) : json_null());
	/* Unset: null. */
	json_object_set_new(j, "name", p->name != NULL ? json_string(p->name) : json_null());
	json_object_set_new(j, "description", p->description != NULL ? json_string(p->description) : json_null());
	json_object_set_new(j, "country", p->country != NULL ? json_string(p->country) : json_null());
	json_object_set_new(j, "currency", p->currency != NULL ? json_string(p->currency) : json_null());
	json_object_set_new(j, "cities", strv_json(p->cities));
	json_object_set_new(j, "languages", strv_json(p->languages));
	for (size_t i = 0; i < p->nitems; i++) {
		json_t *it = json_pack("{s:s, s:o, s:s}", "name", p->items[i].name, "synonyms", json_array(), "source",
		    p->items[i].source);
		for (size_t k = 0; k < p->items[i].nsyn; k++)
			json_array_append_new(json_object_get(it, "synonyms"), json_string(p->items[i].syn[k]));
		if (p->items[i].category != NULL)
			json_object_set_new(it, "category", json_string(p->items[i].category));
		json_array_append_new(items, it);
	}
	json_object_set_new(j, "catalogue", items);
	for (size_t i = 0; i < p->nfacts; i++) {
		json_t *t = json_object(), *f;
		for (size_t k = 0; k < p->facts[i].ntext; k++)
			json_object_set_new(t, p->facts[i].lang[k][0] != '\0' ? p->facts[i].lang[k] : "any",
			    json_string(p->facts[i].text[k]));
		f = json_pack("{s:s, s:o, s:o}", "topic", p->facts[i].topic, "keywords",
		    strv_json(p->facts[i].keywords), "text", t);
		json_array_append_new(facts, f);
	}
	json_object_set_new(j, "facts", facts);
	{
		char *hot = hot_text(p);
		json_object_set_new(j, "hot_needs", json_string(hot));
		free(hot);
	}
	return j;
}

/* Whether folded text has one of the words (as written; folded here). */
static bool
has_word(const char *folded, char *const *words)
{
	for (size_t i = 0; words != NULL && words[i] != NULL; i++) {
		char *w = text_fold_str(words[i]);
		bool hit = *w != '\0' && text_find(folded, 0, w) >= 0;
		free(w);
		if (hit)
			return true;
	}
	return false;
}

/* Whether fact f is about what the folded sentence asks: its own keywords, or its topic's words in the lexicon. */
static bool
fact_asked(const struct profile_fact *f, const struct lexicon *lx, const char *sentence)
{
	if (has_word(sentence, f->keywords))
		return true;
	for (size_t k = 0; k < lx->fact_topics.n; k++)
		if (strcmp(lx->fact_topics.c[k].name, f->topic) == 0)
			for (size_t w = 0; w < lx->fact_topics.c[k].syn.n; w++)
				if (text_find(sentence, 0, lx->fact_topics.c[k].syn.p[w]) >= 0)
					return true;
	return false;
}

/* The fact's text in lang, else its text for any language, else its only one; NULL if none fits. */
static const char *
fact_text(const struct profile_fact *f, const char *lang)
{
	for (size_t k = 0; k < f->ntext; k++)
		if (strcmp(f->lang[k], lang) == 0)
			return f->text[k];
	for (size_t k = 0; k < f->ntext; k++)
		if (f->lang[k][0] == '\0' || f->ntext == 1)
			return f->text[k];
	return NULL;
}

char *
profile_answer(const struct profile *p, const struct lexicon *lx, const char *text, const char *lang, bool *all)
{
	char *copy, *sent, *out = NULL, *n;
	bool used[64] = {false};
	size_t questions = 0, answered = 0;

	*all = false;
	if (profile_empty(p) || p->nfacts == 0 || text == NULL)
		return NULL;
	/* Question by question ("¿Abren el domingo? Y ¿hacen envíos?"): a fact answers the sentence that asks it. */
	copy = xstrdup(text);
	for (sent = copy; *sent != '\0';) {
		size_t len = strcspn(sent, "?.!\n");
		char end = sent[len], *s;
		bool hit = false;

		sent[len] = '\0';
		if (end == '?' || strstr(sent, "\u00bf") != NULL) {
			questions++;
			s = text_fold_str(sent);
			for (size_t i = 0; i < p->nfacts && i < sizeof(used) / sizeof(used[0]); i++) {
				const char *t;
				if (!fact_asked(&p->facts[i], lx, s) || (t = fact_text(&p->facts[i], lang)) == NULL)
					continue;
				hit = true;
				if (used[i])
					continue;
				used[i] = true;
				xasprintf(&n, "%s%s%s", out != NULL ? out : "", out != NULL ? " " : "", t);
				free(out);
				out = n;
			}
			answered += hit;
			free(s);
		}
		sent += len + (end != '\0');
	}
	free(copy);
	*all = out != NULL && answered == questions;
	return out;
}
