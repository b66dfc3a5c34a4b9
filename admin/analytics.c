/*
 * Conversation analytics in Redis. See analytics.h.
 *
 * Keys (all in the {stats} hash slot, so one script reads them at once):
 *   P{stats}:totals          hash of counters since the start
 *   P{stats}:day:YYYY-MM-DD  the same counters for one UTC day, 40 days
 *   P{stats}:active          sorted set: phone -> last customer turn (ms)
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/analytics.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "redis/scripts.h"

/* Time from a conversation's first message to its lead, in seconds: bucket upper bounds. */
static const double ttl_bounds[] = {60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200, 604800};
#define NTTL (sizeof(ttl_bounds) / sizeof(ttl_bounds[0]))
#define DAY_TTL_S (40 * 86400)
#define MAX_DAYS 40

/* Phones noted active in one flush at most (the script's ZADD takes them as arguments). */
#define FLUSH_PHONES 500

struct analytics {
	char *k_totals, *k_active, *k_dayprefix;
	uint64_t conversation_ttl_ms;
	struct rscript record, read;
	json_t *leads;
	uint64_t leads_at;
	/*
	 * Counts not yet in Redis: summed here and written by one script call a second (sooner when many
	 * phones wait, and before every read and at shutdown), instead of one call with ~20 commands a turn.
	 */
	sd_event *event;
	sd_event_source *timer; /* armed while something waits */
	struct rconn *rc; /* the connection the counts came with */
	char day[11]; /* the UTC day of the counts waiting */
	json_t *pend; /* field -> increment */
	json_t *active; /* phone -> last customer turn (ms) */
	uint64_t now_ms; /* the latest report's time */
	unsigned in_flight; /* flushes sent and not answered */
	uint64_t flushes, lost; /* flushes written; and not answered (their counts may be lost, never doubled) */
};

struct analytics *
analytics_new(sd_event *e, const char *key_prefix, uint64_t conversation_ttl_ms)
{
	struct analytics *an = xcalloc(1, sizeof(*an));

	xasprintf(&an->k_totals, "%s{stats}:totals", key_prefix);
	xasprintf(&an->k_active, "%s{stats}:active", key_prefix);
	xasprintf(&an->k_dayprefix, "%s{stats}:day:", key_prefix);
	an->conversation_ttl_ms = conversation_ttl_ms;
	rscript_init(&an->record, redis_script_analytics_record);
	rscript_init(&an->read, redis_script_analytics_read);
	an->event = e != NULL ? sd_event_ref(e) : NULL;
	an->pend = json_object();
	an->active = json_object();
	return an;
}

void
analytics_free(struct analytics *an)
{
	if (an == NULL)
		return;
	sd_event_source_disable_unref(an->timer);
	sd_event_unref(an->event);
	free(an->k_totals);
	free(an->k_active);
	free(an->k_dayprefix);
	json_decref(an->leads);
	json_decref(an->pend);
	json_decref(an->active);
	free(an);
}

static void
day_name(uint64_t ms, char out[11])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

static void
on_flushed(redisAsyncContext *ac, void *r, void *pd)
{
	struct analytics *an = pd;

	an->in_flight--;
	if (r == NULL || ((redisReply *)r)->type == REDIS_REPLY_ERROR)
		an->lost++; /* applied or not: not sent again, so never counted twice */
}

