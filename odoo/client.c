/*
 * Odoo client. Calls queue until the protocol is known (version(), unless
 * configured) and, for XML-RPC, until authenticate() has given a uid. One
 * transfer per call through the curl loop; the multi handle keeps
 * connections alive and finished easy handles are kept for reuse.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "xmlrpc.h"

#define EASY_POOL 16

enum ostate { OS_NEW, OS_PROBING, OS_AUTHENTICATING, OS_READY };

struct ocall {
	struct odoo *o; /* NULL once the client is gone */
	char *model, *method;
	json_t *args, *kwargs;
	odoo_done_fn done;
	void *arg;
	unsigned attempt;
	bool reauthed;
	bool internal; /* version() or authenticate(), not a user call */
	int kind; /* internal: 1 version, 2 authenticate */
	CURL *easy;
	struct curl_slist *hdrs;
	char *body;
	struct curlbuf resp;
	sd_event_source *timer;
	struct ocall *prev, *next; /* in the pending queue or in flight */
};

struct odoo {
	sd_event *event;
	struct curlev *cv;
	struct odoo_options o;
	char *base;
	enum ostate state;
	struct ocall *queue, *queue_tail; /* waiting for the protocol or the uid */
	struct ocall *flight;
	bool closing;
	CURL *pool[EASY_POOL];
	unsigned npool;
	struct odoo_info info;
};

static void start(struct ocall *c);
static void setup(struct odoo *o);

const char *
odoo_kind_name(enum odoo_kind k)
{
	static const char *const n[] = {"ok", "config", "transient", "data"};
	return (unsigned)k < 4 ? n[k] : "?";
}

const char *
odoo_protocol_name(enum odoo_protocol p)
{
	return p == ODOO_XMLRPC ? "xmlrpc" : p == ODOO_JSON2 ? "json2" : "auto";
}

bool
odoo_method_idempotent(const char *method)
{
	static const char *const same[] = {"search", "search_read", "search_count", "read", "fields_get", "read_group",
	    "formatted_read_group", "check_access_rights", "has_access", "has_group", "context_get", "write", NULL};
	size_t i;

	for (i = 0; same[i] != NULL; i++)
		if (strcmp(method, same[i]) == 0)
			return true;
	return false;
}

int
odoo_protocol_from_name(const char *s)
{
	if (strcmp(s, "auto") == 0)
		return ODOO_AUTO;
	if (strcmp(s, "xmlrpc") == 0)
		return ODOO_XMLRPC;
	if (strcmp(s, "json2") == 0)
		return ODOO_JSON2;
	return -1;
}

/* ---- JSON-2 ---- */

json_t *
odoo_json2_body(const char *method, const json_t *args, const json_t *kwargs)
{
	json_t *b = kwargs != NULL ? json_deep_copy(kwargs) : json_object();
	json_t *a0 = json_array_get(args, 0), *a1 = json_array_get(args, 1), *a2 = json_array_get(args, 2);

	if (strcmp(method, "search") == 0 || strcmp(method, "search_read") == 0 ||
	    strcmp(method, "search_count") == 0) {
		json_object_set(b, "domain", a0 != NULL ? a0 : json_array());
	} else if (strcmp(method, "formatted_read_group") == 0) {
		json_object_set(b, "domain", a0);
		json_object_set(b, "groupby", a1);
		json_object_set(b, "aggregates", a2);
	} else if (strcmp(method, "read_group") == 0) {
		json_object_set(b, "domain", a0);
		json_object_set(b, "fields", a1);
		json_object_set(b, "groupby", a2);
	} else if (strcmp(method, "create") == 0) {
		json_object_set_new(b, "vals_list", json_is_array(a0) ? json_incref(a0) : json_pack("[O]", a0));
	} else if (strcmp(method, "write") == 0) {
		json_object_set(b, "ids", a0);
		json_object_set(b, "vals", a1);
	} else if (strcmp(method, "read") == 0) {
		json_object_set(b, "ids", a0);
		if (a1 != NULL)
			json_object_set(b, "fields", a1);
	} else if (strcmp(method, "fields_get") == 0) {
		if (a0 != NULL)
			json_object_set(b, "allfields", a0);
	} else if (strcmp(method, "default_get") == 0) {
		json_object_set(b, "fields", a0); /* fields_list before Odoo 18 */
	} else if (strcmp(method, "check_object_reference") == 0) {
		json_object_set(b, "module", a0);
		json_object_set(b, "xml_id", a1);
	} else if (strcmp(method, "has_access") == 0) {
		json_object_set(b, "operation", a0);
	} else if (strcmp(method, "message_post") == 0 || strcmp(method, "action_set_lost") == 0 ||
	    strcmp(method, "unlink") == 0 || strcmp(method, "check_access_rights") == 0) {
		if (strcmp(method, "check_access_rights") == 0)
			json_object_set(b, "operation", a0);
		else
			json_object_set(b, "ids", a0);
	} else if (json_array_size(args) > 0) {
		json_decref(b);
		return NULL;
	}
	return b;
}

