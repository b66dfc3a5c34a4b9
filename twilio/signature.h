/*
 * Twilio's X-Twilio-Signature: HMAC-SHA1, keyed with the Auth Token, over
 * the public URL followed by every POST parameter (sorted by name, then
 * value) as name then value, base64-encoded. See docs/PROTOCOLS.md section 2.
 */
#ifndef CRMB_SIGNATURE_H
#define CRMB_SIGNATURE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/form.h"

/*
 * Writes the base64 signature (28 chars + NUL) of url + params into out[29]. Returns 0 or -ENOMEM.
 * The HMAC handle keyed with token is kept for the next call (a few tokens at a time; one thread only).
 */
int twsig_compute(const char *token, const char *url, const struct form *params, char out[29]);
/* Closes the HMAC handles kept by twsig_compute and twsig_valid and wipes their tokens. */
void twsig_forget(void);
/*
 * True if header matches url + params for any of the tokens (NULL entries
 * skipped), for the URL as given, with the scheme's default port added, or
 * with its port removed, as Twilio's SDKs accept. Compared in constant time.
 */
bool
twsig_valid(const char *const *tokens, size_t ntokens, const char *url, const struct form *params, const char *header);
/*
 * For JSON bodies: the signature covers the URL alone and the URL's
 * bodySHA256 parameter must be the hex SHA-256 of body. True if both hold.
 */
bool twsig_valid_json(
    const char *const *tokens, size_t ntokens, const char *url, const char *body, size_t len, const char *header);
/*
 * Writes url with the port changed into out (size bytes): add != 0 adds the
 * scheme's default port when none is given, add == 0 removes any port.
 * Returns 0, or -1 when url is not scheme://authority... or does not fit.
 */
int twsig_url_variant(const char *url, int add, char *out, size_t size);

#endif
