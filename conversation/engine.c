/*
 * The conversation engine. Redis layout (P = key prefix):
 *   P{turns}:in              sorted set of "<+E164>|<order>|<JSON>", all at score 0: the messages no turn
 *                            has taken yet, a phone's a range in arrival order (twilio/intake.c adds them)
 *   P{turns}:sid:<sid>       the MessageSid's claim (and P{turns}:idem:<token>), webhook.dedupe_ttl
 *   P{+E164}:conv            the conversation state (conversation/state.c), expiring after silence
 *   P{turns}:due             sorted set: phones with messages, by when their turn may start
 *   P{turns}:lease           hash: phone -> "<until>:<attempts>": until when a turn holds it (one turn per
 *                            phone, any instance), and the turns started since its last success
 *   P{odoo}:pending          sorted set: phones whose lead write waits for Odoo, by retry time
 *   P{engine}:dead           list of turns given up on, with the reason
 *   P{+E164}:ctl             hash: pause_until/pause_reason/pause_by (a hand-off), call (the context of a
 *                            sales call, merged by the next turn), window_closed_ms (Twilio's 63016)
 *   P{followup}:due          sorted set: phones whose next follow-up is due, by time
 *   P{+E164}:odoo            a lead write for the phone is under way (its job holds it, renewed; any instance)
 * (An older release's P{intake}:stream and P{+E164}:inbox are moved into P{turns}:in by upgrade.c.)
 * Every script touches keys of one hash tag only, so each step is atomic on its own and a crash between
 * steps leaves something the next claim redoes: a phone is made due before its message is stored, a turn's
 * reply is queued once per turn key, and the Odoo upsert finds the lead it may already have created.
 *
 * This file is the engine around the turns: it schedules the phones the intake stores messages for, claims
 * due turns (and lead retries and follow-ups), paces its polls, drains the old intake stream after an
 * upgrade, and answers the admin API's requests on a phone.
 * A turn itself is a state machine: conversation/turn.h.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/pace.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "conversation/state.h"
#include "conversation/turn.h"
#include "redis/scripts.h"
#include "twilio/intake.h"

static void claim_turns(struct engine *en);
static void destroy(struct engine *en);

/*
 * Every callback that holds a reference starts here: drops it, and when the
 * engine is being freed, says so (the caller then only cleans up its own).
 */
bool
engine_gone(struct engine *en)
{
	en->refs--;
	return en->dying;
}

/* After a dying callback has cleaned up its own object: the last one frees the engine. */
void
engine_settle(struct engine *en)
{
	if (en->dying && en->refs == 0)
		destroy(en);
}
struct rconn *
engine_rc(struct engine *en)
{
	struct rconn *r = *en->d.redis;
	return r != NULL && rconn_state(r) == RCONN_UP ? r : NULL;
}

char *
engine_pkey(struct engine *en, const char *phone, const char *what)
{
	char *k;

	xasprintf(&k, "%s{%s}:%s", en->o.key_prefix, phone, what);
	return k;
}

