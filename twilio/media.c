/*
 * Inbound media from Twilio. See media.h.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "twilio/media.h"

#define MAX_REDIRECTS 3

struct origin {
	char *scheme, *host, *port;
};

static void
origin_clear(struct origin *o)
{
	curl_free(o->scheme);
	curl_free(o->host);
	curl_free(o->port);
	memset(o, 0, sizeof(*o));
}

static int
origin_of(const char *url, struct origin *o, char **path)
{
	CURLU *u = curl_url();
	int r = -1;

	memset(o, 0, sizeof(*o));
	if (path != NULL)
		*path = NULL;
	if (u == NULL)
		return -1;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &o->scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &o->host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &o->port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
	    (path == NULL || curl_url_get(u, CURLUPART_PATH, path, 0) == CURLUE_OK))
		r = 0;
	curl_url_cleanup(u);
	if (r < 0)
		origin_clear(o);
	return r;
}

static bool
same_origin(const struct origin *a, const struct origin *b)
{
	return strcasecmp(a->scheme, b->scheme) == 0 && strcasecmp(a->host, b->host) == 0 &&
	    strcmp(a->port, b->port) == 0;
}

/* /2010-04-01/Accounts/{AC}/Messages/{MM}/Media/{ME}: a message's media, nothing else of the account. */
static bool
media_path(const char *p)
{
	static const char *const seg[] = {"/2010-04-01/Accounts/", "/Messages/", "/Media/"};
	size_t i, n;

	for (i = 0; i < 3; i++) {
		if (strncmp(p, seg[i], strlen(seg[i])) != 0)
			return false;
		p += strlen(seg[i]);
		n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
		if (n == 0)
			return false;
		p += n;
	}
	return *p == '\0';
}

int
media_url_allowed(const char *url, const char *api_base, bool redirect, const char **why)
{
	struct origin u, api;
	char *path = NULL;
	int r = -1;

	*why = NULL;
	if (url == NULL || origin_of(url, &u, &path) < 0) {
		*why = "not a URL";
		return -1;
	}
	if (origin_of(api_base, &api, NULL) < 0) {
		origin_clear(&u);
		curl_free(path);
		*why = "twilio.api_base is not a URL";
		return -1;
	}
	if (same_origin(&u, &api)) {
		if (redirect || media_path(path))
			r = 0;
		else
			*why = "not a message media path on Twilio's API";
	} else if (redirect && strcasecmp(u.scheme, "https") == 0) {
		size_t n = strlen(u.host), k = strlen(".twiliocdn.com");
		if (n > k && strcasecmp(u.host + n - k, ".twiliocdn.com") == 0)
			r = 0;
		else
			*why = "a redirect away from Twilio's CDN";
	} else {
		*why = redirect ? "a redirect away from Twilio's CDN" : "not on Twilio's API host";
	}
	origin_clear(&u);
	origin_clear(&api);
	curl_free(path);
	return r;
}

struct fetch {
	struct curlev *cv;
	struct media_options o;
	char *api_base, *userpwd, *url, *mime;
	CURL *easy;
	struct curlbuf body;
	unsigned redirects, attempts;
	media_done_fn done;
	void *arg;
};

static void
fetch_end(struct fetch *f, int r, const char *why)
{
	f->done(r, why, f->mime, (const unsigned char *)f->body.data, f->body.len, f->arg);
	if (f->easy != NULL)
		curl_easy_cleanup(f->easy);
	curlbuf_reset(&f->body);
	if (f->userpwd != NULL)
		explicit_bzero(f->userpwd, strlen(f->userpwd));
	free(f->userpwd);
	free(f->api_base);
	free(f->url);
	free(f->mime);
	free(f);
}

static void start(struct fetch *f);

