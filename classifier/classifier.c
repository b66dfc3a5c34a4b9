/* The offline classification: rules, then policy, then the question. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "classifier.h"
#include "common/xmalloc.h"

const char *
conversation_last_bot(const struct conversation *c)
{
	size_t i;

	for (i = c->n; i > 0; i--)
		if (!c->msg[i - 1].user)
			return c->msg[i - 1].text;
	return NULL;
}

void
classify_offline(const struct lexicon *lx, const struct policy *p, const struct conversation *c, struct analysis *a)
{
	struct signals sg;
	char why[256];
	int known = 0, i;

	analysis_clear(a);
	rules_analyze(lx, c, a, &sg);
	policy_decide(p, &sg, a);
	policy_reply(lx, conversation_last_bot(c), a);
	for (i = 0; i < F_COUNT; i++)
		known += a->fields[i] != NULL;
	/* Rules are sure of what they matched, less of what they did not see. */
	a->confidence = sg.greeting_only ? 0.9 : sg.any_signal ? 0.55 + 0.05 * known : 0.4;
	if (a->confidence > 0.9)
		a->confidence = 0.9;
	snprintf(why, sizeof(why), "offline rules: intent %s (%s), %d field%s known%s%s", intent_name(a->intent),
	    a->reason, known, known == 1 ? "" : "s", a->manipulation ? "; the user tried to instruct the bot" : "",
	    sg.budget_refused ? "; budget declined" : "");
	a->reasoning = xstrdup(why);
}