/* Writes what waits, in one script call (several when many phones wait); kept while Redis is away. */
static void
flush(struct analytics *an)
{
	const char **argv;
	char *dkey, **num;
	size_t nf = json_object_size(an->pend), np = json_object_size(an->active), n = 0, nn = 0, i;
	const char *k;
	json_t *v, *tmp;
	void *it;

	if ((nf == 0 && np == 0) || an->rc == NULL || rconn_state(an->rc) != RCONN_UP)
		return;
	if (np > FLUSH_PHONES)
		np = FLUSH_PHONES;
	argv = xreallocarray(NULL, 7 + 2 * np + 2 * nf, sizeof(*argv));
	num = xreallocarray(NULL, 4 + np + nf, sizeof(*num));
	xasprintf(&dkey, "%s%s", an->k_dayprefix, an->day);
	argv[n++] = an->k_totals;
	argv[n++] = dkey;
	argv[n++] = an->k_active;
	xasprintf(&num[nn], "%" PRIu64, an->now_ms);
	argv[n++] = num[nn++];
	xasprintf(&num[nn], "%d", DAY_TTL_S);
	argv[n++] = num[nn++];
	xasprintf(
	    &num[nn], "%" PRIu64, an->now_ms > an->conversation_ttl_ms ? an->now_ms - an->conversation_ttl_ms : 0);
	argv[n++] = num[nn++];
	xasprintf(&num[nn], "%zu", np);
	argv[n++] = num[nn++];
	/* The phones go out in batches of FLUSH_PHONES; the counters with the last one. */
	tmp = json_object();
	for (it = json_object_iter(an->active), i = 0; it != NULL && i < np;
	     it = json_object_iter_next(an->active, it), i++) {
		xasprintf(&num[nn], "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_iter_value(it)));
		argv[n++] = num[nn++];
		argv[n++] = json_object_iter_key(it);
		json_object_set(tmp, json_object_iter_key(it), json_object_iter_value(it));
	}
	if (np == json_object_size(an->active)) {
		json_object_foreach(an->pend, k, v)
		{
			xasprintf(&num[nn], "%" JSON_INTEGER_FORMAT, json_integer_value(v));
			argv[n++] = k;
			argv[n++] = num[nn++];
		}
	}
	if (rconn_eval(an->rc, &an->record, on_flushed, an, 3, (int)n, argv, NULL) == 0) {
		an->in_flight++;
		an->flushes++;
		if (np == json_object_size(an->active))
			json_object_clear(an->pend);
		json_object_foreach(tmp, k, v) json_object_del(an->active, k);
	}
	json_decref(tmp);
	for (i = 0; i < nn; i++)
		free(num[i]);
	free(num);
	free(argv);
	free(dkey);
	if (json_object_size(an->active) > 0 && rconn_state(an->rc) == RCONN_UP)
		flush(an);
}

static int
on_timer(sd_event_source *s, uint64_t usec, void *arg)
{
	struct analytics *an = arg;

	flush(an);
	if (json_object_size(an->pend) > 0 || json_object_size(an->active) > 0) {
		/* Redis is away: the counts wait for it. */
		sd_event_source_set_time(s, now_usec() + 1000000);
		sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	}
	return 0;
}

/* Starts a report's counts: the day they belong to (another day's waiting counts are written first). */
static void
begin(struct analytics *an, struct rconn *rc, uint64_t now_ms)
{
	char day[11];

	day_name(now_ms, day);
	if (an->day[0] != '\0' && strcmp(day, an->day) != 0)
		flush(an);
	if (rc != NULL)
		an->rc = rc;
	if (json_object_size(an->pend) == 0 && json_object_size(an->active) == 0)
		memcpy(an->day, day, sizeof(day));
	if (now_ms > an->now_ms)
		an->now_ms = now_ms;
}

static void
add(struct analytics *an, const char *field, long long n)
{
	if (n != 0)
		json_object_set_new(an->pend, field,
		    json_integer(json_integer_value(json_object_get(an->pend, field)) + (json_int_t)n));
}

/* The counts wait a second at most; many phones waiting are written at once. */
static void
arm(struct analytics *an)
{
	if (json_object_size(an->active) >= FLUSH_PHONES || an->event == NULL) {
		flush(an);
		return;
	}
	if (an->timer == NULL) {
		if (sd_event_add_time(
		        an->event, &an->timer, CLOCK_MONOTONIC, now_usec() + 1000000, 100000, on_timer, an) < 0)
			fatalx("analytics: sd_event_add_time failed");
		return;
	}
	int en = SD_EVENT_OFF;
	sd_event_source_get_enabled(an->timer, &en);
	if (en == SD_EVENT_OFF) {
		sd_event_source_set_time(an->timer, now_usec() + 1000000);
		sd_event_source_set_enabled(an->timer, SD_EVENT_ONESHOT);
	}
}

void
analytics_forget(struct analytics *an, const char *phone)
{
	if (an != NULL)
		json_object_del(an->active, phone);
}

void
analytics_flush(struct analytics *an)
{
	if (an != NULL)
		flush(an);
}

bool
analytics_busy(const struct analytics *an)
{
	return an != NULL &&
	    (an->in_flight > 0 ||
	        ((json_object_size(an->pend) > 0 || json_object_size(an->active) > 0) && an->rc != NULL &&
	            rconn_state(an->rc) == RCONN_UP));
}

void
analytics_outreach(struct analytics *an, struct rconn *rc, uint64_t now_ms)
{
	begin(an, rc, now_ms);
	add(an, "conversations", 1);
	add(an, "outreach", 1);
	arm(an);
}

void
analytics_record(struct analytics *an, struct rconn *rc, const struct turn_report *r)
{
	static const char *const ttl_fields[NTTL + 1] = {"ttl_b0", "ttl_b1", "ttl_b2", "ttl_b3", "ttl_b4", "ttl_b5",
	    "ttl_b6", "ttl_b7", "ttl_b8", "ttl_b9", "ttl_b10", "ttl_b11"};
	static const char *const ttl_sums[NTTL + 1] = {"ttl_s0", "ttl_s1", "ttl_s2", "ttl_s3", "ttl_s4", "ttl_s5",
	    "ttl_s6", "ttl_s7", "ttl_s8", "ttl_s9", "ttl_s10", "ttl_s11"};
	begin(an, rc, r->now_ms);
	if (r->customer) {
		json_object_set_new(an->active, r->phone, json_integer((json_int_t)r->now_ms));
		add(an, "turns", 1);
		add(an, "conversations", r->new_conversation);
		add(an, "messages_in", r->messages_in);
		add(an, "replies", r->replied);
		add(an, "support", r->support);
		add(an, "human", r->human);
		add(an, "silenced", r->silenced ? r->messages_in : 0);
		add(an, "opt_outs", r->opt > 0);
		add(an, "opt_ins", r->opt < 0);
		add(an, "followup_answered", r->after_followup);
		add(an, "agent_sent", r->agent_sent);
		add(an, "agent_held", r->agent_held);
		add(an, "first_human_n", r->first_human_ms > 0);
		add(an, "first_human_ms", (long long)r->first_human_ms);
	}
	if (r->followup > 0) {
		add(an, "followups", 1);
		add(an, "followup_templates", r->followup == 2);
	}
	if (r->classified) {
		const char *src = r->a->source != NULL ? r->a->source : "rules";
		add(an, strcmp(src, "rules") != 0 ? "by_gemini" : "by_rules",
		    1); /* by_gemini: the model, whichever provider */
		add(an, "fallbacks", r->a->fallback);
		add(an, "invented", r->a->invented);
		add(an, "conf_milli", (long long)llround(r->a->confidence * 1000.0));
		add(an, "tokens", r->a->tokens);
		add(an, r->a->quality == Q_HOT ? "turn_hot" : r->a->quality == Q_WARM ? "turn_warm" : "turn_cold", 1);
	}
	if (r->lead == 1) {
		add(an, "leads_created", 1);
		if (r->quality != NULL && strcmp(r->quality, "hot") == 0)
			add(an, "lead_hot", 1);
		else if (r->quality != NULL && strcmp(r->quality, "cold") == 0)
			add(an, "lead_cold", 1);
		else
			add(an, "lead_warm", 1);
		if (r->created_ms > 0 && r->now_ms >= r->created_ms) {
			uint64_t ms = r->now_ms - r->created_ms;
			size_t b;
			for (b = 0; b < NTTL && (double)ms / 1000.0 > ttl_bounds[b]; b++)
				;
			add(an, "ttl_ms", (long long)ms);
			add(an, "ttl_n", 1);
			add(an, ttl_fields[b], 1);
			add(an, ttl_sums[b], (long long)ms);
		}
	} else if (r->lead == 2) {
		add(an, "leads_updated", 1);
	} else if (r->lead == -1) {
		add(an, "leads_deferred", 1);
	}
	arm(an);
}

double
analytics_bucket_quantile(const uint64_t *counts, const double *sums, const double *bounds, unsigned n, double q)
{
	uint64_t total = 0, cum = 0;
	unsigned i;
	double target;

	for (i = 0; i <= n; i++)
		total += counts[i];
	if (total == 0)
		return -1;
	target = q * (double)total;
	for (i = 0; i <= n; i++) {
		double lo = i == 0 ? 0 : bounds[i - 1], hi;
		if ((double)(cum + counts[i]) < target) {
			cum += counts[i];
			continue;
		}
		if (sums != NULL && counts[i] > 0) {
			/* Interpolate between the bucket's own mean and its edges, not across the whole bucket. */
			double mean = sums[i] / (double)counts[i], pos = (target - (double)cum) / (double)counts[i];
			hi = i == n ? mean : bounds[i];
			return pos <= 0.5 ? lo + (mean - lo) * (counts[i] == 1 ? 1.0 : pos * 2)
			                  : mean + (hi - mean) * (pos - 0.5) * 2;
		}
		if (i == n)
			return lo; /* beyond the last bound: the bound is all we know */
		hi = bounds[i];
		return lo + (hi - lo) * (counts[i] ? (target - (double)cum) / (double)counts[i] : 0);
	}
	return bounds[n - 1];
}

/* ---- reading ---- */

struct rd {
	struct analytics *an;
	unsigned days;
	uint64_t now_ms;
	analytics_fn done;
	void *arg;
};

static long long
hget(const redisReply *h, const char *field)
{
	size_t i;
	long long v = 0;

	if (h == NULL || h->type != REDIS_REPLY_ARRAY)
		return 0;
	for (i = 0; i + 1 < h->elements; i += 2)
		if (h->element[i]->type == REDIS_REPLY_STRING && strcmp(h->element[i]->str, field) == 0 &&
		    h->element[i + 1]->type == REDIS_REPLY_STRING) {
			parse_ll(h->element[i + 1]->str, INT64_MIN, INT64_MAX, &v);
			return v;
		}
	return 0;
}

static double
ratio(long long a, long long b)
{
	return b > 0 ? (double)a / (double)b : 0.0;
}

static json_t *
round3(double v)
{
	return json_real(round(v * 1000.0) / 1000.0);
}

static json_t *
figures(const redisReply *t, long long active, long long open)
{
	uint64_t b[NTTL + 1];
	double sums[NTTL + 1];
	char f[16];
	size_t i;
	long long conv = hget(t, "conversations"), created = hget(t, "leads_created"), ttl_n = hget(t, "ttl_n");
	long long gem = hget(t, "by_gemini"), rules = hget(t, "by_rules"), classified = gem + rules;
	double median;
	json_t *j;

	for (i = 0; i <= NTTL; i++) {
		snprintf(f, sizeof(f), "ttl_b%zu", i);
		b[i] = (uint64_t)hget(t, f);
		snprintf(f, sizeof(f), "ttl_s%zu", i);
		sums[i] = (double)hget(t, f) / 1000.0;
	}
	median = analytics_bucket_quantile(b, sums, ttl_bounds, NTTL, 0.5);
	j = json_pack("{s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}}", "conversations", "active_24h", (json_int_t)active,
	    "open", (json_int_t)open, "started", (json_int_t)conv, "completed", (json_int_t)created, "messages_in",
	    (json_int_t)hget(t, "messages_in"), "turns", (json_int_t)hget(t, "turns"), "replies",
	    (json_int_t)hget(t, "replies"), "conversion_rate", round3(ratio(created, conv)));
	json_object_set_new(j, "leads",
	    json_pack("{s:I, s:I, s:I, s:{s:I, s:I, s:I}}", "created", (json_int_t)created, "updated",
	        (json_int_t)hget(t, "leads_updated"), "deferred", (json_int_t)hget(t, "leads_deferred"), "quality",
	        "hot", (json_int_t)hget(t, "lead_hot"), "warm", (json_int_t)hget(t, "lead_warm"), "cold",
	        (json_int_t)hget(t, "lead_cold")));
	json_object_set_new(j, "time_to_lead_s",
	    json_pack("{s:I, s:o, s:o}", "count", (json_int_t)ttl_n, "mean",
	        ttl_n > 0 ? round3((double)hget(t, "ttl_ms") / 1000.0 / (double)ttl_n) : json_null(), "median",
	        median >= 0 ? round3(median) : json_null()));
	json_object_set_new(j, "support_transfers",
	    json_pack(
	        "{s:I, s:I}", "total", (json_int_t)hget(t, "support"), "to_a_person", (json_int_t)hget(t, "human")));
	json_object_set_new(j, "outbound",
	    json_pack("{s:I, s:{s:I, s:I, s:I, s:o}, s:{s:I, s:I}, s:I}", "outreach_started",
	        (json_int_t)hget(t, "outreach"), "followups", "sent", (json_int_t)hget(t, "followups"), "as_template",
	        (json_int_t)hget(t, "followup_templates"), "answered", (json_int_t)hget(t, "followup_answered"),
	        "answer_rate", round3(ratio(hget(t, "followup_answered"), hget(t, "followups"))), "opt_outs", "out",
	        (json_int_t)hget(t, "opt_outs"), "back_in", (json_int_t)hget(t, "opt_ins"), "messages_not_answered",
	        (json_int_t)hget(t, "silenced")));
	json_object_set_new(j, "salespeople",
	    json_pack("{s:I, s:I, s:I, s:{s:I, s:o}}", "messages",
	        (json_int_t)(hget(t, "agent_sent") + hget(t, "agent_held")), "sent_within_window",
	        (json_int_t)hget(t, "agent_sent"), "held_outside_window", (json_int_t)hget(t, "agent_held"),
	        "first_answer_after_handoff_s", "count", (json_int_t)hget(t, "first_human_n"), "mean",
	        hget(t, "first_human_n") > 0
	            ? round3((double)hget(t, "first_human_ms") / 1000.0 / (double)hget(t, "first_human_n"))
	            : json_null()));
	json_object_set_new(j, "classifier",
	    json_pack("{s:I, s:I, s:I, s:o, s:I, s:I, s:o, s:I, s:{s:I, s:I, s:I}}", "classified",
	        (json_int_t)classified, "by_gemini", (json_int_t)gem, "by_rules", (json_int_t)rules, "gemini_share",
	        round3(ratio(gem, classified)), "gemini_failures", (json_int_t)hget(t, "fallbacks"),
	        "invented_fields_dropped", (json_int_t)hget(t, "invented"), "mean_confidence",
	        round3(ratio(hget(t, "conf_milli"), classified) / 1000.0), "tokens", (json_int_t)hget(t, "tokens"),
	        "turn_quality", "hot", (json_int_t)hget(t, "turn_hot"), "warm", (json_int_t)hget(t, "turn_warm"),
	        "cold", (json_int_t)hget(t, "turn_cold")));
	return j;
}

static void
on_read(redisAsyncContext *ac, void *r, void *pd)
{
	struct rd *rd = pd;
	redisReply *reply = r;
	json_t *j, *daily;
	size_t i;

	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 + rd->days) {
		rd->done(NULL, rd->arg);
		free(rd);
		return;
	}
	j = figures(reply->element[0], reply->element[1]->integer, reply->element[2]->integer);
	daily = json_array();
	for (i = 0; i < rd->days; i++) {
		const redisReply *h = reply->element[3 + i];
		char day[11];
		long long conv = hget(h, "conversations"), created = hget(h, "leads_created");
		day_name(rd->now_ms - (uint64_t)(rd->days - 1 - i) * 86400000ULL, day);
		json_array_append_new(daily,
		    json_pack("{s:s, s:I, s:I, s:I, s:I, s:o, s:{s:I, s:I, s:I}, s:I, s:I, s:I, s:I, s:I, s:I}", "date",
		        day, "conversations", (json_int_t)conv, "messages_in", (json_int_t)hget(h, "messages_in"),
		        "leads_created", (json_int_t)created, "leads_updated", (json_int_t)hget(h, "leads_updated"),
		        "conversion_rate", round3(ratio(created, conv)), "quality", "hot",
		        (json_int_t)hget(h, "lead_hot"), "warm", (json_int_t)hget(h, "lead_warm"), "cold",
		        (json_int_t)hget(h, "lead_cold"), "support_transfers", (json_int_t)hget(h, "support"),
		        "by_gemini", (json_int_t)hget(h, "by_gemini"), "by_rules", (json_int_t)hget(h, "by_rules"),
		        "outreach_started", (json_int_t)hget(h, "outreach"), "followups",
		        (json_int_t)hget(h, "followups"), "opt_outs", (json_int_t)hget(h, "opt_outs")));
	}
	json_object_set_new(j, "daily", daily);
	rd->done(j, rd->arg);
	free(rd);
}