/* ---- transfers ---- */

static void
unlink_flight(struct ocall *c)
{
	struct odoo *o = c->o;

	if (o == NULL)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else if (o->flight == c)
		o->flight = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static void
call_free(struct ocall *c)
{
	if (c->easy != NULL) {
		if (c->o != NULL && c->o->npool < EASY_POOL) {
			curl_easy_reset(c->easy);
			c->o->pool[c->o->npool++] = c->easy;
		} else {
			curl_easy_cleanup(c->easy);
		}
	}
	curl_slist_free_all(c->hdrs);
	sd_event_source_disable_unref(c->timer);
	json_decref(c->args);
	json_decref(c->kwargs);
	free(c->model);
	free(c->method);
	free(c->body);
	curlbuf_reset(&c->resp);
	free(c);
}

static void
count_method(struct odoo *o, const char *method, enum odoo_kind kind)
{
	size_t i;

	if ((unsigned)kind >= 4)
		return;
	for (i = 0; i < ODOO_METHOD_SLOTS; i++) {
		struct odoo_method_count *m = &o->info.methods[i];
		if (m->method[0] == '\0')
			snprintf(m->method, sizeof(m->method), "%s", method);
		if (strcmp(m->method, method) == 0) {
			m->by_kind[kind]++;
			return;
		}
	}
	o->info.methods[ODOO_METHOD_SLOTS - 1].by_kind[kind]++;
}

static void
finish(struct ocall *c, json_t *result, const struct odoo_error *err)
{
	struct odoo *o = c->o;

	unlink_flight(c);
	if (o != NULL && !c->internal) {
		switch (err->kind) {
		case ODOO_OK: o->info.ok++; break;
		case ODOO_CONFIG: o->info.config++; break;
		case ODOO_TRANSIENT: o->info.transient++; break;
		case ODOO_DATA: o->info.data++; break;
		}
		count_method(o, c->method, err->kind);
		if (err->kind != ODOO_OK)
			o->info.last_error = *err;
	}
	if (o != NULL && c->done != NULL)
		c->done(result, err, c->arg);
	call_free(c);
}

static void fail(struct ocall *c, enum odoo_kind kind, int fault, long status, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
fail(struct ocall *c, enum odoo_kind kind, int fault, long status, const char *fmt, ...)
{
	struct odoo_error e = {.kind = kind, .fault_code = fault, .http_status = status};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	va_end(ap);
	finish(c, NULL, &e);
}

/* Fails every queued call (setup failed for good). */
static void
fail_queue(struct odoo *o, const struct odoo_error *e)
{
	while (o->queue != NULL) {
		struct ocall *c = o->queue;
		o->queue = c->next;
		c->next = c->prev = NULL;
		c->o = o;
		finish(c, NULL, e);
	}
	o->queue_tail = NULL;
}

static void
enqueue(struct odoo *o, struct ocall *c)
{
	c->next = NULL;
	c->prev = o->queue_tail;
	if (o->queue_tail != NULL)
		o->queue_tail->next = c;
	else
		o->queue = c;
	o->queue_tail = c;
}

static void
run_queue(struct odoo *o)
{
	while (o->queue != NULL) {
		struct ocall *c = o->queue;
		o->queue = c->next;
		if (o->queue == NULL)
			o->queue_tail = NULL;
		c->next = c->prev = NULL;
		start(c);
	}
}

static int
on_retry(sd_event_source *s, uint64_t usec, void *arg)
{
	struct ocall *c = arg;

	c->timer = sd_event_source_disable_unref(c->timer);
	if (c->o == NULL) {
		call_free(c);
		return 0;
	}
	unlink_flight(c);
	start(c);
	return 0;
}

/*
 * Retries a transient failure with backoff, or reports it. unknown: the
 * request reached Odoo and may have been carried out; a call that is not
 * idempotent is then reported at once instead of being sent again.
 */
static void
transient(struct ocall *c, long status, bool unknown, const char *what)
{
	struct odoo *o = c->o;

	if (unknown && !c->internal && !odoo_method_idempotent(c->method)) {
		struct odoo_error e = {.kind = ODOO_TRANSIENT, .http_status = status, .unknown = true};
		snprintf(e.message, sizeof(e.message), "%s.%s: %s; it may have been carried out, so it is not resent",
		    c->model, c->method, what);
		finish(c, NULL, &e);
		return;
	}
	if (c->attempt < o->o.max_attempts) {
		uint64_t ms = o->o.backoff_ms << (c->attempt - 1);
		ms = ms / 2 + random_below(ms / 2 + 1);
		o->info.retries++;
		log_debug("odoo: %s.%s: %s; retry %u in %llu ms", c->model ? c->model : "common", c->method, what,
		    c->attempt, (unsigned long long)ms);
		if (sd_event_add_time(o->event, &c->timer, CLOCK_MONOTONIC, now_usec() + ms * 1000, 1000, on_retry, c) <
		    0)
			fatalx("odoo: sd_event_add_time failed");
		return;
	}
	{
		struct odoo_error e = {.kind = ODOO_TRANSIENT, .http_status = status, .unknown = unknown};
		snprintf(e.message, sizeof(e.message), "%s", what);
		finish(c, NULL, &e);
	}
}

/* A proxy's 502 or 504, or a server error without Odoo's own answer: the request may have run. */
static bool
status_unknown(long status)
{
	return status == 500 || status == 502 || status == 504;
}

/* Classifies an XML-RPC fault. */
static enum odoo_kind
fault_kind(const struct xmlrpc_fault *f)
{
	switch (f->code) {
	case 3:
	case 4: return ODOO_CONFIG;
	case 2: return ODOO_DATA;
	default:
		if (strstr(f->message, "Invalid field") != NULL || strstr(f->message, "does not exist") != NULL ||
		    strstr(f->message, "OperationalError") != NULL)
			return ODOO_CONFIG; /* unknown field, method or database */
		return ODOO_DATA;
	}
}

static void reauthenticate(struct ocall *c);

static void
on_xmlrpc_done(struct ocall *c, long status)
{
	struct odoo *o = c->o;
	struct xmlrpc_fault f;
	json_t *result;
	const char *why;
	int r;

	if (status >= 500 || status == 0) {
		char what[160];
		snprintf(what, sizeof(what), "HTTP %ld from %s/xmlrpc/2", status, o->base);
		transient(c, status, status_unknown(status), what);
		return;
	}
	if (status != 200) {
		fail(c, ODOO_CONFIG, 0, status, "HTTP %ld from %s/xmlrpc/2/%s (is odoo.url right?)", status, o->base,
		    c->internal ? "common" : "object");
		return;
	}
	r = xmlrpc_decode_response(c->resp.data, c->resp.len, &result, &f, &why);
	if (r < 0) {
		/* A proxy's error page or a cut-off answer: the call may have run. */
		transient(c, status, true, why);
		return;
	}
	if (r == 1) {
		if (f.code == 3 && !c->internal && !c->reauthed) {
			/* The uid or password went stale (password changed, session reset): log in again, once. */
			xmlrpc_fault_clear(&f);
			reauthenticate(c);
			return;
		}
		if (strstr(f.message, "cannot marshal None") != NULL) {
			/* The method ran and returned None, which XML-RPC cannot carry: a success. */
			struct odoo_error ok = {.kind = ODOO_OK};
			xmlrpc_fault_clear(&f);
			finish(c, json_null(), &ok);
			return;
		}
		{
			struct odoo_error e = {.kind = fault_kind(&f), .fault_code = f.code, .http_status = status};
			snprintf(e.message, sizeof(e.message), "%s", f.message);
			xmlrpc_fault_clear(&f);
			finish(c, NULL, &e);
		}
		return;
	}
	{
		struct odoo_error ok = {.kind = ODOO_OK};
		finish(c, result, &ok);
		json_decref(result);
	}
}

int
odoo_json2_answer(const char *method, const json_t *args, long status, const char *body, size_t len, json_t **result,
    struct odoo_error *e)
{
	json_t *doc = body != NULL ? json_loadb(body, len, JSON_DECODE_ANY, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(doc, "message"));
	const char *name = json_string_value(json_object_get(doc, "name"));
	int r;

	*result = NULL;
	memset(e, 0, sizeof(*e));
	e->http_status = status;
	if (status == 200 && doc != NULL) {
		json_t *v = doc;
		/* create over JSON-2 takes a list and returns one: give back what was asked for. */
		if (strcmp(method, "create") == 0 && json_is_array(doc) && !json_is_array(json_array_get(args, 0)))
			v = json_array_get(doc, 0);
		if (strcmp(method, "message_post") == 0 && json_is_array(doc))
			v = json_array_get(doc, 0);
		*result = json_incref(v != NULL ? v : json_null());
		r = 0;
	} else if (status == 0 || status >= 502 || (status == 500 && msg == NULL) || status == 409 ||
	    (status == 200 && doc == NULL) ||
	    (status == 500 && name != NULL && strstr(name, "SerializationFailure") != NULL)) {
		/* 409: Odoo's serialization failure, rolled back; 503: not served. The rest may have run. */
		e->kind = ODOO_TRANSIENT;
		e->unknown = status == 200 || status == 500 || status == 502 || status == 504;
		if (status == 200)
			snprintf(e->message, sizeof(e->message), "a cut-off or non-JSON answer");
		else if (status != 0)
			snprintf(
			    e->message, sizeof(e->message), "HTTP %ld%s%s", status, msg ? ": " : "", msg ? msg : "");
		else
			snprintf(e->message, sizeof(e->message), "no answer");
		r = 1;
	} else {
		/*
		 * As a real Odoo 19 answers (tests/data/odoo19): 401, 403, 404 (an unknown database, model or
		 * method), 400 and 415 (a request Odoo cannot read), 422 UnprocessableEntity (arguments the method
		 * does not take) and an unknown field (500 ValueError "Invalid field") are the set-up's fault; a
		 * validation error (422 ValidationError/UserError, 500 otherwise) or a deleted record (404
		 * MissingError) is the data's. 500 SerializationFailure was rolled back: tried again.
		 */
		e->kind = status == 422 || status == 500 ? ODOO_DATA : ODOO_CONFIG;
		if (name != NULL && strcmp(name, "odoo.exceptions.MissingError") == 0)
			e->kind = ODOO_DATA; /* a record deleted meanwhile (404 on 19) */
		else if ((msg != NULL && strstr(msg, "Invalid field") != NULL) ||
		    (name != NULL && strcmp(name, "werkzeug.exceptions.UnprocessableEntity") == 0))
			e->kind = ODOO_CONFIG; /* an unknown field, or a call this Odoo's methods do not take */
		e->fault_code = status == 401 ? 3 : status == 403 ? 4 : 0;
		if (msg != NULL)
			snprintf(e->message, sizeof(e->message), "%s (HTTP %ld%s%s)", msg, status, name ? ", " : "",
			    name ? name : "");
		else
			snprintf(e->message, sizeof(e->message), "HTTP %ld", status);
		r = doc != NULL ? -1 : -2;
	}
	json_decref(doc);
	return r;
}

static void
on_json2_done(struct ocall *c, long status)
{
	struct odoo *o = c->o;
	json_t *result;
	struct odoo_error e;
	int r = odoo_json2_answer(c->method, c->args, status, c->resp.data, c->resp.len, &result, &e);
	bool json = r != -2; /* Odoo's own JSON error, not a server's or a proxy's page */

	if (r == 0) {
		finish(c, result, &e);
		json_decref(result);
	} else if (r == 1) {
		transient(c, status, e.unknown, e.message);
	} else if (status == 404 && !json && o->info.major > 0 && o->info.major < 19) {
		fail(c, ODOO_CONFIG, 0, status,
		    "%s answered HTTP 404 to JSON-2 (/json/2/%s/%s): it is Odoo %s, and JSON-2 needs Odoo 19 or later; "
		    "set odoo.protocol = xmlrpc (or auto)",
		    o->base, c->model, c->method, o->info.version);
	} else if (status == 404 && !json) {
		fail(c, ODOO_CONFIG, 0, status,
		    "%s answered HTTP 404 (not Odoo's JSON) to /json/2/%s/%s for database '%s': the database does not "
		    "exist or the server's dbfilter hides it; check odoo.db and the server's dbfilter/db_name",
		    o->base, c->model, c->method, o->o.db);
	} else if (status == 401) {
		fail(c, ODOO_CONFIG, 3, status,
		    "%s refused the API key of user %s on database '%s' (HTTP 401): odoo.password must hold an API key "
		    "of that user (Preferences > Account Security > New API Key); %s",
		    o->base, o->o.username, o->o.db, e.message);
	} else {
		fail(c, e.kind, e.fault_code, status, "%s.%s: %s", c->model, c->method, e.message);
	}
}

/* GET /json/version: Odoo 19 and later answer it; 17 and 18 answer 404. */
static void
on_jversion_done(struct ocall *c, long status)
{
	json_t *doc = status == 200 ? json_loadb(c->resp.data ?: "", c->resp.len, 0, NULL) : NULL;
	struct odoo_error e = {.kind = ODOO_OK, .http_status = status};

	if (json_is_array(json_object_get(doc, "version_info"))) {
		finish(c, doc, &e);
		json_decref(doc);
		return;
	}
	json_decref(doc);
	if (status >= 500) {
		char what[160];
		snprintf(what, sizeof(what), "HTTP %ld from %s/json/version", status, c->o->base);
		transient(c, status, false, what);
		return;
	}
	e.kind = ODOO_CONFIG;
	snprintf(e.message, sizeof(e.message), "HTTP %ld from %s/json/version", status, c->o->base);
	finish(c, NULL, &e);
}

static void
on_done(CURL *easy, CURLcode res, void *arg)
{
	struct ocall *c = arg;
	long status = 0;

	if (c->o == NULL) {
		call_free(c);
		return;
	}
	if (res == CURLE_ABORTED_BY_CALLBACK) {
		/* The curl loop is going away before the client: the call fails like any other. */
		fail(c, ODOO_TRANSIENT, 0, 0, "aborted");
		return;
	}
	if (res != CURLE_OK) {
		char what[200];
		long sent = 0;
		/* Bytes of the request that went out: none means Odoo never saw it (no connection). */
		curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &sent);
		if (res == CURLE_OPERATION_TIMEDOUT && sent > 0)
			snprintf(what, sizeof(what), "no answer from %s within %llu ms", c->o->base,
			    (unsigned long long)c->o->o.timeout_ms);
		else
			snprintf(what, sizeof(what), "network: %s (%s)", curl_easy_strerror(res), c->o->base);
		curlbuf_reset(&c->resp);
		transient(c, 0, sent > 0, what);
		return;
	}
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	if (c->internal && c->kind == 3)
		on_jversion_done(c, status);
	else if (c->o->info.protocol == ODOO_JSON2 && !c->internal)
		on_json2_done(c, status);
	else
		on_xmlrpc_done(c, status);
}

/* Builds and starts the transfer for c (the body depends on the protocol and the uid). */
static void
start(struct ocall *c)
{
	struct odoo *o = c->o;
	char url[2048];
	json_t *params;

	c->attempt++;
	free(c->body);
	c->body = NULL;
	curlbuf_reset(&c->resp);
	c->resp.max = XMLRPC_MAX_BODY;
	curl_slist_free_all(c->hdrs);
	c->hdrs = NULL;
	if (!c->internal && o->state != OS_READY) {
		c->attempt--;
		enqueue(o, c);
		setup(o);
		return;
	}
	if (c->internal && c->kind == 3) {
		snprintf(url, sizeof(url), "%s/json/version", o->base);
	} else if (c->internal || o->info.protocol == ODOO_XMLRPC) {
		if (c->internal && c->kind == 1)
			params = json_array();
		else if (c->internal)
			params = json_pack("[s, s, s, {}]", o->o.db, o->o.username, o->o.password);
		else
			params = json_pack("[s, i, s, s, s, O, O]", o->o.db, o->info.uid, o->o.password, c->model,
			    c->method, c->args, c->kwargs);
		c->body = xmlrpc_encode_call(
		    c->internal ? (c->kind == 1 ? "version" : "authenticate") : "execute_kw", params);
		json_decref(params);
		if (c->body == NULL) {
			fail(c, ODOO_DATA, 0, 0, "arguments XML-RPC cannot carry");
			return;
		}
		snprintf(url, sizeof(url), "%s/xmlrpc/2/%s", o->base, c->internal ? "common" : "object");
		c->hdrs = curl_slist_append(NULL, "Content-Type: text/xml");
	} else {
		json_t *b = odoo_json2_body(c->method, c->args, c->kwargs);
		char auth[1024], dbh[512];
		if (b == NULL) {
			fail(c, ODOO_CONFIG, 0, 0, "method %s has no JSON-2 mapping", c->method);
			return;
		}
		c->body = json_dumps(b, JSON_COMPACT);
		json_decref(b);
		snprintf(url, sizeof(url), "%s/json/2/%s/%s", o->base, c->model, c->method);
		snprintf(auth, sizeof(auth), "Authorization: bearer %s", o->o.password);
		snprintf(dbh, sizeof(dbh), "X-Odoo-Database: %s", o->o.db); /* names the db when several share a host */
		c->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
		c->hdrs = curl_slist_append(c->hdrs, auth);
		c->hdrs = curl_slist_append(c->hdrs, dbh);
		explicit_bzero(auth, sizeof(auth));
	}
	if (c->easy == NULL) {
		if (o->npool > 0)
			c->easy = o->pool[--o->npool];
		else if ((c->easy = curl_easy_init()) == NULL)
			fatalx("odoo: curl_easy_init failed");
	}
	curl_easy_setopt(c->easy, CURLOPT_URL, url);
	if (c->body != NULL)
		curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body);
	else
		curl_easy_setopt(c->easy, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->hdrs);
	curlev_defaults(c->easy, &c->resp, o->o.timeout_ms);
	c->next = o->flight;
	c->prev = NULL;
	if (o->flight != NULL)
		o->flight->prev = c;
	o->flight = c;
	if (curlev_add(o->cv, c->easy, on_done, c) < 0)
		transient(c, 0, false, "cannot start a transfer");
}

