/*
 * crmbridgectl's admin commands: they talk to a running crmbridged over its
 * admin API (the address and token from the daemon's own configuration),
 * and print readable tables, or the daemon's JSON with --json.
 *
 * chat and replay play the WhatsApp customer: each line is sent as a
 * webhook signed like Twilio's, and the bot's replies arrive at a local
 * reply sink that speaks Twilio's Messages API, where the daemon's
 * TWILIO_API_BASE points (./dev.sh run sets it up that way).
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <gcrypt.h>
#include <jansson.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "common/base64.h"
#include "common/curlev.h"
#include "common/form.h"
#include "common/phone.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "ctl.h"
#include "admin-private.h"
#include "daemon/conf.h"
#include "twilio/signature.h"

/* ---- set-up: the daemon's configuration, its address and the admin token ---- */

static void
local_url(const char *listen, char *out, size_t size)
{
	/* A wildcard address is reached on loopback. */
	if (strncmp(listen, "0.0.0.0:", 8) == 0)
		snprintf(out, size, "http://127.0.0.1:%s", listen + 8);
	else if (strncmp(listen, "[::]:", 5) == 0)
		snprintf(out, size, "http://[::1]:%s", listen + 5);
	else
		snprintf(out, size, "http://%s", listen);
}

static int
ctl_open(struct ctl *c, const struct ctl_options *o)
{
	struct conf_errors errs = {0};
	const char *path = o->config != NULL ? o->config : getenv("CRMBRIDGE_CONFIG");
	size_t i;

	memset(c, 0, sizeof(*c));
	c->json = o->json;
	c->conf = conf_load(path != NULL ? path : conf_default_path(), path != NULL, &errs);
	if (c->conf == NULL) {
		for (i = 0; i < errs.n; i++)
			fprintf(stderr, "crmbridgectl: %s\n", errs.msg[i]);
		conf_errors_clear(&errs);
		return -1;
	}
	local_url(c->conf->listen, c->webhook_base, sizeof(c->webhook_base));
	local_url(c->conf->admin_listen != NULL ? c->conf->admin_listen : c->conf->listen, c->base, sizeof(c->base));
	if (o->url != NULL) {
		c->url_given = true;
		snprintf(c->base, sizeof(c->base), "%s", o->url);
		if (c->conf->admin_listen == NULL)
			snprintf(c->webhook_base, sizeof(c->webhook_base), "%s", o->url);
	}
	if (o->token != NULL) {
		if (strlen(o->token) > ADMIN_TOKEN_MAX) {
			fprintf(stderr, "crmbridgectl: --token: longer than %d bytes\n", ADMIN_TOKEN_MAX);
			conf_free(c->conf);
			c->conf = NULL;
			return -1;
		}
		snprintf(c->token, sizeof(c->token), "%s", o->token);
	} else if (c->conf->admin_token != NULL) {
		snprintf(c->token, sizeof(c->token), "%s", c->conf->admin_token);
	} else if (ctl_credential("admin_token", c->token, sizeof(c->token)) == 0) {
		snprintf(c->token_from, sizeof(c->token_from), "the admin token of the credential admin_token");
	} else {
		/*
		 * The daemon made one and keeps it in its state directory: the configured one, or under systemd
		 * (StateDirectory=crmbridge, DynamicUser=yes) /var/lib/crmbridge, which links to /var/lib/private.
		 */
		const char *dirs[] = {c->conf->state_dir, "/var/lib/crmbridge", "/var/lib/private/crmbridge"};
		snprintf(c->token_from, sizeof(c->token_from), "no admin token found in");
		for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && c->token[0] == '\0'; i++) {
			char p[4200];
			FILE *f;
			snprintf(p, sizeof(p), "%s/admin.token", dirs[i]);
			if (i > 0 && strcmp(dirs[i], c->conf->state_dir) == 0)
				continue;
			if ((f = fopen(p, "re")) == NULL) {
				size_t u = strlen(c->token_from);
				snprintf(c->token_from + u, sizeof(c->token_from) - u, "%s %s (%s)", i > 0 ? "," : "",
				    p, strerror(errno));
				continue;
			}
			if (fgets(c->token, sizeof(c->token), f) != NULL)
				c->token[strcspn(c->token, "\r\n")] = '\0';
			fclose(f);
			snprintf(c->token_from, sizeof(c->token_from), "the admin token read from %s", p);
			if (strlen(c->token) > ADMIN_TOKEN_MAX) {
				fprintf(stderr, "crmbridgectl: the admin token in %s is longer than %d bytes\n", p,
				    ADMIN_TOKEN_MAX);
				conf_free(c->conf);
				c->conf = NULL;
				return -1;
			}
		}
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return 0;
}

static void
ctl_close(struct ctl *c)
{
	conf_free(c->conf);
	curl_global_cleanup();
}

