/* The offline classification: rules, then policy, then the question. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifier.h"
#include "links.h"
#include "profile.h"
#include "text.h"
#include "common/log.h"
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
	policy_answer(p, lx, c, a);
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

/* The reply checks a generated reply must pass to be sent. */
static bool
reply_ok(const struct lexicon *lx, const char *reply, const char *lang, const struct reply_links *links)
{
	char detected[3], why[96], esc[128];

	if (reply == NULL || *reply == '\0' || strlen(reply) > 600)
		return false;
	if ((links == NULL || !links->any) &&
	    !links_only_allowed(
	        reply, links != NULL ? links->urls : NULL, links != NULL ? links->n : 0, why, sizeof(why))) {
		/* The host alone: the rest of the reply is the customer's conversation. */
		log_debug(
		    "classifier: the model's reply is not sent: it links to %s", log_escape(why, esc, sizeof(esc)));
		return false;
	}
	rules_language(lx, reply, detected);
	return strcmp(detected, lang) == 0;
}

void
classify_merge(const struct lexicon *lx, const struct policy *p, const struct conversation *c,
    const struct analysis *advice, int model_action, const struct reply_links *links, struct analysis *a)
{
	struct signals sg;
	int i;

	analysis_clear(a);
	rules_analyze(lx, c, a, &sg);
	for (i = 0; i < F_COUNT; i++)
		if (advice->fields[i] != NULL)
			analysis_set(a, (enum field)i, advice->fields[i]);
	if (a->fields[F_PRODUCT] != NULL) {
		/* Whether the product is specific is the lexicon's call, whoever extracted it. */
		char *n = text_fold_str(a->fields[F_PRODUCT]);
		sg.product_specific = true;
		for (size_t k = 0; k < lx->generic_products.n; k++)
			if (strcmp(n, lx->generic_products.p[k]) == 0)
				sg.product_specific = false;
		free(n);
	}
	/* A request for a person and an attempt to instruct the bot stand, whatever the model says; a buyer who
	   wants a person stays a buyer. */
	a->intent = sg.human && advice->intent != I_SALES ? I_SUPPORT : advice->intent;
	snprintf(a->reason, sizeof(a->reason), "%s", sg.human ? "human" : advice->reason);
	a->sentiment = advice->sentiment;
	memcpy(a->lang, advice->lang, sizeof(a->lang));
	a->confidence = advice->confidence;
	a->invented = advice->invented;
	a->tokens = advice->tokens;
	policy_decide(p, &sg, a);
	if (model_action == (int)a->action && reply_ok(lx, advice->reply, a->lang, links)) {
		free(a->reply);
		a->reply = xstrdup(advice->reply);
	} else {
		policy_reply(lx, conversation_last_bot(c), a);
		policy_answer(p, lx, c, a);
	}
	a->reasoning = xstrdup(advice->reasoning != NULL ? advice->reasoning : "");
	a->transcript = advice->transcript != NULL ? xstrdup(advice->transcript) : NULL;
	a->source = advice->source != NULL ? advice->source : "gemini";
}

struct classifier {
	const struct lexicon *lx;
	struct policy p;
	struct gemini *g;
	struct reply_links links; /* links.urls is urls */
	char **urls;
	bool media; /* voice notes and images go to the model */
	char *business; /* the profile as the model's instruction reads it, or NULL */
	struct classifier_stats st;
};

struct run {
	struct classifier *cl;
	struct conversation conv;
	classifier_done_fn done;
	void *arg;
};

