/*
 * The state of one crmbridged process, shared by main.c (lifecycle),
 * wire.c (the folders' contexts and the routing tables) and services.c.
 * Nothing outside daemon/ sees it: the other folders get their own context.
 */
#ifndef CRMB_DAEMON_H
#define CRMB_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "admin/admin.h"
#include "admin/analytics.h"
#include "admin/dashboard.h"
#include "classifier/classifier.h"
#include "common/curlev.h"
#include "common/http.h"
#include "common/prom.h"
#include "common/redis.h"
#include "conversation/engine.h"
#include "conversation/erase.h"
#include "conversation/journal.h"
#include "conversation/outreach.h"
#include "daemon/conf.h"
#include "odoo/client.h"
#include "odoo/lead.h"
#include "stripe/stripe.h"
#include "twilio/content.h"
#include "twilio/intake.h"
#include "twilio/sender.h"
#include "twilio/webhook.h"

/* Room in each routing table. */
#define DAEMON_MAX_ROUTES 64
#define DAEMON_MAX_DASH 16

/*
 * The webhook's sd-event priority: its HTTP server and the intake's Redis connection are dispatched before
 * turn work that is ready at the same time, so that Twilio's acknowledgement does not wait behind it.
 */
#define DAEMON_PRIORITY_WEBHOOK SD_EVENT_PRIORITY_IMPORTANT

struct profile;

struct daemon {
	sd_event *event;
	struct conf *conf;
	const char *conf_path; /* NULL: none */
	bool conf_required;
	struct http_server *http;
	struct http_server *admin_http; /* NULL: admin endpoints on http */
	struct rconn *redis;
	/*
	 * The webhook intake's own connection, its socket dispatched before the others: a webhook's store
	 * is not queued in Redis behind the turns' scripts, nor its answer read after theirs.
	 */
	struct rconn *intake_redis;
	struct intake *intake;
	struct curlev *curl;
	struct sender *sender; /* NULL without Twilio credentials */
	struct lexicon *lexicon;
	struct profile *profile; /* [business]; the classifier borrows it */
	struct {
		sd_event_source *timer; /* business.catalogue_refresh */
		bool busy; /* a read in flight */
		uint64_t at_ms; /* the last answer (realtime), 0: none yet */
		size_t items; /* products read the last time it worked */
		char error[400]; /* the last read's failure, "" if it worked */
	} catalogue; /* the profile's catalogue from Odoo (daemon/catalogue.c) */
	struct gemini *gemini; /* NULL without GOOGLE_API_KEY */
	struct classifier *classifier;
	struct odoo *odoo; /* NULL without ODOO_URL */
	struct lead_ctx *leads;
	struct engine *engine;
	struct journal *journal; /* leads without Odoo */
	struct analytics *analytics;
	struct stripe *stripe; /* NULL without a Stripe key */
	struct content *content; /* the templates' text (Twilio's Content API); NULL without templates */
	struct media_options media; /* inbound media: from Twilio, with its credentials (points into conf) */
	sd_event_source *retention_timer;
	sd_event_source *stats_timer;
	char consumer[96];
	char bound[80]; /* the address the server got */
	char admin_bound[80];
	bool ready_sent;
	uint64_t stop_deadline;
	sd_event_source *drain;
	/*
	 * The folders' contexts, filled by daemon_wire() from the services and the configuration above. The
	 * admin context also holds the process's facts it reports (start, stopping, reloads, the Odoo probe) and
	 * the admin token.
	 */
	struct webhook_ctx webhook;
	struct outreach_ctx outreach;
	struct erase_ctx erase;
	struct admin_ctx admin;
	/* The routing tables (daemon_routes()): everything on one listener, or public and admin apart. */
	struct http_route routes[DAEMON_MAX_ROUTES], public_routes[DAEMON_MAX_ROUTES], admin_routes[DAEMON_MAX_ROUTES];
	size_t nroutes, npublic_routes, nadmin_routes;
	struct dash_route dash[DAEMON_MAX_DASH]; /* the dashboard's routes' args */
};

/*
 * Fills (again) the folders' contexts from d's services and configuration: at start, and after a reload
 * swapped them, before anything can use the contexts again.
 */
void daemon_wire(struct daemon *d);
/* The intake's hook for a stored message (struct intake_options): arg is the daemon. */
void daemon_intake_stored(uint64_t due_ms, void *arg);
/* Assembles d's routing tables from the folders' handlers (the server's arg is &d->admin). */
void daemon_routes(struct daemon *d);

/*
 * Builds the classifier for c (lexicon, business profile, Gemini when keyed, policy) into the out-pointers.
 * Returns 0, or -1 with a reason in err (a bad lexicon or profile).
 */
int daemon_classifier(struct daemon *d, const struct conf *c, struct lexicon **lx, struct profile **prof,
    struct gemini **g, struct classifier **cl, char *err, size_t errlen);
/* The business profile of c ([business] and the file it names), or NULL with a reason in err. */
struct profile *daemon_profile(const struct conf *c, char *err, size_t errlen);
/* business.catalogue_from_odoo: reads the products that can be sold into the profile now (once Odoo answers). */
void daemon_catalogue_fetch(struct daemon *d);
/* Starts and stops its refresh every business.catalogue_refresh. */
void daemon_catalogue_start(struct daemon *d);
void daemon_catalogue_stop(struct daemon *d);
/* A reload's new profile and lexicon keep the products read from Odoo until the next read. */
void daemon_catalogue_carry(const struct conf *c, const struct profile *old, struct profile *to, struct lexicon *lx);
/* Its state for GET /api/profile: enabled, items, read_at_ms, error. */
json_t *daemon_catalogue_json(const struct daemon *d);

/* Builds an Odoo client and lead context for c (NULL without ODOO_URL); caller owns both. */
struct odoo *daemon_odoo(sd_event *e, struct curlev *cv, const struct conf *c, struct lead_ctx **leads);

/* The engine's outbound rules from a configuration. */
void daemon_outbound_options(const struct conf *c, struct engine_options *eo);
/* A Stripe client for c (NULL without a key). */
struct stripe *daemon_stripe(struct daemon *d, const struct conf *c);
/* The templates' text for the content SIDs c sends (NULL without Twilio credentials). */
struct content *daemon_content(struct daemon *d, const struct conf *c);

/* Builds the http_limits for a configuration. */
void daemon_http_limits(const struct conf *c, struct http_limits *lim);

#endif