/* One request to the daemon. Returns the HTTP status (0: no answer) and the parsed JSON body in *out. */
static long
ctl_request(struct ctl *c, const char *method, const char *base, const char *path, const char *ctype, const char *body,
    const char *const *extra_headers, json_t **out)
{
	CURL *e = curl_easy_init();
	struct curlbuf buf = {0};
	struct curl_slist *h = NULL;
	char url[1024], auth[ADMIN_TOKEN_MAX + 32];
	long status = 0;
	CURLcode res;
	size_t i;

	if (out != NULL)
		*out = NULL;
	if (e == NULL)
		return 0;
	buf.max = 64 << 20;
	snprintf(url, sizeof(url), "%s%s", base != NULL ? base : c->base, path);
	if (c->token[0] != '\0') {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
		h = curl_slist_append(h, auth);
	}
	if (ctype != NULL) {
		char ct[128];
		snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
		h = curl_slist_append(h, ct);
	}
	for (i = 0; extra_headers != NULL && extra_headers[i] != NULL; i++)
		h = curl_slist_append(h, extra_headers[i]);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	else if (strcmp(method, "POST") == 0)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, curlbuf_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &buf);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "crmbridgectl/" PACKAGE_VERSION);
	res = curl_easy_perform(e);
	if (res != CURLE_OK) {
		fprintf(stderr, "crmbridgectl: %s: %s (is crmbridged running?)\n", url, curl_easy_strerror(res));
	} else {
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
		if (out != NULL && buf.data != NULL)
			*out = json_loadb(buf.data, buf.len, 0, NULL);
	}
	curlbuf_reset(&buf);
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	return status;
}

/* GET/POST an admin endpoint; prints the daemon's error and returns NULL unless 2xx. */
json_t *
admin_call(struct ctl *c, const char *method, const char *path)
{
	json_t *j;
	long st = ctl_request(c, method, NULL, path, NULL, NULL, NULL, &j);

	if (st >= 200 && st < 300 && j != NULL)
		return j;
	if (st != 0) {
		const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
		fprintf(stderr, "crmbridgectl: %s %s: HTTP %ld: %s\n", method, path, st, msg ? msg : "(no message)");
		if (st == 401)
			fprintf(stderr,
			    "crmbridgectl: %s%s; give the admin token with --token, CRMBRIDGE_ADMIN_TOKEN or -c CONFIG "
			    "(server.admin_token), or run as a user that can read the daemon's state directory\n",
			    c->token_from[0] != '\0' ? c->token_from
			                             : "the admin token came from the command line or the "
			                               "configuration",
			    c->token_from[0] != '\0' && strncmp(c->token_from, "the admin", 9) == 0
			        ? " (not the daemon's?)"
			        : "");
	}
	json_decref(j);
	return NULL;
}

void
print_json(json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
}

const char *
s_or(json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s != NULL ? s : dflt;
}

long long
i_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (long long)json_integer_value(v) : (long long)json_number_value(v);
}

void
duration_text(long long s, char *out, size_t size)
{
	if (s < 60)
		snprintf(out, size, "%llds", s);
	else if (s < 3600)
		snprintf(out, size, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, size, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
	else
		snprintf(out, size, "%lldd%02lldh", s / 86400, (s % 86400) / 3600);
}

/* ---- analytics ---- */

static int
cmd_analytics(struct ctl *c, unsigned days)
{
	char path[64];
	json_t *j, *x, *d;
	size_t i;
	bool any = false;

	snprintf(path, sizeof(path), "/api/analytics/conversations?days=%u", days);
	if ((j = admin_call(c, "GET", path)) == NULL)
		return 1;
	if (c->json) {
		print_json(j);
		json_decref(j);
		return 0;
	}
	x = json_object_get(j, "conversations");
	printf("conversations  %lld started, %lld active in 24 h, %lld open, %lld became leads (%.1f%%)\n",
	    i_of(x, "started"), i_of(x, "active_24h"), i_of(x, "open"), i_of(x, "completed"),
	    100.0 * json_number_value(json_object_get(x, "conversion_rate")));
	printf("messages       %lld in, %lld replies, %lld turns\n", i_of(x, "messages_in"), i_of(x, "replies"),
	    i_of(x, "turns"));
	x = json_object_get(j, "time_to_lead_s");
	if (i_of(x, "count") > 0)
		printf("time to lead   mean %.0f s, median %.0f s (over %lld)\n",
		    json_number_value(json_object_get(x, "mean")), json_number_value(json_object_get(x, "median")),
		    i_of(x, "count"));
	x = json_object_get(j, "leads");
	d = json_object_get(x, "quality");
	printf("leads          %lld created, %lld updated, %lld deferred; hot %lld, warm %lld, cold %lld\n",
	    i_of(x, "created"), i_of(x, "updated"), i_of(x, "deferred"), i_of(d, "hot"), i_of(d, "warm"),
	    i_of(d, "cold"));
	x = json_object_get(j, "support_transfers");
	printf("support        %lld transfers (%lld to a person)\n", i_of(x, "total"), i_of(x, "to_a_person"));
	x = json_object_get(j, "outbound");
	if (json_is_object(x)) {
		json_t *f = json_object_get(x, "followups"), *o = json_object_get(x, "opt_outs");
		printf(
		    "outbound       %lld started after a call; follow-ups %lld sent (%lld as templates), %lld answered "
		    "(%.0f%%)\n",
		    i_of(x, "outreach_started"), i_of(f, "sent"), i_of(f, "as_template"), i_of(f, "answered"),
		    100.0 * json_number_value(json_object_get(f, "answer_rate")));
		printf("opt-outs       %lld out, %lld back in; %lld messages kept unanswered (opted out or with a "
		       "person)\n",
		    i_of(o, "out"), i_of(o, "back_in"), i_of(x, "messages_not_answered"));
	}
	x = json_object_get(j, "classifier");
	printf("classifier     %lld turns: model %lld (%.0f%%), rules %lld; %lld model failures, %lld invented values "
	       "dropped, mean confidence %.2f, %lld tokens\n",
	    i_of(x, "classified"), i_of(x, "by_gemini"), 100.0 * json_number_value(json_object_get(x, "gemini_share")),
	    i_of(x, "by_rules"), i_of(x, "gemini_failures"), i_of(x, "invented_fields_dropped"),
	    json_number_value(json_object_get(x, "mean_confidence")), i_of(x, "tokens"));
	x = json_object_get(json_object_get(j, "lead_store"), "figures");
	if (json_is_object(x))
		printf("lead store     %s: %lld lead%s in all\n", s_or(x, "store", "?"), i_of(x, "total"),
		    i_of(x, "total") == 1 ? "" : "s");
	printf("\n%-10s %6s %6s %6s %6s %4s %4s %4s %7s %5s %5s\n", "DATE", "CONV", "MSGS", "LEADS", "CONV%", "HOT",
	    "WARM", "COLD", "SUPPORT", "FOLUP", "STOP");
	json_array_foreach(json_object_get(j, "daily"), i, d)
	{
		json_t *q = json_object_get(d, "quality");
		if (i_of(d, "conversations") + i_of(d, "messages_in") + i_of(d, "leads_created") +
		        i_of(d, "followups") ==
		    0)
			continue;
		any = true;
		printf("%-10s %6lld %6lld %6lld %5.0f%% %4lld %4lld %4lld %7lld %5lld %5lld\n", s_or(d, "date", "?"),
		    i_of(d, "conversations"), i_of(d, "messages_in"), i_of(d, "leads_created"),
		    100.0 * json_number_value(json_object_get(d, "conversion_rate")), i_of(q, "hot"), i_of(q, "warm"),
		    i_of(q, "cold"), i_of(d, "support_transfers"), i_of(d, "followups"), i_of(d, "opt_outs"));
	}
	if (!any)
		printf("(no activity in the last %u days)\n", days);
	json_decref(j);
	return 0;
}

/* ---- conversations ---- */

static int
phone_path(const char *phone, const char *what, char *out, size_t size)
{
	char e164[17];

	if (phone_e164(phone, NULL, e164) < 0) {
		fprintf(stderr, "crmbridgectl: %s: not a phone number (+E.164, e.g. +573001112233)\n", phone);
		return -1;
	}
	snprintf(out, size, "/api/conversation/%%2B%s/%s", e164 + 1, what);
	return 0;
}

static void
ms_text(json_t *v, char *out, size_t size)
{
	time_t t = (time_t)(json_integer_value(v) / 1000);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm);
}

