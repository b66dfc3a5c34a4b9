/*
 * crmbridgectl status (the daemon and its dependencies at a glance) and
 * crmbridgectl dashboard (a one-time login link for the admin dashboard).
 */
#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "admin-private.h"

/* ---- status ---- */

int
ctl_status(struct ctl *c)
{
	json_t *j = admin_call(c, "GET", "/system/status"), *x, *q;
	char up[32], detail[400];

	if (j == NULL)
		return 1;
	if (c->json) {
		print_json(j);
		json_decref(j);
		return 0;
	}
	duration_text(i_of(j, "uptime_s"), up, sizeof(up));
	printf("crmbridged %s: %s, up %s, listening on %s\n\n", s_or(j, "version", "?"), s_or(j, "status", "?"), up,
	    s_or(j, "listen", "?"));
	printf("%-12s %-14s %s\n", "DEPENDENCY", "STATE", "DETAIL");
	x = json_object_get(j, "redis");
	snprintf(detail, sizeof(detail), "%s, %lld reconnects%s%s", s_or(x, "endpoint", "?"), i_of(x, "reconnects"),
	    json_is_string(json_object_get(x, "last_error")) ? ", last error: " : "", s_or(x, "last_error", ""));
	printf("%-12s %-14s %s\n", "redis", s_or(x, "state", "?"), detail);
	x = json_object_get(j, "odoo");
	if (json_is_object(x)) {
		json_t *le = json_object_get(x, "last_error");
		snprintf(detail, sizeof(detail), "%s, Odoo %s over %s, x_ fields %s, %lld calls%s%s",
		    s_or(x, "url", "?"), s_or(x, "version", "?"), s_or(x, "protocol", "?"),
		    json_is_true(json_object_get(x, "x_fields")) ? "present" : "MISSING (crmbridgectl odoo-setup)",
		    i_of(x, "calls"), json_is_object(le) ? ", last error: " : "",
		    json_is_object(le) ? s_or(le, "message", "") : "");
		printf("%-12s %-14s %s\n", "odoo",
		    json_is_true(json_object_get(x, "reachable")) ? "reachable" : "unreachable", detail);
	} else {
		x = json_object_get(j, "lead_store");
		snprintf(detail, sizeof(detail), "leads go to the lead journal (%lld lead%s; crmbridgectl leads)",
		    i_of(x, "leads"), i_of(x, "leads") == 1 ? "" : "s");
		printf("%-12s %-14s %s\n", "odoo", "not set", detail);
	}
	x = json_object_get(j, "classifier");
	if (json_is_object(q = json_object_get(x, "gemini"))) {
		snprintf(detail, sizeof(detail), "%s, %lld calls, %lld failures, breaker %s%s%s", s_or(q, "model", "?"),
		    i_of(q, "calls"), i_of(q, "failures"), s_or(q, "breaker", "?"),
		    json_is_string(json_object_get(q, "last_error")) ? ", last error: " : "",
		    s_or(q, "last_error", ""));
		printf("%-12s %-14s %s\n", "gemini", s_or(q, "breaker", "?"), detail);
	} else {
		printf("%-12s %-14s %s\n", "gemini", "not set", "the offline rules classify");
	}
	x = json_object_get(j, "sender");
	if (json_is_object(x)) {
		snprintf(detail, sizeof(detail), "%lld sent, %lld retries, %lld dead letters, last HTTP %lld%s%s",
		    i_of(x, "sent"), i_of(x, "retries"), i_of(x, "dead_letters"), i_of(x, "last_http_status"),
		    json_is_string(json_object_get(x, "last_error")) ? ", last error: " : "",
		    s_or(x, "last_error", ""));
		printf("%-12s %-14s %s\n", "twilio", json_is_string(json_object_get(x, "last_error")) ? "errors" : "ok",
		    detail);
	} else {
		printf("%-12s %-14s %s\n", "twilio", "not set", "replies are recorded, not sent");
	}
	{
		/* The configured WhatsApp templates: is their text known (Twilio's Content API)? */
		const char *sid;
		json_t *t;
		json_object_foreach(json_object_get(j, "templates"), sid, t)
		{
			snprintf(detail, sizeof(detail), "%s%s%s", sid,
			    json_is_string(json_object_get(t, "error")) ? ": " : "", s_or(t, "error", ""));
			printf("%-12s %-14s %s\n", "template",
			    json_is_true(json_object_get(t, "known")) ? "known" : "unknown", detail);
		}
	}
	x = json_object_get(j, "queues");
	printf("\n%-22s %s\n", "QUEUE", "DEPTH");
	{
		const char *k;
		json_t *v;
		json_object_foreach(x, k, v)
		{
			if (json_is_integer(v))
				printf("%-22s %lld\n", k, (long long)json_integer_value(v));
			else
				printf("%-22s unknown (Redis is down)\n", k);
		}
	}
	x = json_object_get(j, "engine");
	if (json_is_object(x))
		printf("\nturns %lld (failed %lld), replies %lld, leads created %lld, updated %lld, support transfers "
		       "%lld\n",
		    i_of(x, "turns"), i_of(x, "turns_failed"), i_of(x, "replies"), i_of(x, "leads_created"),
		    i_of(x, "leads_updated"), i_of(x, "support_transfers"));
	json_decref(j);
	return 0;
}

/* ---- dashboard ---- */

int
ctl_dashboard(struct ctl *c)
{
	json_t *j = admin_call(c, "POST", "/api/dashboard/link");
	long long ttl;

	if (j == NULL)
		return 1;
	if (c->json) {
		print_json(j);
		json_decref(j);
		return 0;
	}
	ttl = i_of(j, "expires_in_s");
	/*
	 * The dashboard is where the admin API is: on its own listener, the address crmbridgectl reached it on
	 * (through an SSH tunnel to the same port, the same address); on the main listener behind the proxy, the
	 * public address (unless --url said otherwise).
	 */
	if (!c->url_given && c->conf->admin_listen == NULL && c->conf->public_url != NULL) {
		size_t n = strlen(c->conf->public_url);
		printf("%.*s%s\n", (int)(n > 0 && c->conf->public_url[n - 1] == '/' ? n - 1 : n), c->conf->public_url,
		    s_or(j, "path", ""));
	} else {
		printf("%s%s\n", c->base, s_or(j, "path", ""));
	}
	fflush(stdout); /* the link first, then what to do with it */
	fprintf(stderr,
	    "Open this link in a browser within %lld %s; it works once and opens a dashboard session "
	    "(dashboard.session_ttl).\n",
	    ttl >= 120 ? ttl / 60 : ttl, ttl >= 120 ? "minutes" : "seconds");
	json_decref(j);
	return 0;
}
