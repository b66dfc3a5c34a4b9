/*
 * WhatsApp templates' text from Twilio's Content API (see content.h).
 */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "twilio/content.h"

#define REFRESH_MS (12ULL * 3600 * 1000)
#define BACKOFF_MIN_MS (30ULL * 1000)
#define BACKOFF_MAX_MS (30ULL * 60 * 1000)
#define NTEMPLATES 4

struct creq;

struct tmpl {
	struct content *c;
	char sid[40];
	char *body; /* NULL until fetched */
	json_t *defaults; /* the template's "variables" */
	json_t *types; /* the names of its types */
	char error[160];
	uint64_t fetched_ms, backoff_ms;
	sd_event_source *timer;
	struct creq *req; /* in flight */
};

struct creq {
	struct tmpl *t; /* NULL once the cache is gone */
	CURL *easy;
	struct curlbuf resp;
};

struct content {
	sd_event *event;
	struct curlev *cv;
	char *api_base, *userpwd;
	uint64_t timeout_ms;
	struct tmpl t[NTEMPLATES];
	unsigned n;
};

static void fetch(struct tmpl *t);

static int
on_timer(sd_event_source *s, uint64_t usec, void *arg)
{
	(void)s;
	(void)usec;
	fetch(arg);
	return 0;
}

static void
schedule(struct tmpl *t, uint64_t after_ms)
{
	uint64_t now;

	sd_event_now(t->c->event, CLOCK_MONOTONIC, &now);
	if (t->timer == NULL) {
		if (sd_event_add_time(
		        t->c->event, &t->timer, CLOCK_MONOTONIC, now + after_ms * 1000, 1000000, on_timer, t) < 0)
			t->timer = NULL;
		return;
	}
	sd_event_source_set_time(t->timer, now + after_ms * 1000);
	sd_event_source_set_enabled(t->timer, SD_EVENT_ONESHOT);
}

const char *
content_body(const json_t *resource)
{
	static const char *const order[] = {"twilio/text", "twilio/media", "twilio/quick-reply",
	    "twilio/call-to-action", "twilio/list-picker", "whatsapp/card"};
	const json_t *types = json_object_get(resource, "types"), *v;
	const char *k, *b;
	size_t i;

	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if ((b = json_string_value(json_object_get(json_object_get(types, order[i]), "body"))) != NULL)
			return b;
	/* Other types (twilio/card: a title) or ones newer than this code: the first text there is. */
	json_object_foreach((json_t *)(uintptr_t)types, k, v)
	{
		if ((b = json_string_value(json_object_get(v, "body"))) != NULL ||
		    (b = json_string_value(json_object_get(v, "title"))) != NULL)
			return b;
	}
	return NULL;
}

static void
on_fetched(CURL *easy, CURLcode res, void *arg)
{
	struct creq *r = arg;
	struct tmpl *t = r->t;
	long status = 0;
	json_t *doc = NULL;
	const char *body = NULL;

	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	if (t != NULL) {
		t->req = NULL;
		if (res == CURLE_OK && r->resp.data != NULL)
			doc = json_loads(r->resp.data, 0, NULL);
		if (res != CURLE_OK) {
			curlev_network_error(easy, res, t->error, sizeof(t->error));
		} else if (status == 200 && (body = content_body(doc)) != NULL) {
			const char *k;
			json_t *v;
			free(t->body);
			t->body = xstrdup(body);
			json_decref(t->defaults);
			t->defaults = json_incref(json_object_get(doc, "variables"));
			json_decref(t->types);
			t->types = json_array();
			json_object_foreach(json_object_get(doc, "types"), k, v)
			    json_array_append_new(t->types, json_string(k));
			t->error[0] = '\0';
			t->fetched_ms = realtime_usec() / 1000;
			t->backoff_ms = 0;
			log_info("content: template %s known (%zu characters)", t->sid, strlen(t->body));
		} else {
			/* Twilio's errors: {"code": 20404, "message": …, "more_info": …, "status": 404}. */
			const char *m = json_string_value(json_object_get(doc, "message"));
			json_int_t code = json_integer_value(json_object_get(doc, "code"));
			if (status == 200)
				snprintf(t->error, sizeof(t->error), "HTTP 200 without a text in any of its types");
			else
				snprintf(t->error, sizeof(t->error), "HTTP %ld%s%.0" JSON_INTEGER_FORMAT "%s%.100s",
				    status, code ? " code " : "", code, m ? ": " : "", m ? m : "");
		}
		if (t->error[0] != '\0') {
			/* Said loudly the first time: a wrong SID here is a template Twilio will refuse too. */
			if (t->backoff_ms == 0)
				log_warnx(
				    "content: template %s: %s; its text is not known (history shows a placeholder)",
				    t->sid, t->error);
			t->backoff_ms = t->backoff_ms == 0 ? BACKOFF_MIN_MS : t->backoff_ms * 2;
			if (t->backoff_ms > BACKOFF_MAX_MS)
				t->backoff_ms = BACKOFF_MAX_MS;
			schedule(t, t->backoff_ms);
		} else {
			schedule(t, REFRESH_MS);
		}
	}
	json_decref(doc);
	curl_easy_cleanup(r->easy);
	curlbuf_reset(&r->resp);
	free(r);
}

