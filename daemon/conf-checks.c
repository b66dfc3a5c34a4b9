/*
 * The configuration's value checks (daemon/conf.c's key table names them): each takes a value and returns why it
 * is invalid, never quoting the value, or NULL; and the parsers and questions on values that go with them.
 */
#include "config.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "classifier/profile.h"
#include "common/http.h"
#include "common/redis_url.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "daemon/conf-checks.h"
#include "daemon/conf.h"

/* ---- checks: each returns a reason, never quoting the value ---- */

const char *
check_listen(const char *v)
{
	struct sockaddr_storage ss;
	socklen_t len;

	return listen_parse(v, &ss, &len) == 0
	    ? NULL
	    : "must be ADDRESS:PORT with a numeric address (127.0.0.1:8080, [::1]:8080, 0.0.0.0:0)";
}

const char *
check_addresses(const char *v)
{
	struct in6_addr a[HTTP_MAX_PROXIES];

	return http_parse_addresses(v, a, HTTP_MAX_PROXIES) >= 0
	    ? NULL
	    : "must be up to 8 numeric IPv4 or IPv6 addresses separated by spaces (127.0.0.1 ::1)";
}

/* Parses an http(s) URL with curl; returns a reason or NULL. Sets *path_out if asked. */
static const char *
check_url_common(const char *v, bool need_root)
{
	CURLU *h;
	char *scheme = NULL, *host = NULL, *path = NULL, *query = NULL, *frag = NULL;
	const char *why = NULL;

	if ((h = curl_url()) == NULL)
		return "out of memory";
	if (curl_url_set(h, CURLUPART_URL, v, 0) != CURLUE_OK) {
		why = "not a valid URL";
		goto out;
	}
	curl_url_get(h, CURLUPART_SCHEME, &scheme, 0);
	curl_url_get(h, CURLUPART_HOST, &host, 0);
	curl_url_get(h, CURLUPART_PATH, &path, 0);
	curl_url_get(h, CURLUPART_QUERY, &query, 0);
	curl_url_get(h, CURLUPART_FRAGMENT, &frag, 0);
	if (scheme == NULL || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
		why = "the scheme must be http:// or https://";
	else if (host == NULL || *host == '\0')
		why = "no host";
	else if (frag != NULL)
		why = "a fragment (#...) is not allowed";
	else if (need_root && ((path != NULL && strcmp(path, "/") != 0) || query != NULL))
		why = "must be scheme://host[:port] only, without a path or query";
	/* curl accepts "http://x/ y"-style input loosely; we don't. */
	for (const char *p = v; why == NULL && *p != '\0'; p++)
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
			why = "contains whitespace or control characters";
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(path);
	curl_free(query);
	curl_free(frag);
	curl_url_cleanup(h);
	return why;
}

const char *
check_http_url(const char *v)
{
	return check_url_common(v, false);
}

const char *
check_public_url(const char *v)
{
	return check_url_common(v, true);
}

const char *
check_redis_url(const char *v)
{
	struct redis_url u;
	const char *why;

	if (redis_url_parse(v, &u, &why) < 0)
		return why;
	redis_url_clear(&u);
	return NULL;
}

static const char *
check_sid(const char *v, const char *prefix)
{
	size_t i;

	if (strlen(v) != 34 || strncmp(v, prefix, 2) != 0)
		return "bad SID";
	for (i = 2; i < 34; i++)
		if (!isxdigit((unsigned char)v[i]))
			return "bad SID";
	return NULL;
}

const char *
check_account_sid(const char *v)
{
	return check_sid(v, "AC") == NULL ? NULL : "must be AC followed by 32 hexadecimal digits";
}

const char *
check_service_sid(const char *v)
{
	return check_sid(v, "MG") == NULL ? NULL : "must be MG followed by 32 hexadecimal digits";
}

const char *
check_whatsapp_from(const char *v)
{
	size_t n = 0;

	if (strncmp(v, "whatsapp:", 9) == 0)
		v += 9;
	if (*v++ != '+')
		return "must be whatsapp:+<E.164 number>";
	if (*v == '0')
		return "must be whatsapp:+<E.164 number> (an E.164 number never starts with 0)";
	for (; *v != '\0'; v++, n++)
		if (!isdigit((unsigned char)*v))
			return "must be whatsapp:+<E.164 number>";
	return n >= 7 && n <= 15 ? NULL : "must be whatsapp:+<E.164 number>";
}

const char *
check_admin_token(const char *v)
{
	if (strlen(v) < 16)
		return "too short (at least 16 characters)";
	return strlen(v) <= ADMIN_TOKEN_MAX ? NULL : "too long (at most 1024 characters)";
}

const char *
check_content_sid(const char *v)
{
	size_t i;

	if (strncmp(v, "HX", 2) != 0 || strlen(v) != 34)
		return "not a Content SID (HX and 32 hexadecimal digits)";
	for (i = 2; i < 34; i++)
		if (!isxdigit((unsigned char)v[i]))
			return "not a Content SID (HX and 32 hexadecimal digits)";
	return NULL;
}

int
conf_parse_variables(const char *s, char **buf, const char **slots, const char **names, size_t max)
{
	char *save = NULL, *tok;
	size_t n = 0;

	*buf = xstrdup(s);
	for (tok = strtok_r(*buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '='), *p;
		while (*tok == ' ')
			tok++;
		if (eq == NULL || eq == tok || eq[1] == '\0' || n == max)
			return -1;
		*eq = '\0';
		for (p = tok; *p != '\0'; p++)
			if (!isalnum((unsigned char)*p) && *p != '_')
				return -1;
		for (p = eq + 1; *p != '\0'; p++)
			if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.')
				return -1;
		slots[n] = tok;
		names[n] = eq + 1;
		n++;
	}
	return (int)n;
}

const char *
check_variables(const char *v)
{
	char *buf;
	const char *s[16], *n[16];
	int r = conf_parse_variables(v, &buf, s, n, 16);

	free(buf);
	return r < 0 ? "must be slot=name pairs separated by commas (1=client_name,2=agent_name)" : NULL;
}

int
conf_parse_delays(const char *s, uint64_t *out, size_t max)
{
	char *copy = xstrdup(s), *save = NULL, *tok;
	size_t n = 0;

	for (tok = strtok_r(copy, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
		uint64_t ms;
		if (n == max || parse_duration_ms(tok, &ms) < 0 || ms < 1000 || ms > 30ULL * 86400000) {
			free(copy);
			return -1;
		}
		out[n++] = ms;
	}
	free(copy);
	return (int)n;
}

const char *
check_delays(const char *v)
{
	uint64_t d[8];

	return conf_parse_delays(v, d, 8) < 0 ? "must be up to 8 durations from 1s to 30d separated by commas (4h,23h)"
	                                      : NULL;
}

const char *
check_stripe_key(const char *v)
{
	return strncmp(v, "sk_", 3) == 0 || strncmp(v, "rk_", 3) == 0
	    ? NULL
	    : "not a Stripe secret or restricted key (sk_… or rk_…)";
}

const char *
check_stripe_price(const char *v)
{
	return strncmp(v, "price_", 6) == 0 ? NULL : "not a Stripe price id (price_…)";
}

const char *
check_abs_path(const char *v)
{
	return v[0] == '/' ? NULL : "must be an absolute path";
}

const char *
check_country(const char *v)
{
	return is_upper_code(v, 2) ? NULL
	                           : "must be a two-letter ISO 3166 country code in capitals (CO, MX, BR, ES, US)";
}

const char *
check_currency(const char *v)
{
	return is_upper_code(v, 3) ? NULL
	                           : "must be a three-letter ISO 4217 currency code in capitals (COP, MXN, BRL, EUR)";
}

const char *
check_hot_needs(const char *v)
{
	unsigned fields;
	bool all;

	return profile_parse_hot(v, &fields, &all)
	    ? NULL
	    : "must name what a hot lead needs besides contact and product: budget, urgency, city, email or phone, "
	      "joined by \"or\" or by \"and\" (e.g. \"budget or urgency\")";
}

/* True when v holds only letters, digits and the characters of extra. */
static bool
only_chars(const char *v, const char *extra)
{
	for (; *v != '\0'; v++)
		if (!isalnum((unsigned char)*v) && strchr(extra, *v) == NULL)
			return false;
	return true;
}

const char *
check_model(const char *v)
{
	return only_chars(v, "._-:/@") ? NULL : "a model name: letters, digits and . _ - : / @";
}

const char *
check_provider(const char *v)
{
	return strcmp(v, "gemini") == 0 || strcmp(v, "openai") == 0 ? NULL : "gemini or openai";
}

const char *
check_max_tokens_param(const char *v)
{
	return strcmp(v, "max_completion_tokens") == 0 || strcmp(v, "max_tokens") == 0
	    ? NULL
	    : "max_completion_tokens or max_tokens";
}

int
conf_model_provider(const struct conf *c)
{
	return c->classifier_provider != NULL && strcmp(c->classifier_provider, "openai") == 0 ? 1 : 0;
}

bool
conf_model_on(const struct conf *c)
{
	if (conf_model_provider(c) == 1)
		return c->openai_api_key != NULL ||
		    (c->openai_api_base != NULL && strcmp(c->openai_api_base, OPENAI_DEFAULT_BASE) != 0);
	return c->gemini_api_key != NULL;
}

const char *
check_word(const char *v)
{
	return only_chars(v, "._-:") ? NULL : "may hold only letters, digits and . _ - :";
}

const char *
check_protocol(const char *v)
{
	return strcmp(v, "auto") == 0 || strcmp(v, "xmlrpc") == 0 || strcmp(v, "json2") == 0
	    ? NULL
	    : "must be auto, xmlrpc or json2";
}

const char *
check_lead_type(const char *v)
{
	return strcmp(v, "auto") == 0 || strcmp(v, "lead") == 0 || strcmp(v, "opportunity") == 0
	    ? NULL
	    : "must be auto, lead or opportunity";
}

const char *
check_priority(const char *v)
{
	return strlen(v) == 1 && v[0] >= '0' && v[0] <= '3' ? NULL : "must be 0, 1, 2 or 3";
}

const char *
check_digits(const char *v)
{
	size_t n = strlen(v);

	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)v[i]))
			return "must be digits only (57, 1, 34)";
	return n >= 1 && n <= 3 ? NULL : "must be one to three digits";
}
