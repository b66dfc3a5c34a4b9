/*
 * The conversation engine. Redis layout (P = key prefix):
 *   P{intake}:stream         the intake (consumer group "engine", one consumer per instance)
 *   P{+E164}:inbox           list of routed messages not yet taken by a turn
 *   P{+E164}:routed          set of stream ids already routed (a re-delivered entry is routed once)
 *   P{+E164}:conv            the conversation state (conversation/state.c), expiring after silence
 *   P{turns}:due             sorted set: phones with messages, by when their turn may start
 *   P{turns}:first           hash: phone -> when its current burst began (the coalescing cap)
 *   P{turns}:lease           hash: phone -> until when a turn holds it (one turn per phone, any instance)
 *   P{turns}:attempts        hash: phone -> consecutive failed turns
 *   P{odoo}:pending          sorted set: phones whose lead write waits for Odoo, by retry time
 *   P{engine}:dead           list of turns given up on, with the reason
 *   P{+E164}:ctl             hash: pause_until/pause_reason/pause_by (a hand-off), call (the context of a
 *                            sales call, merged by the next turn), window_closed_ms (Twilio's 63016)
 *   P{followup}:due          sorted set: phones whose next follow-up is due, by time
 *   P{+E164}:odoo            a lead write for the phone is under way (its job holds it, renewed; any instance)
 * Every script touches keys of one hash tag only, so each step is atomic on its own and a crash between
 * steps leaves something the next claim redoes: routing is idempotent, a turn's reply is queued once
 * per turn key, and the Odoo upsert finds the lead it may already have created.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include "classifier/lexicon.h"
#include "common/form.h"
#include "common/template.h"
#include "common/log.h"
#include "common/pace.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "conversation/outbound.h"
#include "conversation/state.h"
#include "daemon/engine.h"
#include "admin/journal.h"
#include "redis/scripts.h"
#include "stripe/stripe.h"
#include "twilio/content.h"

struct engine {
	sd_event *event;
	struct engine_deps d;
	struct engine_options o;
	char *k_stream, *k_due, *k_first, *k_lease, *k_attempts, *k_pending, *k_dead, *k_followup;
	struct rscript route, schedule, claim, release, commit, lease_one;
	bool group_ready, reading, claiming, reclaiming, pending_busy, poked, claim_again, followup_busy;
	sd_event_source *poll, *reclaim_timer;
	uint64_t last_reclaim;
	struct engine_stats st;
	struct turn *turns;
	unsigned refs; /* callbacks in flight that point at us */
	bool dying; /* engine_free was called: destroyed when refs reach 0 */
	struct pace pace; /* the poll's: 50 ms while there is work, up to ENGINE_IDLE_POLL_MS when there is none */
	uint64_t next_chores; /* lead retries and follow-ups: every second (every poll when idle) */
	uint64_t next_depths; /* queue depths for the status: every second, every 10 s when idle */
	long long *depth; /* queue depths, sampled every second (every 10 s when idle) */
};

/* The longest the loop sleeps without being told of work: how late it sees another instance's. */
#define ENGINE_IDLE_POLL_MS 2000

struct turn {
	struct engine *en;
	char phone[17];
	char due[32];
	long long attempts;
	json_t *state;
	json_t *inbox; /* the messages taken */
	size_t taken;
	char *reply, *turn_key;
	struct analysis a;
	bool odoo_retry; /* a background lead retry, not a customer turn */
	bool followup; /* a follow-up to a quiet conversation, not a customer turn */
	json_t *ctl; /* the phone's control hash as loaded */
	json_t *ctl_set, *ctl_del; /* changes to it, committed with the state */
	bool silenced, handoff, schedule_followup;
	/* The lead is written once the reply is queued: a slow Odoo never delays the customer's answer. */
	bool lead_after_reply;
	/*
	 * The lead write runs after the turn's commit, as a job that holds P{+E164}:odoo instead of the turn's
	 * lease, so the customer's next message is answered meanwhile; the job then merges what it learnt.
	 */
	bool lead_job, in_job;
	json_int_t job_gen; /* the state's lead_gen the job writes */
	unsigned merge_tries;
	sd_event_source *merge_timer;
	/* For the turn report. */
	bool fresh, replied, support, human, classified, after_followup;
	int opt, followup_sent;
	int lead;
	char lead_quality[8];
	uint64_t started_usec, classify_start, classify_usec;
	/* A voice note or image of this turn, in memory until the turn ends. */
	struct conv_media media[3];
	unsigned char *media_buf[3];
	char *media_mime[3];
	size_t nmedia, media_wanted, media_done;
	const char *media_sid;
	bool media_only, media_failed;
	sd_event_source *renew;
	struct turn *prev, *next;
};

static void poll_now(struct engine *en);
static void read_intake(struct engine *en);
static void claim_turns(struct engine *en);
static void destroy(struct engine *en);

/*
 * Every callback that holds a reference starts here: drops it, and when the
 * engine is being freed, says so (the caller then only cleans up its own).
 */
static bool
gone(struct engine *en)
{
	en->refs--;
	return en->dying;
}

/* After a dying callback has cleaned up its own object: the last one frees the engine. */
static void
settle(struct engine *en)
{
	if (en->dying && en->refs == 0)
		destroy(en);
}
static struct rconn *
rc(struct engine *en)
{
	struct rconn *r = *en->d.redis;
	return r != NULL && rconn_state(r) == RCONN_UP ? r : NULL;
}

static char *
pkey(struct engine *en, const char *phone, const char *what)
{
	char *k;

	xasprintf(&k, "%s{%s}:%s", en->o.key_prefix, phone, what);
	return k;
}

char *
engine_conv_key(const struct engine *en, const char *phone)
{
	return pkey((struct engine *)(uintptr_t)en, phone, "conv");
}

const char *
engine_key(const struct engine *en, const char *what)
{
	if (strcmp(what, "due") == 0)
		return en->k_due;
	if (strcmp(what, "pending") == 0)
		return en->k_pending;
	if (strcmp(what, "dead") == 0)
		return en->k_dead;
	return en->k_lease;
}

static int
eval(struct engine *en, const struct rscript *sc, redisCallbackFn *fn, void *pd, int nkeys, const char **argv, int argc)
{
	return rc(en) != NULL ? rconn_eval(rc(en), sc, fn, pd, nkeys, argc, argv, NULL) : -ENOTCONN;
}

/* ---- routing: intake stream -> per-phone inboxes ---- */

struct route_op {
	struct engine *en;
	char *id, *phone;
	int step;
};

/* The text a message stands for in the history: its body, or what it carries. */
static char *
message_text(const struct form *f)
{
	const char *body = form_get(f, "Body"), *v;
	char *t;

	if (body != NULL && *body != '\0')
		return xstrdup(body);
	if ((v = form_get(f, "ButtonText")) != NULL && *v != '\0')
		return xstrdup(v);
	if ((v = form_get(f, "Latitude")) != NULL) {
		xasprintf(&t, "[location %s,%s%s%s]", v, form_get(f, "Longitude") ?: "?",
		    form_get(f, "Address") ? " " : "", form_get(f, "Address") ?: "");
		return t;
	}
	if ((v = form_get(f, "MediaContentType0")) != NULL) {
		xasprintf(&t, "[%s]", v);
		return t;
	}
	xasprintf(&t, "[%s]", form_get(f, "MessageType") ?: "message");
	return t;
}

static void route_step(struct route_op *op);

static void
route_free(struct route_op *op)
{
	free(op->id);
	free(op->phone);
	free(op);
}

static void
on_route(redisAsyncContext *ac, void *r, void *pd)
{
	struct route_op *op = pd;
	struct engine *en = op->en;

	if (gone(en)) {
		route_free(op);
		settle(en);
		return;
	}
	if (r == NULL || ((redisReply *)r)->type == REDIS_REPLY_ERROR) {
		/* Not acknowledged: the entry stays pending and is claimed again later. */
		route_free(op);
		return;
	}
	if (op->step == 0 && ((redisReply *)r)->type == REDIS_REPLY_INTEGER && ((redisReply *)r)->integer == 1)
		op->en->st.routed++;
	/* The schedule's answer: when the phone's turn falls due (its coalescing window): poll then. */
	if (op->step == 1 && ((redisReply *)r)->type == REDIS_REPLY_INTEGER && ((redisReply *)r)->integer > 0) {
		uint64_t due = (uint64_t)((redisReply *)r)->integer, now = realtime_usec() / 1000;
		pace_due(&op->en->pace, due);
		pace_sooner(op->en->poll, now_usec() + (due > now ? due - now : 0) * 1000);
	}
	op->step++;
	route_step(op);
}

static void
route_step(struct route_op *op)
{
	struct engine *en = op->en;
	char now[24], win[24], cap[24];

	switch (op->step) {
	case 1: {
		const char *a[6] = {en->k_due, en->k_first, op->phone, now, win, cap};
		snprintf(now, sizeof(now), "%" PRIu64, realtime_usec() / 1000);
		snprintf(win, sizeof(win), "%" PRIu64, en->o.coalesce_window_ms);
		snprintf(cap, sizeof(cap), "%" PRIu64, en->o.coalesce_max_ms);
		en->refs++;
		if (eval(en, &en->schedule, on_route, op, 2, a, 6) < 0) {
			en->refs--;
			route_free(op);
		}
		return;
	}
	case 2:
		en->refs++;
		if (rc(en) == NULL ||
		    rconn_command(rc(en), on_route, op, "XACK %s engine %s", en->k_stream, op->id) < 0) {
			en->refs--;
			route_free(op);
		}
		return;
	default: route_free(op); poll_now(en);
	}
}

