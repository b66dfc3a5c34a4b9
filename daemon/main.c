/*
 * crmbridged: the WhatsApp-to-Odoo lead bridge. This file owns the process:
 * options, configuration (and its reload on SIGHUP), the sd-event main loop
 * with the systemd notify protocol and watchdog, the HTTP server and the
 * Redis connection, and a bounded drain on SIGTERM.
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "common/util.h"
#include "classifier/profile.h"
#include "daemon/daemon.h"
#include "twilio/signature.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: crmbridged [-dhnpV] [-f file]   (--help, --version too)\n"
	    "  -f file  configuration file (default: $CRMBRIDGE_CONFIG or %s)\n"
	    "  -n       check the configuration and exit (0: valid, 1: not)\n"
	    "  -p       print the effective configuration, secrets redacted, and exit\n"
	    "  -d       log at debug level\n"
	    "  -V       print the version and exit\n"
	    "  -h       this help\n",
	    conf_default_path());
}

void
daemon_http_limits(const struct conf *c, struct http_limits *lim)
{
	int n;

	lim->max_body = c->http_max_body;
	lim->max_uri = c->http_max_uri;
	lim->max_connections = (unsigned)c->http_max_connections;
	lim->max_per_address = (unsigned)c->http_max_per_address;
	n = http_parse_addresses(c->http_proxy_addresses, lim->proxies, HTTP_MAX_PROXIES);
	lim->nproxies = n > 0 ? (unsigned)n : 0; /* validated with the configuration */
	lim->idle_timeout_s = (unsigned)((c->http_idle_timeout_ms + 999) / 1000);
	lim->request_timeout_ms = c->http_request_timeout_ms;
	lim->connection_memory = c->http_connection_memory;
	lim->body_memory = c->http_body_memory;
}

static void
print_errors(struct conf_errors *errs)
{
	size_t i;

	for (i = 0; i < errs->n; i++)
		log_error("%s", errs->msg[i]);
}

static void daemon_media_options(struct daemon *d);

/* Says, once at start, what the daemon does for each service that is not configured. */
/* Says what is left unconfigured; returns how many of those make the daemon refuse real traffic. */
static unsigned
announce_services(const struct conf *c)
{
	unsigned warnings = 0;

	if (c->webhook_verify_signature && (c->public_url == NULL || !conf_given(c, &c->twilio_auth_token))) {
		log_warnx("twilio: %s not set: webhook signatures cannot be checked, so every webhook will be refused "
		          "(403)",
		    c->public_url == NULL ? "server.public_url (CRMBRIDGE_PUBLIC_URL)"
		                          : "twilio.auth_token (credential twilio_auth_token, or TWILIO_AUTH_TOKEN)");
		warnings++;
	}
	if (c->twilio_account_sid == NULL)
		log_notice(
		    "twilio: twilio.account_sid (TWILIO_ACCOUNT_SID) not set: replies will not be sent through Twilio");
	if (!conf_model_on(c) &&
	    !conf_given(
	        c, conf_model_provider(c) == 1 ? (const void *)&c->openai_api_key : (const void *)&c->gemini_api_key))
		log_notice("classifier: %s not set: conversations will be classified by the offline rules",
		    conf_model_provider(c) == 1 ? "openai.api_key (credential openai_api_key, or OPENAI_API_KEY; or "
		                                  "openai.api_base)"
		                                : "gemini.api_key (credential google_api_key, or GOOGLE_API_KEY)");
	if (c->odoo_url == NULL)
		log_notice("odoo: odoo.url (ODOO_URL) not set: leads will not be written to Odoo");
	return warnings;
}

static void
notify_status(struct daemon *d)
{
	struct rconn_info ri;

	rconn_get_info(d->redis, &ri);
	if (ri.state == RCONN_UP)
		sd_notifyf(0, "STATUS=Listening on %s; Redis %s up", d->bound, ri.endpoint);
	else
		sd_notifyf(0, "STATUS=Listening on %s; waiting for Redis at %s%s%s", d->bound, ri.endpoint,
		    ri.last_error[0] ? ": " : "", ri.last_error);
}