char *
engine_conv_key(const struct engine *en, const char *phone)
{
	return engine_pkey((struct engine *)(uintptr_t)en, phone, "conv");
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

int
engine_eval(
    struct engine *en, const struct rscript *sc, redisCallbackFn *fn, void *pd, int nkeys, const char **argv, int argc)
{
	return engine_rc(en) != NULL ? rconn_eval(engine_rc(en), sc, fn, pd, nkeys, argc, argv, NULL) : -ENOTCONN;
}

void
engine_due(struct engine *en, uint64_t due)
{
	uint64_t now = realtime_usec() / 1000;

	if (en == NULL || en->dying)
		return;
	en->st.routed++; /* a message stored for a turn */
	/* When the phone's turn falls due (its coalescing window): claim then. */
	pace_due(&en->pace, due);
	if (due <= now)
		engine_poll_now(en);
	else
		pace_sooner(en->poll, now_usec() + (due - now) * 1000);
}

/* The phone's lead write is retried in the background delay_ms from now (the retry schedule). */
void
engine_retry_lead_in(struct engine *en, const char *phone, uint64_t delay_ms)
{
	char when[24];

	snprintf(when, sizeof(when), "%" PRIu64, realtime_usec() / 1000 + delay_ms);
	if (engine_rc(en) != NULL)
		rconn_command(engine_rc(en), NULL, NULL, "ZADD %s %s %s", en->k_pending, when, phone);
}

static void
on_claimed(redisAsyncContext *ac, void *r, void *pd)
{
	struct engine *en = pd;
	redisReply *reply = r;
	size_t i;
	unsigned got;

	if (engine_gone(en)) {
		engine_settle(en);
		return;
	}
	en->claiming = false;
	if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0)
		en->pace.found = true;
	/* Per phone: phone, due, attempts, n, then its n messages. */
	for (i = 0, got = 0; reply != NULL && reply->type == REDIS_REPLY_ARRAY && i + 3 < reply->elements; got++) {
		redisReply **e = reply->element + i;
		size_t n = e[3]->type == REDIS_REPLY_INTEGER && e[3]->integer > 0 ? (size_t)e[3]->integer : 0;
		if (e[0]->type != REDIS_REPLY_STRING || e[1]->type != REDIS_REPLY_STRING || i + 4 + n > reply->elements)
			break;
		turn_start(en, e[0]->str, e[1]->str, e[2]->integer, TURN_KIND_CUSTOMER, e + 4, n, 0);
		i += 4 + n;
	}
	/* A full answer: more phones may be due than one call takes. */
	if (got >= en->claim_asked)
		en->claim_again = true;
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
	if (engine_rc(en) == NULL || en->st.in_flight >= en->o.max_turns)
		return;
	room = en->o.max_turns - en->st.in_flight;
	snprintf(now, sizeof(now), "%" PRIu64, realtime_usec() / 1000);
	snprintf(until, sizeof(until), "%" PRIu64, realtime_usec() / 1000 + en->o.turn_lease_ms);
	/* As many as there is room for (64 at most a call, so that one script never holds Redis long). */
	en->claim_asked = room > 64 ? 64 : room;
	snprintf(max, sizeof(max), "%u", en->claim_asked);
	en->claiming = true;
	en->refs++;
	{
		const char *a[7] = {en->k_due, en->k_lease, en->k_in, now, until, max, TURN_MAX_TAKEN_S};
		if (engine_eval(en, &en->claim, on_claimed, en, 3, a, 7) < 0) {
			en->refs--;
			en->claiming = false;
		}
	}
}

/* ---- background retries of lead writes ---- */

struct pend {
	struct engine *en;
	char phone[17];
	enum turn_kind kind; /* TURN_KIND_LEAD_RETRY or TURN_KIND_FOLLOWUP */
};

static void
on_pend_lease(redisAsyncContext *ac, void *r, void *pd)
{
	struct pend *p = pd;
	redisReply *reply = r;

	if (engine_gone(p->en)) {
		struct engine *en0 = p->en;
		free(p);
		engine_settle(en0);
		return;
	}
	/* 1 + the messages waiting for the phone's turn (a follow-up is not sent to a customer who just wrote). */
	if (reply != NULL && reply->type == REDIS_REPLY_INTEGER && reply->integer >= 1) {
		turn_start(p->en, p->phone, "0", 1, p->kind, NULL, 0, (size_t)(reply->integer - 1));
	}
	free(p);
}

static void lease_and_start(struct engine *en, redisReply *reply, enum turn_kind kind);

static void
on_pending(redisAsyncContext *ac, void *r, void *pd)
{
	struct engine *en = pd;

	if (engine_gone(en)) {
		engine_settle(en);
		return;
	}
	en->pending_busy = false;
	lease_and_start(en, r, TURN_KIND_LEAD_RETRY);
}

static void
on_followups(redisAsyncContext *ac, void *r, void *pd)
{
	struct engine *en = pd;

	if (engine_gone(en)) {
		engine_settle(en);
		return;
	}
	en->followup_busy = false;
	lease_and_start(en, r, TURN_KIND_FOLLOWUP);
}

/* Takes each phone's lease (skipping one a turn holds) and starts a background turn of this kind. */
static void
lease_and_start(struct engine *en, redisReply *reply, enum turn_kind kind)
{
	size_t i;
	char now[24], until[24];

	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
		return;
	snprintf(now, sizeof(now), "%" PRIu64, realtime_usec() / 1000);
	snprintf(until, sizeof(until), "%" PRIu64, realtime_usec() / 1000 + en->o.turn_lease_ms);
	for (i = 0; i < reply->elements && en->st.in_flight < en->o.max_turns; i++) {
		struct pend *p = xcalloc(1, sizeof(*p));
		const char *a[5];
		p->en = en;
		p->kind = kind;
		snprintf(p->phone, sizeof(p->phone), "%s", reply->element[i]->str);
		a[0] = en->k_lease;
		a[1] = en->k_in;
		a[2] = p->phone;
		a[3] = now;
		a[4] = until;
		en->refs++;
		if (engine_eval(en, &en->lease_one, on_pend_lease, p, 2, a, 5) < 0) {
			en->refs--;
			free(p);
		}
	}
}