static void
route_entry(struct engine *en, redisReply *entry)
{
	redisReply *fields;
	const char *sid = NULL, *from = NULL, *form = NULL, *ms = NULL;
	size_t formlen = 0, i;
	struct form f;
	const char *why;
	char phone[17], *text, *json, *inbox, *routed, ttl[24];
	struct route_op *op;

	if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 || entry->element[0]->type != REDIS_REPLY_STRING ||
	    (fields = entry->element[1])->type != REDIS_REPLY_ARRAY)
		return;
	for (i = 0; i + 1 < fields->elements; i += 2) {
		const char *k = fields->element[i]->str;
		redisReply *v = fields->element[i + 1];
		if (strcmp(k, "sid") == 0)
			sid = v->str;
		else if (strcmp(k, "from") == 0)
			from = v->str;
		else if (strcmp(k, "form") == 0)
			form = v->str, formlen = v->len;
		else if (strcmp(k, "received_ms") == 0)
			ms = v->str;
	}
	if (sid == NULL || from == NULL || form == NULL || conv_phone_param(from, phone) < 0 ||
	    form_parse(form, formlen, &f, &why) < 0) {
		/* The intake checked all this; a bad entry is acknowledged and logged, not retried forever. */
		log_error("engine: intake entry %s is malformed; acknowledged without a turn", entry->element[0]->str);
		rconn_command(rc(en), NULL, NULL, "XACK %s engine %s", en->k_stream, entry->element[0]->str);
		return;
	}
	text = message_text(&f);
	{
		json_t *m = json_pack("{s:s, s:s, s:s, s:s?}", "sid", sid, "text", text, "t_ms", ms ? ms : "0",
		    "profile", form_get(&f, "ProfileName"));
		long long nm = 0;
		/* Voice notes and images: their addresses, for the turn to fetch (the bytes are never stored). */
		if (parse_ll(form_get(&f, "NumMedia") ?: "0", 0, 10, &nm) == 0 && nm > 0) {
			json_t *media = json_array();
			char k[32];
			for (long long mi = 0; mi < nm && mi < 3; mi++) {
				const char *u, *ty;
				snprintf(k, sizeof(k), "MediaUrl%lld", mi);
				u = form_get(&f, k);
				snprintf(k, sizeof(k), "MediaContentType%lld", mi);
				ty = form_get(&f, k);
				if (u != NULL && ty != NULL &&
				    (strncmp(ty, "audio/", 6) == 0 || strncmp(ty, "image/", 6) == 0))
					json_array_append_new(media, json_pack("{s:s, s:s}", "url", u, "type", ty));
			}
			if (json_array_size(media) > 0) {
				json_object_set_new(m, "media", media);
				const char *b = form_get(&f, "Body");
				json_object_set_new(m, "media_only", json_boolean(b == NULL || *b == '\0'));
			} else {
				json_decref(media);
			}
		}
		json = json_dumps(m, JSON_COMPACT);
		json_decref(m);
	}
	form_clear(&f);
	free(text);
	inbox = pkey(en, phone, "inbox");
	routed = pkey(en, phone, "routed");
	snprintf(ttl, sizeof(ttl), "%" PRIu64, en->o.conversation_ttl_s);
	op = xcalloc(1, sizeof(*op));
	op->en = en;
	op->id = xstrdup(entry->element[0]->str);
	op->phone = xstrdup(phone);
	en->refs++;
	{
		const char *a[5] = {inbox, routed, op->id, json, ttl};
		if (eval(en, &en->route, on_route, op, 2, a, 5) < 0) {
			en->refs--;
			route_free(op);
		}
	}
	free(inbox);
	free(routed);
	free(json);
}

static void
on_read(redisAsyncContext *ac, void *r, void *pd)
{
	struct engine *en = pd;
	redisReply *reply = r, *entries = NULL;
	size_t i;

	if (gone(en)) {
		settle(en);
		return;
	}
	en->reading = false;
	if (en->poked) {
		/* A message was stored while this read was under way: read again now, not at the next poll. */
		en->poked = false;
		read_intake(en);
	}
	if (reply == NULL)
		return;
	if (reply->type == REDIS_REPLY_ERROR) {
		if (strncmp(reply->str, "NOGROUP", 7) == 0)
			en->group_ready = false;
		return;
	}
	/* XREADGROUP: [[stream, [entries]]]; XAUTOCLAIM: [cursor, [entries], [deleted]]. */
	if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 && reply->element[0]->type == REDIS_REPLY_ARRAY)
		entries = reply->element[0]->elements == 2 ? reply->element[0]->element[1] : NULL;
	else if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2)
		entries = reply->element[1];
	if (entries == NULL || entries->type != REDIS_REPLY_ARRAY)
		return;
	if (entries->elements > 0)
		en->pace.found = true;
	for (i = 0; i < entries->elements; i++)
		route_entry(en, entries->element[i]);
}

static void
on_group(redisAsyncContext *ac, void *r, void *pd)
{
	struct engine *en = pd;
	redisReply *reply = r;

	if (gone(en)) {
		settle(en);
		return;
	}
	if (reply != NULL &&
	    (reply->type == REDIS_REPLY_STATUS ||
	        (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "BUSYGROUP", 9) == 0)))
		en->group_ready = true;
}

static void
read_intake(struct engine *en)
{
	uint64_t now = now_usec();

	if (en->reading || rc(en) == NULL)
		return;
	if (!en->group_ready) {
		/* From the start of the stream: messages stored before the first run are not skipped. */
		en->refs++;
		if (rconn_command(rc(en), on_group, en, "XGROUP CREATE %s engine 0 MKSTREAM", en->k_stream) < 0)
			en->refs--;
		return;
	}
	en->reading = true;
	en->refs++;
	/* Entries another (dead) instance read but never acknowledged are taken over after 30 s. */
	if (now - en->last_reclaim > 10000000) {
		en->last_reclaim = now;
		if (rconn_command(rc(en), on_read, en, "XAUTOCLAIM %s engine %s 30000 0-0 COUNT 64", en->k_stream,
		        en->o.consumer) < 0) {
			en->refs--;
			en->reading = false;
		}
		return;
	}
	if (rconn_command(rc(en), on_read, en, "XREADGROUP GROUP engine %s COUNT 64 STREAMS %s >", en->o.consumer,
	        en->k_stream) < 0) {
		en->refs--;
		en->reading = false;
	}
}

/* ---- turns ---- */

static void turn_finish(struct turn *t, bool ok, const char *why);
static void turn_loaded(struct turn *t);

static void
turn_free(struct turn *t)
{
	struct engine *en = t->en;

	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		en->turns = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	if (t->in_job)
		en->st.lead_jobs--;
	else
		en->st.in_flight--;
	sd_event_source_disable_unref(t->renew);
	sd_event_source_disable_unref(t->merge_timer);
	json_decref(t->state);
	json_decref(t->inbox);
	json_decref(t->ctl);
	json_decref(t->ctl_set);
	json_decref(t->ctl_del);
	free(t->reply);
	free(t->turn_key);
	analysis_clear(&t->a);
	/* The media goes with the turn: nothing of it is kept. */
	for (size_t i = 0; i < t->nmedia; i++) {
		if (t->media_buf[i] != NULL)
			explicit_bzero(t->media_buf[i], t->media[i].len);
		free(t->media_buf[i]);
		free(t->media_mime[i]);
	}
	free(t);
}

/* In a turn's callback: true, with the turn freed, when the engine is going away (its last callback frees it). */
static bool
turn_dropped(struct turn *t)
{
	struct engine *en = t->en;

	if (!gone(en))
		return false;
	turn_free(t);
	settle(en);
	return true;
}

/* The phone's lead write is retried in the background delay_ms from now (the retry schedule). */
static void
retry_lead_in(struct engine *en, const char *phone, uint64_t delay_ms)
{
	char when[24];

	snprintf(when, sizeof(when), "%" PRIu64, realtime_usec() / 1000 + delay_ms);
	if (rc(en) != NULL)
		rconn_command(rc(en), NULL, NULL, "ZADD %s %s %s", en->k_pending, when, phone);
}

static int
on_renew(sd_event_source *s, uint64_t usec, void *arg)
{
	struct turn *t = arg;
	struct engine *en = t->en;
	char until[24];

	/* A long turn (a slow model) keeps its phone; a lead job keeps the phone's lead write. */
	snprintf(until, sizeof(until), "%" PRIu64, realtime_usec() / 1000 + en->o.turn_lease_ms);
	if (rc(en) != NULL && t->in_job) {
		char *key = pkey(en, t->phone, "odoo");
		rconn_command(rc(en), NULL, NULL, "PEXPIRE %s %" PRIu64, key, en->o.turn_lease_ms);
		free(key);
	} else if (rc(en) != NULL) {
		rconn_command(rc(en), NULL, NULL, "HSET %s %s %s", en->k_lease, t->phone, until);
	}
	sd_event_source_set_time(s, now_usec() + en->o.turn_lease_ms * 1000 / 3);
	sd_event_source_set_enabled(s, SD_EVENT_ONESHOT); /* a time source is off once it has fired */
	return 0;
}

static void job_start(struct turn *t);

static void
on_released(redisAsyncContext *ac, void *r, void *pd)
{
	struct turn *t = pd;
	struct engine *en = t->en;

	if (turn_dropped(t))
		return;
	poll_now(en);
	if (t->lead_job) {
		job_start(t); /* the phone is free for the next turn; its lead is written meanwhile */
		return;
	}
	turn_free(t);
}

static void
release(struct turn *t, bool ok)
{
	struct engine *en = t->en;
	char now[24];
	const char *a[7] = {en->k_due, en->k_lease, en->k_attempts, t->phone, t->due, ok ? "1" : "0", now};

	snprintf(now, sizeof(now), "%" PRIu64, realtime_usec() / 1000);
	en->refs++;
	if (eval(en, &en->release, on_released, t, 3, a, 7) < 0) {
		/* Redis went away: the lease expires by itself and the turn is redone. */
		en->refs--;
		turn_free(t);
	}
}

/* Tells the observer what a committed turn did. */
static void
report(struct turn *t)
{
	struct engine *en = t->en;
	struct turn_report r = {0};
	json_t *c = json_object_get(t->state, "created_ms");

	if (en->d.report == NULL)
		return;
	r.phone = t->phone;
	r.now_ms = realtime_usec() / 1000;
	r.created_ms = json_is_integer(c) ? (uint64_t)json_integer_value(c) : 0;
	r.lead = t->lead;
	r.quality = t->lead_quality[0] != '\0' ? t->lead_quality : NULL;
	if (t->in_job) {
		/* A lead job reports its lead only: the customer's turn was reported at its commit. */
		en->d.report(&r, en->d.report_arg);
		return;
	}
	r.customer = !t->odoo_retry && !t->followup;
	r.classified = t->classified;
	r.new_conversation = t->fresh && r.customer;
	r.messages_in = (unsigned)t->taken;
	r.replied = t->replied && r.customer;
	r.a = t->classified ? &t->a : NULL;
	r.opt = t->opt;
	r.silenced = t->silenced;
	r.after_followup = t->after_followup;
	r.followup = t->followup_sent;
	r.support = t->support;
	r.human = t->human;
	r.turn_usec = now_usec() - t->started_usec;
	r.classify_usec = t->classify_usec;
	en->d.report(&r, en->d.report_arg);
}

static void
on_committed(redisAsyncContext *ac, void *r, void *pd)
{
	struct turn *t = pd;
	redisReply *reply = r;

	if (turn_dropped(t))
		return;
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		turn_finish(t, false, "commit failed");
		return;
	}
	report(t);
	release(t, true);
}

/* Follow-ups: the next one's time, from the customer's last message (none: not scheduled). */
static void
schedule_followups(struct turn *t)
{
	struct engine *en = t->en;
	json_int_t sent = json_integer_value(json_object_get(t->state, "followups_sent"));
	json_int_t last = json_integer_value(json_object_get(t->state, "last_inbound_ms"));

	if (rc(en) == NULL || en->o.nfollowups == 0 || t->odoo_retry)
		return;
	if (t->schedule_followup && sent < (json_int_t)en->o.nfollowups && last > 0)
		rconn_command(rc(en), NULL, NULL, "ZADD %s %" PRIu64 " %s", en->k_followup,
		    (uint64_t)last + en->o.followup_delays[sent], t->phone);
	else
		rconn_command(rc(en), NULL, NULL, "ZREM %s %s", en->k_followup, t->phone);
}