static void
on_redis_state(struct rconn *rc, enum rconn_state state, void *arg)
{
	struct daemon *d = arg;

	if (d->redis == NULL)
		d->redis = rc; /* first callback may come before rconn_new returns */
	if (state == RCONN_UP && d->engine != NULL)
		engine_redis_up(d->engine);
	if (state == RCONN_UP && !d->ready_sent && !d->admin.stopping) {
		d->ready_sent = true;
		sd_notifyf(0, "READY=1\nSTATUS=Listening on %s; Redis up", d->bound);
		log_notice("ready: listening on %s", d->bound);
		return;
	}
	if (d->ready_sent)
		notify_status(d);
}

static void
on_intake_redis_state(struct rconn *rc, enum rconn_state state, void *arg)
{
	struct daemon *d = arg;

	if (state == RCONN_UP && d->intake != NULL)
		intake_redis_up(d->intake);
}

/* The daemon's Redis connections: the one everything shares, and the webhook intake's own. */
static void
redis_start(struct daemon *d, const struct conf *c)
{
	struct rconn_options ro = {
	    .url = c->redis_url,
	    .connect_timeout_ms = c->redis_connect_timeout_ms,
	    .ping_interval_ms = c->redis_ping_interval_ms,
	    .client_name = "crmbridged",
	};

	if ((d->redis = rconn_new(d->event, &ro, on_redis_state, d)) == NULL)
		fatalx("redis: invalid REDIS_URL"); /* conf_load checked it already */
	ro.name = "redis (webhook intake)";
	ro.client_name = "crmbridged-intake";
	ro.priority = DAEMON_PRIORITY_WEBHOOK;
	if ((d->intake_redis = rconn_new(d->event, &ro, on_intake_redis_state, d)) == NULL)
		fatalx("redis: invalid REDIS_URL");
	intake_set_redis(d->intake, d->intake_redis);
}

static void
redis_stop(struct daemon *d)
{
	if (d->intake != NULL)
		intake_set_redis(d->intake, NULL);
	rconn_free(d->intake_redis);
	d->intake_redis = NULL;
	rconn_free(d->redis);
	d->redis = NULL;
}

static void
on_odoo_probe(const struct lead_result *r, void *arg)
{
	struct daemon *d = arg;

	d->admin.odoo_ok = r->err.kind == ODOO_OK;
	d->admin.odoo_error = r->err;
	if (r->err.kind != ODOO_OK)
		log_warnx("odoo: %s error: %s; leads will be retried", odoo_kind_name(r->err.kind), r->err.message);
	else if (r->degraded)
		log_warnx("odoo: crm.lead lacks the x_ fields (run crmbridgectl odoo-setup): the AI values go to the "
		          "description");
	else
		log_info("odoo: crm.lead has the x_ fields");
	if (r->err.kind == ODOO_OK) {
		const char *why, *type = lead_ctx_lead_type(d->leads, &why);
		int team;
		const char *tname = lead_ctx_team(d->leads, &team);
		log_info("odoo: new leads: type %s (%s); sales team %d%s%s%s", type ? type : "?", why, team,
		    tname ? " (" : "", tname ? tname : "", tname ? ", the first sales team)" : "");
		if (type != NULL && strstr(why, "NOT") != NULL)
			log_warnx("odoo: %s", why);
		admin_refresh_lead_stats(&d->admin); /* the first analytics call has Odoo's figures */
		daemon_catalogue_fetch(d);
	}
}

static void
odoo_start(struct daemon *d, const struct conf *c)
{
	d->odoo = daemon_odoo(d->event, d->curl, c, &d->leads);
	d->admin.odoo_ok = false;
	if (d->leads == NULL && d->journal == NULL) {
		/* No Odoo: leads go to the embedded journal, listed by crmbridgectl leads. */
		struct journal_options jo = {.name_template = c->odoo_name_template,
		    .source_name = "WhatsApp",
		    .priority = {c->odoo_priority_cold, c->odoo_priority_warm, c->odoo_priority_hot}};
		char *path;
		xasprintf(&path, "%s/leads.jsonl", c->state_dir);
		jo.path = path;
		if ((d->journal = journal_open(&jo)) == NULL)
			log_error("journal: cannot open %s: %s; leads are kept in the conversations only", path,
			    strerror(errno));
		else
			log_notice("odoo: odoo.url (ODOO_URL) not set: leads go to the lead journal %s", path);
		free(path);
	}
	memset(&d->admin.odoo_error, 0, sizeof(d->admin.odoo_error));
	if (d->leads != NULL)
		lead_probe(d->leads, on_odoo_probe, d);
}

