/*
 * What may go out to a customer, and when: WhatsApp's 24-hour window,
 * template variables, the context of a sales call a conversation follows,
 * and follow-ups for conversations that went quiet. Pure functions over the
 * conversation state (state.h), so the rules are tested without Redis.
 */
#ifndef CRMB_OUTBOUND_H
#define CRMB_OUTBOUND_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "classifier/lexicon.h"

/* WhatsApp's customer service window: free text within 24 hours of the customer's last message. */
#define OUTBOUND_WINDOW_MS (24ULL * 3600 * 1000)

/*
 * Whether free text may be sent at now_ms: the customer wrote less than 24 h
 * minus margin_ms ago, and Twilio has not reported 63016 since that message
 * (closed_ms, 0 if never).
 */
bool outbound_window_open(const json_t *st, uint64_t now_ms, uint64_t margin_ms, uint64_t closed_ms);
/* When the window closes for free text (ms), 0 if the customer never wrote. */
uint64_t outbound_window_closes(const json_t *st, uint64_t margin_ms);

/*
 * ContentVariables for a template, as JSON text ({"1":"María"}): mapping
 * "1=name,2=product_interest" names fields of the conversation (field
 * names), "profile" (the WhatsApp profile name) or "phone"; src (may be
 * NULL) is looked up first (a call payload's flattened values). A value
 * that is unknown is an error: NULL, with the slot's name in missing[32].
 */
char *outbound_template_vars(const json_t *st, const json_t *src, const char *mapping, char missing[32]);

/*
 * The history's line for a template sent: "[WhatsApp template] <its text>"
 * when rendered (taken: freed here) is its text, else a placeholder naming
 * the SID and the variables. Caller frees.
 */
char *outbound_template_text(char *rendered, const char *sid, const char *vars);

/*
 * Merges the context of a call (what POST /api/call-completed stored) into
 * the state: state.call, one history entry for the template sent after it,
 * and the client's name when the conversation does not know one. Idempotent.
 */
void outbound_merge_call(json_t *st, const json_t *call, unsigned history_cap);
/* A line for the classifier about the call this conversation follows, or NULL; caller frees. */
char *outbound_call_context(const json_t *st);

/*
 * Whether a conversation that goes quiet now deserves follow-ups: the last
 * quality is warm, it is still being qualified (no lead, no hand-off, not
 * opted out) and the bot's last message is waiting for an answer.
 */
bool outbound_followup_eligible(const json_t *st);
/* The follow-up text for the n-th follow-up (0-based), in the conversation's language; caller frees. */
char *outbound_followup_text(const struct lexicon *lx, const json_t *st, unsigned n);
/* The conversation's language (the classifier's last word on it), or the lexicon's default. */
const char *outbound_lang(const struct lexicon *lx, const json_t *st);

#endif