/* Erases everything the daemon keeps about a phone (DELETE /api/conversation/{phone}). */
static int
cmd_erase(struct ctl *c, const char *phone)
{
	char e164[17], path[64];
	json_t *j, *r, *o, *v;
	const char *k;

	if (phone_e164(phone, NULL, e164) < 0) {
		fprintf(stderr, "crmbridgectl: %s: not a phone number (+E.164, e.g. +573001112233)\n", phone);
		return 2;
	}
	snprintf(path, sizeof(path), "/api/conversation/%%2B%s", e164 + 1);
	if ((j = admin_call(c, "DELETE", path)) == NULL)
		return 1;
	if (c->json) {
		print_json(j);
		json_decref(j);
		return 0;
	}
	printf("erased everything kept about %s\n", s_or(j, "phone", e164));
	r = json_object_get(j, "redis");
	json_object_foreach(r, k, v) printf("  redis %-20s %lld\n", k, (long long)json_integer_value(v));
	printf("  spool files               %lld\n", i_of(j, "spool_files"));
	if (json_object_get(j, "journal_records") != NULL)
		printf("  lead journal records      %lld\n", i_of(j, "journal_records"));
	o = json_object_get(j, "odoo");
	if (json_is_object(o)) {
		json_t *ids = json_object_get(o, "leads");
		size_t i;
		printf("  odoo leads               ");
		json_array_foreach(ids, i, v) printf(" %lld", (long long)json_integer_value(v));
		if (json_array_size(ids) == 0)
			printf(" (none found; the conversation's was %lld)", i_of(o, "lead_id"));
		printf("\n  odoo                      %s%s\n",
		    json_is_true(json_object_get(o, "anonymised")) ? "cleared without tracking, note posted"
		                                                   : "NOT cleared: ",
		    json_is_true(json_object_get(o, "anonymised")) ? "" : s_or(o, "error", s_or(o, "why", "")));
		if (json_object_get(o, "messages_deleted") != NULL)
			printf("  odoo messages deleted     %lld (crmbridge's own notes and tracking)\n",
			    i_of(o, "messages_deleted"));
		if (json_object_get(o, "messages_refused") != NULL)
			printf("  odoo messages NOT deleted: %s\n", s_or(o, "messages_refused", ""));
	}
	json_decref(j);
	return 0;
}