static void
odoo_stop(struct daemon *d)
{
	/* The client first: its pending calls end their lead chains, which use the context. */
	odoo_free(d->odoo);
	lead_ctx_free(d->leads);
	d->leads = NULL;
	d->odoo = NULL;
}

/* Starts the reply sender when Twilio's REST credentials and a sender are configured. */
/* A tagged message's outcome: the outreach endpoint waits for its template; a salesperson's message that
   failed is said on the lead (the inbox). */
static void
on_sent_result(const char *tag, json_t *res, void *arg)
{
	struct daemon *d = arg;

	outreach_on_result(tag, res, &d->outreach);
	if (d->engine != NULL)
		engine_agent_result(d->engine, tag, res);
}

static struct sender *
sender_start(struct daemon *d, const struct conf *c)
{
	struct sender_options so = {0};
	char *cb = NULL;
	struct sender *s;

	if (c->twilio_account_sid == NULL || c->twilio_auth_token == NULL ||
	    (c->twilio_whatsapp_from == NULL && c->twilio_messaging_service_sid == NULL))
		return NULL;
	if (c->public_url != NULL && c->twilio_status_callback) {
		size_t n = strlen(c->public_url);
		xasprintf(&cb, "%.*s/api/webhook/status", (int)(n > 0 && c->public_url[n - 1] == '/' ? n - 1 : n),
		    c->public_url);
	}
	so.api_base = c->twilio_api_base;
	so.account_sid = c->twilio_account_sid;
	so.auth_token = c->twilio_auth_token;
	so.from = c->twilio_whatsapp_from;
	so.messaging_service_sid = c->twilio_messaging_service_sid;
	so.status_callback = cb;
	so.key_prefix = c->redis_key_prefix;
	so.timeout_ms = c->twilio_send_timeout_ms;
	so.max_attempts = (unsigned)c->twilio_max_attempts;
	so.max_in_flight = (unsigned)c->twilio_max_in_flight;
	so.lease_ms = c->twilio_send_timeout_ms + 30000;
	so.backoff_min_ms = 1000;
	so.backoff_max_ms = 60000; /* a customer waits for the answer: a minute at most between tries */
	so.on_result = on_sent_result;
	so.result_arg = d;
	s = sender_new(d->event, d->curl, d->redis, &so);
	free(cb);
	return s;
}

