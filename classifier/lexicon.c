/*
 * Lexicon loading: JSON (jansson) into folded phrase lists. Longer synonyms
 * are tried first, so "sofa cama" wins over "sofa" and "mesa de centro" over
 * "mesa".
 */
#include "config.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "lexicon.h"
#include "shape.h"
#include "text.h"

static const char *const qkey_names[QK_COUNT] = {"ask_interest", "ask_name", "ask_budget", "ask_city", "ask_email",
    "clarify", "support", "human", "lead_created", "lead_created_noname", "opt_out_confirm", "opt_in_confirm",
    "followup", "booking", "payment", "media_unreadable", "after_lead_question", "after_lead_update",
    "after_lead_thanks"};

static int
cmp_len_desc(const void *a, const void *b)
{
	size_t x = strlen(*(char *const *)a), y = strlen(*(char *const *)b);

	return x < y ? 1 : x > y ? -1 : 0;
}

static int
load_phrases(json_t *arr, struct phrases *ph, const char *what, char *err, size_t errlen)
{
	json_t *v;
	size_t i;

	if (arr == NULL)
		return 0;
	if (!json_is_array(arr)) {
		snprintf(err, errlen, "\"%s\" must be an array of strings", what);
		return -1;
	}
	ph->p = xcalloc(json_array_size(arr) + 1, sizeof(char *));
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v)) {
			snprintf(err, errlen, "\"%s\" must be an array of strings", what);
			return -1;
		}
		if (*json_string_value(v) != '\0') /* an empty phrase would match everywhere */
			ph->p[ph->n++] = text_fold_str(json_string_value(v));
	}
	qsort(ph->p, ph->n, sizeof(char *), cmp_len_desc);
	return 0;
}

static void
free_phrases(struct phrases *ph)
{
	size_t i;

	for (i = 0; i < ph->n; i++)
		free(ph->p[i]);
	free(ph->p);
	ph->p = NULL;
	ph->n = 0;
}

/* Adds plural forms of the first and of the last word ("sillas de oficina", "armchairs"). */
static void
add_plurals(json_t *all)
{
	size_t i, n = json_array_size(all);

	for (i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(all, i));
		const char *sp;

		if (s == NULL)
			continue; /* not a string: load_phrases refuses it with a reason */
		sp = strchr(s, ' ');
		size_t fl = sp != NULL ? (size_t)(sp - s) : strlen(s);
		char buf[256];

		if (strlen(s) + 3 >= sizeof(buf) || fl == 0)
			continue;
		/* Last word: +s, and +es after a consonant (Spanish "colchones", English "armchairs"). */
		snprintf(buf, sizeof(buf), "%ss", s);
		json_array_append_new(all, json_string(buf));
		if (strchr("aeiou", s[strlen(s) - 1]) == NULL) {
			snprintf(buf, sizeof(buf), "%ses", s);
			json_array_append_new(all, json_string(buf));
		}
		if (sp != NULL) {
			snprintf(buf, sizeof(buf), "%.*s%s%s", (int)fl, s, strchr("aeiou", s[fl - 1]) ? "s" : "es", sp);
			json_array_append_new(all, json_string(buf));
		}
	}
}

/* One canonical entry: its name and synonyms (the name too, but for support reasons; plurals for products). */
static int
canon_entry(struct canon *c, const char *key, json_t *v, const char *what, char *err, size_t errlen)
{
	json_t *all = json_array();
	int r;

	c->name = xstrdup(key);
	/* A support reason's name ("delivery") is a label, not a complaint: "delivery next month" buys. */
	if (strcmp(what, "support") != 0 && strcmp(what, "fact_topics") != 0)
		json_array_append_new(all, json_string(key));
	if (json_is_array(v))
		json_array_extend(all, v);
	if (strcmp(what, "products") == 0)
		add_plurals(all);
	r = load_phrases(all, &c->syn, what, err, errlen);
	json_decref(all);
	return r;
}

/* {"Canonical": ["synonym", ...]}; the canonical name is a synonym too (a product's or a city's). */
static int
load_canon(json_t *obj, struct canon_list *cl, const char *what, char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	if (obj == NULL)
		return 0;
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "\"%s\" must be an object of arrays", what);
		return -1;
	}
	cl->c = xcalloc(json_object_size(obj) + 1, sizeof(struct canon));
	json_object_foreach(obj, key, v)
	{
		if (canon_entry(&cl->c[cl->n++], key, v, what, err, errlen) < 0)
			return -1;
	}
	return 0;
}