/* Asks for up to 8 phones due in the sorted set key; fn gets them (busy stops a second ask meanwhile). */
static void
ask_due(struct engine *en, const char *key, bool *busy, redisCallbackFn *fn)
{
	if (*busy || engine_rc(en) == NULL)
		return;
	*busy = true;
	en->refs++;
	if (rconn_command(engine_rc(en), fn, en, "ZRANGEBYSCORE %s -inf %" PRIu64 " LIMIT 0 8", key,
	        realtime_usec() / 1000) < 0) {
		en->refs--;
		*busy = false;
	}
}

static void
retry_pending(struct engine *en)
{
	if (engine_leads(en) != NULL || engine_journal(en) != NULL)
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
	if (engine_rc(en) == NULL)
		return;
	rconn_command(engine_rc(en), on_depth, &en->depth[0], "ZCARD %s", en->k_due);
	rconn_command(engine_rc(en), on_depth, &en->depth[1], "ZCARD %s", en->k_pending);
	rconn_command(engine_rc(en), on_depth, &en->depth[2], "LLEN %s", en->k_dead);
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

	upgrade_poll(en);
	claim_turns(en);
	if (now >= en->next_chores) {
		retry_pending(en);
		due_followups(en);
		inbox_poll(en->inbox);
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

void
engine_poll_now(struct engine *en)
{
	en->pace.found = true; /* told of work: the next polls are quick again */
	claim_turns(en);
	/* A poll sleeping up to ENGINE_IDLE_POLL_MS comes back at the quick pace from now. */
	pace_sooner(en->poll, now_usec() + en->o.poll_ms * 1000);
}

void
engine_redis_up(struct engine *en)
{
	en->claiming = en->pending_busy = en->followup_busy = false;
	upgrade_redis_up(en);
}

static void
free_outbound(struct engine *en)
{
	free((void *)(uintptr_t)en->o.window_content_sid);
	free((void *)(uintptr_t)en->o.window_variables);
	free((void *)(uintptr_t)en->o.followup_content_sid);
	free((void *)(uintptr_t)en->o.followup_variables);
	free((void *)(uintptr_t)en->o.booking_url);
	free((void *)(uintptr_t)en->o.inbox_resume_command);
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
	en->o.inbox_interval_ms = o->inbox_interval_ms;
	en->o.inbox_resume_command = dup0(o->inbox_resume_command ? o->inbox_resume_command : "/bot");
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
	    en->o.booking_url = en->o.inbox_resume_command = NULL;
	engine_set_outbound(en, o);
	xasprintf(&en->k_stream, "%s{intake}:stream", p);
	xasprintf(&en->k_due, "%s{turns}:due", p);
	xasprintf(&en->k_lease, "%s{turns}:lease", p);
	xasprintf(&en->k_pending, "%s{odoo}:pending", p);
	xasprintf(&en->k_dead, "%s{engine}:dead", p);
	xasprintf(&en->k_followup, "%s{followup}:due", p);
	xasprintf(&en->k_in, "%s{turns}:in", p);
	xasprintf(&en->k_leads, "%s{odoo}:leads", p);
	rscript_init(&en->store, redis_script_intake_store);
	rscript_init(&en->drain, redis_script_engine_drain);
	en->up.stream = en->up.walk = -1;
	rscript_init(&en->claim, redis_script_engine_claim);
	rscript_init(&en->load, redis_script_engine_load);
	rscript_init(&en->release, redis_script_engine_release);
	rscript_init(&en->commit, redis_script_engine_commit);
	rscript_init(&en->lease_one, redis_script_engine_lease_one);
	en->inbox = inbox_new(en);
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
	free(en->k_lease);
	free(en->k_pending);
	free(en->k_dead);
	free(en->k_followup);
	free(en->k_in);
	free(en->k_leads);
	inbox_free(en->inbox);
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
	bool dying = engine_gone(en);

	if (r == NULL || ((redisReply *)r)->type == REDIS_REPLY_ERROR)
		op->failed = 1;
	if (--op->left == 0) {
		if (!dying)
			op->done(op->failed ? -1 : 0, op->arg);
		free(op);
	}
	engine_settle(en);
}

void
engine_reset_phone(struct engine *en, const char *phone, void (*done)(int, void *), void *arg)
{
	struct reset_op *op = xcalloc(1, sizeof(*op));
	char *conv = engine_pkey(en, phone, "conv"), *inbox = engine_pkey(en, phone, "inbox"),
	     *routed = engine_pkey(en, phone, "routed");
	char *ctl = engine_pkey(en, phone, "ctl");

	op->en = en;
	op->done = done;
	op->arg = arg;
	op->left = 5;
	/* Commands pipelined on one connection: they all come back, or all fail together. */
	if (engine_rc(en) == NULL ||
	    rconn_command(engine_rc(en), on_reset, op, "DEL %s %s %s %s", conv, inbox, routed, ctl) < 0) {
		free(op);
		done(-1, arg);
	} else {
		en->refs += 5;
		rconn_command(engine_rc(en), on_reset, op, "ZREMRANGEBYLEX %s [%s| (%s}", en->k_in, phone, phone);
		rconn_command(engine_rc(en), on_reset, op, "ZREM %s %s", en->k_due, phone);
		rconn_command(engine_rc(en), on_reset, op, "ZREM %s %s", en->k_pending, phone);
		rconn_command(engine_rc(en), on_reset, op, "ZREM %s %s", en->k_followup, phone);
	}
	free(conv);
	free(inbox);
	free(routed);
	free(ctl);
}

int
engine_requeue(struct engine *en, const char *phone, json_t *messages)
{
	size_t i;

	if (engine_rc(en) == NULL || !json_is_array(messages) || json_array_size(messages) == 0)
		return -1;
	/* Back among the arrivals in the order they first came (their receive time), before anything since. */
	for (i = 0; i < json_array_size(messages); i++) {
		json_t *e = json_array_get(messages, i);
		char *j = json_dumps(e, JSON_COMPACT), *m;
		long long ms = 0;
		if (j == NULL)
			continue;
		parse_ll(json_string_value(json_object_get(e, "t_ms")) ?: "0", 0, INT64_MAX, &ms);
		m = intake_member(phone, (uint64_t)ms, (unsigned)i, j);
		rconn_command(engine_rc(en), NULL, NULL, "ZADD %s 0 %s", en->k_in, m);
		free(m);
		free(j);
	}
	rconn_command(engine_rc(en), NULL, NULL, "ZADD %s LT %" PRIu64 " %s", en->k_due, realtime_usec() / 1000, phone);
	engine_poll_now(en);
	return 0;
}

char *
engine_ctl_key(const struct engine *en, const char *phone)
{
	return engine_pkey((struct engine *)(uintptr_t)en, phone, "ctl");
}

/* Marks a delivery report about the customer in the control hash (field = now, in ms), for the next turns. */
static void
ctl_mark(struct engine *en, const char *phone, const char *field)
{
	char *ctl = engine_pkey(en, phone, "ctl");

	if (engine_rc(en) != NULL) {
		rconn_command(engine_rc(en), NULL, NULL, "HSET %s %s %" PRIu64, ctl, field, realtime_usec() / 1000);
		rconn_command(engine_rc(en), NULL, NULL, "EXPIRE %s %" PRIu64, ctl, en->o.conversation_ttl_s);
	}
	free(ctl);
}

void
engine_window_closed(struct engine *en, const char *phone)
{
	ctl_mark(en, phone, "window_closed_ms");
}

void
engine_blocked(struct engine *en, const char *phone)
{
	char ph[32];

	en->st.blocked++;
	log_notice("engine: %s has blocked the business on WhatsApp (Twilio error 63014): no follow-ups or other "
	           "messages until they write again",
	    log_phone(phone, ph, sizeof(ph)));
	ctl_mark(en, phone, "blocked_ms");
	engine_cancel_followups(en, phone);
}

void
engine_cancel_followups(struct engine *en, const char *phone)
{
	if (engine_rc(en) != NULL)
		rconn_command(engine_rc(en), NULL, NULL, "ZREM %s %s", en->k_followup, phone);
}