static int
cmd_conversation(struct ctl *c, const char *what, const char *phone, const char *pause_for)
{
	char path[160], when[32];
	json_t *j, *v;
	const char *k;
	size_t i;
	bool post = strcmp(what, "reset") == 0 || strcmp(what, "pause") == 0 || strcmp(what, "resume") == 0;

	if (strcmp(what, "show") == 0)
		what = "status";
	if (!post && strcmp(what, "status") != 0 && strcmp(what, "history") != 0) {
		fprintf(stderr, "crmbridgectl: conversation show|history|reset|pause|resume PHONE\n");
		return 2;
	}
	if (phone_path(phone, what, path, sizeof(path)) < 0)
		return 2;
	if (pause_for != NULL && strcmp(what, "pause") == 0)
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "?for=%s", pause_for);
	if ((j = admin_call(c, post ? "POST" : "GET", path)) == NULL)
		return 1;
	if (c->json) {
		print_json(j);
	} else if (strcmp(what, "pause") == 0 || strcmp(what, "resume") == 0) {
		ms_text(json_object_get(j, "until_ms"), when, sizeof(when));
		if (json_is_true(json_object_get(j, "paused")))
			printf("conversation %s paused: the bot says nothing to this customer until %s\n",
			    s_or(j, "phone", phone), when);
		else
			printf("conversation %s resumed: the bot answers the next message\n", s_or(j, "phone", phone));
	} else if (strcmp(what, "reset") == 0) {
		printf("conversation %s reset: the next message starts afresh\n", s_or(j, "phone", phone));
	} else if (strcmp(what, "history") == 0) {
		json_array_foreach(json_object_get(j, "history"), i, v)
		{
			ms_text(json_object_get(v, "t_ms"), when, sizeof(when));
			printf("%s  %-8s %s\n", when, strcmp(s_or(v, "dir", ""), "in") == 0 ? "customer" : "bot",
			    s_or(v, "text", ""));
		}
	} else {
		json_t *q = json_object_get(j, "quality");
		printf("phone       %s\nstage       %s\nmessages    %lld\n", s_or(j, "phone", "?"),
		    s_or(j, "stage", "?"), i_of(j, "messages"));
		if (json_is_object(q))
			printf("quality     %s (confidence %.2f)\n", s_or(q, "q", "?"),
			    json_number_value(json_object_get(q, "confidence")));
		if (json_is_integer(json_object_get(j, "lead_id")))
			printf("lead        %lld\n", i_of(j, "lead_id"));
		else if (json_is_true(json_object_get(j, "lead_pending")))
			printf("lead        write pending (retried in the background)\n");
		ms_text(json_object_get(j, "created_ms"), when, sizeof(when));
		printf("started     %s\n", when);
		ms_text(json_object_get(j, "updated_ms"), when, sizeof(when));
		printf("updated     %s\n", when);
		json_object_foreach(json_object_get(j, "fields"), k, v)
		    printf("%-11s %s\n", k, json_is_string(v) ? json_string_value(v) : "");
	}
	json_decref(j);
	return 0;
}

/* ---- dead letters, leads ---- */

static int
cmd_dead_letters(struct ctl *c, bool retry)
{
	json_t *j = admin_call(c, retry ? "POST" : "GET", retry ? "/api/dead-letters/retry" : "/api/dead-letters"), *v;
	char when[32];
	size_t i;

	if (j == NULL)
		return 1;
	if (c->json) {
		print_json(j);
	} else if (retry) {
		printf("requeued %lld turns and %lld replies; %lld left\n", i_of(j, "turns_requeued"),
		    i_of(j, "replies_requeued"), i_of(j, "left"));
	} else {
		printf("TURNS GIVEN UP (%zu)\n", json_array_size(json_object_get(j, "turns")));
		json_array_foreach(json_object_get(j, "turns"), i, v)
		{
			ms_text(json_object_get(v, "at_ms"), when, sizeof(when));
			printf("  %s  %-16s %zu messages  %s\n", when, s_or(v, "phone", "?"),
			    json_array_size(json_object_get(v, "messages")), s_or(v, "reason", ""));
		}
		printf("REPLIES GIVEN UP (%zu)\n", json_array_size(json_object_get(j, "replies")));
		json_array_foreach(json_object_get(j, "replies"), i, v)
		{
			ms_text(json_object_get(v, "at_ms"), when, sizeof(when));
			printf("  %s  %-24s %lld attempts  %s\n", when, s_or(v, "to", "?"), i_of(v, "attempts"),
			    s_or(v, "reason", ""));
		}
		if (json_array_size(json_object_get(j, "turns")) + json_array_size(json_object_get(j, "replies")) > 0)
			printf("crmbridgectl dead-letters retry puts them back in their queues\n");
	}
	json_decref(j);
	return 0;
}

/* Prints s in a column of width characters (code points, not bytes), cut if longer, then a space. */
static void
cell(const char *s, int width)
{
	int n = 0;
	const unsigned char *p = (const unsigned char *)s;

	while (*p != '\0' && n < width) {
		int len = *p < 0x80 ? 1 : *p < 0xe0 ? 2 : *p < 0xf0 ? 3 : 4;
		fwrite(p, 1, (size_t)len, stdout);
		p += len;
		n++;
	}
	for (; n < width; n++)
		putchar(' ');
	putchar(' ');
}

