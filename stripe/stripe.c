/*
 * Stripe Checkout Sessions over libcurl (see stripe.h).
 */
#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "stripe/stripe.h"

struct sreq {
	struct stripe *s; /* NULL once the client is gone */
	struct sreq *prev, *next;
	CURL *easy;
	struct curl_slist *hdrs;
	char *post;
	struct curlbuf resp;
	stripe_done_fn done;
	void *arg;
};

struct stripe {
	struct curlev *cv;
	char *url, *auth, *price, *success_url;
	uint64_t timeout_ms;
	struct sreq *reqs;
	struct stripe_stats st;
};

struct stripe *
stripe_new(struct curlev *cv, const struct stripe_options *o)
{
	struct stripe *s = xcalloc(1, sizeof(*s));
	size_t n = strlen(o->api_base);

	s->cv = cv;
	xasprintf(
	    &s->url, "%.*s/v1/checkout/sessions", (int)(n > 0 && o->api_base[n - 1] == '/' ? n - 1 : n), o->api_base);
	xasprintf(&s->auth, "Authorization: Bearer %s", o->secret_key);
	s->price = xstrdup(o->price);
	s->success_url = xstrdup(o->success_url);
	s->timeout_ms = o->timeout_ms;
	return s;
}

static void
sreq_free(struct sreq *r)
{
	if (r->s != NULL) {
		if (r->prev != NULL)
			r->prev->next = r->next;
		else
			r->s->reqs = r->next;
		if (r->next != NULL)
			r->next->prev = r->prev;
	}
	if (r->easy != NULL)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->hdrs);
	free(r->post);
	curlbuf_reset(&r->resp);
	free(r);
}

void
stripe_free(struct stripe *s)
{
	struct sreq *r;

	if (s == NULL)
		return;
	/* Transfers still running end later in on_done, which sees r->s == NULL. */
	for (r = s->reqs; r != NULL; r = r->next)
		r->s = NULL;
	explicit_bzero(s->auth, strlen(s->auth));
	free(s->auth);
	free(s->url);
	free(s->price);
	free(s->success_url);
	free(s);
}

static void
on_done(CURL *easy, CURLcode res, void *arg)
{
	struct sreq *r = arg;
	long status = 0;
	json_t *doc = NULL;
	const char *url = NULL;
	char why[160];

	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	if (res == CURLE_OK && r->resp.data != NULL)
		doc = json_loads(r->resp.data, 0, NULL);
	if (res != CURLE_OK) {
		curlev_network_error(easy, res, why, sizeof(why));
	} else if (status == 200 && (url = json_string_value(json_object_get(doc, "url"))) != NULL &&
	    strncmp(url, "https://", 8) == 0) {
		why[0] = '\0';
	} else {
		/* Stripe's errors: {"error": {"type": "invalid_request_error", "code": …, "message": …}}. */
		json_t *e = json_object_get(doc, "error");
		const char *m = json_string_value(json_object_get(e, "message"));
		const char *type = json_string_value(json_object_get(e, "type"));
		url = NULL;
		snprintf(why, sizeof(why), "HTTP %ld%s%.40s%s%.100s", status, type ? " " : "", type ? type : "",
		    m ? ": " : "", m ? m : "");
	}
	if (r->s != NULL) {
		if (url != NULL) {
			r->s->st.created++;
		} else {
			r->s->st.failed++;
			snprintf(r->s->st.last_error, sizeof(r->s->st.last_error), "%s", why);
			log_warnx("stripe: no Checkout Session (%s); the reply goes without a payment link", why);
		}
	}
	r->done(url, url != NULL ? NULL : why, r->arg);
	json_decref(doc);
	sreq_free(r);
}

void
stripe_checkout(struct stripe *s, const char *ref, const char *idem, stripe_done_fn done, void *arg)
{
	struct sreq *r = xcalloc(1, sizeof(*r));
	char *eprice, *esucc, *eref, *h;

	r->s = s;
	r->done = done;
	r->arg = arg;
	r->resp.max = 65536;
	if ((r->easy = curl_easy_init()) == NULL)
		fatalx("stripe: curl_easy_init failed");
	eprice = curl_easy_escape(r->easy, s->price, 0);
	esucc = curl_easy_escape(r->easy, s->success_url, 0);
	eref = curl_easy_escape(r->easy, ref, 0);
	xasprintf(&r->post,
	    "mode=payment&line_items%%5B0%%5D%%5Bprice%%5D=%s&line_items%%5B0%%5D%%5Bquantity%%5D=1&success_url=%s"
	    "&client_reference_id=%s&metadata%%5Bsource%%5D=crmbridge",
	    eprice, esucc, eref);
	curl_free(eprice);
	curl_free(esucc);
	curl_free(eref);
	r->hdrs = curl_slist_append(NULL, s->auth);
	xasprintf(&h, "Idempotency-Key: %s", idem);
	r->hdrs = curl_slist_append(r->hdrs, h);
	free(h);
	curl_easy_setopt(r->easy, CURLOPT_URL, s->url);
	curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->post);
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->hdrs);
	curlev_defaults(r->easy, &r->resp, s->timeout_ms);
	r->next = s->reqs;
	if (s->reqs != NULL)
		s->reqs->prev = r;
	s->reqs = r;
	if (curlev_add(s->cv, r->easy, on_done, r) < 0) {
		s->st.failed++;
		done(NULL, "cannot start the request", arg);
		sreq_free(r);
	}
}

void
stripe_get_stats(const struct stripe *s, struct stripe_stats *st)
{
	*st = s->st;
}