static void
on_gemini(enum gemini_outcome o, const struct analysis *advice, int model_action, void *arg)
{
	struct run *r = arg;
	struct analysis a = {0};

	if (o == GEM_OK && advice != NULL) {
		r->cl->st.by_gemini++;
		/* The rules' signals read a voice note's words too, not its placeholder. */
		if (advice->transcript != NULL && r->conv.nmedia > 0 && r->conv.media_at >= 0 &&
		    (size_t)r->conv.media_at < r->conv.n) {
			free(r->conv.msg[r->conv.media_at].text);
			r->conv.msg[r->conv.media_at].text = xstrdup(advice->transcript);
		}
		classify_merge(r->cl->lx, &r->cl->p, &r->conv, advice, model_action, &r->cl->links, &a);
	} else {
		/* Any failure: the offline rules answer, and the reason is counted. */
		r->cl->st.fallbacks++;
		r->cl->st.by_rules++;
		if ((size_t)o < sizeof(r->cl->st.fallback_reason) / sizeof(r->cl->st.fallback_reason[0]))
			r->cl->st.fallback_reason[o]++;
		classify_offline(r->cl->lx, &r->cl->p, &r->conv, &a);
		a.fallback = true;
	}
	r->done(&a, r->arg);
	analysis_clear(&a);
	conversation_clear(&r->conv);
	free(r);
}

void
classifier_run(struct classifier *cl, const struct conversation *c, classifier_done_fn done, void *arg)
{
	struct run *r;
	size_t i;

	if (cl->g == NULL) {
		struct analysis a = {0};
		cl->st.by_rules++;
		classify_offline(cl->lx, &cl->p, c, &a);
		done(&a, arg);
		analysis_clear(&a);
		return;
	}
	r = xcalloc(1, sizeof(*r));
	r->cl = cl;
	r->done = done;
	r->arg = arg;
	for (i = 0; i < c->n; i++)
		conversation_add(&r->conv, c->msg[i].user, c->msg[i].text);
	for (i = 0; i < F_COUNT; i++)
		if (c->known[i] != NULL)
			r->conv.known[i] = xstrdup(c->known[i]);
	memcpy(r->conv.lang, c->lang, sizeof(r->conv.lang));
	if (c->context != NULL)
		r->conv.context = xstrdup(c->context);
	r->conv.media_at = c->media_at;
	r->conv.nmedia = c->nmedia;
	{
		/* The request is built from c at once: the profile goes in borrowed, for this call. */
		struct conversation with = *c;
		with.business = cl->business;
		gemini_classify(cl->g, &with, on_gemini, r);
	}
}

struct classifier *
classifier_new(const struct lexicon *lx, const struct policy *p, struct gemini *g, bool allow_links)
{
	struct classifier *cl = xcalloc(1, sizeof(*cl));

	cl->lx = lx;
	cl->p = *p;
	cl->g = g;
	cl->links.any = allow_links;
	cl->media = true;
	return cl;
}

static void
urls_free(struct classifier *cl)
{
	for (size_t i = 0; i < cl->links.n; i++)
		free(cl->urls[i]);
	free(cl->urls);
	cl->urls = NULL;
	cl->links.urls = NULL;
	cl->links.n = 0;
}

void
classifier_set_links(struct classifier *cl, const char *const *urls, size_t n)
{
	char **copy = n > 0 ? xcalloc(n, sizeof(*copy)) : NULL;
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		if (urls[i] != NULL)
			copy[k++] = xstrdup(urls[i]);
	urls_free(cl);
	cl->urls = copy;
	cl->links.urls = (const char *const *)copy;
	cl->links.n = k;
}

void
classifier_set_lexicon(struct classifier *cl, const struct lexicon *lx)
{
	cl->lx = lx;
}

void
classifier_set_profile(struct classifier *cl, const struct profile *p)
{
	free(cl->business);
	cl->business = profile_instruction(p);
	cl->p.profile = profile_empty(p) ? NULL : p;
}

void
classifier_set_media(struct classifier *cl, bool on)
{
	cl->media = on;
}

bool
classifier_accepts_media(const struct classifier *cl, const char *mime)
{
	return cl->g != NULL && cl->media && gemini_accepts_media(cl->g, mime);
}

void
classifier_free(struct classifier *cl)
{
	if (cl != NULL) {
		urls_free(cl);
		free(cl->business);
	}
	free(cl);
}

void
classifier_get_stats(const struct classifier *cl, struct classifier_stats *st)
{
	*st = cl->st;
}