static int
cmd_leads(struct ctl *c)
{
	json_t *j = admin_call(c, "GET", "/api/leads?limit=1000"), *v;
	size_t i;

	if (j == NULL)
		return 1;
	if (c->json) {
		print_json(j);
		json_decref(j);
		return 0;
	}
	printf("%-4s %-16s %-20s %-18s %-14s %-12s %-5s %-4s %s\n", "ID", "PHONE", "CONTACT", "INTEREST", "BUDGET",
	    "CITY", "QUAL", "PRIO", "UPDATED");
	json_array_foreach(json_object_get(j, "leads"), i, v)
	{
		printf("%-4lld ", i_of(v, "id"));
		cell(s_or(v, "phone", ""), 16);
		cell(s_or(v, "contact_name", "-"), 20);
		cell(s_or(v, "x_product_interest", "-"), 18);
		cell(s_or(v, "x_budget_range", "-"), 14);
		cell(s_or(v, "city", "-"), 12);
		cell(s_or(v, "x_quality_score", "-"), 5);
		cell(s_or(v, "priority", "-"), 4);
		printf("%s\n", s_or(v, "updated_at", ""));
	}
	printf("%zu lead%s in the journal\n", json_array_size(json_object_get(j, "leads")),
	    json_array_size(json_object_get(j, "leads")) == 1 ? "" : "s");
	json_decref(j);
	return 0;
}

/* Prints "label: a, b, c" for a JSON array of strings (nothing when empty). */
static void
print_list(const char *label, json_t *arr)
{
	json_t *v;
	size_t i;

	if (json_array_size(arr) == 0)
		return;
	printf("%-12s ", label);
	json_array_foreach(arr, i, v) printf("%s%s", i > 0 ? ", " : "", json_string_value(v) ?: "");
	putchar('\n');
}

/* crmbridgectl profile: the business profile the daemon runs with (its file, [business], Odoo's catalogue). */
static int
cmd_profile(struct ctl *c)
{
	json_t *j = admin_call(c, "GET", "/api/profile"), *v, *t;
	size_t i;
	const char *k;

	if (j == NULL)
		return 1;
	if (c->json) {
		print_json(j);
		json_decref(j);
		return 0;
	}
	if (!json_is_true(json_object_get(j, "configured"))) {
		printf("no business profile: the offline rules use the built-in lexicon only; set [business] in the "
		       "configuration (crmbridge.conf(5))\n");
		json_decref(j);
		return 0;
	}
	{
		static const char *const keys[] = {"name", "description", "country", "currency"};
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (json_is_string(json_object_get(j, keys[i])))
				printf("%-12s %s\n", keys[i], s_or(j, keys[i], ""));
	}
	print_list("cities", json_object_get(j, "cities"));
	print_list("languages", json_object_get(j, "languages"));
	printf("%-12s contact + a specific product + %s\n", "hot lead", s_or(j, "hot_needs", "budget or urgency"));
	if (json_is_string(json_object_get(j, "file")))
		printf("%-12s %s\n", "file", s_or(j, "file", ""));
	v = json_object_get(j, "odoo_catalogue");
	if (json_is_true(json_object_get(v, "enabled")))
		printf("%-12s %lld products that can be sold%s%s\n", "from Odoo", i_of(v, "items"),
		    json_is_string(json_object_get(v, "error")) ? "; the last read failed: " : "",
		    s_or(v, "error", ""));
	printf("\ncatalogue (%zu):\n", json_array_size(json_object_get(j, "catalogue")));
	json_array_foreach(json_object_get(j, "catalogue"), i, v)
	{
		json_t *syn = json_object_get(v, "synonyms"), *x;
		size_t n;
		printf("  %s", s_or(v, "name", "?"));
		if (json_is_string(json_object_get(v, "category")))
			printf(" [%s]", s_or(v, "category", ""));
		json_array_foreach(syn, n, x) printf("%s%s", n == 0 ? " (" : ", ", json_string_value(x) ?: "");
		printf("%s%s\n", json_array_size(syn) > 0 ? ")" : "",
		    strcmp(s_or(v, "source", ""), "odoo") == 0 ? "  from Odoo" : "");
	}
	printf("\nfacts (%zu):\n", json_array_size(json_object_get(j, "facts")));
	json_array_foreach(json_object_get(j, "facts"), i, v)
	{
		json_object_foreach(json_object_get(v, "text"), k, t)
		    printf("  %s [%s]: %s\n", s_or(v, "topic", "?"), k, json_string_value(t) ?: "");
	}
	json_decref(j);
	return 0;
}

/* ---- chat and replay: the customer's side ---- */

struct sink {
	struct MHD_Daemon *mhd;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	json_t *got; /* replies not yet shown: [{to, body}] */
	const char *sid, *token;
	unsigned long n;
	bool quiet; /* --json: the transcript is printed at the end */
};

struct upload {
	char *data;
	size_t len;
};

