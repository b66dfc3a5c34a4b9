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

struct profile;

struct policy {
	/* Create the lead once the minimum is met and it is hot, or after this many user turns. */
	unsigned lead_after_turns;
	/* Create the lead as soon as the minimum is met, without waiting for budget or urgency. */
	bool create_on_minimum;
	/* The business profile (borrowed; NULL: none): what a hot lead needs, the facts a reply may state. */
	const struct profile *profile;
};

/* The defaults: wait for hot or 4 user turns; hot needs budget or urgency. */
void policy_defaults(struct policy *p);
/* Decides quality, score, missing fields and action into a. */
void policy_decide(const struct policy *p, const struct signals *sg, struct analysis *a);
/*
 * Writes the reply for a's action and language into a->reply, asking only for
 * what is missing and never in the same words as last_bot (the bot's last
 * message, or NULL).
 */
void policy_reply(const struct lexicon *lx, const char *last_bot, struct analysis *a);
/*
 * The profile's answer to the customer's last message when it asks about a fact (hours, delivery, ...): kept in
 * a->fact and, unless a person takes over, put before the reply. Nothing without a profile or a fact.
 */
void policy_answer(const struct policy *p, const struct lexicon *lx, const struct conversation *c, struct analysis *a);

#endif
