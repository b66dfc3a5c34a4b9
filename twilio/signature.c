/*
 * Twilio request signatures with libgcrypt. The URL is used byte for byte
 * as configured (scheme, user info, host case, path, query): only the port
 * variants that Twilio's SDKs also try are derived from it. The HMAC handles
 * are kept, one per token lately used, and reset for each signature.
 */
#include "config.h"

#include <errno.h>
#include <gcrypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/base64.h"
#include "common/util.h"
#include "twilio/signature.h"

static int
cmp_param(const void *a, const void *b)
{
	const struct form_param *x = *(const struct form_param *const *)a, *y = *(const struct form_param *const *)b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->value, y->value);
}

/*
 * Opening an HMAC handle costs libgcrypt a random-pool poll (two getrusage
 * calls and two clocks) and a setkey: per webhook that was a tenth of its
 * CPU. A handle keyed with each token lately used is kept instead, found by
 * the token's text, so a token changed by a reload gets a handle of its own
 * and the oldest is closed. The daemon has one thread.
 */
#define HMAC_SLOTS 4

static struct hmac_slot {
	char *token; /* NULL: free */
	gcry_mac_hd_t h;
	unsigned long used;
} hmacs[HMAC_SLOTS];
static unsigned long hmac_clock;

static void
slot_clear(struct hmac_slot *sl)
{
	if (sl->token == NULL)
		return;
	gcry_mac_close(sl->h);
	explicit_bzero(sl->token, strlen(sl->token));
	free(sl->token);
	sl->token = NULL;
}

/* A handle keyed with token, ready for a new MAC; NULL when out of memory. */
static gcry_mac_hd_t
hmac_for(const char *token)
{
	struct hmac_slot *sl, *oldest = &hmacs[0];
	size_t i;

	for (i = 0; i < HMAC_SLOTS; i++) {
		sl = &hmacs[i];
		if (sl->token != NULL && strcmp(sl->token, token) == 0) {
			if (gcry_mac_reset(sl->h) != 0)
				break;
			sl->used = ++hmac_clock;
			return sl->h;
		}
		if (sl->token == NULL || (oldest->token != NULL && sl->used < oldest->used))
			oldest = sl;
	}
	if (i < HMAC_SLOTS) /* the reset failed: key a new handle in that slot */
		oldest = sl;
	slot_clear(oldest);
	if (gcry_mac_open(&oldest->h, GCRY_MAC_HMAC_SHA1, 0, NULL) != 0)
		return NULL;
	if (gcry_mac_setkey(oldest->h, token, strlen(token)) != 0 || (oldest->token = strdup(token)) == NULL) {
		gcry_mac_close(oldest->h);
		return NULL;
	}
	oldest->used = ++hmac_clock;
	return oldest->h;
}

void
twsig_forget(void)
{
	size_t i;

	for (i = 0; i < HMAC_SLOTS; i++)
		slot_clear(&hmacs[i]);
}

/* Sorts params by name, then value, into a new array (n == 0: NULL). -ENOMEM on failure. */
static int
sort_params(const struct form *params, const struct form_param ***out)
{
	const struct form_param **sorted;
	size_t i;

	*out = NULL;
	if (params == NULL || params->n == 0)
		return 0;
	if ((sorted = malloc(params->n * sizeof(*sorted))) == NULL)
		return -ENOMEM;
	for (i = 0; i < params->n; i++)
		sorted[i] = &params->p[i];
	qsort(sorted, params->n, sizeof(*sorted), cmp_param);
	*out = sorted;
	return 0;
}

static int
compute_sorted(const char *token, const char *url, const struct form_param **sorted, size_t n, char out[29])
{
	gcry_mac_hd_t h;
	unsigned char mac[20];
	size_t i, maclen = sizeof(mac);

	if ((h = hmac_for(token)) == NULL)
		return -ENOMEM;
	gcry_mac_write(h, url, strlen(url));
	for (i = 0; i < n; i++) {
		gcry_mac_write(h, sorted[i]->name, strlen(sorted[i]->name));
		gcry_mac_write(h, sorted[i]->value, strlen(sorted[i]->value));
	}
	if (gcry_mac_read(h, mac, &maclen) != 0 || maclen != sizeof(mac))
		return -ENOMEM;
	base64_encode(mac, sizeof(mac), out);
	return 0;
}

