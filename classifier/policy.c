/*
 * Completeness policy and follow-up questions. The rules:
 *   contact  = name, e-mail or a stated phone;
 *   interest = a specific product or a specific need;
 *   minimum  = contact + interest + a sales intent (and no manipulation);
 *   hot      = contact + specific product + (budget or urgency);
 *   warm     = contact or a specific interest;  cold otherwise; support is cold.
 * A request for a person hands the conversation over whatever the rest says;
 * a buyer's keeps the sales intent and the quality of what they said.
 * The lead is created when the minimum holds and the lead is hot, or the
 * budget was asked for and refused, or the conversation is long enough.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/template.h"
#include "common/xmalloc.h"
#include "policy.h"
#include "profile.h"

void
policy_defaults(struct policy *p)
{
	p->lead_after_turns = 4;
	p->create_on_minimum = false;
	p->profile = NULL;
}

void
policy_decide(const struct policy *p, const struct signals *sg, struct analysis *a)
{
	const char *const *f = (const char *const *)a->fields;
	bool contact = f[F_NAME] || f[F_EMAIL] || f[F_PHONE];
	bool specific = (f[F_PRODUCT] && sg->product_specific) || f[F_NEED];
	bool interest = specific || f[F_PRODUCT];
	bool minimum = contact && specific && a->intent == I_SALES && !a->manipulation;
	/* Budget or urgency, unless the business profile says what makes its leads hot. */
	unsigned need = p->profile != NULL ? p->profile->hot_fields : (1u << F_BUDGET) | (1u << F_URGENCY), have = 0;
	bool hot_extra;
	int score = 0, i;
	static const enum field wanted[] = {F_NAME, F_PRODUCT, F_BUDGET, F_CITY, F_EMAIL};

	for (i = 0; i < F_COUNT; i++)
		if (f[i] != NULL)
			have |= 1u << i;
	hot_extra = p->profile != NULL && p->profile->hot_all ? (have & need) == need : (have & need) != 0;
	/* Quality. */
	if (a->intent == I_SUPPORT)
		a->quality = Q_COLD;
	else if (contact && f[F_PRODUCT] && sg->product_specific && hot_extra && !a->manipulation)
		a->quality = Q_HOT;
	else if (contact || specific)
		a->quality = Q_WARM;
	else
		a->quality = Q_COLD;

	/* Score: what is known, within the quality's band. */
	score += contact ? 25 : 0;
	score += specific ? 25 : interest ? 10 : 0;
	score += f[F_BUDGET] ? 20 : 0;
	score += f[F_URGENCY] ? 10 : 0;
	score += f[F_CITY] ? 5 : 0;
	score += f[F_EMAIL] || f[F_PHONE] ? 10 : 0;
	score += a->intent == I_SALES ? 5 : 0;
	if (a->quality == Q_COLD && score > 35)
		score = 35;
	if (a->quality == Q_WARM)
		score = score < 40 ? 40 : score > 69 ? 69 : score;
	if (a->quality == Q_HOT && score < 70)
		score = 70;
	a->score = score > 100 ? 100 : score;

	a->missing = 0;
	for (i = 0; i < (int)(sizeof(wanted) / sizeof(wanted[0])); i++)
		if (f[wanted[i]] == NULL)
			a->missing |= 1u << wanted[i];

	/* Action. A buyer who asked for a person is handed over too, a sales lead with the quality above. */
	if (a->intent == I_SUPPORT || strcmp(a->reason, "human") == 0)
		a->action = A_TRANSFER_TO_SUPPORT;
	else if (a->manipulation)
		a->action = interest ? A_GATHER_MORE_DETAILS : A_ASK_CLARIFYING_QUESTION;
	else if (minimum &&
	    (p->create_on_minimum || a->quality == Q_HOT || sg->budget_refused ||
	        sg->user_turns >= p->lead_after_turns))
		a->action = A_CREATE_LEAD;
	else if (minimum)
		a->action = A_GATHER_MORE_DETAILS;
	else if (interest && !contact)
		a->action = A_REQUEST_CONTACT_INFO;
	else if (contact && !interest)
		a->action = A_ASK_ABOUT_INTEREST;
	else if (interest)
		a->action = A_GATHER_MORE_DETAILS; /* a vague interest ("muebles"): ask what exactly */
	else if (sg->greeting_only || !sg->any_signal)
		a->action = sg->greeting_only || sg->user_turns <= 1 ? A_ASK_ABOUT_INTEREST : A_ASK_CLARIFYING_QUESTION;
	else
		a->action = A_ASK_CLARIFYING_QUESTION;
	if (a->manipulation && a->quality == Q_HOT)
		a->quality = Q_WARM;
}

