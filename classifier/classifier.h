/*
 * The classifier's front door: the offline rules (always available), the
 * policy and the follow-up question. The Gemini path (gemini.h) produces
 * advice that goes through the same grounding, policy and reply checks.
 */
#ifndef CRMB_CLASSIFIER_H
#define CRMB_CLASSIFIER_H

#include "analysis.h"
#include "lexicon.h"
#include "policy.h"
#include "rules.h"

/* The last bot message of c, or NULL. */
const char *conversation_last_bot(const struct conversation *c);
/* Classifies c with the offline rules into a (cleared first). */
void
classify_offline(const struct lexicon *lx, const struct policy *p, const struct conversation *c, struct analysis *a);

#endif