static void
reload(struct daemon *d)
{
	struct conf_errors errs = {0};
	struct conf *c;
	struct http_limits lim;

	sd_notify(0, "RELOADING=1\nSTATUS=Reloading configuration");
	d->admin.reload_at = realtime_usec();
	d->admin.reloads++;
	c = conf_load(d->conf_path, d->conf_required, &errs);
	if (c == NULL) {
		print_errors(&errs);
		log_error("reload: %zu error%s; keeping the running configuration", errs.n, errs.n == 1 ? "" : "s");
		d->admin.reload_ok = false;
		d->admin.reload_errors = (unsigned)errs.n;
		conf_errors_clear(&errs);
		sd_notify(0, "READY=1");
		notify_status(d);
		return;
	}
	{
		/* A new lexicon must load before anything is swapped. */
		struct lexicon *lx;
		struct profile *prof;
		struct gemini *g;
		struct classifier *cl;
		char err[256];
		if (daemon_classifier(d, c, &lx, &prof, &g, &cl, err, sizeof(err)) < 0) {
			log_error("reload: %s; keeping the running configuration", err);
			conf_free(c);
			d->admin.reload_ok = false;
			d->admin.reload_errors = 1;
			sd_notify(0, "READY=1");
			notify_status(d);
			return;
		}
		daemon_catalogue_carry(c, d->profile, prof, lx);
		classifier_set_profile(cl, prof);
		/* The model's client first: its pending answers reach the old classifier, which is still whole. */
		gemini_free(d->gemini);
		classifier_free(d->classifier);
		lexicon_free(d->lexicon);
		profile_free(d->profile);
		d->lexicon = lx;
		d->profile = prof;
		d->gemini = g;
		d->classifier = cl;
	}
	log_setlevel(c->log_level);
	if (strcmp(c->listen, d->conf->listen) != 0 || (c->admin_listen == NULL) != (d->conf->admin_listen == NULL) ||
	    (c->admin_listen != NULL && strcmp(c->admin_listen, d->conf->admin_listen) != 0))
		log_warnx("reload: server.listen or server.admin_listen changed; it takes effect at the next restart");
	daemon_http_limits(c, &lim);
	http_set_limits(d->http, &lim);
	if (d->admin_http != NULL)
		http_set_limits(d->admin_http, &lim);
	if (strcmp(c->redis_url, d->conf->redis_url) != 0 ||
	    c->redis_connect_timeout_ms != d->conf->redis_connect_timeout_ms ||
	    c->redis_ping_interval_ms != d->conf->redis_ping_interval_ms) {
		log_notice("reload: Redis settings changed; reconnecting");
		redis_stop(d);
		redis_start(d, c);
		if (d->sender != NULL)
			sender_set_redis(d->sender, d->redis);
	}
	/* Odoo settings may have changed: a new client, probed again. */
	odoo_stop(d);
	odoo_start(d, c);
	/* Twilio settings may have changed: a new sender; claimed replies come back after their lease. */
	sender_free(d->sender);
	d->sender = sender_start(d, c);
	stripe_free(d->stripe);
	d->stripe = daemon_stripe(d, c);
	content_free(d->content);
	d->content = daemon_content(d, c);
	{
		struct engine_options eo = {0};
		daemon_outbound_options(c, &eo);
		engine_set_outbound(d->engine, &eo);
	}
	conf_free(d->conf);
	d->conf = c;
	daemon_media_options(d);
	daemon_wire(d);
	if (admin_token_init(&d->admin, c->admin_token, c->state_dir) < 0)
		log_error("reload: no admin token; admin endpoints refuse everyone until one is set");
	d->admin.reload_ok = true;
	d->admin.reload_errors = 0;
	log_notice("reload: configuration reloaded%s%s", c->path ? " from " : "", c->path ? c->path : "");
	announce_services(c);
	sd_notify(0, "READY=1");
	notify_status(d);
}

static int
on_drain(sd_event_source *es, uint64_t usec, void *arg)
{
	struct daemon *d = arg;
	struct http_stats st;

	http_get_stats(d->http, &st);
	/* The turns' counts waiting in memory are written before the process goes. */
	analytics_flush(d->analytics);
	if ((st.in_flight == 0 && !analytics_busy(d->analytics)) || now_usec() >= d->stop_deadline) {
		if (st.in_flight > 0)
			log_warnx("shutdown: %llu request(s) still in progress after the drain timeout",
			    (unsigned long long)st.in_flight);
		sd_event_exit(d->event, 0);
		return 0;
	}
	sd_event_source_set_time(es, now_usec() + 50000);
	sd_event_source_set_enabled(es, SD_EVENT_ONESHOT); /* a time source is off once it has fired */
	return 0;
}

/* Where inbound media may be fetched from, and with which credentials (from d->conf). */
static void
daemon_media_options(struct daemon *d)
{
	d->media.api_base = d->conf->twilio_api_base;
	d->media.account_sid = d->conf->twilio_account_sid;
	d->media.auth_token = d->conf->twilio_auth_token;
	d->media.max_bytes = (size_t)d->conf->twilio_media_max;
	d->media.timeout_ms = 20000;
}

static int
on_retention(sd_event_source *es, uint64_t usec, void *arg)
{
	struct daemon *d = arg;

	erase_retention_sweep(&d->erase);
	sd_event_source_set_time(es, now_usec() + d->conf->privacy_sweep_interval_ms * 1000);
	sd_event_source_set_enabled(es, SD_EVENT_ON);
	return 0;
}

