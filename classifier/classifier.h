/*
 * The classifier's front door: the offline rules (always available), the
 * policy and the follow-up question. The Gemini path (gemini.h) produces
 * advice that goes through the same grounding, policy and reply checks.
 */
#ifndef CRMB_CLASSIFIER_H
#define CRMB_CLASSIFIER_H

#include "analysis.h"
#include "gemini.h"
#include "lexicon.h"
#include "policy.h"
#include "rules.h"

/* The last bot message of c, or NULL. */
const char *conversation_last_bot(const struct conversation *c);
/* Classifies c with the offline rules into a (cleared first). */
void
classify_offline(const struct lexicon *lx, const struct policy *p, const struct conversation *c, struct analysis *a);

/* What a model-written reply may link to. */
struct reply_links {
	bool any; /* classifier.allow_links: any link */
	const char *const *urls; /* otherwise only these, the shop's configured URLs (borrowed; NULLs skipped) */
	size_t n;
};

/*
 * Combines Gemini's advice with the rules: the model's grounded fields,
 * intent, sentiment and language; the rules' signals (manipulation, a
 * request for a person); then the C policy decides, and the model's reply is
 * kept only if the model proposed the same action and the reply passes the
 * checks (length, language, no link but links->urls unless links->any; links
 * may be NULL: no link at all).
 */
void classify_merge(const struct lexicon *lx, const struct policy *p, const struct conversation *c,
    const struct analysis *advice, int model_action, const struct reply_links *links, struct analysis *a);

struct classifier;

struct classifier_stats {
	uint64_t by_gemini, by_rules, fallbacks;
	uint64_t fallback_reason[GEM_TIMEOUT + 1];
};

/* Told the analysis; a is valid only during the call. */
typedef void (*classifier_done_fn)(const struct analysis *a, void *arg);

/* A classifier over lx (borrowed) and, when g is not NULL, Gemini (borrowed). */
struct classifier *classifier_new(const struct lexicon *lx, const struct policy *p, struct gemini *g, bool allow_links);
void classifier_free(struct classifier *cl);
/* The URLs a model reply may carry when links are not allowed (copied; NULLs skipped). */
void classifier_set_links(struct classifier *cl, const char *const *urls, size_t n);
/* A new lexicon (borrowed from now on; the old one may be freed once this returns). */
void classifier_set_lexicon(struct classifier *cl, const struct lexicon *lx);
struct profile;
/* The business profile (borrowed, kept while set; NULL or empty: none): the model's instruction includes it, the
   policy reads its hot rule and facts. */
void classifier_set_profile(struct classifier *cl, const struct profile *p);
/* Whether voice notes and images go to the model (on by default). */
void classifier_set_media(struct classifier *cl, bool on);
/* True when a model is configured, media is on and the provider takes mime inline. */
bool classifier_accepts_media(const struct classifier *cl, const char *mime);
/* Classifies c; done is called once (at once for the rules, later for Gemini). */
void classifier_run(struct classifier *cl, const struct conversation *c, classifier_done_fn done, void *arg);
void classifier_get_stats(const struct classifier *cl, struct classifier_stats *st);

#endif