/* ---- set-up: protocol and uid ---- */

static void
on_authenticated(json_t *r, const struct odoo_error *e, void *arg)
{
	struct odoo *o = arg;

	if (e->kind != ODOO_OK || !json_is_integer(r)) {
		struct odoo_error err = *e;
		if (e->kind == ODOO_OK) {
			err.kind = ODOO_CONFIG;
			snprintf(err.message, sizeof(err.message),
			    "login refused for %s on database %s (wrong username or password)", o->o.username, o->o.db);
		}
		o->state = OS_NEW;
		o->info.last_error = err;
		log_debug("odoo: authenticate: %s", err.message);
		fail_queue(o, &err);
		return;
	}
	o->info.uid = (int)json_integer_value(r);
	o->state = OS_READY;
	run_queue(o);
}

static void
internal_call(struct odoo *o, int kind, odoo_done_fn done)
{
	struct ocall *c = xcalloc(1, sizeof(*c));

	c->o = o;
	c->internal = true;
	c->kind = kind;
	c->method = xstrdup(kind == 2 ? "authenticate" : "version");
	c->done = done;
	c->arg = o;
	start(c);
}

static void
setup_failed(struct odoo *o, const struct odoo_error *e)
{
	o->state = OS_NEW;
	o->info.last_error = *e;
	fail_queue(o, e);
}