void
lexicon_add(struct lexicon *lx, enum lexicon_list which, const char *name, const char *const *syn, size_t n)
{
	/* A category is a product too (a vague one, by generic_products); a city goes to the gazetteer. */
	struct canon_list *cl = which == LEX_CITIES ? &lx->cities : &lx->products;
	char *folded = text_fold_str(name);
	json_t *v;
	char err[128];

	if (*folded == '\0' ||
	    (which != LEX_PRODUCTS && which != LEX_CITIES &&
	        shape_in_list(folded, which == LEX_UNITS ? &lx->amount_units : &lx->generic_products))) {
		free(folded); /* nothing, or already there */
		return;
	}
	if (which == LEX_GENERIC || which == LEX_UNITS) {
		struct phrases *ph = which == LEX_UNITS ? &lx->amount_units : &lx->generic_products;
		ph->p = xreallocarray(ph->p, ph->n + 1, sizeof(char *));
		ph->p[ph->n++] = folded;
		qsort(ph->p, ph->n, sizeof(char *), cmp_len_desc);
		if (which == LEX_UNITS)
			return;
	} else {
		free(folded);
	}
	v = json_array();
	for (size_t i = 0; i < n; i++)
		if (syn[i] != NULL && *syn[i] != '\0')
			json_array_append_new(v, json_string(syn[i]));
	cl->c = xreallocarray(cl->c, cl->n + 1, sizeof(struct canon));
	memset(&cl->c[cl->n], 0, sizeof(cl->c[cl->n]));
	/* Strings only: nothing here can fail. */
	(void)canon_entry(&cl->c[cl->n++], name, v, which == LEX_CITIES ? "cities" : "products", err, sizeof(err));
	json_decref(v);
}

static void
free_canon(struct canon_list *cl)
{
	size_t i;

	for (i = 0; i < cl->n; i++) {
		free(cl->c[i].name);
		free_phrases(&cl->c[i].syn);
	}
	free(cl->c);
	cl->c = NULL;
	cl->n = 0;
}

static int
load_lang_map(json_t *obj, struct lang_phrases *out, size_t *n, const char *what, char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	if (obj == NULL)
		return 0;
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "\"%s\" must be an object keyed by language", what);
		return -1;
	}
	json_object_foreach(obj, key, v)
	{
		if (*n >= LEX_MAX_LANGS || strlen(key) != 2) {
			snprintf(
			    err, errlen, "\"%s\": languages are two-letter codes, at most %d", what, LEX_MAX_LANGS);
			return -1;
		}
		memcpy(out[*n].lang, key, 3);
		if (load_phrases(v, &out[*n].words, what, err, errlen) < 0)
			return -1;
		(*n)++;
	}
	return 0;
}

static int
load_questions(json_t *obj, struct lexicon *lx, char *err, size_t errlen)
{
	const char *lang, *key;
	json_t *per, *v;

	if (obj == NULL)
		return 0;
	json_object_foreach(obj, lang, per)
	{
		struct lang_questions *q;

		if (lx->nquestions >= LEX_MAX_LANGS || strlen(lang) != 2 || !json_is_object(per)) {
			snprintf(err, errlen, "\"questions\" must map two-letter languages to objects");
			return -1;
		}
		q = &lx->questions[lx->nquestions++];
		memcpy(q->lang, lang, 3);
		json_object_foreach(per, key, v)
		{
			int k, i;

			for (k = 0; k < QK_COUNT && strcmp(qkey_names[k], key) != 0; k++)
				;
			if (k == QK_COUNT) {
				snprintf(err, errlen, "\"questions.%s\": unknown key \"%s\"", lang, key);
				return -1;
			}
			if (json_is_string(v))
				q->q[k][0] = xstrdup(json_string_value(v));
			else if (json_is_array(v) && json_array_size(v) >= 1)
				for (i = 0; i < 2 && (size_t)i < json_array_size(v); i++)
					if (json_is_string(json_array_get(v, (size_t)i)))
						q->q[k][i] = xstrdup(json_string_value(json_array_get(v, (size_t)i)));
		}
	}
	return 0;
}

