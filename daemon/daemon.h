/*
 * The state of one crmbridged process, shared by main.c (lifecycle) and
 * routes.c (the HTTP endpoints). Nothing outside daemon/ sees it.
 */
#ifndef CRMB_DAEMON_H
#define CRMB_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "conf.h"
#include "http.h"
#include "classifier/classifier.h"
#include "common/curlev.h"
#include "engine.h"
#include "intake.h"
#include "odoo/client.h"
#include "odoo/lead.h"
#include "sender.h"
#include "redis.h"

/* Webhook outcomes, for the status endpoint and later the metrics. */
struct webhook_stats {
	uint64_t requests, accepted, duplicates, spooled, failed;
	uint64_t bad_request, sig_missing, sig_invalid, sig_unconfigured;
	uint64_t status_callbacks;
};

struct daemon {
	sd_event *event;
	struct conf *conf;
	const char *conf_path; /* NULL: none */
	bool conf_required;
	struct http_server *http;
	struct rconn *redis;
	struct intake *intake;
	struct curlev *curl;
	struct sender *sender; /* NULL without Twilio credentials */
	struct lexicon *lexicon;
	struct gemini *gemini; /* NULL without GOOGLE_API_KEY */
	struct classifier *classifier;
	struct odoo *odoo; /* NULL without ODOO_URL */
	struct lead_ctx *leads;
	struct engine *engine;
	char consumer[96];
	bool odoo_probe_ok;
	struct odoo_error odoo_probe_error;
	struct webhook_stats wh;
	char bound[80]; /* the address the server got */
	uint64_t started; /* CLOCK_MONOTONIC usec */
	uint64_t started_rt; /* CLOCK_REALTIME usec */
	bool ready_sent;
	bool stopping;
	uint64_t stop_deadline;
	sd_event_source *drain;
	/* The last reload: when (realtime usec, 0 if none), whether it worked, how many errors. */
	uint64_t reload_at;
	bool reload_ok;
	unsigned reload_errors;
	uint64_t reloads;
};

/* The routing table served by crmbridged. */
extern const struct http_route daemon_routes[];
extern const size_t daemon_nroutes;

/*
 * Builds the classifier for c (lexicon, Gemini when keyed, policy) into the
 * out-pointers. Returns 0, or -1 with a reason in err (a bad lexicon).
 */
int daemon_classifier(struct daemon *d, const struct conf *c, struct lexicon **lx, struct gemini **g,
    struct classifier **cl, char *err, size_t errlen);

/* Builds an Odoo client and lead context for c (NULL without ODOO_URL); caller owns both. */
struct odoo *daemon_odoo(sd_event *e, struct curlev *cv, const struct conf *c, struct lead_ctx **leads);

/* Cancels the admin requests waiting for Redis (before the HTTP server stops). */
void routes_cancel(void);

/* Builds the http_limits for a configuration. */
void daemon_http_limits(const struct conf *c, struct http_limits *lim);

#endif
