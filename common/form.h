/*
 * application/x-www-form-urlencoded decoding, as Twilio posts webhooks:
 * every parameter kept in order (new ones appear without notice), '+' and
 * %XX decoded, empty values and repeated names allowed. Malformed input is
 * rejected, never repaired. A pure parser: allocation failure is an error.
 */
#ifndef CRMB_FORM_H
#define CRMB_FORM_H

#include <stddef.h>

struct form_param {
	char *name; /* decoded, NUL-terminated */
	char *value; /* decoded, NUL-terminated; "" when empty */
};

struct form {
	struct form_param *p;
	size_t n;
};

#define FORM_MAX_PARAMS 512
#define FORM_MAX_FIELD 65536

/*
 * Decodes body (len bytes) into f. Returns 0, or -EINVAL (bad %XX, a NUL,
 * invalid UTF-8, an empty name), -E2BIG (more than FORM_MAX_PARAMS
 * parameters) or -ENOMEM, with a short reason in *why. On error f is empty.
 */
int form_parse(const char *body, size_t len, struct form *f, const char **why);
/* Frees everything in f and empties it. */
void form_clear(struct form *f);
/* The first value of name, or NULL; borrowed from f. */
const char *form_get(const struct form *f, const char *name);
/* True if s (len bytes) is valid UTF-8 without overlongs or surrogates. */
int utf8_valid(const char *s, size_t len);
/*
 * How many bytes of s to keep to cut it to at most max bytes without
 * splitting a character: a cut that ends inside a multi-byte sequence
 * ("ñ", "á", an emoji) steps back to the character's first byte. Use as
 * "%.*s", (int)utf8_cut(s, max), s.
 */
size_t utf8_cut(const char *s, size_t max);

#endif