static int
on_signal(sd_event_source *es, const struct signalfd_siginfo *si, void *arg)
{
	struct daemon *d = arg;
	int r;

	if (si->ssi_signo == SIGHUP) {
		if (!d->admin.stopping)
			reload(d);
		return 0;
	}
	if (d->admin.stopping) {
		log_notice("shutdown: second signal, stopping now");
		sd_event_exit(d->event, 0);
		return 0;
	}
	d->admin.stopping = true;
	log_notice("shutdown: %s received, draining for up to %llu ms", strsignal((int)si->ssi_signo),
	    (unsigned long long)d->conf->shutdown_timeout_ms);
	sd_notify(0, "STOPPING=1\nSTATUS=Stopping");
	http_quiesce(d->http);
	if (d->admin_http != NULL)
		http_quiesce(d->admin_http);
	d->stop_deadline = now_usec() + d->conf->shutdown_timeout_ms * 1000;
	if ((r = sd_event_add_time(d->event, &d->drain, CLOCK_MONOTONIC, 0, 10000, on_drain, d)) < 0) {
		sd_event_exit(d->event, 0);
		return 0;
	}
	return 0;
}

/* Creates the state directory if needed; it must be ours and writable. */
static void
prepare_state_dir(const char *dir)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		fatal("state directory %s: cannot create (set CRMBRIDGE_STATE_DIR or server.state_dir)", dir);
	if (access(dir, W_OK | X_OK) < 0)
		fatal("state directory %s: not writable (set CRMBRIDGE_STATE_DIR or server.state_dir)", dir);
}

