/*
 * The offline rules' vocabulary and the follow-up questions, per language:
 * products and cities with synonyms, intent words, name phrases, question
 * templates. Loaded from JSON (classifier/lexicon.json is built in), so a
 * shop or a language is configuration, not code.
 */
#ifndef CRMB_LEXICON_H
#define CRMB_LEXICON_H

#include <stddef.h>

#define LEX_MAX_LANGS 8

struct phrases {
	char **p; /* folded */
	size_t n;
};

/* A canonical name (as shown) with folded synonyms. */
struct canon {
	char *name;
	struct phrases syn;
};

struct canon_list {
	struct canon *c;
	size_t n;
};

struct lang_phrases {
	char lang[3];
	struct phrases words;
};

/*
 * The lexicon's word lists: X(JSON key, struct field). A list missing from a lexicon file is the built-in one's. The lists the
 * sentence-shape rules read (object_*, time_*, spam*, injection, city_preps, ...) are described in
 * docs/CLASSIFIER.md.
 */
#define LEX_PHRASE_LISTS(X) \
	X("greetings", greetings) \
	X("purchase", purchase) \
	X("human", human) \
	X("manipulation", manipulation) \
	X("urgency", urgency) \
	X("need_markers", need_markers) \
	X("budget_words", budget_words) \
	X("amount_units", amount_units) \
	X("not_names", not_names) \
	X("refusals", refusals) \
	X("product_qualifier_stops", qualifier_stops) \
	X("generic_products", generic_products) \
	X("positive", positive) \
	X("negative", negative) \
	X("name_question_words", name_question_words) \
	X("not_phone_context", not_phone_context) \
	X("price_words", price_words) \
	X("number_words", number_words) \
	X("word_amount_units", word_amount_units) \
	X("object_triggers", object_triggers) \
	X("object_verbs", object_verbs) \
	X("object_not", object_not) \
	X("object_stops", object_stops) \
	X("interest_question_words", interest_question_words) \
	X("time_words", time_words) \
	X("time_preps", time_preps) \
	X("time_not_context", time_not_context) \
	X("spam", spam) \
	X("spam_strong", spam_strong) \
	X("injection", injection) \
	X("new_need", new_need) \
	X("own_order", own_order) \
	X("city_preps", city_preps) \
	X("city_question_words", city_question_words) \
	X("not_cities", not_cities) \
	X("object_containers", object_containers) \
	X("object_determiners", object_determiners) \
	X("object_connectors", object_connectors) \
	X("count_nouns", count_nouns) \
	X("object_suffixes", object_suffixes) \
	X("not_budget_context", not_budget_context) \
	X("other_phone_context", other_phone_context) \
	X("object_beneficiaries", object_beneficiaries) \
	X("personal_markers", personal_markers)

/* Question keys. */
enum qkey {
	QK_ASK_INTEREST,
	QK_ASK_NAME,
	QK_ASK_BUDGET,
	QK_ASK_CITY,
	QK_ASK_EMAIL,
	QK_CLARIFY,
	QK_SUPPORT,
	QK_HUMAN,
	QK_LEAD_CREATED,
	QK_LEAD_CREATED_NONAME,
	QK_OPT_OUT, /* the one confirmation after STOP */
	QK_OPT_IN,
	QK_FOLLOWUP, /* {question}: the question left unanswered */
	QK_BOOKING, /* {url} */
	QK_PAYMENT, /* {url} */
	QK_MEDIA, /* a voice note or image the bot cannot read: please write */
	QK_AFTER_QUESTION, /* after the lead: a question, passed to the advisor (never answered by guessing) */
	QK_AFTER_UPDATE, /* after the lead: new details, added to the request */
	QK_AFTER_THANKS, /* after the lead: anything else (thanks, ok): a short acknowledgement */
	QK_COUNT
};

struct lang_questions {
	char lang[3];
	/* Each key holds up to two variants, so the same wording is not sent twice in a row. */
	char *q[QK_COUNT][2];
};

struct lexicon {
	char default_lang[3];
	struct lang_phrases langs[LEX_MAX_LANGS], names[LEX_MAX_LANGS];
	size_t nlangs, nnames;
	struct phrases
#define LEX_PHRASE_FIELD(key, field) field,
	    LEX_PHRASE_LISTS(LEX_PHRASE_FIELD) phrases_end_; /* phrases_end_: unused, ends the list */
#undef LEX_PHRASE_FIELD
	struct canon_list products, cities, support; /* support: reason -> words */
	struct canon_list fact_topics; /* a business fact's topic -> the words of a question about it */
	struct lang_questions questions[LEX_MAX_LANGS];
	size_t nquestions;
	/* Whole-message opt-out and opt-in words, per language (folded). */
	struct lang_phrases optout[LEX_MAX_LANGS], optin[LEX_MAX_LANGS];
	size_t noptout, noptin;
};

/*
 * Loads a lexicon from path (NULL: the built-in one). Returns NULL with a
 * reason in err on a missing file or a malformed entry.
 */
struct lexicon *lexicon_load(const char *path, char *err, size_t errlen);
/* Frees a lexicon; NULL is fine. */
void lexicon_free(struct lexicon *lx);
/* The question variant v (0 or 1) for key in lang, falling back to the default language; NULL if none. */
const char *lexicon_question(const struct lexicon *lx, const char *lang, enum qkey key, int v);
/*
 * Whether text is only an opt-out word (1) or only an opt-in word (-1),
 * ignoring case, accents, spaces and punctuation around it; 0 otherwise.
 * lang (3 bytes) gets the language of the word matched.
 */
int lexicon_opt_word(const struct lexicon *lx, const char *text, char lang[3]);
enum lexicon_list { LEX_PRODUCTS, LEX_GENERIC, LEX_CITIES, LEX_UNITS };
/*
 * Adds an entry to a list, as a business profile does: a product (a specific one; plural forms added), a
 * category (a product that is only a vague interest, like "muebles"), a city, with its synonyms, or a currency
 * (an amount unit: "COP").
 */
void lexicon_add(struct lexicon *lx, enum lexicon_list which, const char *name, const char *const *syn, size_t n);
/* The built-in lexicon's JSON text. */
extern const char lexicon_builtin[];

#endif
