/*
 * Twilio request signatures with libgcrypt. The URL is used byte for byte
 * as configured (scheme, user info, host case, path, query): only the port
 * variants that Twilio's SDKs also try are derived from it.
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

int
twsig_compute(const char *token, const char *url, const struct form *params, char out[29])
{
	const struct form_param **sorted = NULL;
	gcry_mac_hd_t h;
	unsigned char mac[20];
	size_t i, maclen = sizeof(mac);

	if (gcry_mac_open(&h, GCRY_MAC_HMAC_SHA1, 0, NULL) != 0)
		return -ENOMEM;
	if (gcry_mac_setkey(h, token, strlen(token)) != 0)
		goto fail;
	gcry_mac_write(h, url, strlen(url));
	if (params != NULL && params->n > 0) {
		if ((sorted = malloc(params->n * sizeof(*sorted))) == NULL)
			goto fail;
		for (i = 0; i < params->n; i++)
			sorted[i] = &params->p[i];
		qsort(sorted, params->n, sizeof(*sorted), cmp_param);
		for (i = 0; i < params->n; i++) {
			gcry_mac_write(h, sorted[i]->name, strlen(sorted[i]->name));
			gcry_mac_write(h, sorted[i]->value, strlen(sorted[i]->value));
		}
		free(sorted);
	}
	if (gcry_mac_read(h, mac, &maclen) != 0 || maclen != sizeof(mac))
		goto fail;
	gcry_mac_close(h);
	base64_encode(mac, sizeof(mac), out);
	return 0;
fail:
	gcry_mac_close(h);
	return -ENOMEM;
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
check_url(const char *const *tokens, size_t ntokens, const char *url, const struct form *params, const char *header)
{
	char sig[29];
	bool good = false;
	size_t i;

	for (i = 0; i < ntokens; i++) {
		if (tokens[i] == NULL || tokens[i][0] == '\0')
			continue;
		if (twsig_compute(tokens[i], url, params, sig) < 0)
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
	char v[4096];
	bool good = false;

	if (header == NULL || url == NULL)
		return false;
	good |= check_url(tokens, ntokens, url, params, header);
	if (twsig_url_variant(url, 1, v, sizeof(v)) == 0 && strcmp(v, url) != 0)
		good |= check_url(tokens, ntokens, v, params, header);
	if (twsig_url_variant(url, 0, v, sizeof(v)) == 0 && strcmp(v, url) != 0)
		good |= check_url(tokens, ntokens, v, params, header);
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
