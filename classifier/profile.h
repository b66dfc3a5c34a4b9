/*
 * The business profile: what the business is and sells, where, in which
 * languages and currency, the facts the bot may state, and what makes a lead
 * hot for it. Read from [business] in the configuration and the JSON file it
 * names (business.profile), optionally with the catalogue read from Odoo.
 * The model's instruction includes it; the offline rules use its catalogue,
 * cities, currency and languages; the bot answers questions from its facts.
 */
#ifndef CRMB_PROFILE_H
#define CRMB_PROFILE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "analysis.h"
#include "lexicon.h"

/* The [business] keys of the configuration; NULL: not set (the file's value, if any, stands). */
struct profile_settings {
	const char *file; /* business.profile: a JSON file with the profile (catalogue, facts, ...) */
	const char *name, *description, *country, *currency, *cities, *languages, *hot_needs;
};

struct profile_item {
	char *name;
	char **syn;
	size_t nsyn;
	char *category; /* or NULL */
	char *source; /* "config" or "odoo" */
};

/* A fact the bot may state: its text per language, and the words of a question it answers. */
struct profile_fact {
	char *topic;
	char **keywords; /* as written; NULL-terminated */
	char lang[LEX_MAX_LANGS][3];
	char *text[LEX_MAX_LANGS]; /* lang "" : the text for any language */
	size_t ntext;
};

struct profile {
	char *name, *description, *country, *currency, *hot_needs;
	char **cities, **languages; /* NULL-terminated */
	struct profile_item *items;
	size_t nitems;
	struct profile_fact *facts;
	size_t nfacts;
	unsigned hot_fields; /* bits of enum field: what a hot lead needs besides contact and a specific product */
	bool hot_all; /* all of hot_fields (true) or any of them */
	char *file; /* where it was read from, or NULL */
};

/*
 * Loads the profile from the settings (and the file they name). Returns a profile, an empty one when nothing is
 * set, or NULL with a reason in err (the file, the key and what is wrong).
 */
struct profile *profile_load(const struct profile_settings *s, char *err, size_t errlen);
void profile_free(struct profile *p);
/* True if nothing is configured. */
bool profile_empty(const struct profile *p);
/* Adds catalogue items (from Odoo: source "odoo"), replacing the previous ones of that source. */
void profile_set_items(struct profile *p, const char *source, json_t *items);
/* Teaches the lexicon the catalogue items of one source ("odoo"; NULL: all) and their categories. */
void profile_apply_items(const struct profile *p, struct lexicon *lx, const char *source);
/* Teaches the lexicon the profile's catalogue, categories, cities, currency and first language. */
void profile_apply(const struct profile *p, struct lexicon *lx);
/* The profile as a paragraph for the model's instruction (caller frees), or NULL if empty. */
char *profile_instruction(const struct profile *p);
/* The effective profile as JSON (what crmbridgectl profile shows). */
json_t *profile_to_json(const struct profile *p);
/*
 * The answer to the customer's questions (text, any case) from the facts, in lang (or the fact's only text):
 * each question sentence ("…?", "¿…") gets the facts whose topic words it has, joined; NULL if none. *all: every
 * question sentence got one. Caller frees.
 */
char *profile_answer(const struct profile *p, const struct lexicon *lx, const char *text, const char *lang, bool *all);
/* Parses "budget or urgency", "budget and city", "urgency" into field bits; false if a word is unknown. */
bool profile_parse_hot(const char *s, unsigned *fields, bool *all);

#endif