/* Replaces {name} and {interest} in t. */
static char *
fill(const char *t, const struct analysis *a)
{
	static const char *const keys[] = {"name", "interest"};
	const char *vals[] = {
	    a->fields[F_NAME], a->fields[F_PRODUCT] != NULL ? a->fields[F_PRODUCT] : a->fields[F_NEED]};

	return template_expand(t, keys, vals, 2);
}

void
policy_reply(const struct lexicon *lx, const char *last_bot, struct analysis *a)
{
	enum qkey k;
	const char *t;
	char *r;

	switch (a->action) {
	case A_CREATE_LEAD: k = a->fields[F_NAME] != NULL ? QK_LEAD_CREATED : QK_LEAD_CREATED_NONAME; break;
	case A_TRANSFER_TO_SUPPORT: k = strcmp(a->reason, "human") == 0 ? QK_HUMAN : QK_SUPPORT; break;
	case A_REQUEST_CONTACT_INFO: k = QK_ASK_NAME; break;
	case A_ASK_ABOUT_INTEREST: k = QK_ASK_INTEREST; break;
	case A_GATHER_MORE_DETAILS:
		/* Only what is missing, most useful first. */
		if (a->fields[F_PRODUCT] == NULL && a->fields[F_NEED] == NULL)
			k = QK_ASK_INTEREST;
		else if (a->fields[F_NAME] == NULL && a->fields[F_EMAIL] == NULL && a->fields[F_PHONE] == NULL)
			k = QK_ASK_NAME;
		else if (a->fields[F_BUDGET] == NULL)
			k = QK_ASK_BUDGET;
		else if (a->fields[F_CITY] == NULL)
			k = QK_ASK_CITY;
		else if (a->fields[F_EMAIL] == NULL)
			k = QK_ASK_EMAIL;
		else
			k = QK_CLARIFY;
		break;
	default: k = QK_CLARIFY;
	}
	if ((t = lexicon_question(lx, a->lang, k, 0)) == NULL)
		t = "";
	r = fill(t, a);
	if (last_bot != NULL && strcmp(r, last_bot) == 0) {
		const char *t2 = lexicon_question(lx, a->lang, k, 1);
		if (t2 != NULL) {
			free(r);
			r = fill(t2, a);
		}
	}
	free(a->reply);
	a->reply = r;
}

void
policy_answer(const struct policy *p, const struct lexicon *lx, const struct conversation *c, struct analysis *a)
{
	const char *last = NULL;
	char *ans, *r;

	for (size_t i = c->n; i > 0 && last == NULL; i--)
		if (c->msg[i - 1].user)
			last = c->msg[i - 1].text;
	/* Only a question gets a fact ("¿Abren el domingo?", not "abro el local el domingo"), and never one in spam
	   or in a message that tried to instruct the bot. */
	if (p->profile == NULL || last == NULL || a->manipulation || a->intent == I_OTHER)
		return;
	if ((ans = profile_answer(p->profile, lx, last, a->lang, &a->fact_all)) == NULL)
		return;
	free(a->fact);
	a->fact = ans;
	if (a->action == A_TRANSFER_TO_SUPPORT || a->reply == NULL)
		return;
	xasprintf(&r, "%s %s", ans, a->reply);
	free(a->reply);
	a->reply = r;
}