/* The version is known: the protocol follows, then the uid for XML-RPC. */
static void
version_known(struct odoo *o)
{
	if (o->o.protocol == ODOO_AUTO)
		o->info.protocol = o->info.major >= 19 ? ODOO_JSON2 : ODOO_XMLRPC;
	if (o->info.protocol == ODOO_JSON2 && o->info.major < 19) {
		struct odoo_error e = {.kind = ODOO_CONFIG, .http_status = 404};
		snprintf(e.message, sizeof(e.message),
		    "%s is Odoo %s, which has no JSON-2 (/json/2 needs Odoo 19 or later): set odoo.protocol = xmlrpc "
		    "(or auto)",
		    o->base, o->info.version);
		setup_failed(o, &e);
		return;
	}
	if (o->info.protocol == ODOO_JSON2) {
		o->state = OS_READY;
		run_queue(o);
	} else {
		o->state = OS_AUTHENTICATING;
		internal_call(o, 2, on_authenticated);
	}
}

/* XML-RPC common.version(): Odoo 8 to 21. */
static void
on_version(json_t *r, const struct odoo_error *e, void *arg)
{
	struct odoo *o = arg;
	json_t *vi = json_object_get(r, "server_version_info");

	if (e->kind == ODOO_OK && json_is_array(vi)) {
		o->info.major = (int)json_integer_value(json_array_get(vi, 0));
		snprintf(o->info.version, sizeof(o->info.version), "%s",
		    json_string_value(json_object_get(r, "server_version")) ?: "?");
	} else if (e->kind == ODOO_CONFIG && e->http_status == 404) {
		struct odoo_error err = *e;
		snprintf(err.message, sizeof(err.message),
		    "%s answered HTTP 404 to both /json/version and /xmlrpc/2/common: is odoo.url the address of the "
		    "Odoo server (without /odoo or /web)?",
		    o->base);
		setup_failed(o, &err);
		return;
	} else {
		setup_failed(o, e);
		return;
	}
	version_known(o);
}