static enum MHD_Result
sink_answer(struct MHD_Connection *conn, unsigned status, const char *body)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(body), (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Twilio's Messages API, as much as the daemon uses: POST .../Accounts/{sid}/Messages.json with Basic auth. */
static enum MHD_Result
sink_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
    const char *data, size_t *size, void **state)
{
	struct sink *s = cls;
	struct upload *u = *state;
	char want[200], expect[300], b64[280];
	const char *auth;
	struct form f;
	const char *why;

	if (u == NULL) {
		*state = xcalloc(1, sizeof(struct upload));
		return MHD_YES;
	}
	if (*size > 0) {
		if (u->len + *size > 1 << 20)
			return MHD_NO;
		u->data = xreallocarray(u->data, u->len + *size + 1, 1);
		memcpy(u->data + u->len, data, *size);
		u->len += *size;
		u->data[u->len] = '\0';
		*size = 0;
		return MHD_YES;
	}
	snprintf(want, sizeof(want), "/2010-04-01/Accounts/%s/Messages.json", s->sid);
	if (strcmp(method, "POST") != 0 || strcmp(url, want) != 0)
		return sink_answer(
		    conn, 404, "{\"code\":20404,\"message\":\"The requested resource was not found\",\"status\":404}");
	snprintf(want, sizeof(want), "%s:%s", s->sid, s->token);
	b64[base64_encode(want, strlen(want), b64)] = '\0';
	snprintf(expect, sizeof(expect), "Basic %s", b64);
	auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	if (auth == NULL || strcmp(auth, expect) != 0)
		return sink_answer(conn, 401, "{\"code\":20003,\"message\":\"Authenticate\",\"status\":401}");
	if (form_parse(u->data != NULL ? u->data : "", u->len, &f, &why) < 0 || form_get(&f, "To") == NULL ||
	    form_get(&f, "Body") == NULL) {
		if (why == NULL || f.n > 0)
			form_clear(&f);
		return sink_answer(
		    conn, 400, "{\"code\":21602,\"message\":\"Message body is required.\",\"status\":400}");
	}
	{
		char reply[300];
		pthread_mutex_lock(&s->mu);
		json_array_append_new(
		    s->got, json_pack("{s:s, s:s}", "to", form_get(&f, "To"), "body", form_get(&f, "Body")));
		s->n++;
		snprintf(reply, sizeof(reply),
		    "{\"sid\":\"SM%032lx\",\"status\":\"queued\",\"account_sid\":\"%s\",\"num_segments\":\"1\"}", s->n,
		    s->sid);
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		form_clear(&f);
		return sink_answer(conn, 201, reply);
	}
}

static void
sink_done(void *cls, struct MHD_Connection *conn, void **state, enum MHD_RequestTerminationCode toe)
{
	struct upload *u = *state;

	if (u != NULL) {
		free(u->data);
		free(u);
	}
	*state = NULL;
}

static int
sink_start(struct sink *s, struct ctl *c)
{
	const char *base = c->conf->twilio_api_base;
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *scheme = NULL;
	long p = 0;
	struct sockaddr_in sa = {0};

	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->got = json_array();
	s->sid = c->conf->twilio_account_sid;
	s->token = c->conf->twilio_auth_token;
	if (s->sid == NULL || s->token == NULL || c->conf->twilio_whatsapp_from == NULL) {
		fprintf(stderr,
		    "crmbridgectl: the daemon sends no replies: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and "
		    "TWILIO_WHATSAPP_FROM (./dev.sh run does)\n");
		curl_url_cleanup(u);
		return -1;
	}
	if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) || curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) ||
	    strcmp(scheme, "http") != 0 || strcmp(host, "127.0.0.1") != 0 ||
	    parse_ll(port, 1, 65535, (long long *)&p) < 0) {
		fprintf(stderr,
		    "crmbridgectl: chat and replay receive the bot's replies on a local port: the daemon's "
		    "TWILIO_API_BASE must be http://127.0.0.1:PORT (it is %s)\n",
		    base);
		curl_free(scheme);
		curl_free(host);
		curl_free(port);
		curl_url_cleanup(u);
		return -1;
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)p);
	sa.sin_addr.s_addr = htonl(0x7f000001);
	s->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, sink_handler, s,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, sink_done, s, MHD_OPTION_END);
	if (s->mhd == NULL) {
		fprintf(stderr,
		    "crmbridgectl: cannot listen on 127.0.0.1:%ld for the replies (another chat running?)\n", p);
		return -1;
	}
	return 0;
}

static void
sink_stop(struct sink *s)
{
	if (s->mhd != NULL)
		MHD_stop_daemon(s->mhd);
	json_decref(s->got);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
}

/*
 * Waits for the bot's replies to phone: up to `first` ms for the first one,
 * then `quiet` ms for more (a long reply comes in parts). Prints them; returns how many.
 */
static unsigned
sink_wait(struct sink *s, const char *phone, unsigned first_ms, unsigned quiet_ms, json_t *transcript)
{
	unsigned shown = 0;
	uint64_t deadline = now_usec() + (uint64_t)first_ms * 1000;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		size_t i;
		json_t *m;
		json_array_foreach(s->got, i, m)
		{
			const char *to = s_or(m, "to", "");
			if (strncmp(to, "whatsapp:", 9) == 0)
				to += 9;
			if (strcmp(to, phone) != 0)
				continue;
			if (!s->quiet) {
				printf("bot:      %s\n", s_or(m, "body", ""));
				fflush(stdout);
			}
			if (transcript != NULL)
				json_array_append_new(
				    transcript, json_pack("{s:s, s:s}", "from", "bot", "text", s_or(m, "body", "")));
			json_array_remove(s->got, i);
			i--;
			shown++;
			deadline = now_usec() + (uint64_t)quiet_ms * 1000;
		}
		if (now_usec() >= deadline)
			break;
		{
			struct timespec ts;
			uint64_t left = deadline - now_usec();
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += (time_t)(left / 1000000);
			ts.tv_nsec += (long)(left % 1000000) * 1000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&s->cv, &s->mu, &ts);
		}
	}
	pthread_mutex_unlock(&s->mu);
	return shown;
}

