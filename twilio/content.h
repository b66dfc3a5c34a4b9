/*
 * The text of the WhatsApp templates we send (outreach, outside the 24-hour
 * window, follow-ups), read from Twilio's Content API
 * (GET {content_api_base}/v1/Content/{HX…}, Basic auth) so that the
 * conversation's history, the classifier and the Odoo lead show what the
 * customer actually received, not a template SID. Only the configured SIDs
 * are fetched: at start (and reload), again every 12 hours, and after a
 * failure with a backoff from 30 s to 30 min. Rendering is synchronous
 * from this cache; a template not (yet) known renders as NULL and the
 * caller writes a placeholder.
 */
#ifndef CRMB_CONTENT_H
#define CRMB_CONTENT_H

#include <jansson.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "common/curlev.h"

struct content_options {
	const char *api_base; /* https://content.twilio.com */
	const char *account_sid, *auth_token;
	const char *sids[4]; /* the templates to know; NULL entries are skipped */
	uint64_t timeout_ms;
};

struct content;

/* Copies everything in o and starts fetching. NULL when there is nothing to fetch. */
struct content *content_new(sd_event *e, struct curlev *cv, const struct content_options *o);
void content_free(struct content *c);

/*
 * The template's text with its {{key}} placeholders replaced from vars (a
 * JSON object of strings, as sent in ContentVariables), then from the
 * template's own defaults; a placeholder known to neither stays as it is.
 * NULL when the template's text is not known. The caller frees.
 */
char *content_render(const struct content *c, const char *sid, const char *vars_json);

/* The same, from a template's body text (for tests). */
char *content_render_text(const char *body, const json_t *vars, const json_t *defaults);

/* The template's text from a Content API resource (twilio/text, then the other types with a body). Borrowed. */
const char *content_body(const json_t *resource);

/* For /system/status: {sid: {"known": bool, "types": [...], "error": "..."|null, "fetched_ms": n|null}}. */
json_t *content_status(const struct content *c);

#endif