struct lexicon *
lexicon_load(const char *path, char *err, size_t errlen)
{
	struct lexicon *lx = xcalloc(1, sizeof(*lx));
	json_error_t je;
	json_t *doc;
	const char *dl;
	bool own_products;

	doc = path != NULL ? json_load_file(path, 0, &je) : json_loads(lexicon_builtin, 0, &je);
	if (doc == NULL) {
		snprintf(err, errlen, "%s:%d: %s", path != NULL ? path : "built-in lexicon", je.line, je.text);
		free(lx);
		return NULL;
	}
	/* A shop's file must name its own products; the built-in ones are a furniture shop's. */
	own_products = json_object_get(doc, "products") != NULL;
	if (path != NULL && json_is_object(doc)) {
		/* What a shop's file leaves out comes from the built-in lexicon: its sentence shapes, time frames, spam
		   and injection markers serve any business. A key the file has replaces the built-in one whole. */
		json_t *builtin = json_loads(lexicon_builtin, 0, NULL);
		json_object_update_missing(doc, builtin);
		json_decref(builtin);
	}
	dl = json_string_value(json_object_get(doc, "default_language"));
	snprintf(lx->default_lang, sizeof(lx->default_lang), "%s", dl != NULL && strlen(dl) == 2 ? dl : "es");
#define PH(name, field) load_phrases(json_object_get(doc, name), &lx->field, name, err, errlen) < 0
	if (load_lang_map(
	        json_object_get(doc, "language_words"), lx->langs, &lx->nlangs, "language_words", err, errlen) < 0 ||
	    load_lang_map(json_object_get(doc, "name_phrases"), lx->names, &lx->nnames, "name_phrases", err, errlen) <
	        0 ||
#define LOAD_LIST(key, field) PH(key, field) ||
	    LEX_PHRASE_LISTS(LOAD_LIST)
#undef LOAD_LIST
	            load_canon(json_object_get(doc, "products"), &lx->products, "products", err, errlen) < 0 ||
	    load_canon(json_object_get(doc, "cities"), &lx->cities, "cities", err, errlen) < 0 ||
	    load_canon(json_object_get(doc, "support"), &lx->support, "support", err, errlen) < 0 ||
	    load_canon(json_object_get(doc, "fact_topics"), &lx->fact_topics, "fact_topics", err, errlen) < 0 ||
	    load_questions(json_object_get(doc, "questions"), lx, err, errlen) < 0 ||
	    load_lang_map(
	        json_object_get(doc, "opt_out_words"), lx->optout, &lx->noptout, "opt_out_words", err, errlen) < 0 ||
	    load_lang_map(json_object_get(doc, "opt_in_words"), lx->optin, &lx->noptin, "opt_in_words", err, errlen) <
	        0) {
		json_decref(doc);
		lexicon_free(lx);
		return NULL;
	}
#undef PH
	if (!own_products || lx->nlangs == 0 || lx->nquestions == 0) {
		snprintf(err, errlen, "a lexicon needs \"products\", \"language_words\" and \"questions\"");
		json_decref(doc);
		lexicon_free(lx);
		return NULL;
	}
	json_decref(doc);
	return lx;
}

void
lexicon_free(struct lexicon *lx)
{
	size_t i;
	int k;

	if (lx == NULL)
		return;
	for (i = 0; i < lx->nlangs; i++)
		free_phrases(&lx->langs[i].words);
	for (i = 0; i < lx->nnames; i++)
		free_phrases(&lx->names[i].words);
	for (i = 0; i < lx->noptout; i++)
		free_phrases(&lx->optout[i].words);
	for (i = 0; i < lx->noptin; i++)
		free_phrases(&lx->optin[i].words);
#define FREE_LIST(key, field) free_phrases(&lx->field);
	LEX_PHRASE_LISTS(FREE_LIST)
#undef FREE_LIST
	free_canon(&lx->products);
	free_canon(&lx->cities);
	free_canon(&lx->support);
	free_canon(&lx->fact_topics);
	for (i = 0; i < lx->nquestions; i++)
		for (k = 0; k < QK_COUNT; k++) {
			free(lx->questions[i].q[k][0]);
			free(lx->questions[i].q[k][1]);
		}
	free(lx);
}

const char *
lexicon_question(const struct lexicon *lx, const char *lang, enum qkey key, int v)
{
	size_t i;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		const char *want = pass == 0 ? lang : lx->default_lang;
		for (i = 0; i < lx->nquestions; i++) {
			if (strcmp(lx->questions[i].lang, want) != 0)
				continue;
			if (lx->questions[i].q[key][v] != NULL)
				return lx->questions[i].q[key][v];
			if (lx->questions[i].q[key][0] != NULL)
				return lx->questions[i].q[key][0];
		}
	}
	return NULL;
}

int
lexicon_opt_word(const struct lexicon *lx, const char *text, char lang[3])
{
	char *f = text_fold_str(text), *b = f, *e;
	int r = 0;
	size_t i, j;

	/* Only the word: spaces, punctuation and emoji around it do not count. */
	e = f + strlen(f);
	while (*b != '\0' && !isalnum((unsigned char)*b))
		b++;
	while (e > b && !isalnum((unsigned char)e[-1]))
		e--;
	*e = '\0';
	for (i = 0; i < lx->noptout && r == 0; i++)
		for (j = 0; j < lx->optout[i].words.n && r == 0; j++)
			if (strcmp(lx->optout[i].words.p[j], b) == 0) {
				r = 1;
				memcpy(lang, lx->optout[i].lang, 3);
			}
	for (i = 0; i < lx->noptin && r == 0; i++)
		for (j = 0; j < lx->optin[i].words.n && r == 0; j++)
			if (strcmp(lx->optin[i].words.p[j], b) == 0) {
				r = -1;
				memcpy(lang, lx->optin[i].lang, 3);
			}
	free(f);
	return r;
}