int
main(int argc, char *argv[])
{
	struct daemon d;
	struct conf_errors errs = {0};
	struct http_limits lim;
	sigset_t ss;
	const char *path;
	bool check = false, print = false, debug = false, required = false;
	int ch, fd, r;

	memset(&d, 0, sizeof(d));
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0}};

	while ((ch = getopt_long(argc, argv, "df:hnpV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd': debug = true; break;
		case 'f':
			d.conf_path = optarg;
			required = true;
			break;
		case 'h': usage(stdout); return 0;
		case 'n': check = true; break;
		case 'p': print = true; break;
		case 'V': printf("crmbridged %s\n", PACKAGE_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (d.conf_path == NULL && (path = getenv("CRMBRIDGE_CONFIG")) != NULL && *path != '\0') {
		d.conf_path = path;
		required = true;
	}
	if (d.conf_path == NULL)
		d.conf_path = conf_default_path();
	d.conf_required = required;

	if (crypto_init() < 0)
		fatalx("libgcrypt is older than 1.8");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx("libcurl failed to initialise");

	d.conf = conf_load(d.conf_path, required, &errs);
	if (d.conf == NULL) {
		print_errors(&errs);
		log_error("configuration: %zu error%s", errs.n, errs.n == 1 ? "" : "s");
		conf_errors_clear(&errs);
		curl_global_cleanup();
		return 1;
	}
	log_setlevel(debug ? LOG_DEBUG : d.conf->log_level);
	{
		/* Secrets in the credential store that this process was not given: fine for a check by hand, not
		 * for running (the service gets them from systemd, with LoadCredentialEncrypted= in its drop-in). */
		char pend[1024];
		if (conf_pending(d.conf, pend, sizeof(pend)) > 0) {
			if (!check && !print) {
				log_error("configuration: %s: in the credential store but not given to this process; "
				          "run it as "
				          "the service (systemctl start crmbridged), with LoadCredentialEncrypted= for "
				          "each in "
				          "its drop-in (docs/DEPLOY.md, section 4)",
				    pend);
				conf_free(d.conf);
				curl_global_cleanup();
				return 1;
			}
			log_notice(
			    "configuration: %s: in the credential store, given to the service at its start (not read "
			    "here)",
			    pend);
		}
	}
	if (check || print) {
		if (print) {
			json_t *j = conf_to_json(d.conf);
			json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			putchar('\n');
			json_decref(j);
		}
		if (check) {
			struct lexicon *lx;
			char err[256];
			struct profile *prof;
			if ((lx = lexicon_load(d.conf->classifier_lexicon, err, sizeof(err))) == NULL) {
				log_error("classifier.lexicon: %s", err);
				conf_free(d.conf);
				curl_global_cleanup();
				return 1;
			}
			lexicon_free(lx);
			if ((prof = daemon_profile(d.conf, err, sizeof(err))) == NULL) {
				log_error("%s", err);
				conf_free(d.conf);
				curl_global_cleanup();
				return 1;
			}
			profile_free(prof);
			unsigned warnings = announce_services(d.conf);
			printf("configuration OK%s%s%s\n", d.conf->path ? ": " : " (built-in defaults)",
			    d.conf->path ? d.conf->path : "",
			    warnings > 0 ? "; but see the warning above: it will refuse real traffic as it is" : "");
		}
		conf_free(d.conf);
		curl_global_cleanup();
		return 0;
	}

	/* Signals arrive through signalfd in the loop, never asynchronously. */
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &ss, NULL) < 0)
		fatal("sigprocmask");
	signal(SIGPIPE, SIG_IGN);

	/*
	 * A loop of our own rather than sd_event_default(): the default loop checks
	 * with gettid(2) at every iteration that it runs in its thread, a system
	 * call per wake-up that one thread does not need.
	 */
	if ((r = sd_event_new(&d.event)) < 0)
		fatalx("sd_event_new: %s", strerror(-r));
	if ((r = sd_event_add_signal(d.event, NULL, SIGTERM, on_signal, &d)) < 0 ||
	    (r = sd_event_add_signal(d.event, NULL, SIGINT, on_signal, &d)) < 0 ||
	    (r = sd_event_add_signal(d.event, NULL, SIGHUP, on_signal, &d)) < 0)
		fatalx("sd_event_add_signal: %s", strerror(-r));
	/* sd-event sends WATCHDOG=1 from the loop at half of WATCHDOG_USEC. */
	if ((r = sd_event_set_watchdog(d.event, 1)) < 0)
		fatalx("sd_event_set_watchdog: %s", strerror(-r));

	d.admin.started = now_usec();
	d.admin.started_rt = realtime_usec();
	log_info("crmbridged %s starting%s%s", PACKAGE_VERSION, d.conf->path ? ", configuration " : "",
	    d.conf->path ? d.conf->path : "");
	announce_services(d.conf);
	prepare_state_dir(d.conf->state_dir);

	if ((fd = http_listen_socket(d.conf->listen, d.bound, sizeof(d.bound))) < 0) {
		errno = -fd;
		fatal("http: cannot listen on %s", d.conf->listen);
	}
	daemon_http_limits(d.conf, &lim);
	daemon_routes(&d);
	if (admin_token_init(&d.admin, d.conf->admin_token, d.conf->state_dir) < 0)
		fatalx("admin: no usable admin token (see the error above; CRMBRIDGE_ADMIN_TOKEN sets one)");
	if (d.conf->admin_listen != NULL) {
		/* Admin endpoints on their own address (a loopback or management network); webhooks on the main one. */
		int afd = http_listen_socket(d.conf->admin_listen, d.admin_bound, sizeof(d.admin_bound));
		if (afd < 0) {
			errno = -afd;
			fatal("http: cannot listen on %s (server.admin_listen)", d.conf->admin_listen);
		}
		if ((d.http = http_new(d.event, fd, &lim, d.public_routes, d.npublic_routes, &d.admin)) == NULL ||
		    (d.admin_http = http_new(d.event, afd, &lim, d.admin_routes, d.nadmin_routes, &d.admin)) == NULL)
			fatalx("http: cannot start the server");
		log_notice("http: listening on %s; admin endpoints on %s", d.bound, d.admin_bound);
	} else {
		if ((d.http = http_new(d.event, fd, &lim, d.routes, d.nroutes, &d.admin)) == NULL)
			fatalx("http: cannot start the server");
		log_notice("http: listening on %s", d.bound);
	}
	http_set_priority(d.http, DAEMON_PRIORITY_WEBHOOK);

	{
		struct intake_options io = {
		    .state_dir = d.conf->state_dir,
		    .key_prefix = d.conf->redis_key_prefix,
		    .dedupe_ttl_s = d.conf->webhook_dedupe_ttl_ms / 1000,
		    .redis_timeout_ms = d.conf->webhook_redis_timeout_ms,
		    .coalesce_window_ms = d.conf->engine_coalesce_window_ms,
		    .coalesce_max_ms = d.conf->engine_coalesce_max_ms,
		    .stored = daemon_intake_stored,
		    .stored_arg = &d,
		};
		if ((d.intake = intake_new(d.event, NULL, &io)) == NULL)
			fatal("intake: cannot open the spool under %s", d.conf->state_dir);
	}
	if ((d.curl = curlev_new(d.event)) == NULL)
		fatalx("libcurl: cannot create a multi handle");
	redis_start(&d, d.conf);
	d.sender = sender_start(&d, d.conf);
	d.stripe = daemon_stripe(&d, d.conf);
	d.content = daemon_content(&d, d.conf);
	admin_metrics_init(&d.admin);
	d.analytics = analytics_new(d.event, d.conf->redis_key_prefix, d.conf->engine_conversation_ttl_ms);
	odoo_start(&d, d.conf);
	{
		/* The engine reads its collaborators through these pointers, so a reload can swap them. */
		struct engine_deps deps = {&d.redis, &d.classifier, &d.sender, &d.leads, &d.journal, &d.lexicon,
		    &d.stripe, &d.curl, &d.media, admin_on_turn, &d.admin, &d.content};
		daemon_media_options(&d);
		struct engine_options eo = {
		    .key_prefix = d.conf->redis_key_prefix,
		    .consumer = d.consumer,
		    .coalesce_window_ms = d.conf->engine_coalesce_window_ms,
		    .coalesce_max_ms = d.conf->engine_coalesce_max_ms,
		    .max_turns = (unsigned)d.conf->engine_max_turns,
		    .turn_lease_ms = d.conf->engine_turn_lease_ms,
		    .history_cap = (unsigned)d.conf->engine_history,
		    .context_messages = (unsigned)d.conf->engine_context_messages,
		    .conversation_ttl_s = d.conf->engine_conversation_ttl_ms / 1000,
		    .max_turn_attempts = (unsigned)d.conf->engine_max_turn_attempts,
		    .poll_ms = 50,
		};
		daemon_outbound_options(d.conf, &eo);
		char host[64] = "host";
		gethostname(host, sizeof(host) - 1);
		snprintf(d.consumer, sizeof(d.consumer), "%s-%d-%llu", host, (int)getpid(),
		    (unsigned long long)random_below(1000000));
		eo.consumer = d.consumer;
		d.engine = engine_new(d.event, &deps, &eo);
		if (rconn_state(d.redis) == RCONN_UP)
			engine_redis_up(d.engine);
	}
	{
		char err[256];
		if (daemon_classifier(&d, d.conf, &d.lexicon, &d.profile, &d.gemini, &d.classifier, err, sizeof(err)) <
		    0)
			fatalx("%s", err);
	}
	daemon_wire(&d); /* every service is there: the folders' contexts can point at them */
	if (rconn_state(d.intake_redis) == RCONN_UP)
		intake_redis_up(d.intake);
	if (!d.ready_sent)
		notify_status(&d);

	daemon_catalogue_start(&d);
	/* History retention: a sweep now and then (the turns prune their own conversation too). */
	if (sd_event_add_time(
	        d.event, &d.retention_timer, CLOCK_MONOTONIC, now_usec() + 5000000, 1000000, on_retention, &d) < 0)
		fatalx("sd_event_add_time failed");
	r = sd_event_loop(d.event);
	if (r < 0)
		log_error("event loop: %s", strerror(-r));

	/*
	 * Shutdown order: the engine first (it only cleans up from now on), the
	 * intake (answers what waits for Redis from the spool) and HTTP; then
	 * the clients, each answering its pending calls; then curl, the sender
	 * and Redis, whose last callbacks let the engine go.
	 */
	engine_free(d.engine);
	intake_free(d.intake);
	d.intake = NULL;
	admin_cancel();
	dashboard_cancel();
	outreach_cancel();
	outreach_cancel_pauses();
	erase_cancel();
	d.retention_timer = sd_event_source_disable_unref(d.retention_timer);
	http_free(d.admin_http);
	http_free(d.http);
	odoo_stop(&d);
	gemini_free(d.gemini);
	d.gemini = NULL;
	content_free(d.content); /* before its transfers are aborted: nothing to report then */
	curlev_free(d.curl); /* aborts sends in flight; their leases bring them back */
	sender_free(d.sender);
	stripe_free(d.stripe);
	daemon_catalogue_stop(&d);
	classifier_free(d.classifier);
	lexicon_free(d.lexicon);
	profile_free(d.profile);
	redis_stop(&d);
	journal_free(d.journal);
	analytics_free(d.analytics);
	sd_event_source_disable_unref(d.drain);
	sd_event_unref(d.event);
	conf_free(d.conf);
	admin_ctx_clear(&d.admin);
	twsig_forget();
	curl_global_cleanup();
	log_info("stopped");
	return r < 0 ? 1 : 0;
}
