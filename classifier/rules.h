/*
 * The offline classifier: rules over the lexicon that extract fields from
 * the user's own words and find the intent, language and sentiment. It is
 * the embedded default without a Gemini key and the fallback when Gemini
 * fails; its signals also feed the policy on the Gemini path.
 */
#ifndef CRMB_RULES_H
#define CRMB_RULES_H

#include "analysis.h"
#include "lexicon.h"

/* Facts about the conversation that the completeness policy needs besides the fields. */
struct signals {
	unsigned user_turns;
	bool greeting_only; /* the user has only greeted */
	bool budget_asked; /* the bot already asked about the budget */
	bool budget_refused; /* and the user would not say */
	bool human; /* the user asked for a person */
	bool product_specific; /* product_interest names a product, not just "furniture" */
	bool purchase; /* buying words */
	bool any_signal; /* anything recognisable at all */
};

/* Analyses c with the rules: fields, intent, reason, sentiment, language, manipulation; fills sg. */
void rules_analyze(const struct lexicon *lx, const struct conversation *c, struct analysis *a, struct signals *sg);
/* Detects the language of text (two letters) among the lexicon's; the default when unsure. */
void rules_language(const struct lexicon *lx, const char *text, char lang[3]);
/* True if value (folded, trimmed) appears in the user's messages of c: the grounding check. */
bool rules_grounded(const struct conversation *c, enum field f, const char *value);

#endif