/* GET /json/version: Odoo 19 and later, without the deprecated XML-RPC; a 404 means an older Odoo. */
static void
on_jversion(json_t *r, const struct odoo_error *e, void *arg)
{
	struct odoo *o = arg;
	json_t *vi = json_object_get(r, "version_info");

	if (e->kind == ODOO_OK) {
		o->info.major = (int)json_integer_value(json_array_get(vi, 0));
		snprintf(o->info.version, sizeof(o->info.version), "%s",
		    json_string_value(json_object_get(r, "version")) ?: "?");
		version_known(o);
	} else if (e->kind == ODOO_CONFIG) {
		internal_call(o, 1, on_version);
	} else {
		setup_failed(o, e);
	}
}

static void
setup(struct odoo *o)
{
	if (o->state != OS_NEW)
		return;
	o->state = OS_PROBING;
	if (o->o.protocol == ODOO_XMLRPC)
		internal_call(o, 1, on_version);
	else
		internal_call(o, 3, on_jversion);
}

static void
reauthenticate(struct ocall *c)
{
	struct odoo *o = c->o;

	unlink_flight(c);
	c->reauthed = true;
	c->attempt = 0;
	o->info.reauths++;
	o->info.uid = 0;
	enqueue(o, c);
	if (o->state == OS_READY) {
		o->state = OS_AUTHENTICATING;
		internal_call(o, 2, on_authenticated);
	}
}