static void job_merge(struct turn *t);

static void
commit(struct turn *t)
{
	struct engine *en = t->en;

	if (t->in_job) {
		job_merge(t); /* a lead job: only what it learnt goes into the stored state */
		return;
	}
	char *conv = pkey(en, t->phone, "conv"), *inbox = pkey(en, t->phone, "inbox"), *ctl = pkey(en, t->phone, "ctl");
	char *state, taken[24], ttl[24], nset[16];
	const char **a;
	size_t n = 0, i;
	const char *k;
	json_t *v;

	json_object_set_new(t->state, "updated_ms", json_integer((json_int_t)(realtime_usec() / 1000)));
	conv_state_prune(t->state, realtime_usec() / 1000, en->o.history_retention_ms);
	state = json_dumps(t->state, JSON_COMPACT);
	snprintf(taken, sizeof(taken), "%zu", t->taken);
	snprintf(ttl, sizeof(ttl), "%" PRIu64, en->o.conversation_ttl_s);
	snprintf(nset, sizeof(nset), "%zu", json_object_size(t->ctl_set));
	a = xcalloc(7 + 2 * json_object_size(t->ctl_set) + json_array_size(t->ctl_del), sizeof(*a));
	a[n++] = conv;
	a[n++] = inbox;
	a[n++] = ctl;
	a[n++] = state;
	a[n++] = taken;
	a[n++] = ttl;
	a[n++] = nset;
	json_object_foreach(t->ctl_set, k, v)
	{
		a[n++] = k;
		a[n++] = json_string_value(v);
	}
	json_array_foreach(t->ctl_del, i, v) a[n++] = json_string_value(v);
	en->refs++;
	if (eval(en, &en->commit, on_committed, t, 3, a, (int)n) < 0) {
		en->refs--;
		turn_finish(t, false, "Redis unavailable at commit");
	} else {
		schedule_followups(t);
	}
	free(a);
	free(conv);
	free(inbox);
	free(ctl);
	free(state);
}

static void
ctl_set(struct turn *t, const char *field, const char *value)
{
	if (t->ctl_set == NULL)
		t->ctl_set = json_object();
	json_object_set_new(t->ctl_set, field, json_string(value));
}

static void
ctl_del(struct turn *t, const char *field)
{
	if (t->ctl_del == NULL)
		t->ctl_del = json_array();
	json_array_append_new(t->ctl_del, json_string(field));
}

static uint64_t
ctl_ms(const struct turn *t, const char *field)
{
	long long v = 0;

	parse_ll(json_string_value(json_object_get(t->ctl, field)) ?: "0", 0, INT64_MAX, &v);
	return (uint64_t)v;
}

static void write_lead_as(struct turn *t, bool support);

/*
 * The turn wants its lead written: the state says so (lead_pending, a new lead_gen) when it is committed,
 * and a retry is scheduled in case this process stops before the job is done; the job starts after the
 * commit and the release.
 */
static void
lead_job_due(struct turn *t)
{
	struct engine *en = t->en;

	t->job_gen = json_integer_value(json_object_get(t->state, "lead_gen")) + 1;
	json_object_set_new(t->state, "lead_gen", json_integer(t->job_gen));
	json_object_set_new(t->state, "lead_pending", json_true());
	t->lead_job = true;
	retry_lead_in(en, t->phone, 3 * en->o.turn_lease_ms);
}

/* The reply is queued (or there is none): the lead is written now, then the turn is committed. */
static void
after_reply(struct turn *t)
{
	struct engine *en = t->en;

	if (t->lead_after_reply) {
		t->lead_after_reply = false;
		if (en->d.leads == NULL || *en->d.leads == NULL) {
			write_lead_as(t, t->support); /* the journal answers at once */
			return;
		}
		lead_job_due(t);
	}
	commit(t);
}

static void
on_queued_reply(int parts, void *arg)
{
	struct turn *t = arg;

	if (turn_dropped(t))
		return;
	if (parts == -EPERM) {
		conv_state_set_stage(t->state, "opted_out");
	} else if (parts < 0) {
		turn_finish(t, false, "the reply could not be queued");
		return;
	}
	if (parts > 0) {
		t->en->st.replies++;
		t->replied = true;
	}
	after_reply(t);
}

/*
 * Outside WhatsApp's 24-hour window free text is refused (63016): the
 * configured template goes instead (content_sid, variables from the
 * conversation), or nothing. Returns true when it took care of the turn.
 */
static bool
send_template(struct turn *t, const char *content_sid, const char *mapping, const char *once, const char *why)
{
	struct engine *en = t->en;
	struct sender *s = en->d.sender != NULL ? *en->d.sender : NULL;
	char missing[32], ph[32], *vars, *text;
	struct sender_msg m = {0};

	if (content_sid == NULL) {
		en->st.window_skipped++;
		log_notice("engine: %s: %s outside the 24-hour window and no template is configured: not sent",
		    log_phone(t->phone, ph, sizeof(ph)), why);
		return false;
	}
	if ((vars = outbound_template_vars(t->state, NULL, mapping, missing)) == NULL) {
		en->st.window_skipped++;
		log_warnx("engine: %s: %s outside the 24-hour window: template variable %s unknown; not sent",
		    log_phone(t->phone, ph, sizeof(ph)), why, missing);
		return false;
	}
	text = outbound_template_text(
	    en->d.content != NULL ? content_render(*en->d.content, content_sid, vars) : NULL, content_sid, vars);
	conv_state_add(t->state, "out", text, realtime_usec() / 1000, NULL, en->o.history_cap);
	conv_state_count(t->state, "out", 1);
	free(text);
	if (s == NULL) {
		free(vars);
		return false;
	}
	m.to = t->phone;
	m.content_sid = content_sid;
	m.content_vars = vars;
	m.once = once;
	en->refs++;
	sender_send(s, &m, on_queued_reply, t);
	free(vars);
	return true;
}

/* Records the reply in the history and queues it (once per turn, whatever happens next). */
static void
reply(struct turn *t)
{
	struct engine *en = t->en;
	struct sender *s = en->d.sender != NULL ? *en->d.sender : NULL;
	char ph[32];
	uint64_t now = realtime_usec() / 1000;

	if (t->reply == NULL || *t->reply == '\0' || strcmp(conv_state_stage(t->state), "opted_out") == 0) {
		after_reply(t);
		return;
	}
	if (!outbound_window_open(t->state, now, en->o.window_margin_ms, ctl_ms(t, "window_closed_ms"))) {
		/* A turn done late (a dead letter retried the next day): the window may have closed meanwhile. */
		if (send_template(t, en->o.window_content_sid, en->o.window_variables, t->turn_key, "the reply is")) {
			en->st.window_templates++;
			return;
		}
		after_reply(t);
		return;
	}
	json_object_set_new(t->state, "last_question", json_string(t->reply));
	conv_state_add(t->state, "out", t->reply, realtime_usec() / 1000, NULL, en->o.history_cap);
	conv_state_count(t->state, "out", 1);
	if (s == NULL) {
		log_info("engine: reply to %s (no Twilio sender configured): %zu characters",
		    log_phone(t->phone, ph, sizeof(ph)), strlen(t->reply));
		en->st.replies++;
		t->replied = true;
		after_reply(t);
		return;
	}
	en->refs++;
	sender_enqueue_once(s, t->phone, t->reply, t->turn_key, on_queued_reply, t);
}

/* ---- after a lead is written: the hand-off note, booking and payment links ---- */

static void
on_handoff_noted(const struct odoo_error *e, void *arg)
{
	struct turn *t = arg;
	char ph[32];

	if (turn_dropped(t))
		return;
	if (e->kind != ODOO_OK) {
		/* The hand-off itself stands (the bot is paused, the lead is written); only the note is missing. */
		t->en->st.handoff_notes_failed++;
		log_warnx("engine: %s: hand-off note or assignment failed (%s error: %s)",
		    log_phone(t->phone, ph, sizeof(ph)), odoo_kind_name(e->kind), e->message);
	}
	commit(t);
}

static void
handoff_note(struct turn *t, int lead_id)
{
	struct engine *en = t->en;
	struct lead_ctx *lx = en->d.leads != NULL ? *en->d.leads : NULL;
	char note[256], until[32];
	time_t u = (time_t)((realtime_usec() / 1000 + en->o.handoff_pause_ms) / 1000);
	struct tm tm;

	/* A helpdesk ticket has its own team; the journal has no one to assign to. */
	if (lx == NULL || lead_ctx_has_helpdesk(lx)) {
		commit(t);
		return;
	}
	gmtime_r(&u, &tm);
	strftime(until, sizeof(until), "%Y-%m-%d %H:%M UTC", &tm);
	snprintf(note, sizeof(note),
	    "Handed over to a person: the customer %s. The WhatsApp bot stays quiet until %s or until resumed "
	    "(POST /api/conversation/{phone}/resume).",
	    t->human ? "asked for a person" : "needs support", until);
	en->refs++;
	lead_handoff(lx, lead_id, en->o.handoff_team_id, en->o.handoff_user_id, note, on_handoff_noted, t);
}

static void
append_link(struct turn *t, enum qkey key, const char *url)
{
	struct lexicon *lx = t->en->d.lexicon != NULL ? *t->en->d.lexicon : NULL;
	const char *tpl = lx != NULL ? lexicon_question(lx, outbound_lang(lx, t->state), key, 0) : NULL;
	const char *keys[] = {"url"}, *vals[] = {url};
	char *line, *n;

	if (t->reply == NULL || tpl == NULL)
		return;
	line = template_expand(tpl, keys, vals, 1);
	xasprintf(&n, "%s\n\n%s", t->reply, line);
	free(line);
	free(t->reply);
	t->reply = n;
}

static void
on_checkout(const char *url, const char *error, void *arg)
{
	struct turn *t = arg;

	if (turn_dropped(t))
		return;
	if (url != NULL) {
		append_link(t, QK_PAYMENT, url);
		json_object_set_new(json_object_get(t->state, "links"), "payment", json_string(url));
		t->en->st.links_payment++;
	} else {
		t->en->st.links_payment_failed++; /* the reply goes without it */
	}
	reply(t);
}

/*
 * The confirmation of a new lead carries the booking link and a Stripe
 * Checkout link when configured. It goes before the lead is written, so the
 * Checkout session is named after the conversation (phone and start), not
 * after the Odoo lead.
 */
