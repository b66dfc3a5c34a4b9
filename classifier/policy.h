/*
 * The completeness policy, in C and not in the prompt: from the fields and
 * the signals it decides the quality, the score, what is missing and the
 * next action, so the same facts always give the same decision and a user
 * cannot talk their way into a hot lead. Then it picks the follow-up
 * question in the customer's language.
 */
#ifndef CRMB_POLICY_H
#define CRMB_POLICY_H

#include "analysis.h"
#include "lexicon.h"
#include "rules.h"

struct policy {
	/* Create the lead once the minimum is met and it is hot, or after this many user turns. */
	unsigned lead_after_turns;
	/* Create the lead as soon as the minimum is met, without waiting for budget or urgency. */
	bool create_on_minimum;
};

/* The defaults: wait for hot or 4 user turns. */
void policy_defaults(struct policy *p);
/* Decides quality, score, missing fields and action into a. */
void policy_decide(const struct policy *p, const struct signals *sg, struct analysis *a);
/*
 * Writes the reply for a's action and language into a->reply, asking only for
 * what is missing and never in the same words as last_bot (the bot's last
 * message, or NULL).
 */
void policy_reply(const struct lexicon *lx, const char *last_bot, struct analysis *a);

#endif