/* ---- public ---- */

void
odoo_call(
    struct odoo *o, const char *model, const char *method, json_t *args, json_t *kwargs, odoo_done_fn done, void *arg)
{
	struct ocall *c;

	if (o->closing) {
		/* A callback run by odoo_free wants more: refuse at once. */
		struct odoo_error e = {.kind = ODOO_TRANSIENT};
		snprintf(e.message, sizeof(e.message), "the Odoo client is shutting down");
		json_decref(args);
		json_decref(kwargs);
		done(NULL, &e, arg);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->o = o;
	c->model = xstrdup(model);
	c->method = xstrdup(method);
	c->args = args != NULL ? args : json_array();
	c->kwargs = kwargs != NULL ? kwargs : json_object();
	c->done = done;
	c->arg = arg;
	o->info.calls++;
	start(c);
}

struct odoo *
odoo_new(sd_event *e, struct curlev *cv, const struct odoo_options *opt)
{
	struct odoo *o = xcalloc(1, sizeof(*o));
	size_t n = strlen(opt->url);

	o->event = sd_event_ref(e);
	o->cv = cv;
	o->o = *opt;
	o->o.url = NULL;
	o->o.db = xstrdup(opt->db);
	o->o.username = xstrdup(opt->username);
	o->o.password = xstrdup(opt->password);
	if (o->o.max_attempts == 0)
		o->o.max_attempts = 4;
	if (o->o.backoff_ms == 0)
		o->o.backoff_ms = 500;
	if (o->o.timeout_ms == 0)
		o->o.timeout_ms = 30000;
	o->base = xstrndup(opt->url, n > 0 && opt->url[n - 1] == '/' ? n - 1 : n);
	o->info.protocol = opt->protocol;
	return o;
}

void
odoo_free(struct odoo *o)
{
	struct ocall *c, *next;
	unsigned i;

	if (o == NULL)
		return;
	/* Every pending call hears that it failed, so its owner can let go of it. */
	o->closing = true;
	{
		struct odoo_error e = {.kind = ODOO_TRANSIENT};
		snprintf(e.message, sizeof(e.message), "the Odoo client is shutting down");
		for (c = o->flight; c != NULL; c = next) {
			next = c->next;
			if (c->done != NULL && !c->internal)
				c->done(NULL, &e, c->arg);
			c->done = NULL;
			c->o = NULL; /* curl frees it when its transfer ends */
			if (c->timer != NULL) {
				c->prev = c->next = NULL;
				call_free(c);
			}
		}
		for (c = o->queue; c != NULL; c = next) {
			next = c->next;
			if (c->done != NULL && !c->internal)
				c->done(NULL, &e, c->arg);
			c->o = NULL;
			call_free(c);
		}
	}
	for (i = 0; i < o->npool; i++)
		curl_easy_cleanup(o->pool[i]);
	if (o->o.password != NULL)
		explicit_bzero((void *)(uintptr_t)o->o.password, strlen(o->o.password));
	free((void *)(uintptr_t)o->o.db);
	free((void *)(uintptr_t)o->o.username);
	free((void *)(uintptr_t)o->o.password);
	free(o->base);
	sd_event_unref(o->event);
	free(o);
}

void
odoo_get_info(const struct odoo *o, struct odoo_info *info)
{
	*info = o->info;
}