int
analytics_read(struct analytics *an, struct rconn *rc, unsigned days, analytics_fn done, void *arg)
{
	const char *argv[3 + MAX_DAYS];
	char keys[MAX_DAYS][128], since[24];
	struct rd *rd;
	unsigned i;
	int r;

	if (rc == NULL)
		return -1;
	/* What this process counted is written first: the read, on the same connection, comes after it. */
	an->rc = rc;
	flush(an);
	if (days < 1)
		days = 1;
	if (days > MAX_DAYS)
		days = MAX_DAYS;
	rd = xcalloc(1, sizeof(*rd));
	rd->an = an;
	rd->days = days;
	rd->now_ms = realtime_usec() / 1000;
	rd->done = done;
	rd->arg = arg;
	argv[0] = an->k_totals;
	argv[1] = an->k_active;
	for (i = 0; i < days; i++) {
		char day[11];
		day_name(rd->now_ms - (uint64_t)(days - 1 - i) * 86400000ULL, day);
		snprintf(keys[i], sizeof(keys[i]), "%s%s", an->k_dayprefix, day);
		argv[2 + i] = keys[i];
	}
	snprintf(since, sizeof(since), "%" PRIu64, rd->now_ms - (uint64_t)86400000);
	argv[2 + days] = since;
	if ((r = rconn_eval(rc, &an->read, on_read, rd, (int)(2 + days), (int)(3 + days), argv, NULL)) < 0) {
		free(rd);
		return -1;
	}
	return 0;
}

void
analytics_set_leads(struct analytics *an, json_t *stats, uint64_t at)
{
	json_decref(an->leads);
	an->leads = json_incref(stats);
	an->leads_at = at;
}

json_t *
analytics_leads(const struct analytics *an, uint64_t *at)
{
	if (at != NULL)
		*at = an->leads_at;
	return an->leads;
}
