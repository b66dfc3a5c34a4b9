/*
 * REDIS_URL parsing with libcurl's URL API (curl_url), which handles
 * percent-encoding, IPv6 literals and user info correctly, so nothing here
 * splits URLs by hand.
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "redis_url.h"
#include "util.h"

void
redis_url_clear(struct redis_url *u)
{
	free(u->host);
	free(u->path);
	free(u->username);
	free(u->password);
	memset(u, 0, sizeof(*u));
}

/* Returns a malloc'd copy of a URL part, or NULL when absent. */
static char *
url_part(CURLU *h, CURLUPart what, unsigned flags)
{
	char *v = NULL, *copy;

	if (curl_url_get(h, what, &v, flags) != CURLUE_OK)
		return NULL;
	copy = strdup(v);
	curl_free(v);
	return copy;
}

static int
parse_db(const char *s, int *db)
{
	long long v;

	if (parse_ll(s, 0, 1000000, &v) < 0)
		return -EINVAL;
	*db = (int)v;
	return 0;
}

int
redis_url_parse(const char *url, struct redis_url *u, const char **why)
{
	CURLU *h = NULL;
	char *scheme = NULL, *path = NULL, *query = NULL, *port = NULL;
	int r = -EINVAL;

	memset(u, 0, sizeof(*u));
	u->port = 6379;
	*why = "not a Redis URL: use redis://[[user]:password@]host[:port][/db] or unix:///path/to/redis.sock[?db=N]";
	if (url == NULL || *url == '\0' || (h = curl_url()) == NULL)
		goto fail;
	/*
	 * curl reads the first segment of unix:///run/x.sock as a host, so a
	 * socket URL is split here: unix://PATH[?db=N].
	 */
	if (strncmp(url, "unix:", 5) == 0) {
		const char *p = url + 5, *q;
		if (strncmp(p, "//", 2) == 0)
			p += 2;
		q = strchr(p, '?');
		u->path = strndup(p, q != NULL ? (size_t)(q - p) : strlen(p));
		if (u->path == NULL || u->path[0] != '/' || u->path[1] == '\0') {
			*why = "unix:// needs an absolute socket path";
			goto fail;
		}
		if (q != NULL && (strncmp(q, "?db=", 4) != 0 || parse_db(q + 4, &u->db) < 0)) {
			*why = "the query must be ?db=N";
			goto fail;
		}
		*why = NULL;
		r = 0;
		goto fail;
	}
	if (curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
		goto fail;
	scheme = url_part(h, CURLUPART_SCHEME, 0);
	path = url_part(h, CURLUPART_PATH, CURLU_URLDECODE);
	query = url_part(h, CURLUPART_QUERY, 0);
	u->username = url_part(h, CURLUPART_USER, CURLU_URLDECODE);
	u->password = url_part(h, CURLUPART_PASSWORD, CURLU_URLDECODE);
	if (u->username != NULL && *u->username == '\0') {
		free(u->username);
		u->username = NULL;
	}
	if (scheme == NULL)
		goto fail;
	if (strcmp(scheme, "rediss") == 0) {
		*why = "TLS (rediss://) is not supported by hiredis 0.14; use a local stunnel or unix socket";
		goto fail;
	}
	if (strcmp(scheme, "redis") == 0) {
		if ((u->host = url_part(h, CURLUPART_HOST, 0)) == NULL || *u->host == '\0') {
			*why = "no host";
			goto fail;
		}
		/* curl keeps the brackets of an IPv6 literal; hiredis wants the bare address. */
		if (u->host[0] == '[') {
			size_t n = strlen(u->host);
			memmove(u->host, u->host + 1, n - 2);
			u->host[n - 2] = '\0';
		}
		if ((port = url_part(h, CURLUPART_PORT, 0)) != NULL) {
			long long p;
			if (parse_ll(port, 1, 65535, &p) < 0) {
				*why = "bad port";
				goto fail;
			}
			u->port = (int)p;
		}
		if (path != NULL && strcmp(path, "/") != 0 && parse_db(path + 1, &u->db) < 0) {
			*why = "the path must be the database number";
			goto fail;
		}
		if (query != NULL) {
			*why = "unexpected query";
			goto fail;
		}
	} else {
		*why = "the scheme must be redis://, or unix:// for a socket";
		goto fail;
	}
	*why = NULL;
	r = 0;
fail:
	if (r < 0)
		redis_url_clear(u);
	free(scheme);
	free(path);
	free(query);
	free(port);
	curl_url_cleanup(h);
	return r;
}