static void
add_links(struct turn *t)
{
	struct engine *en = t->en;
	struct stripe *st = en->d.stripe != NULL ? *en->d.stripe : NULL;
	char ref[32], idem[64];

	if (json_object_get(t->state, "links") != NULL || t->reply == NULL) {
		reply(t);
		return;
	}
	json_object_set_new(t->state, "links", json_object());
	if (en->o.booking_url != NULL) {
		append_link(t, QK_BOOKING, en->o.booking_url);
		json_object_set_new(json_object_get(t->state, "links"), "booking", json_string(en->o.booking_url));
		en->st.links_booking++;
	}
	if (st == NULL) {
		reply(t);
		return;
	}
	/* The same key for a turn redone after a crash: Stripe answers with the same session. */
	snprintf(ref, sizeof(ref), "wa-%s", t->phone + 1);
	snprintf(idem, sizeof(idem), "crmbridge-%s-%lld", t->phone + 1,
	    (long long)json_integer_value(json_object_get(t->state, "created_ms")));
	en->refs++;
	stripe_checkout(st, ref, idem, on_checkout, t);
}

static void
on_lead(const struct lead_result *r, void *arg)
{
	struct turn *t = arg;
	struct engine *en = t->en;
	char ph[32];

	if (turn_dropped(t))
		return;
	if (r->err.kind == ODOO_OK) {
		json_object_set_new(t->state, "lead_id", json_integer(r->lead_id));
		json_object_set_new(t->state, "lead_pending", json_false());
		json_object_del(t->state, "lead_create_unknown_ms");
		if (r->written != NULL)
			json_object_set(t->state, "lead_written", r->written);
		if (r->note_error.kind != ODOO_OK)
			log_warnx("engine: %s: lead %d written, its chatter note not (%s error: %s)",
			    log_phone(t->phone, ph, sizeof(ph)), r->lead_id, odoo_kind_name(r->note_error.kind),
			    r->note_error.message);
		/* A support or human hand-off keeps its stage; the team works it from Odoo. */
		if (strcmp(conv_state_stage(t->state), "support") != 0 &&
		    strcmp(conv_state_stage(t->state), "human") != 0)
			conv_state_set_stage(t->state, "lead_created");
		if (r->created)
			en->st.leads_created++;
		else
			en->st.leads_updated++;
		t->lead = r->created ? 1 : 2;
		if (t->odoo_retry)
			en->st.odoo_recovered++; /* the merge takes it off the retry schedule */
		log_info("engine: %s: lead %d %s %s%s", log_phone(t->phone, ph, sizeof(ph)), r->lead_id,
		    r->adopted       ? "created (by the create that got no answer: found, not made again)"
		        : r->created ? "created"
		        : r->updated ? "updated"
		                     : "unchanged",
		    en->d.leads != NULL && *en->d.leads != NULL ? "in Odoo" : "in the lead journal",
		    r->kept > 0          ? ", a note for the team (the customer contradicts what it set)"
		        : r->note_id > 0 ? ", with a note"
		                         : "");
	} else {
		/* Odoo down or refusing: the conversation goes on; the write is kept and retried in the background. */
		uint64_t delay = 5000 << (t->attempts > 6 ? 6 : t->attempts);
		json_object_set_new(t->state, "lead_pending", json_true());
		if (r->create_unknown && json_object_get(t->state, "lead_create_unknown_ms") == NULL) {
			/* The create may still commit: the retries look for it before they create anything. */
			json_object_set_new(
			    t->state, "lead_create_unknown_ms", json_integer((json_int_t)(realtime_usec() / 1000)));
			en->st.odoo_create_unknown++;
		}
		retry_lead_in(en, t->phone, delay > 600000 ? 600000 : delay);
		en->st.odoo_deferred++;
		t->lead = -1;
		log_warnx("engine: %s: lead write deferred (%s error: %s)", log_phone(t->phone, ph, sizeof(ph)),
		    odoo_kind_name(r->err.kind), r->err.message);
	}
	if (!t->odoo_retry && r->err.kind == ODOO_OK && t->handoff) {
		handoff_note(t, r->lead_id);
		return;
	}
	commit(t); /* the reply went before the lead */
}

/* Writes the lead from the conversation's fields. */
static void
write_lead_as(struct turn *t, bool support)
{
	struct engine *en = t->en;
	struct lead_ctx *lx = en->d.leads != NULL ? *en->d.leads : NULL;
	struct journal *jr = en->d.journal != NULL ? *en->d.journal : NULL;
	json_t *h = json_object_get(t->state, "history"), *q;
	const char *last[6];
	bool out[6];
	size_t n = 0, i, from;
	struct lead_input in = {0};
	json_int_t unknown = json_integer_value(json_object_get(t->state, "lead_create_unknown_ms"));

	if (lx == NULL && jr == NULL) {
		if (strcmp(conv_state_stage(t->state), "support") != 0)
			conv_state_set_stage(t->state, "qualified");
		commit(t);
		return;
	}
	from = json_array_size(h) > 6 ? json_array_size(h) - 6 : 0;
	for (i = from; i < json_array_size(h); i++) {
		json_t *e = json_array_get(h, i);
		out[n] = strcmp(json_string_value(json_object_get(e, "dir")) ?: "in", "out") == 0;
		last[n++] = json_string_value(json_object_get(e, "text"));
	}
	q = json_array_get(
	    json_object_get(t->state, "quality"), json_array_size(json_object_get(t->state, "quality")) - 1);
	in.phone = t->phone;
	in.contact_name = conv_state_field(t->state, F_NAME);
	in.email = conv_state_field(t->state, F_EMAIL);
	in.city = conv_state_field(t->state, F_CITY);
	in.product = conv_state_field(t->state, F_PRODUCT);
	in.budget = conv_state_field(t->state, F_BUDGET);
	in.urgency = conv_state_field(t->state, F_URGENCY);
	in.need = conv_state_field(t->state, F_NEED);
	in.quality = json_string_value(json_object_get(q, "q")) ?: "warm";
	snprintf(t->lead_quality, sizeof(t->lead_quality), "%s", in.quality);
	in.confidence = json_number_value(json_object_get(q, "confidence"));
	in.intent = t->odoo_retry ? "sales" : intent_name(t->a.intent);
	in.reasoning = t->a.reasoning;
	in.last_messages = last;
	in.last_outbound = out;
	in.nlast = n;
	in.post_note = true;
	in.written = json_object_get(t->state, "lead_written");
	in.lead_id = (int)json_integer_value(json_object_get(t->state, "lead_id"));
	in.create_after_ms = unknown > 0 ? (uint64_t)unknown + en->o.odoo_create_patience_ms : 0;
	en->refs++;
	if (lx == NULL)
		journal_upsert(jr, &in, support, on_lead, t); /* answers at once */
	else if (support)
		lead_support(lx, &in, on_lead, t);
	else
		lead_upsert(lx, &in, on_lead, t);
}

static void ask_to_write(struct turn *t, const char *why);

static void
on_classified(const struct analysis *a, void *arg)
{
	struct turn *t = arg;
	struct engine *en = t->en;
	const char *last_sid = json_string_value(json_object_get(json_array_get(t->inbox, t->taken - 1), "sid"));
	bool has_lead = json_is_integer(json_object_get(t->state, "lead_id"));

	if (turn_dropped(t))
		return;
	analysis_copy(&t->a, a);
	t->classified = true;
	t->classify_usec = now_usec() - t->classify_start;
	if (a->transcript != NULL && t->media_sid != NULL) {
		/* What the voice note said (or the image showed) is kept as the message's text; the media is not. */
		json_t *h = json_object_get(t->state, "history"), *e;
		size_t i;
		json_array_foreach(
		    h, i, e) if (strcmp(json_string_value(json_object_get(e, "sid")) ?: "", t->media_sid) == 0)
		{
			char *txt;
			xasprintf(&txt, "[%s] %s",
			    t->nmedia > 0 && strncmp(t->media[0].mime, "image/", 6) == 0 ? "image" : "voice note",
			    a->transcript);
			json_object_set_new(e, "text", json_string(txt));
			free(txt);
		}
		en->st.media_transcribed++;
	} else if (t->nmedia > 0 && t->media_only && strcmp(a->source ?: "rules", "rules") == 0) {
		/* The model failed and the rules cannot hear a voice note: ask for text instead of guessing. */
		ask_to_write(t, "the model did not answer");
		return;
	}
	conv_state_merge(t->state, a, last_sid, realtime_usec() / 1000);
	t->reply = a->reply != NULL ? xstrdup(a->reply) : NULL;
	if (strcmp(conv_state_stage(t->state), "new") == 0 || strcmp(conv_state_stage(t->state), "contacted") == 0)
		conv_state_set_stage(t->state, "gathering_info");
	if (a->lang[0] != '\0')
		json_object_set_new(t->state, "lang", json_string(a->lang));
	/* Quiet and still warm after this reply: follow-ups are scheduled at the commit. */
	t->schedule_followup = a->action != A_CREATE_LEAD && a->action != A_TRANSFER_TO_SUPPORT && !has_lead &&
	    a->quality == Q_WARM && a->reply != NULL;
	if (a->action == A_TRANSFER_TO_SUPPORT) {
		char until[24];
		conv_state_set_stage(t->state, strcmp(a->reason, "human") == 0 ? "human" : "support");
		en->st.support++;
		t->support = true;
		t->human = strcmp(a->reason, "human") == 0;
		/* A person takes over: the bot says so once, then stays quiet until resumed or the pause ends. */
		snprintf(until, sizeof(until), "%" PRIu64, realtime_usec() / 1000 + en->o.handoff_pause_ms);
		ctl_set(t, "pause_until", until);
		ctl_set(t, "pause_reason", t->human ? "human" : "support");
		ctl_set(t, "pause_by", "bot");
		t->handoff = true;
		en->st.handoffs++;
		t->lead_after_reply = true; /* a helpdesk ticket, or the lead tagged for support */
		reply(t);
		return;
	}
	/* A lead is written when the policy says so, and kept up to date once it exists (never a second one). */
	if (a->action == A_CREATE_LEAD || has_lead) {
		t->lead_after_reply = true;
		if (!has_lead && a->action == A_CREATE_LEAD)
			add_links(t); /* then the reply */
		else
			reply(t);
		return;
	}
	reply(t);
}

/* ---- the lead job: the lead write after the turn, without the turn's lease ---- */

static void
job_end(struct turn *t)
{
	struct engine *en = t->en;
	char *key = pkey(en, t->phone, "odoo");

	if (rc(en) != NULL)
		rconn_command(rc(en), NULL, NULL, "DEL %s", key);
	free(key);
	turn_free(t);
	poll_now(en);
}

static void
on_job_lock(redisAsyncContext *ac, void *r, void *pd)
{
	struct turn *t = pd;
	struct engine *en = t->en;
	redisReply *reply = r;

	if (turn_dropped(t))
		return;
	if (reply != NULL && reply->type == REDIS_REPLY_STATUS) {
		write_lead_as(t, t->support);
		return;
	}
	/* Another job writes this phone's lead (or Redis is away): a retry comes after it. */
	retry_lead_in(en, t->phone, 10000);
	turn_free(t);
	poll_now(en);
}

