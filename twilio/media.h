/*
 * Fetching an inbound message's media (a voice note, an image) from Twilio,
 * for one turn: only from Twilio's own API host (the configured
 * twilio.api_base) with Basic auth, following at most three redirects to
 * that host or to Twilio's CDN (https, *.twiliocdn.com) without
 * credentials, within a size cap. The bytes live in memory until the turn
 * is done with them; nothing is written anywhere.
 */
#ifndef CRMB_MEDIA_H
#define CRMB_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/curlev.h"

struct media_options {
	const char *api_base; /* https://api.twilio.com, or a test double's address */
	const char *account_sid, *auth_token;
	size_t max_bytes;
	uint64_t timeout_ms;
};

/*
 * Whether url may be fetched: the first request only from api_base's scheme,
 * host and port under /2010-04-01/Accounts/; a redirect also to
 * https://<anything>.twiliocdn.com. 0, or -1 with a reason in why.
 */
int media_url_allowed(const char *url, const char *api_base, bool redirect, const char **why);

/* Told once: 0 and the bytes (the callee's until the call returns), or -1 and a reason. */
typedef void (*media_done_fn)(
    int r, const char *why, const char *mime, const unsigned char *data, size_t len, void *arg);

/* Fetches url (its declared type mime, from the webhook) and calls done from the loop. */
void media_fetch(
    struct curlev *cv, const struct media_options *o, const char *url, const char *mime, media_done_fn done, void *arg);

#endif