int
twsig_compute(const char *token, const char *url, const struct form *params, char out[29])
{
	const struct form_param **sorted;
	int r;

	if (sort_params(params, &sorted) < 0)
		return -ENOMEM;
	r = compute_sorted(token, url, sorted, sorted != NULL ? params->n : 0, out);
	free(sorted);
	return r;
}

int
twsig_url_variant(const char *url, int add, char *out, size_t size)
{
	const char *auth, *end, *host, *colon, *p;
	const char *defport;
	int n;

	if ((auth = strstr(url, "://")) == NULL)
		return -1;
	auth += 3;
	end = auth + strcspn(auth, "/?#");
	/* The host starts after the last '@' of the authority (user:pass@). */
	host = auth;
	for (p = auth; p < end; p++)
		if (*p == '@')
			host = p + 1;
	colon = NULL;
	p = host;
	if (*p == '[') { /* IPv6 literal */
		const char *rb = memchr(p, ']', (size_t)(end - p));
		if (rb == NULL)
			return -1;
		p = rb + 1;
	}
	for (; p < end; p++)
		if (*p == ':')
			colon = p;
	if (add) {
		if (colon != NULL)
			n = snprintf(out, size, "%s", url);
		else {
			if (strncasecmp(url, "https://", 8) == 0)
				defport = ":443";
			else if (strncasecmp(url, "http://", 7) == 0)
				defport = ":80";
			else
				return -1;
			n = snprintf(out, size, "%.*s%s%s", (int)(end - url), url, defport, end);
		}
	} else {
		if (colon == NULL)
			n = snprintf(out, size, "%s", url);
		else
			n = snprintf(out, size, "%.*s%s", (int)(colon - url), url, end);
	}
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* Checks one URL against every token. */
static bool
check_url(const char *const *tokens, size_t ntokens, const char *url, const struct form_param **sorted, size_t n,
    const char *header)
{
	char sig[29];
	bool good = false;
	size_t i;

	for (i = 0; i < ntokens; i++) {
		if (tokens[i] == NULL || tokens[i][0] == '\0')
			continue;
		if (compute_sorted(tokens[i], url, sorted, n, sig) < 0)
			continue;
		/* No early exit: every candidate costs the same. */
		if (timingsafe_streq(header, sig))
			good = true;
	}
	return good;
}

bool
twsig_valid(const char *const *tokens, size_t ntokens, const char *url, const struct form *params, const char *header)
{
	const struct form_param **sorted;
	char v[4096];
	bool good = false;
	size_t n;

	if (header == NULL || url == NULL || sort_params(params, &sorted) < 0)
		return false;
	n = sorted != NULL ? params->n : 0;
	good |= check_url(tokens, ntokens, url, sorted, n, header);
	if (twsig_url_variant(url, 1, v, sizeof(v)) == 0 && strcmp(v, url) != 0)
		good |= check_url(tokens, ntokens, v, sorted, n, header);
	if (twsig_url_variant(url, 0, v, sizeof(v)) == 0 && strcmp(v, url) != 0)
		good |= check_url(tokens, ntokens, v, sorted, n, header);
	free(sorted);
	return good;
}

bool
twsig_valid_json(
    const char *const *tokens, size_t ntokens, const char *url, const char *body, size_t len, const char *header)
{
	unsigned char digest[32];
	char hex[65];
	const char *q, *p;
	size_t i;

	if (header == NULL || url == NULL || (q = strchr(url, '?')) == NULL)
		return false;
	/* Find bodySHA256= as a whole parameter name in the query. */
	for (p = q + 1; p != NULL && *p != '\0'; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL)
		if (strncmp(p, "bodySHA256=", 11) == 0)
			break;
	if (p == NULL || *p == '\0')
		return false;
	p += 11;
	gcry_md_hash_buffer(GCRY_MD_SHA256, digest, body, len);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	if (strncasecmp(p, hex, 64) != 0 || (p[64] != '\0' && p[64] != '&'))
		return false;
	return twsig_valid(tokens, ntokens, url, NULL, header);
}