/* After the turn's release: one lead write per phone at a time, held as P{+E164}:odoo and renewed. */
static void
job_start(struct turn *t)
{
	struct engine *en = t->en;
	char *key;

	if (en->st.lead_jobs >= 2 * en->o.max_turns) {
		/* Odoo is slow for many at once: this one waits in the retry schedule instead of in memory. */
		retry_lead_in(en, t->phone, 10000);
		turn_free(t);
		return;
	}
	/* No longer a turn: the phone's next turn may start, and the job does not take a turn's place. */
	en->st.in_flight--;
	en->st.lead_jobs++;
	t->in_job = true;
	key = pkey(en, t->phone, "odoo");
	sd_event_source_set_time(t->renew, now_usec() + en->o.turn_lease_ms * 1000 / 3);
	sd_event_source_set_enabled(t->renew, SD_EVENT_ONESHOT);
	en->refs++;
	if (rc(en) == NULL ||
	    rconn_command(rc(en), on_job_lock, t, "SET %s %s NX PX %" PRIu64, key,
	        en->o.consumer ? en->o.consumer : "crmbridged", en->o.turn_lease_ms) < 0) {
		en->refs--;
		turn_free(t);
	}
	free(key);
}

/* Copies what the lead write learnt into the state stored now (a later turn may have changed the rest). */
static void
job_apply(struct turn *t, json_t *cur)
{
	static const char *const keys[] = {"lead_id", "lead_written", "lead_create_unknown_ms", NULL};
	const char *stage = conv_state_stage(cur);
	size_t i;

	for (i = 0; keys[i] != NULL; i++) {
		json_t *v = json_object_get(t->state, keys[i]);
		if (v != NULL)
			json_object_set(cur, keys[i], v);
		else
			json_object_del(cur, keys[i]);
	}
	/* A newer turn asked for another write meanwhile: still pending, its retry follows. */
	json_object_set_new(cur, "lead_pending",
	    json_boolean(json_is_true(json_object_get(t->state, "lead_pending")) ||
	        json_integer_value(json_object_get(cur, "lead_gen")) != t->job_gen));
	if (strcmp(conv_state_stage(t->state), "lead_created") == 0 &&
	    (strcmp(stage, "new") == 0 || strcmp(stage, "contacted") == 0 || strcmp(stage, "gathering_info") == 0 ||
	        strcmp(stage, "qualified") == 0))
		conv_state_set_stage(cur, "lead_created");
}

static void
on_merge_set(redisAsyncContext *ac, void *r, void *pd)
{
	struct turn *t = pd;
	struct engine *en = t->en;

	if (turn_dropped(t))
		return;
	if (rc(en) != NULL)
		rconn_command(rc(en), NULL, NULL, "HDEL %s %s", en->k_lease, t->phone);
	report(t);
	job_end(t);
}

static void
on_merge_get(redisAsyncContext *ac, void *r, void *pd)
{
	struct turn *t = pd;
	struct engine *en = t->en;
	redisReply *reply = r;
	json_t *cur;
	const char *why;
	char *conv, *state, ttl[24];

	if (turn_dropped(t))
		return;
	if (reply == NULL || reply->type != REDIS_REPLY_STRING ||
	    (cur = conv_state_parse(reply->str, reply->len, &why)) == NULL) {
		/* Erased or reset meanwhile (or Redis away): nothing to merge into. */
		if (rc(en) != NULL)
			rconn_command(rc(en), NULL, NULL, "HDEL %s %s", en->k_lease, t->phone);
		job_end(t);
		return;
	}
	job_apply(t, cur);
	if (!json_is_true(json_object_get(cur, "lead_pending")) && rc(en) != NULL)
		rconn_command(rc(en), NULL, NULL, "ZREM %s %s", en->k_pending, t->phone);
	else if (json_integer_value(json_object_get(cur, "lead_gen")) != t->job_gen && rc(en) != NULL)
		rconn_command(
		    rc(en), NULL, NULL, "ZADD %s %" PRIu64 " %s", en->k_pending, realtime_usec() / 1000, t->phone);
	state = json_dumps(cur, JSON_COMPACT);
	json_decref(cur);
	conv = pkey(en, t->phone, "conv");
	snprintf(ttl, sizeof(ttl), "%" PRIu64, en->o.conversation_ttl_s);
	en->refs++;
	if (rconn_command(rc(en), on_merge_set, t, "SET %s %s EX %s", conv, state, ttl) < 0) {
		en->refs--;
		job_end(t);
	}
	free(conv);
	free(state);
}

static void job_merge(struct turn *t);

static int
on_merge_retry(sd_event_source *s, uint64_t usec, void *arg)
{
	struct turn *t = arg;
	struct engine *en = t->en;

	t->merge_timer = sd_event_source_disable_unref(t->merge_timer);
	if (gone(en)) {
		turn_free(t);
		settle(en);
		return 0;
	}
	job_merge(t);
	return 0;
}

static void
on_merge_lease(redisAsyncContext *ac, void *r, void *pd)
{
	struct turn *t = pd;
	struct engine *en = t->en;
	redisReply *reply = r;
	char *conv;

	if (turn_dropped(t))
		return;
	if (reply != NULL && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
		conv = pkey(en, t->phone, "conv");
		en->refs++;
		if (rconn_command(rc(en), on_merge_get, t, "GET %s", conv) < 0) {
			en->refs--;
			rconn_command(rc(en), NULL, NULL, "HDEL %s %s", en->k_lease, t->phone);
			job_end(t);
		}
		free(conv);
		return;
	}
	if (++t->merge_tries > 400) {
		/* A turn has held the phone for 20 s: the retry will find the lead by its phone and record it. */
		retry_lead_in(en, t->phone, 0);
		job_end(t);
		return;
	}
	en->refs++; /* held while the timer waits, so the engine outlives it */
	if (sd_event_add_time(
	        en->event, &t->merge_timer, CLOCK_MONOTONIC, now_usec() + 50000, 10000, on_merge_retry, t) < 0)
		fatalx("engine: sd_event_add_time failed");
}

/* The write is done (or failed): its outcome goes into the state under the phone's lease, held a moment. */
static void
job_merge(struct turn *t)
{
	struct engine *en = t->en;
	char now[24], until[24];
	const char *a[4] = {en->k_lease, t->phone, now, until};

	snprintf(now, sizeof(now), "%" PRIu64, realtime_usec() / 1000);
	snprintf(until, sizeof(until), "%" PRIu64, realtime_usec() / 1000 + en->o.turn_lease_ms);
	en->refs++;
	if (eval(en, &en->lease_one, on_merge_lease, t, 1, a, 4) < 0) {
		en->refs--;
		job_end(t);
	}
}

/* ---- follow-ups ---- */

static void
on_followup_queued(int parts, void *arg)
{
	struct turn *t = arg;
	struct engine *en = t->en;

	if (turn_dropped(t))
		return;
	if (parts == -EPERM) {
		json_object_set_new(t->state, "opted_out", json_true());
		conv_state_set_stage(t->state, "opted_out");
		t->schedule_followup = false;
	} else if (parts < 0) {
		turn_finish(t, false, "the follow-up could not be queued");
		return;
	} else {
		en->st.followups_sent++;
		t->followup_sent = 1;
	}
	commit(t);
}

/*
 * A quiet conversation's follow-up is due: still warm, no answer since,
 * not opted out or handed over? Then the unanswered question once more
 * (free text inside the window, the follow-up template outside), and the
 * next one scheduled.
 */
static void
followup(struct turn *t, size_t waiting)
{
	struct engine *en = t->en;
	struct sender *s = en->d.sender != NULL ? *en->d.sender : NULL;
	struct lexicon *lx = en->d.lexicon != NULL ? *en->d.lexicon : NULL;
	json_int_t sent = json_integer_value(json_object_get(t->state, "followups_sent"));
	uint64_t now = realtime_usec() / 1000;
	char ph[32], *text;
	struct sender_msg m = {0};

	if (waiting > 0) {
		/* The customer wrote: that turn decides what comes next. */
		release(t, true);
		return;
	}
	if (t->fresh || !outbound_followup_eligible(t->state) || ctl_ms(t, "pause_until") > now ||
	    sent >= (json_int_t)en->o.nfollowups || lx == NULL) {
		if (rc(en) != NULL)
			rconn_command(rc(en), NULL, NULL, "ZREM %s %s", en->k_followup, t->phone);
		release(t, true);
		return;
	}
	xasprintf(&t->turn_key, "%s:followup:%" PRIi64 ":%" PRIi64, t->phone,
	    (int64_t)json_integer_value(json_object_get(t->state, "last_inbound_ms")), (int64_t)sent);
	json_object_set_new(t->state, "followups_sent", json_integer(sent + 1));
	json_object_set_new(t->state, "followup_last_ms", json_integer((json_int_t)now));
	t->schedule_followup = true;
	log_info(
	    "engine: %s: follow-up %d of %u", log_phone(t->phone, ph, sizeof(ph)), (int)sent + 1, en->o.nfollowups);
	if (!outbound_window_open(t->state, now, en->o.window_margin_ms, ctl_ms(t, "window_closed_ms"))) {
		if (send_template(
		        t, en->o.followup_content_sid, en->o.followup_variables, t->turn_key, "a follow-up is")) {
			en->st.followups_templates++;
			t->followup_sent = 2;
			return;
		}
		t->schedule_followup = false; /* nothing more can go out until the customer writes */
		commit(t);
		return;
	}
	if ((text = outbound_followup_text(lx, t->state, (unsigned)sent)) == NULL || s == NULL) {
		free(text);
		commit(t);
		return;
	}
	conv_state_add(t->state, "out", text, now, NULL, en->o.history_cap);
	conv_state_count(t->state, "out", 1);
	m.to = t->phone;
	m.text = text;
	m.once = t->turn_key;
	en->refs++;
	sender_send(s, &m, on_followup_queued, t);
	free(text);
}

/* ---- STOP and START ---- */

static void
opt_done(struct turn *t)
{
	commit(t);
}

static void
on_blacklisted(const struct odoo_error *e, void *arg)
{
	struct turn *t = arg;
	struct engine *en = t->en;
	char ph[32];
	bool out = json_is_true(json_object_get(t->state, "opted_out"));

	if (turn_dropped(t))
		return;
	if (e->kind == ODOO_OK) {
		en->st.blacklist_ok++;
		json_object_del(t->state, "blacklist_pending");
		json_object_set_new(t->state, "blacklisted", json_boolean(out));
		log_info("engine: %s: %s Odoo's phone blacklist", log_phone(t->phone, ph, sizeof(ph)),
		    out ? "added to" : "removed from");
	} else {
		/* Retried in the background with the lead writes. */
		en->st.blacklist_failed++;
		json_object_set_new(t->state, "blacklist_pending", json_string(out ? "add" : "remove"));
		retry_lead_in(en, t->phone, 30000);
		log_warnx("engine: %s: phone blacklist update deferred (%s error: %s)",
		    log_phone(t->phone, ph, sizeof(ph)), odoo_kind_name(e->kind), e->message);
	}
	if (t->odoo_retry && json_is_true(json_object_get(t->state, "lead_pending"))) {
		/* The lead waits too: written by a job once this is committed and the phone released. */
		t->lead_job = true;
		t->job_gen = json_integer_value(json_object_get(t->state, "lead_gen"));
	} else if (t->odoo_retry && e->kind == ODOO_OK && rc(en) != NULL)
		rconn_command(rc(en), NULL, NULL, "ZREM %s %s", en->k_pending, t->phone);
	opt_done(t);
}