static void
fetch(struct tmpl *t)
{
	struct content *c = t->c;
	struct creq *r;
	char *url;

	if (t->req != NULL)
		return;
	r = xcalloc(1, sizeof(*r));
	r->t = t;
	r->resp.max = 256 * 1024;
	if ((r->easy = curl_easy_init()) == NULL)
		fatalx("content: curl_easy_init failed");
	xasprintf(&url, "%s/v1/Content/%s", c->api_base, t->sid);
	curl_easy_setopt(r->easy, CURLOPT_URL, url);
	free(url);
	curl_easy_setopt(r->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	curl_easy_setopt(r->easy, CURLOPT_USERPWD, c->userpwd);
	curlev_defaults(r->easy, &r->resp, c->timeout_ms);
	t->req = r;
	if (curlev_add(c->cv, r->easy, on_fetched, r) < 0) {
		t->req = NULL;
		curl_easy_cleanup(r->easy);
		free(r);
		schedule(t, BACKOFF_MIN_MS);
	}
}

struct content *
content_new(sd_event *e, struct curlev *cv, const struct content_options *o)
{
	struct content *c;
	size_t i, j, n;

	if (o->account_sid == NULL || o->auth_token == NULL)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->event = e;
	c->cv = cv;
	n = strlen(o->api_base);
	while (n > 0 && o->api_base[n - 1] == '/')
		n--;
	c->api_base = xstrndup(o->api_base, n);
	xasprintf(&c->userpwd, "%s:%s", o->account_sid, o->auth_token);
	c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
	for (i = 0; i < NTEMPLATES; i++) {
		bool dup = false;
		if (o->sids[i] == NULL || strlen(o->sids[i]) >= sizeof(c->t[0].sid))
			continue;
		for (j = 0; j < c->n; j++)
			dup |= strcmp(c->t[j].sid, o->sids[i]) == 0;
		if (dup)
			continue;
		c->t[c->n].c = c;
		snprintf(c->t[c->n].sid, sizeof(c->t[0].sid), "%s", o->sids[i]);
		c->n++;
	}
	if (c->n == 0) {
		content_free(c);
		return NULL;
	}
	for (i = 0; i < c->n; i++)
		fetch(&c->t[i]);
	return c;
}

void
content_free(struct content *c)
{
	unsigned i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++) {
		struct tmpl *t = &c->t[i];
		if (t->req != NULL)
			t->req->t = NULL; /* ends later in on_fetched, which then only frees it */
		sd_event_source_disable_unref(t->timer);
		free(t->body);
		json_decref(t->defaults);
		json_decref(t->types);
	}
	explicit_bzero(c->userpwd, strlen(c->userpwd));
	free(c->userpwd);
	free(c->api_base);
	free(c);
}

char *
content_render_text(const char *body, const json_t *vars, const json_t *defaults)
{
	size_t n = strlen(body), cap = n + 1, len = 0;
	char *out = xmalloc(cap);
	const char *p = body;

	while (*p != '\0') {
		const char *open = strstr(p, "{{"), *close, *ks, *ke, *v = NULL;
		size_t vl;
		if (open == NULL || (close = strstr(open + 2, "}}")) == NULL) {
			open = p + strlen(p);
			close = NULL;
		}
		/* The text before the placeholder. */
		vl = (size_t)(open - p);
		if (len + vl + 1 > cap)
			out = xreallocarray(out, cap = (len + vl + 1) * 2, 1);
		memcpy(out + len, p, vl);
		len += vl;
		if (close == NULL)
			break;
		for (ks = open + 2; *ks == ' '; ks++)
			;
		for (ke = close; ke > ks && ke[-1] == ' '; ke--)
			;
		if (ke > ks && (size_t)(ke - ks) < 64) {
			char key[64];
			memcpy(key, ks, (size_t)(ke - ks));
			key[ke - ks] = '\0';
			if ((v = json_string_value(json_object_get(vars, key))) == NULL)
				v = json_string_value(json_object_get(defaults, key));
		}
		if (v == NULL) {
			/* Unknown: kept as written. */
			v = open;
			vl = (size_t)(close + 2 - open);
		} else {
			vl = strlen(v);
		}
		if (len + vl + 1 > cap)
			out = xreallocarray(out, cap = (len + vl + 1) * 2, 1);
		memcpy(out + len, v, vl);
		len += vl;
		p = close + 2;
	}
	out[len] = '\0';
	return out;
}

char *
content_render(const struct content *c, const char *sid, const char *vars_json)
{
	json_t *vars;
	char *out;
	unsigned i;

	if (c == NULL || sid == NULL)
		return NULL;
	for (i = 0; i < c->n; i++)
		if (strcmp(c->t[i].sid, sid) == 0 && c->t[i].body != NULL)
			break;
	if (i == c->n)
		return NULL;
	vars = vars_json != NULL ? json_loads(vars_json, 0, NULL) : NULL;
	out = content_render_text(c->t[i].body, vars, c->t[i].defaults);
	json_decref(vars);
	return out;
}

json_t *
content_status(const struct content *c)
{
	json_t *o = json_object();
	unsigned i;

	for (i = 0; c != NULL && i < c->n; i++) {
		const struct tmpl *t = &c->t[i];
		json_object_set_new(o, t->sid,
		    json_pack("{s:b, s:O?, s:s?, s:o}", "known", t->body != NULL, "types", t->types, "error",
		        t->error[0] != '\0' ? t->error : NULL, "fetched_ms",
		        t->fetched_ms > 0 ? json_integer((json_int_t)t->fetched_ms) : json_null()));
	}
	return o;
}