static void
on_done(CURL *easy, CURLcode res, void *arg)
{
	struct fetch *f = arg;
	long status = 0;
	char *loc = NULL, why[160];
	const char *no;
	struct curl_header *ct = NULL;

	if (res == CURLE_ABORTED_BY_CALLBACK) {
		fetch_end(f, -1, "the daemon is stopping");
		return;
	}
	if (res == CURLE_WRITE_ERROR || res == CURLE_FILESIZE_EXCEEDED) {
		snprintf(why, sizeof(why), "larger than the cap of %zu bytes", f->o.max_bytes);
		fetch_end(f, -1, why);
		return;
	}
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	if (res != CURLE_OK || status >= 500) {
		if (++f->attempts < 3) {
			curlbuf_reset(&f->body);
			start(f);
			return;
		}
		snprintf(why, sizeof(why), "%s", res != CURLE_OK ? curl_easy_strerror(res) : "Twilio answered 5xx");
		fetch_end(f, -1, why);
		return;
	}
	if (status == 301 || status == 302 || status == 303 || status == 307 || status == 308) {
		curl_easy_getinfo(easy, CURLINFO_REDIRECT_URL, &loc);
		if (loc == NULL || ++f->redirects > MAX_REDIRECTS) {
			fetch_end(f, -1, loc == NULL ? "a redirect without a location" : "too many redirects");
			return;
		}
		if (media_url_allowed(loc, f->api_base, true, &no) < 0) {
			fetch_end(f, -1, no);
			return;
		}
		free(f->url);
		f->url = xstrdup(loc);
		curlbuf_reset(&f->body);
		start(f);
		return;
	}
	if (status != 200) {
		snprintf(why, sizeof(why), "Twilio answered HTTP %ld", status);
		fetch_end(f, -1, why);
		return;
	}
	if (curl_easy_header(easy, "Content-Type", 0, CURLH_HEADER, -1, &ct) == CURLHE_OK && ct != NULL &&
	    ct->value != NULL && strchr(ct->value, '/') != NULL) {
		free(f->mime);
		f->mime = xstrndup(ct->value, strcspn(ct->value, "; "));
	}
	fetch_end(f, 0, NULL);
}

static void
start(struct fetch *f)
{
	struct origin u, api;
	bool creds = false;

	if (f->easy == NULL && (f->easy = curl_easy_init()) == NULL) {
		fetch_end(f, -1, "curl_easy_init failed");
		return;
	}
	curl_easy_reset(f->easy);
	/* Credentials only to Twilio's API host, never to where it redirects. */
	if (origin_of(f->url, &u, NULL) == 0 && origin_of(f->api_base, &api, NULL) == 0)
		creds = same_origin(&u, &api);
	origin_clear(&u);
	origin_clear(&api);
	curl_easy_setopt(f->easy, CURLOPT_URL, f->url);
	if (creds && f->userpwd != NULL) {
		curl_easy_setopt(f->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(f->easy, CURLOPT_USERPWD, f->userpwd);
	}
	curl_easy_setopt(f->easy, CURLOPT_FOLLOWLOCATION, 0L); /* each hop is checked here */
	curlev_defaults(f->easy, &f->body, f->o.timeout_ms);
	curl_easy_setopt(f->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)f->o.max_bytes);
	if (curlev_add(f->cv, f->easy, on_done, f) < 0)
		fetch_end(f, -1, "cannot start a transfer");
}

void
media_fetch(
    struct curlev *cv, const struct media_options *o, const char *url, const char *mime, media_done_fn done, void *arg)
{
	struct fetch *f = xcalloc(1, sizeof(*f));
	const char *why;

	f->cv = cv;
	f->o = *o;
	f->api_base = xstrdup(o->api_base != NULL ? o->api_base : "https://api.twilio.com");
	f->url = xstrdup(url != NULL ? url : "");
	f->mime = xstrdup(mime != NULL ? mime : "application/octet-stream");
	f->body.max = o->max_bytes;
	f->done = done;
	f->arg = arg;
	if (o->account_sid != NULL && o->auth_token != NULL)
		xasprintf(&f->userpwd, "%s:%s", o->account_sid, o->auth_token);
	if (media_url_allowed(f->url, f->api_base, false, &why) < 0) {
		fetch_end(f, -1, why);
		return;
	}
	start(f);
}