/* Sends one customer line as Twilio would: a signed form POST to the webhook. */
static int
send_line(struct ctl *c, const char *phone, const char *profile, const char *text)
{
	static const char path[] = "/api/webhook/whatsapp";
	unsigned char raw[16];
	char sid[40], from[40], url[512], sig[29], hdr[64], *body = NULL;
	struct form f = {0};
	struct form_param p[7];
	const char *headers[2] = {hdr, NULL};
	size_t i, n = strlen(c->conf->public_url != NULL ? c->conf->public_url : "");
	long st;
	json_t *j;
	CURL *e = curl_easy_init();

	if (c->conf->public_url == NULL || c->conf->twilio_auth_token == NULL) {
		fprintf(
		    stderr, "crmbridgectl: set CRMBRIDGE_PUBLIC_URL and TWILIO_AUTH_TOKEN as the daemon has them\n");
		curl_easy_cleanup(e);
		return -1;
	}
	gcry_randomize(raw, sizeof(raw), GCRY_STRONG_RANDOM);
	snprintf(sid, sizeof(sid), "SM");
	for (i = 0; i < sizeof(raw); i++)
		snprintf(sid + 2 + 2 * i, 3, "%02x", raw[i]);
	snprintf(from, sizeof(from), "whatsapp:%s", phone);
	{
		const char *nv[14] = {"MessageSid", sid, "AccountSid",
		    c->conf->twilio_account_sid ? c->conf->twilio_account_sid : "AC00000000000000000000000000000000",
		    "From", from, "To",
		    c->conf->twilio_whatsapp_from ? c->conf->twilio_whatsapp_from : "whatsapp:+14155238886", "Body",
		    text, "NumMedia", "0", "ProfileName", profile};
		for (i = 0; i < 7; i++) {
			p[i].name = xstrdup(nv[2 * i]);
			p[i].value = xstrdup(nv[2 * i + 1]);
		}
	}
	f.p = p;
	f.n = 7;
	snprintf(url, sizeof(url), "%.*s%s", (int)(n > 0 && c->conf->public_url[n - 1] == '/' ? n - 1 : n),
	    c->conf->public_url, path);
	twsig_compute(c->conf->twilio_auth_token, url, &f, sig);
	snprintf(hdr, sizeof(hdr), "X-Twilio-Signature: %s", sig);
	for (i = 0; i < f.n; i++) {
		char *k = curl_easy_escape(e, p[i].name, 0), *v = curl_easy_escape(e, p[i].value, 0), *prev = body;
		xasprintf(&body, "%s%s%s=%s", prev ? prev : "", prev ? "&" : "", k, v);
		free(prev);
		curl_free(k);
		curl_free(v);
	}
	curl_easy_cleanup(e);
	for (i = 0; i < f.n; i++) {
		free(p[i].name);
		free(p[i].value);
	}
	st = ctl_request(c, "POST", c->webhook_base, path, "application/x-www-form-urlencoded", body, headers, &j);
	free(body);
	if (st != 200) {
		const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
		if (st != 0)
			fprintf(stderr, "crmbridgectl: the webhook answered HTTP %ld: %s\n", st, msg ? msg : "");
		json_decref(j);
		return -1;
	}
	json_decref(j);
	return 0;
}

static int
norm_phone(const char *in, char out[17])
{
	if (phone_e164(in, NULL, out) < 0) {
		fprintf(stderr, "crmbridgectl: %s: not a phone number (+E.164, e.g. +573001112233)\n", in);
		return -1;
	}
	return 0;
}

static int
cmd_chat(struct ctl *c, const char *phone_in, unsigned wait_ms)
{
	struct sink s;
	char phone[17], *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (norm_phone(phone_in, phone) < 0)
		return 2;
	if (sink_start(&s, c) < 0) {
		sink_stop(&s);
		return 1;
	}
	printf("You are the customer %s writing to %s. Type a message and press Enter; Ctrl-D ends.\n", phone,
	    c->conf->twilio_whatsapp_from);
	for (;;) {
		printf("you:      ");
		fflush(stdout);
		if ((n = getline(&line, &cap, stdin)) < 0)
			break;
		line[strcspn(line, "\r\n")] = '\0';
		if (*line == '\0')
			continue;
		if (send_line(c, phone, "Chat", line) < 0)
			continue;
		if (sink_wait(&s, phone, wait_ms, 1500, NULL) == 0)
			printf("(no reply within %u s)\n", wait_ms / 1000);
	}
	putchar('\n');
	free(line);
	sink_stop(&s);
	return 0;
}