static void
blacklist(struct turn *t)
{
	struct engine *en = t->en;
	struct lead_ctx *lx = en->d.leads != NULL ? *en->d.leads : NULL;

	if (!en->o.optout_blacklist || lx == NULL) {
		json_object_del(t->state, "blacklist_pending");
		opt_done(t);
		return;
	}
	en->refs++;
	lead_blacklist(lx, t->phone, json_is_true(json_object_get(t->state, "opted_out")), on_blacklisted, t);
}

static void
on_opt_queued(int parts, void *arg)
{
	struct turn *t = arg;

	if (turn_dropped(t))
		return;
	if (parts < 0 && parts != -EPERM) {
		turn_finish(t, false, "the opt-out confirmation could not be queued");
		return;
	}
	if (parts > 0)
		t->replied = true;
	blacklist(t);
}

/*
 * The customer sent only STOP (out) or START (!out): one confirmation (the
 * sender drops whatever else was queued and refuses anything more), the
 * stage, the follow-ups, and Odoo's blacklist when configured.
 */
static void
opt(struct turn *t, bool out, const char *word_lang)
{
	struct engine *en = t->en;
	struct sender *s = en->d.sender != NULL ? *en->d.sender : NULL;
	struct lexicon *lx = en->d.lexicon != NULL ? *en->d.lexicon : NULL;
	const char *lang = json_string_value(json_object_get(t->state, "lang")) ?: word_lang;
	const char *text = lx != NULL ? lexicon_question(lx, lang, out ? QK_OPT_OUT : QK_OPT_IN, 0) : NULL;
	char ph[32];
	struct sender_msg m = {0};

	if (out) {
		if (!json_is_true(json_object_get(t->state, "opted_out")))
			json_object_set_new(t->state, "stage_before_opt_out", json_string(conv_state_stage(t->state)));
		conv_state_set_stage(t->state, "opted_out");
		en->st.opt_outs++;
		t->opt = 1;
	} else {
		const char *before = json_string_value(json_object_get(t->state, "stage_before_opt_out"));
		conv_state_set_stage(
		    t->state, before != NULL && strcmp(before, "opted_out") != 0 ? before : "gathering_info");
		json_object_del(t->state, "stage_before_opt_out");
		en->st.opt_ins++;
		t->opt = -1;
	}
	json_object_set_new(t->state, "opted_out", json_boolean(out));
	json_object_set_new(t->state, "opt_changed_ms", json_integer((json_int_t)(realtime_usec() / 1000)));
	t->schedule_followup = false;
	log_notice(
	    "engine: %s opted %s", log_phone(t->phone, ph, sizeof(ph)), out ? "out (no more messages)" : "back in");
	if (text == NULL || s == NULL) {
		blacklist(t);
		return;
	}
	conv_state_add(t->state, "out", text, realtime_usec() / 1000, NULL, en->o.history_cap);
	conv_state_count(t->state, "out", 1);
	m.to = t->phone;
	m.text = text;
	m.once = t->turn_key;
	m.opt = out ? 1 : -1;
	en->refs++;
	sender_send(s, &m, on_opt_queued, t);
}

/* Runs the classifier on the conversation, with the turn's media when it has some. */
static void
classify(struct turn *t)
{
	struct engine *en = t->en;
	struct conversation c = {0};

	conv_state_conversation(t->state, en->o.context_messages, &c);
	c.context = outbound_call_context(t->state);
	c.media_at = -1;
	if (t->nmedia > 0 && t->media_sid != NULL) {
		json_t *h = json_object_get(t->state, "history");
		size_t n = json_array_size(h), from = n > en->o.context_messages ? n - en->o.context_messages : 0, i;
		for (i = n; i-- > from;)
			if (strcmp(json_string_value(json_object_get(json_array_get(h, i), "sid")) ?: "",
			        t->media_sid) == 0) {
				c.media_at = (int)(i - from);
				c.media = t->media;
				c.nmedia = t->nmedia;
				break;
			}
	}
	en->refs++;
	t->classify_start = now_usec();
	classifier_run(*en->d.classifier, &c, on_classified, t);
	conversation_clear(&c);
}

/* The customer sent only a voice note or image that cannot be read: the bot asks them to write. */
static void
ask_to_write(struct turn *t, const char *why)
{
	struct engine *en = t->en;
	struct lexicon *lx = en->d.lexicon != NULL ? *en->d.lexicon : NULL;
	const char *q = lx != NULL ? lexicon_question(lx, outbound_lang(lx, t->state), QK_MEDIA, 0) : NULL;
	char ph[32];

	en->st.media_unread++;
	log_info(
	    "engine: %s: media not read (%s): asking the customer to write", log_phone(t->phone, ph, sizeof(ph)), why);
	t->reply = xstrdup(q != NULL ? q : "Please write your message as text.");
	reply(t);
}

static void
on_media(int r, const char *why, const char *mime, const unsigned char *data, size_t len, void *arg)
{
	struct turn *t = arg;
	struct engine *en = t->en;
	char ph[32];

	if (gone(en)) {
		if (++t->media_done == t->media_wanted) {
			turn_free(t);
			settle(en);
		}
		return;
	}
	if (r == 0 && t->nmedia < 3 && classifier_accepts_media(*en->d.classifier, mime)) {
		size_t i = t->nmedia++;
		t->media_buf[i] = xmalloc(len > 0 ? len : 1);
		memcpy(t->media_buf[i], data, len);
		t->media_mime[i] = xstrdup(mime);
		t->media[i].data = t->media_buf[i];
		t->media[i].len = len;
		t->media[i].mime = t->media_mime[i];
		en->st.media_fetched++;
	} else {
		t->media_failed = true;
		en->st.media_failed++;
		log_warnx("engine: %s: media not fetched: %s", log_phone(t->phone, ph, sizeof(ph)),
		    r == 0 ? "a type the model does not take" : why);
	}
	if (++t->media_done < t->media_wanted)
		return;
	if (t->nmedia == 0 && t->media_only) {
		ask_to_write(t, "it could not be fetched");
		return;
	}
	classify(t);
}

/*
 * Voice notes and images of the turn's last message that has some: fetched
 * from Twilio for the model when it takes them (true: the turn goes on from
 * on_media), the customer asked to write when it does not and the message
 * is nothing else (true), or the text classified without them (false).
 */
static bool
media_start(struct turn *t)
{
	struct engine *en = t->en;
	json_t *m = NULL, *e, *media;
	size_t i;
	bool all_ok = true;

	json_array_foreach(t->inbox, i, e) if (json_array_size(json_object_get(e, "media")) > 0) m = e;
	if (m == NULL)
		return false;
	media = json_object_get(m, "media");
	t->media_only = json_is_true(json_object_get(m, "media_only"));
	t->media_sid = json_string_value(json_object_get(m, "sid"));
	json_array_foreach(media, i, e) all_ok &=
	    classifier_accepts_media(*en->d.classifier, json_string_value(json_object_get(e, "type")));
	if (!all_ok || en->d.media == NULL || en->d.curl == NULL || *en->d.curl == NULL) {
		if (t->media_only) {
			ask_to_write(t, "the classifier has no model that takes this media");
			return true;
		}
		return false; /* a caption: the text is read, the media is not */
	}
	t->media_wanted = json_array_size(media);
	t->media_done = 0;
	json_array_foreach(media, i, e)
	{
		en->refs++;
		media_fetch(*en->d.curl, en->d.media, json_string_value(json_object_get(e, "url")),
		    json_string_value(json_object_get(e, "type")), on_media, t);
	}
	return true;
}

static void
turn_loaded(struct turn *t)
{
	struct engine *en = t->en;
	struct lexicon *lx = en->d.lexicon != NULL ? *en->d.lexicon : NULL;
	size_t i;
	json_t *m, *call;
	int optw = 0;
	char opt_lang[3] = "";

	json_array_foreach(t->inbox, i, m)
	{
		const char *sid = json_string_value(json_object_get(m, "sid"));
		const char *text = json_string_value(json_object_get(m, "text")) ?: "";
		const char *profile = json_string_value(json_object_get(m, "profile"));
		long long ms = 0;
		char l[3] = "";
		int w;
		parse_ll(json_string_value(json_object_get(m, "t_ms")) ?: "0", 0, INT64_MAX, &ms);
		conv_state_add(t->state, "in", text, (uint64_t)ms, sid, en->o.history_cap);
		json_object_set_new(t->state, "last_inbound_ms", json_integer(ms));
		if (profile != NULL && *profile != '\0')
			json_object_set_new(t->state, "profile", json_string(profile));
		/* The last STOP or START of the burst decides. */
		if (lx != NULL && (w = lexicon_opt_word(lx, text, l)) != 0) {
			optw = w;
			memcpy(opt_lang, l, 3);
		}
	}
	conv_state_count(t->state, "in", (json_int_t)t->taken);
	conv_state_count(t->state, "turns", 1);
	/* The customer wrote: the window is open again, and the follow-ups start over from this message. */
	if (json_object_get(t->ctl, "window_closed_ms") != NULL)
		ctl_del(t, "window_closed_ms");
	t->after_followup = json_integer_value(json_object_get(t->state, "followups_sent")) > 0;
	json_object_set_new(t->state, "followups_sent", json_integer(0));
	/* The context of the call this conversation follows (stored by POST /api/call-completed). */
	if ((call = json_loads(json_string_value(json_object_get(t->ctl, "call")) ?: "", 0, NULL)) != NULL) {
		outbound_merge_call(t->state, call, en->o.history_cap);
		json_decref(call);
		ctl_del(t, "call"); /* merged: the state has it now */
	}
	/* The turn is named by its last message: redone after a crash, it queues its reply once. */
	xasprintf(&t->turn_key, "%s:%s", t->phone,
	    json_string_value(json_object_get(json_array_get(t->inbox, t->taken - 1), "sid")) ?: "?");
	if (optw != 0) {
		opt(t, optw > 0, opt_lang);
		return;
	}
	if (json_object_get(t->ctl, "pause_until") != NULL && ctl_ms(t, "pause_until") <= realtime_usec() / 1000) {
		/* The hand-off's time is up: the bot answers again. */
		ctl_del(t, "pause_until");
		ctl_del(t, "pause_reason");
		ctl_del(t, "pause_by");
	}
	if (json_is_true(json_object_get(t->state, "opted_out")) || ctl_ms(t, "pause_until") > realtime_usec() / 1000) {
		/* Opted out, or a person has the conversation: kept in the history, not answered. */
		en->st.silenced += t->taken;
		t->silenced = true;
		commit(t);
		return;
	}
	if (media_start(t))
		return;
	classify(t);
}

