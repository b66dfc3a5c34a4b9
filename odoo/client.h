/*
 * The Odoo client: execute_kw over XML-RPC (Odoo 8 to 21) or JSON-2
 * (Odoo 19 and later), asynchronous on the daemon's libcurl loop, with the
 * uid cached, one re-authentication on Access Denied, and every error
 * classified: configuration (bad db, login, rights, unknown field),
 * transient (network, 5xx, timeouts: retried with backoff) or data
 * (validation: reported, not retried).
 */
#ifndef CRMB_ODOO_CLIENT_H
#define CRMB_ODOO_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "common/curlev.h"

enum odoo_kind { ODOO_OK, ODOO_CONFIG, ODOO_TRANSIENT, ODOO_DATA };
enum odoo_protocol { ODOO_AUTO, ODOO_XMLRPC, ODOO_JSON2 };

struct odoo_error {
	enum odoo_kind kind;
	int fault_code; /* XML-RPC fault code, 0 if none */
	long http_status; /* 0 for a network error */
	/*
	 * The request reached the server but no answer came back (a timeout or a
	 * cut-off answer after it was sent, a proxy's 502/504): Odoo may have
	 * carried it out. A call that is not idempotent (create, message_post) is
	 * then never resent by the client; the caller finds out what happened.
	 */
	bool unknown;
	char message[256]; /* the fault's last line or the server's message */
};

/* result is borrowed (NULL on error); err->kind says which. */
typedef void (*odoo_done_fn)(json_t *result, const struct odoo_error *err, void *arg);

struct odoo_options {
	const char *url; /* https://mycompany.odoo.com */
	const char *db;
	const char *username;
	const char *password; /* or an API key; the bearer key for JSON-2 */
	enum odoo_protocol protocol;
	uint64_t timeout_ms;
	unsigned max_attempts; /* for transient errors */
	uint64_t backoff_ms;
};

/* Calls by method and outcome, for the metrics. */
#define ODOO_METHOD_SLOTS 24
struct odoo_method_count {
	char method[32]; /* "" marks a free slot */
	uint64_t by_kind[4]; /* indexed by enum odoo_kind */
};

struct odoo_info {
	enum odoo_protocol protocol; /* in use; ODOO_AUTO until decided */
	int uid;
	int major; /* server major version, 0 until known */
	char version[32];
	uint64_t calls, ok, transient, config, data, retries, reauths;
	struct odoo_error last_error;
	struct odoo_method_count methods[ODOO_METHOD_SLOTS];
};

struct odoo *odoo_new(sd_event *e, struct curlev *cv, const struct odoo_options *o);
/*
 * Frees the client; every pending call first gets its callback with a
 * transient "shutting down" error, and calls made from those callbacks are
 * refused the same way. NULL is fine.
 */
void odoo_free(struct odoo *o);
/*
 * Calls model.method(*args, **kwargs); args (a JSON array) and kwargs (an
 * object, or NULL) are stolen. done is called once, from the loop.
 */
void odoo_call(
    struct odoo *o, const char *model, const char *method, json_t *args, json_t *kwargs, odoo_done_fn done, void *arg);
void odoo_get_info(const struct odoo *o, struct odoo_info *info);
const char *odoo_kind_name(enum odoo_kind k);
const char *odoo_protocol_name(enum odoo_protocol p);
/*
 * True for the methods that may be sent twice with the same effect (reads,
 * write with absolute values): the client resends those after a timeout.
 */
bool odoo_method_idempotent(const char *method);
/* Parses "auto", "xmlrpc" or "json2"; -1 if none. */
int odoo_protocol_from_name(const char *s);

/*
 * Maps positional execute_kw arguments to JSON-2's named ones for the
 * methods crmbridge uses; returns a new object (caller owns), or NULL for a
 * method it does not know.
 */
/*
 * Interprets a JSON-2 answer to model/method(args): 0 and the result in
 * *result (a new reference); 1 when it is worth retrying (e holds why);
 * -1 for an error that is not (e holds its kind and message), -2 for the
 * same when the answer is not Odoo's JSON (a web server's or proxy's page).
 */
int odoo_json2_answer(const char *method, const json_t *args, long status, const char *body, size_t len,
    json_t **result, struct odoo_error *e);
json_t *odoo_json2_body(const char *method, const json_t *args, const json_t *kwargs);

#endif