static int
cmd_replay(struct ctl *c, const char *file, const char *phone_in, bool reset, unsigned wait_ms)
{
	json_error_t err;
	json_t *doc = json_load_file(file, 0, &err), *m, *st, *transcript;
	struct sink s;
	char phone[17], path[128];
	size_t i;
	int rc = 0;

	if (doc == NULL) {
		fprintf(stderr, "crmbridgectl: %s:%d: %s\n", file, err.line, err.text);
		return 2;
	}
	if (norm_phone(phone_in, phone) < 0) {
		json_decref(doc);
		return 2;
	}
	if (sink_start(&s, c) < 0) {
		sink_stop(&s);
		json_decref(doc);
		return 1;
	}
	s.quiet = c->json;
	if (reset && phone_path(phone, "reset", path, sizeof(path)) == 0) {
		json_t *r = admin_call(c, "POST", path);
		if (r == NULL)
			rc = 1;
		json_decref(r);
	}
	transcript = json_array();
	json_array_foreach(json_object_get(doc, "messages"), i, m)
	{
		const char *text = s_or(m, "text", NULL);
		if (rc != 0 || text == NULL || strcmp(s_or(m, "from", ""), "user") != 0)
			continue;
		if (!c->json) {
			printf("customer: %s\n", text);
			fflush(stdout);
		}
		json_array_append_new(transcript, json_pack("{s:s, s:s}", "from", "user", "text", text));
		if (send_line(c, phone, "Replay", text) < 0) {
			rc = 1;
			break;
		}
		if (sink_wait(&s, phone, wait_ms, 1500, transcript) == 0) {
			fprintf(stderr, "crmbridgectl: no reply within %u s\n", wait_ms / 1000);
			rc = 1;
		}
	}
	if (rc == 0 && phone_path(phone, "status", path, sizeof(path)) == 0 &&
	    (st = admin_call(c, "GET", path)) != NULL) {
		if (c->json) {
			json_t *all = json_pack("{s:o, s:O}", "transcript", transcript, "conversation", st);
			transcript = NULL;
			print_json(all);
			json_decref(all);
		} else {
			json_t *q = json_object_get(st, "quality"), *v;
			const char *k;
			printf("\nconversation: stage %s, quality %s\n", s_or(st, "stage", "?"), s_or(q, "q", "?"));
			json_object_foreach(json_object_get(st, "fields"), k, v)
			    printf("  %-17s %s\n", k, json_is_string(v) ? json_string_value(v) : "");
			if (json_is_integer(json_object_get(st, "lead_id")))
				printf("lead: %s %lld\n", c->conf->odoo_url != NULL ? "crm.lead" : "journal lead",
				    i_of(st, "lead_id"));
			else if (json_is_true(json_object_get(st, "lead_pending")))
				printf("lead: write pending (retried in the background)\n");
			else
				printf("lead: not yet (the conversation is not complete enough)\n");
		}
		json_decref(st);
	}
	json_decref(transcript);
	sink_stop(&s);
	json_decref(doc);
	return rc;
}

/* ---- entry ---- */

int
ctl_admin(const char *cmd, int argc, char **argv, const struct ctl_options *o)
{
	struct ctl c;
	int rc = 2, i;
	const char *phone = "+573001112233", *pause_for = NULL;
	bool reset = false;
	unsigned days = 30, wait_s = 30;
	const char *pos[4] = {0};
	int npos = 0;
	long long v;
	uint64_t ms;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--phone") == 0 && i + 1 < argc)
			phone = argv[++i];
		else if (strcmp(argv[i], "--for") == 0 && i + 1 < argc) {
			/* What the daemon takes: 1m to 30d. */
			if (parse_duration_ms(argv[++i], &ms) < 0 || ms < 60000 || ms > 30ULL * 86400000) {
				fprintf(stderr, "crmbridgectl: --for: a duration from 1m to 30d (90m, 2h, 3d)\n");
				return 2;
			}
			pause_for = argv[i];
		} else if (strcmp(argv[i], "--reset") == 0)
			reset = true;
		else if (strcmp(argv[i], "--days") == 0 && i + 1 < argc && parse_ll(argv[i + 1], 1, 40, &v) == 0)
			days = (unsigned)v, i++;
		else if (strcmp(argv[i], "--wait") == 0 && i + 1 < argc && parse_ll(argv[i + 1], 1, 600, &v) == 0)
			wait_s = (unsigned)v, i++;
		else if (strcmp(argv[i], "--json") == 0)
			((struct ctl_options *)(uintptr_t)o)->json = true;
		else if (argv[i][0] == '-' && argv[i][1] != '\0' && argv[i][1] != '+') {
			fprintf(stderr, "crmbridgectl: %s: unknown option %s\n", cmd, argv[i]);
			return 2;
		} else if (npos < 4)
			pos[npos++] = argv[i];
	}
	if (ctl_open(&c, o) < 0)
		return 1;
	if (strcmp(cmd, "status") == 0 && npos == 0)
		rc = ctl_status(&c);
	else if (strcmp(cmd, "dashboard") == 0 && npos == 0)
		rc = ctl_dashboard(&c);
	else if (strcmp(cmd, "analytics") == 0 && npos == 0)
		rc = cmd_analytics(&c, days);
	else if (strcmp(cmd, "conversation") == 0 && npos == 2)
		rc = cmd_conversation(&c, pos[0], pos[1], pause_for);
	else if (strcmp(cmd, "erase") == 0 && npos == 1)
		rc = cmd_erase(&c, pos[0]);
	else if (strcmp(cmd, "dead-letters") == 0 && (npos == 0 || (npos == 1 && strcmp(pos[0], "retry") == 0)))
		rc = cmd_dead_letters(&c, npos == 1);
	else if (strcmp(cmd, "leads") == 0 && npos == 0)
		rc = cmd_leads(&c);
	else if (strcmp(cmd, "profile") == 0 && npos == 0)
		rc = cmd_profile(&c);
	else if (strcmp(cmd, "chat") == 0 && npos <= 1)
		rc = cmd_chat(&c, npos == 1 ? pos[0] : phone, wait_s * 1000);
	else if (strcmp(cmd, "replay") == 0 && npos == 1)
		rc = cmd_replay(&c, pos[0], phone, reset, wait_s * 1000);
	else
		fprintf(stderr, "crmbridgectl: %s: wrong arguments (crmbridgectl -h)\n", cmd);
	ctl_close(&c);
	return rc;
}