static void
on_loaded(redisAsyncContext *ac, void *r, void *pd)
{
	struct turn *t = pd;
	struct engine *en = t->en;
	redisReply *reply = r;
	const char *why;
	size_t i;

	if (turn_dropped(t))
		return;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
		turn_finish(t, false, "Redis unavailable at load");
		return;
	}
	t->ctl = json_object();
	if (reply->element[2]->type == REDIS_REPLY_ARRAY)
		for (i = 0; i + 1 < reply->element[2]->elements; i += 2)
			json_object_set_new(t->ctl, reply->element[2]->element[i]->str,
			    json_stringn(
			        reply->element[2]->element[i + 1]->str, reply->element[2]->element[i + 1]->len));
	if (reply->element[0]->type == REDIS_REPLY_STRING) {
		t->state = conv_state_parse(reply->element[0]->str, reply->element[0]->len, &why);
		if (t->state == NULL) {
			char ph[32];
			log_error("engine: %s: stored conversation unreadable (%s); starting afresh",
			    log_phone(t->phone, ph, sizeof(ph)), why);
			en->st.state_reset++;
		}
	}
	if (t->state == NULL) {
		t->state = conv_state_new(t->phone, realtime_usec() / 1000);
		t->fresh = true;
	}
	if (t->odoo_retry) {
		if (json_object_get(t->state, "blacklist_pending") != NULL) {
			blacklist(t); /* then the lead, if it waits too */
			return;
		}
		if (!json_is_true(json_object_get(t->state, "lead_pending"))) {
			rconn_command(rc(en), NULL, NULL, "ZREM %s %s", en->k_pending, t->phone);
			release(t, true);
			return;
		}
		en->st.odoo_retried++;
		/* Written by a job after the release, so the customer's turns go on meanwhile. */
		t->lead_job = true;
		t->job_gen = json_integer_value(json_object_get(t->state, "lead_gen"));
		release(t, true);
		return;
	}
	if (t->followup) {
		followup(t, reply->element[1]->type == REDIS_REPLY_ARRAY ? reply->element[1]->elements : 0);
		return;
	}
	t->inbox = json_array();
	if (reply->element[1]->type == REDIS_REPLY_ARRAY)
		for (i = 0; i < reply->element[1]->elements; i++) {
			json_t *m = json_loads(reply->element[1]->element[i]->str, 0, NULL);
			json_array_append_new(t->inbox, m != NULL ? m : json_pack("{s:s}", "text", ""));
		}
	t->taken = json_array_size(t->inbox);
	if (t->taken == 0) {
		release(t, true); /* nothing new: the burst was handled */
		return;
	}
	if (t->attempts > en->o.max_turn_attempts) {
		/* Failing again and again: set it aside with the reason, and let the conversation go on. */
		json_t *rec = json_pack("{s:s, s:O, s:I, s:s}", "phone", t->phone, "messages", t->inbox, "at_ms",
		    (json_int_t)(realtime_usec() / 1000), "reason", "the turn failed repeatedly");
		char *s = json_dumps(rec, JSON_COMPACT), ph[32];
		rconn_command(rc(en), NULL, NULL, "LPUSH %s %s", en->k_dead, s);
		rconn_command(rc(en), NULL, NULL, "LTRIM %s 0 999", en->k_dead);
		free(s);
		json_decref(rec);
		en->st.dead_letters++;
		log_error("engine: %s: turn given up after %lld attempts; in the dead-letter list",
		    log_phone(t->phone, ph, sizeof(ph)), t->attempts - 1);
		{
			/* The stored state stays; only the messages taken are dropped. */
			char *inbox = pkey(en, t->phone, "inbox");
			char n[24];
			snprintf(n, sizeof(n), "%zu", t->taken);
			rconn_command(rc(en), NULL, NULL, "LTRIM %s %s -1", inbox, n);
			free(inbox);
		}
		release(t, true);
		return;
	}
	turn_loaded(t);
}

static void
turn_finish(struct turn *t, bool ok, const char *why)
{
	char ph[32];

	if (!ok) {
		t->en->st.turns_failed++;
		log_warnx("engine: %s: turn failed (%s); it will be redone", log_phone(t->phone, ph, sizeof(ph)), why);
	}
	release(t, ok);
}

static void
turn_start(struct engine *en, const char *phone, const char *due, long long attempts, int kind)
{
	struct turn *t = xcalloc(1, sizeof(*t));
	char *conv = pkey(en, phone, "conv"), *inbox = pkey(en, phone, "inbox"), *ctl = pkey(en, phone, "ctl");
	bool odoo_retry = kind == 1;

	t->followup = kind == 2;

	t->en = en;
	snprintf(t->phone, sizeof(t->phone), "%s", phone);
	snprintf(t->due, sizeof(t->due), "%s", due);
	t->attempts = attempts;
	t->odoo_retry = odoo_retry;
	t->started_usec = now_usec();
	t->next = en->turns;
	if (en->turns != NULL)
		en->turns->prev = t;
	en->turns = t;
	en->st.in_flight++;
	if (kind == 0)
		en->st.turns++;
	if (sd_event_add_time(en->event, &t->renew, CLOCK_MONOTONIC, now_usec() + en->o.turn_lease_ms * 1000 / 3,
	        100000, on_renew, t) < 0)
		fatalx("engine: sd_event_add_time failed");
	en->refs++;
	/* One round trip: the state and the messages (both in the phone's slot). */
	{
		const char *script = "return {redis.call('GET', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, 99), "
		                     "redis.call('HGETALL', KEYS[3])}";
		if (rconn_command(rc(en), on_loaded, t, "EVAL %s 3 %s %s %s", script, conv, inbox, ctl) < 0) {
			en->refs--;
			turn_free(t);
		}
	}
	free(conv);
	free(inbox);
	free(ctl);
}

static void
on_claimed(redisAsyncContext *ac, void *r, void *pd)
{
	struct engine *en = pd;
	redisReply *reply = r;
	size_t i;

	if (gone(en)) {
		settle(en);
		return;
	}
	en->claiming = false;
	if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0)
		en->pace.found = true;
	if (reply != NULL && reply->type == REDIS_REPLY_ARRAY)
		for (i = 0; i + 2 < reply->elements; i += 3)
			turn_start(
			    en, reply->element[i]->str, reply->element[i + 1]->str, reply->element[i + 2]->integer, 0);
	if (en->claim_again) {
		en->claim_again = false;
		claim_turns(en);
	}
}

static void
claim_turns(struct engine *en)
{
	char now[24], until[24], max[16];
	unsigned room;

	if (en->claiming) {
		en->claim_again = true; /* a turn may have become due since that claim was sent */
		return;
	}
	if (rc(en) == NULL || en->st.in_flight >= en->o.max_turns)
		return;
	room = en->o.max_turns - en->st.in_flight;
	snprintf(now, sizeof(now), "%" PRIu64, realtime_usec() / 1000);
	snprintf(until, sizeof(until), "%" PRIu64, realtime_usec() / 1000 + en->o.turn_lease_ms);
	snprintf(max, sizeof(max), "%u", room < 3 ? 1 : room / 3);
	en->claiming = true;
	en->refs++;
	{
		const char *a[7] = {en->k_due, en->k_lease, en->k_first, en->k_attempts, now, until, max};
		if (eval(en, &en->claim, on_claimed, en, 4, a, 7) < 0) {
			en->refs--;
			en->claiming = false;
		}
	}
}

/* ---- background retries of lead writes ---- */

struct pend {
	struct engine *en;
	char phone[17];
	int kind; /* 1 a lead write, 2 a follow-up */
};

static void
on_pend_lease(redisAsyncContext *ac, void *r, void *pd)
{
	struct pend *p = pd;
	redisReply *reply = r;

	if (gone(p->en)) {
		struct engine *en0 = p->en;
		free(p);
		settle(en0);
		return;
	}
	if (reply != NULL && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1)
		turn_start(p->en, p->phone, "0", 1, p->kind);
	free(p);
}

static void lease_and_start(struct engine *en, redisReply *reply, int kind);

static void
on_pending(redisAsyncContext *ac, void *r, void *pd)
{
	struct engine *en = pd;

	if (gone(en)) {
		settle(en);
		return;
	}
	en->pending_busy = false;
	lease_and_start(en, r, 1);
}

static void
on_followups(redisAsyncContext *ac, void *r, void *pd)
{
	struct engine *en = pd;

	if (gone(en)) {
		settle(en);
		return;
	}
	en->followup_busy = false;
	lease_and_start(en, r, 2);
}

/* Takes each phone's lease (skipping one a turn holds) and starts a background turn of this kind. */
static void
lease_and_start(struct engine *en, redisReply *reply, int kind)
{
	size_t i;
	char now[24], until[24];

	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
		return;
	snprintf(now, sizeof(now), "%" PRIu64, realtime_usec() / 1000);
	snprintf(until, sizeof(until), "%" PRIu64, realtime_usec() / 1000 + en->o.turn_lease_ms);
	for (i = 0; i < reply->elements && en->st.in_flight < en->o.max_turns; i++) {
		struct pend *p = xcalloc(1, sizeof(*p));
		const char *a[4];
		p->en = en;
		p->kind = kind;
		snprintf(p->phone, sizeof(p->phone), "%s", reply->element[i]->str);
		a[0] = en->k_lease;
		a[1] = p->phone;
		a[2] = now;
		a[3] = until;
		en->refs++;
		if (eval(en, &en->lease_one, on_pend_lease, p, 1, a, 4) < 0) {
			en->refs--;
			free(p);
		}
	}
}

/* Asks for up to 8 phones due in the sorted set key; fn gets them (busy stops a second ask meanwhile). */
static void
ask_due(struct engine *en, const char *key, bool *busy, redisCallbackFn *fn)
{
	if (*busy || rc(en) == NULL)
		return;
	*busy = true;
	en->refs++;
	if (rconn_command(rc(en), fn, en, "ZRANGEBYSCORE %s -inf %" PRIu64 " LIMIT 0 8", key, realtime_usec() / 1000) <
	    0) {
		en->refs--;
		*busy = false;
	}
}

static void
retry_pending(struct engine *en)
{
	if ((en->d.leads != NULL && *en->d.leads != NULL) || (en->d.journal != NULL && *en->d.journal != NULL))
		ask_due(en, en->k_pending, &en->pending_busy, on_pending);
}

static void
due_followups(struct engine *en)
{
	if (en->o.nfollowups > 0)
		ask_due(en, en->k_followup, &en->followup_busy, on_followups);
}

/* ---- the loop ---- */

static void
on_depth(redisAsyncContext *ac, void *r, void *pd)
{
	long long *slot = pd;
	redisReply *reply = r;

	if (reply != NULL && reply->type == REDIS_REPLY_INTEGER)
		*slot = reply->integer;
}

/* Queue depths for the status endpoint (fire and forget: the slots live as long as the process). */
static void
sample_depths(struct engine *en)
{
	if (rc(en) == NULL)
		return;
	rconn_command(rc(en), on_depth, &en->depth[0], "ZCARD %s", en->k_due);
	rconn_command(rc(en), on_depth, &en->depth[1], "ZCARD %s", en->k_pending);
	rconn_command(rc(en), on_depth, &en->depth[2], "LLEN %s", en->k_dead);
}

/*
 * The loop: read the intake and claim due turns every poll_ms while there is work; with none, poll less
 * and less often (up to ENGINE_IDLE_POLL_MS), but at the time a scheduled turn falls due; a webhook, a
 * routed message or a finished turn polls at once. Lead retries and follow-ups every second (with each poll
 * once idle), the queue depths every second (every ten once idle).
 */
static int
on_poll(sd_event_source *s, uint64_t usec, void *arg)
{
	struct engine *en = arg;
	bool busy = en->st.in_flight > 0;
	uint64_t now = now_usec();

	read_intake(en);
	claim_turns(en);
	if (now >= en->next_chores) {
		retry_pending(en);
		due_followups(en);
		en->next_chores = now + 1000000;
	}
	if (now >= en->next_depths) {
		sample_depths(en);
		en->next_depths = now + (busy || en->pace.quiet < 8 ? 1000000 : 10000000);
	}
	sd_event_source_set_time(
	    s, now + pace_next(&en->pace, en->o.poll_ms, ENGINE_IDLE_POLL_MS, busy, realtime_usec() / 1000) * 1000);
	return 0;
}

static void
poll_now(struct engine *en)
{
	en->pace.found = true; /* told of work: the next polls are quick again */
	read_intake(en);
	claim_turns(en);
	/* A poll sleeping up to ENGINE_IDLE_POLL_MS comes back at the quick pace from now. */
	pace_sooner(en->poll, now_usec() + en->o.poll_ms * 1000);
}

void
engine_redis_up(struct engine *en)
{
	en->group_ready = false;
	en->reading = en->claiming = en->pending_busy = en->followup_busy = false;
	read_intake(en);
}

static void
free_outbound(struct engine *en)
{
	free((void *)(uintptr_t)en->o.window_content_sid);
	free((void *)(uintptr_t)en->o.window_variables);
	free((void *)(uintptr_t)en->o.followup_content_sid);
	free((void *)(uintptr_t)en->o.followup_variables);
	free((void *)(uintptr_t)en->o.booking_url);
}

static const char *
dup0(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

void
engine_set_outbound(struct engine *en, const struct engine_options *o)
{
	free_outbound(en);
	en->o.window_margin_ms = o->window_margin_ms;
	en->o.window_content_sid = dup0(o->window_content_sid);
	en->o.window_variables = dup0(o->window_variables ? o->window_variables : "1=name");
	en->o.optout_blacklist = o->optout_blacklist;
	en->o.handoff_pause_ms = o->handoff_pause_ms > 0 ? o->handoff_pause_ms : 86400000;
	en->o.handoff_team_id = o->handoff_team_id;
	en->o.handoff_user_id = o->handoff_user_id;
	memcpy(en->o.followup_delays, o->followup_delays, sizeof(en->o.followup_delays));
	en->o.nfollowups = o->nfollowups;
	en->o.followup_content_sid = dup0(o->followup_content_sid);
	en->o.followup_variables = dup0(o->followup_variables ? o->followup_variables : "1=name");
	en->o.booking_url = dup0(o->booking_url);
	en->o.history_retention_ms = o->history_retention_ms;
}

struct engine *
engine_new(sd_event *e, const struct engine_deps *deps, const struct engine_options *o)
{
	struct engine *en = xcalloc(1, sizeof(*en));
	const char *p = o->key_prefix;

	en->event = sd_event_ref(e);
	en->d = *deps;
	en->o = *o;
	en->o.key_prefix = xstrdup(p);
	en->o.consumer = xstrdup(o->consumer);
	en->o.window_content_sid = en->o.window_variables = en->o.followup_content_sid = en->o.followup_variables =
	    en->o.booking_url = NULL;
	engine_set_outbound(en, o);
	xasprintf(&en->k_stream, "%s{intake}:stream", p);
	xasprintf(&en->k_due, "%s{turns}:due", p);
	xasprintf(&en->k_first, "%s{turns}:first", p);
	xasprintf(&en->k_lease, "%s{turns}:lease", p);
	xasprintf(&en->k_attempts, "%s{turns}:attempts", p);
	xasprintf(&en->k_pending, "%s{odoo}:pending", p);
	xasprintf(&en->k_dead, "%s{engine}:dead", p);
	xasprintf(&en->k_followup, "%s{followup}:due", p);
	rscript_init(&en->route, redis_script_engine_route);
	rscript_init(&en->schedule, redis_script_engine_schedule);
	rscript_init(&en->claim, redis_script_engine_claim);
	rscript_init(&en->release, redis_script_engine_release);
	rscript_init(&en->commit, redis_script_engine_commit);
	rscript_init(&en->lease_one, redis_script_engine_lease_one);
	{
		/* Answers may come back after the engine is freed: one engine per process, static slots. */
		static long long slots[3] = {-1, -1, -1};
		en->depth = slots;
	}
	if (sd_event_add_time(e, &en->poll, CLOCK_MONOTONIC, now_usec() + o->poll_ms * 1000, 5000, on_poll, en) < 0)
		fatalx("engine: sd_event_add_time failed");
	sd_event_source_set_enabled(en->poll, SD_EVENT_ON);
	return en;
}

static void
destroy(struct engine *en)
{
	while (en->turns != NULL)
		turn_free(en->turns);
	sd_event_unref(en->event);
	free((void *)(uintptr_t)en->o.key_prefix);
	free((void *)(uintptr_t)en->o.consumer);
	free_outbound(en);
	free(en->k_stream);
	free(en->k_due);
	free(en->k_first);
	free(en->k_lease);
	free(en->k_attempts);
	free(en->k_pending);
	free(en->k_dead);
	free(en->k_followup);
	pace_free(&en->pace);
	free(en);
}

void
engine_free(struct engine *en)
{
	struct turn *t;

	if (en == NULL)
		return;
	/*
	 * Turns in flight are abandoned (their leases expire and another run
	 * redoes them); the engine lives on until every callback holding it has
	 * come back, each cleaning up after itself.
	 */
	en->dying = true;
	en->poll = sd_event_source_disable_unref(en->poll);
	for (t = en->turns; t != NULL; t = t->next)
		t->renew = sd_event_source_disable_unref(t->renew);
	if (en->refs == 0)
		destroy(en);
}

void
engine_get_stats(const struct engine *en, struct engine_stats *st)
{
	*st = en->st;
	st->queue_depth = en->depth[0];
	st->odoo_pending = en->depth[1];
	st->dead_letter_list = en->depth[2];
}

struct reset_op {
	struct engine *en;
	void (*done)(int, void *);
	void *arg;
	int left, failed;
};

static void
on_reset(redisAsyncContext *ac, void *r, void *pd)
{
	struct reset_op *op = pd;
	struct engine *en = op->en;
	bool dying = gone(en);

	if (r == NULL || ((redisReply *)r)->type == REDIS_REPLY_ERROR)
		op->failed = 1;
	if (--op->left == 0) {
		if (!dying)
			op->done(op->failed ? -1 : 0, op->arg);
		free(op);
	}
	settle(en);
}

void
engine_reset_phone(struct engine *en, const char *phone, void (*done)(int, void *), void *arg)
{
	struct reset_op *op = xcalloc(1, sizeof(*op));
	char *conv = pkey(en, phone, "conv"), *inbox = pkey(en, phone, "inbox"), *routed = pkey(en, phone, "routed");
	char *ctl = pkey(en, phone, "ctl");

	op->en = en;
	op->done = done;
	op->arg = arg;
	op->left = 4;
	/* Commands pipelined on one connection: they all come back, or all fail together. */
	if (rc(en) == NULL || rconn_command(rc(en), on_reset, op, "DEL %s %s %s %s", conv, inbox, routed, ctl) < 0) {
		free(op);
		done(-1, arg);
	} else {
		en->refs += 4;
		rconn_command(rc(en), on_reset, op, "ZREM %s %s", en->k_due, phone);
		rconn_command(rc(en), on_reset, op, "ZREM %s %s", en->k_pending, phone);
		rconn_command(rc(en), on_reset, op, "ZREM %s %s", en->k_followup, phone);
	}
	free(conv);
	free(inbox);
	free(routed);
	free(ctl);
}

int
engine_requeue(struct engine *en, const char *phone, json_t *messages)
{
	char *inbox, ttl[24], now[24], win[24], cap[24];
	size_t i;

	if (rc(en) == NULL || !json_is_array(messages) || json_array_size(messages) == 0)
		return -1;
	inbox = pkey(en, phone, "inbox");
	snprintf(ttl, sizeof(ttl), "%" PRIu64, en->o.conversation_ttl_s);
	/* In front, oldest first: they came before anything that arrived since. */
	for (i = json_array_size(messages); i-- > 0;) {
		char *m = json_dumps(json_array_get(messages, i), JSON_COMPACT);
		if (m != NULL)
			rconn_command(rc(en), NULL, NULL, "LPUSH %s %s", inbox, m);
		free(m);
	}
	rconn_command(rc(en), NULL, NULL, "EXPIRE %s %s", inbox, ttl);
	snprintf(now, sizeof(now), "%" PRIu64, realtime_usec() / 1000);
	snprintf(win, sizeof(win), "%d", 0);
	snprintf(cap, sizeof(cap), "%d", 0);
	{
		const char *a[6] = {en->k_due, en->k_first, phone, now, win, cap};
		eval(en, &en->schedule, NULL, NULL, 2, a, 6);
	}
	free(inbox);
	poll_now(en);
	return 0;
}

void
engine_poke(struct engine *en)
{
	if (en == NULL || en->dying)
		return;
	en->pace.found = true;
	pace_sooner(en->poll, now_usec() + en->o.poll_ms * 1000);
	if (en->reading)
		en->poked = true;
	else
		read_intake(en);
}

char *
engine_ctl_key(const struct engine *en, const char *phone)
{
	return pkey((struct engine *)(uintptr_t)en, phone, "ctl");
}

void
engine_window_closed(struct engine *en, const char *phone)
{
	char *ctl = pkey(en, phone, "ctl");

	if (rc(en) != NULL) {
		rconn_command(rc(en), NULL, NULL, "HSET %s window_closed_ms %" PRIu64, ctl, realtime_usec() / 1000);
		rconn_command(rc(en), NULL, NULL, "EXPIRE %s %" PRIu64, ctl, en->o.conversation_ttl_s);
	}
	free(ctl);
}

void
engine_cancel_followups(struct engine *en, const char *phone)
{
	if (rc(en) != NULL)
		rconn_command(rc(en), NULL, NULL, "ZREM %s %s", en->k_followup, phone);
}
