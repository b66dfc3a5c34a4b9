/*
 * The lead (TURN_RETRY, TURN_LEAD, TURN_WRITE_LEAD, TURN_HANDOFF, TURN_JOB, TURN_MERGE, TURN_JOB_END).
 *
 * A turn never waits for Odoo: it queues its reply, bumps the state's lead_gen, marks lead_pending and
 * commits; after the release the same struct turn, no longer counted as a turn, becomes a job: it takes
 * P{+E164}:odoo (SET NX PX, renewed with the lease timer), writes the lead from the committed state, and then
 * takes the phone's turn lease for one GET/SET to merge what it learnt (lead id, lead_written, an unknown
 * create) into the state stored by then. A lead_gen moved on by a later turn keeps the write pending. Without
 * Odoo, the lead journal answers at once and the write is part of the turn. Odoo refusing: the write stays
 * pending in {odoo}:pending and a TURN_KIND_LEAD_RETRY turn comes back for it.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conversation/journal.h"
#include "common/log.h"
#include "common/util.h"
#include "conversation/state.h"
#include "conversation/turn.h"

/* A background retry: a pending blacklist update first; the lead, if pending, as a job after the release. */
enum turn_step
turn_retry(struct turn *t)
{
	struct engine *en = t->en;

	if (json_object_get(t->state, "blacklist_pending") != NULL)
		return TURN_BLACKLIST; /* then the lead, if it waits too */
	if (!json_is_true(json_object_get(t->state, "lead_pending"))) {
		rconn_command(engine_rc(en), NULL, NULL, "ZREM %s %s", en->k_pending, t->phone);
		/* The lead is written; its chatter may still lack messages (Odoo refused them): the release posts them. */
		return TURN_RELEASE;
	}
	en->st.odoo_retried++;
	/* Written by a job after the release, so the customer's turns go on meanwhile. */
	t->lead_job = true;
	t->job_gen = json_integer_value(json_object_get(t->state, "lead_gen"));
	return TURN_RELEASE;
}

/* The reply is queued (or there is none): the lead, when the turn wants it written. */
enum turn_step
turn_lead(struct turn *t)
{
	struct engine *en = t->en;

	if (!t->lead_after_reply)
		return TURN_COMMIT;
	t->lead_after_reply = false;
	if (engine_leads(en) == NULL)
		return TURN_WRITE_LEAD; /* the journal answers at once */
	/*
	 * The state says so (lead_pending, a new lead_gen) when it is committed, and a retry is scheduled in
	 * case this process stops before the job is done; the job starts after the commit and the release.
	 */
	t->job_gen = json_integer_value(json_object_get(t->state, "lead_gen")) + 1;
	json_object_set_new(t->state, "lead_gen", json_integer(t->job_gen));
	json_object_set_new(t->state, "lead_pending", json_true());
	t->lead_job = true;
	engine_retry_lead_in(en, t->phone, 3 * en->o.turn_lease_ms);
	return TURN_COMMIT;
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
		if (engine_leads(en) != NULL &&
		    r->lead_id != json_integer_value(json_object_get(t->state, "lead_id")) && engine_rc(en) != NULL)
			/* A lead new to this conversation: its phone, for the salespeople's messages on it (inbox.c). */
			rconn_command(engine_rc(en), NULL, NULL, "HSET %s %d %s", en->k_leads, r->lead_id, t->phone);
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
		if (t->kind == TURN_KIND_LEAD_RETRY)
			en->st.odoo_recovered++; /* the merge takes it off the retry schedule */
		log_info("engine: %s: lead %d %s %s%s", log_phone(t->phone, ph, sizeof(ph)), r->lead_id,
		    r->adopted       ? "created (by the create that got no answer: found, not made again)"
		        : r->created ? "created"
		        : r->updated ? "updated"
		                     : "unchanged",
		    engine_leads(en) != NULL ? "in Odoo" : "in the lead journal",
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
		engine_retry_lead_in(en, t->phone, delay > 600000 ? 600000 : delay);
		en->st.odoo_deferred++;
		t->lead = -1;
		log_warnx("engine: %s: lead write deferred (%s error: %s)", log_phone(t->phone, ph, sizeof(ph)),
		    odoo_kind_name(r->err.kind), r->err.message);
	}
	turn_run(
	    t, t->kind != TURN_KIND_LEAD_RETRY && r->err.kind == ODOO_OK && t->handoff ? TURN_HANDOFF : turn_save(t));
}

/* Writes the lead from the conversation's fields (Odoo, or the journal without it). */
enum turn_step
turn_write_lead(struct turn *t)
{
	struct engine *en = t->en;
	struct lead_ctx *lx = engine_leads(en);
	struct journal *jr = engine_journal(en);
	json_t *h = json_object_get(t->state, "history"), *q;
	const char *last[6], *by[6];
	bool out[6];
	size_t n = 0, i, from;
	struct lead_input in = {0};
	json_int_t unknown = json_integer_value(json_object_get(t->state, "lead_create_unknown_ms"));

	if (lx == NULL && jr == NULL) {
		if (strcmp(conv_state_stage(t->state), "support") != 0)
			conv_state_set_stage(t->state, "qualified");
		return turn_save(t);
	}
	from = json_array_size(h) > 6 ? json_array_size(h) - 6 : 0;
	for (i = from; i < json_array_size(h); i++) {
		json_t *e = json_array_get(h, i);
		out[n] = strcmp(json_string_value(json_object_get(e, "dir")) ?: "in", "out") == 0;
		by[n] = json_string_value(json_object_get(e, "by")); /* a salesperson's, from the lead's chatter */
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
	in.intent = t->kind == TURN_KIND_LEAD_RETRY ? "sales" : intent_name(t->a.intent);
	in.reasoning = t->a.reasoning;
	in.question = t->question;
	in.last_messages = last;
	in.last_outbound = out;
	in.last_by = by;
	in.nlast = n;
	in.post_note = true;
	in.written = json_object_get(t->state, "lead_written");
	in.lead_id = (int)json_integer_value(json_object_get(t->state, "lead_id"));
	in.create_after_ms = unknown > 0 ? (uint64_t)unknown + en->o.odoo_create_patience_ms : 0;
	en->refs++;
	if (lx == NULL)
		journal_upsert(jr, &in, t->support, on_lead, t); /* answers at once */
	else if (t->support)
		lead_support(lx, &in, on_lead, t);
	else
		lead_upsert(lx, &in, on_lead, t);
	return TURN_WAIT;
}

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
	turn_run(t, turn_save(t));
}

/* A hand-off: the lead assigned to the configured team or person, with a note saying until when. */
enum turn_step
turn_handoff(struct turn *t)
{
	struct engine *en = t->en;
	struct lead_ctx *lx = engine_leads(en);
	char note[512], until[32];
	time_t u = (time_t)((realtime_usec() / 1000 + en->o.handoff_pause_ms) / 1000);
	struct tm tm;
	int lead_id = (int)json_integer_value(json_object_get(t->state, "lead_id"));

	/* A helpdesk ticket has its own team; the journal has no one to assign to. A buyer's lead is assigned. */
	if (lx == NULL || (t->support && lead_ctx_has_helpdesk(lx)))
		return turn_save(t);
	gmtime_r(&u, &tm);
	strftime(until, sizeof(until), "%Y-%m-%d %H:%M UTC", &tm);
	if (en->o.inbox_interval_ms > 0)
		snprintf(note, sizeof(note),
		    "Handed over to a person: the customer %s. The WhatsApp bot stays quiet until %s. Answer the "
		    "customer with \"Send message\" on this lead: it goes to them on WhatsApp. A \"Log note\" saying "
		    "%s hands them back to the bot.",
		    t->human ? "asked for a person" : "needs support", until, en->o.inbox_resume_command);
	else
		snprintf(note, sizeof(note),
		    "Handed over to a person: the customer %s. The WhatsApp bot stays quiet until %s or until resumed "
		    "(crmbridgectl conversation resume).",
		    t->human ? "asked for a person" : "needs support", until);
	en->refs++;
	lead_handoff(lx, lead_id, en->o.handoff_team_id, en->o.handoff_user_id, note, on_handoff_noted, t);
	return TURN_WAIT;
}

/* ---- the job: the lead write after the turn, without the turn's lease ---- */

static void
on_job_lock(redisAsyncContext *ac, void *r, void *pd)
{
	struct turn *t = pd;
	struct engine *en = t->en;
	redisReply *reply = r;

	if (turn_dropped(t))
		return;
	if (reply != NULL && reply->type == REDIS_REPLY_STATUS) {
		turn_run(t, t->mirror_only ? TURN_MIRROR : TURN_WRITE_LEAD);
		return;
	}
	/* Another job writes this phone's lead (or Redis is away): a retry comes after it. */
	engine_retry_lead_in(en, t->phone, 10000);
	engine_poll_now(en);
	turn_run(t, TURN_DONE);
}

/* After the turn's release: one lead write per phone at a time, held as P{+E164}:odoo and renewed. */
enum turn_step
turn_job(struct turn *t)
{
	struct engine *en = t->en;
	char *key;
	int r;

	if (en->st.lead_jobs >= 2 * en->o.max_turns) {
		/* Odoo is slow for many at once: this one waits in the retry schedule instead of in memory. */
		engine_retry_lead_in(en, t->phone, 10000);
		return TURN_DONE;
	}
	/* No longer a turn: the phone's next turn may start, and the job does not take a turn's place. */
	en->st.in_flight--;
	en->st.lead_jobs++;
	t->in_job = true;
	key = engine_pkey(en, t->phone, "odoo");
	sd_event_source_set_time(t->renew, now_usec() + en->o.turn_lease_ms * 1000 / 3);
	sd_event_source_set_enabled(t->renew, SD_EVENT_ONESHOT);
	en->refs++;
	r = engine_rc(en) != NULL ? rconn_command(engine_rc(en), on_job_lock, t, "SET %s %s NX PX %" PRIu64, key,
	                                en->o.consumer ? en->o.consumer : "crmbridged", en->o.turn_lease_ms)
	                          : -1;
	free(key);
	if (r < 0) {
		en->refs--;
		return TURN_DONE;
	}
	return TURN_WAIT;
}

/* Copies what the lead write learnt into the state stored now (a later turn may have changed the rest). */
static void
job_apply(struct turn *t, json_t *cur)
{
	static const char *const keys[] = {"lead_id", "lead_written", "lead_create_unknown_ms", NULL};
	const char *stage = conv_state_stage(cur);
	size_t i;

	agent_mirror_apply(t, cur); /* what the lead's chatter has now */
	if (t->mirror_only)
		return; /* wrote nothing else: the rest of the state is the later turns' */
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

/* The merge holds the phone's turn lease for one GET and SET: given back. */
static void
merge_unlease(struct turn *t)
{
	if (engine_rc(t->en) != NULL)
		rconn_command(engine_rc(t->en), NULL, NULL, "HDEL %s %s", t->en->k_lease, t->phone);
}

static void
on_merge_set(redisAsyncContext *ac, void *r, void *pd)
{
	struct turn *t = pd;

	if (turn_dropped(t))
		return;
	merge_unlease(t);
	turn_report(t);
	turn_run(t, TURN_JOB_END);
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
	int rr;

	if (turn_dropped(t))
		return;
	if (reply == NULL || reply->type != REDIS_REPLY_STRING ||
	    (cur = conv_state_parse(reply->str, reply->len, &why)) == NULL) {
		/* Erased or reset meanwhile (or Redis away): nothing to merge into. */
		merge_unlease(t);
		turn_run(t, TURN_JOB_END);
		return;
	}
	job_apply(t, cur);
	if (!json_is_true(json_object_get(cur, "lead_pending")) && !t->mirror_retry && engine_rc(en) != NULL)
		rconn_command(engine_rc(en), NULL, NULL, "ZREM %s %s", en->k_pending, t->phone);
	else if (json_integer_value(json_object_get(cur, "lead_gen")) != t->job_gen && engine_rc(en) != NULL)
		rconn_command(engine_rc(en), NULL, NULL, "ZADD %s %" PRIu64 " %s", en->k_pending,
		    realtime_usec() / 1000, t->phone);
	state = json_dumps(cur, JSON_COMPACT);
	json_decref(cur);
	conv = engine_pkey(en, t->phone, "conv");
	snprintf(ttl, sizeof(ttl), "%" PRIu64, en->o.conversation_ttl_s);
	en->refs++;
	rr = engine_rc(en) != NULL ? rconn_command(engine_rc(en), on_merge_set, t, "SET %s %s EX %s", conv, state, ttl)
	                           : -1;
	free(conv);
	free(state);
	if (rr < 0) {
		en->refs--;
		turn_run(t, TURN_JOB_END);
	}
}

static int
on_merge_retry(sd_event_source *s, uint64_t usec, void *arg)
{
	struct turn *t = arg;

	t->merge_timer = sd_event_source_disable_unref(t->merge_timer);
	if (turn_dropped(t))
		return 0;
	turn_run(t, TURN_MERGE);
	return 0;
}

static void
on_merge_lease(redisAsyncContext *ac, void *r, void *pd)
{
	struct turn *t = pd;
	struct engine *en = t->en;
	redisReply *reply = r;
	char *conv;
	int rr;

	if (turn_dropped(t))
		return;
	if (reply != NULL && reply->type == REDIS_REPLY_INTEGER && reply->integer >= 1) { /* 1 + messages waiting */
		conv = engine_pkey(en, t->phone, "conv");
		en->refs++;
		rr = engine_rc(en) != NULL ? rconn_command(engine_rc(en), on_merge_get, t, "GET %s", conv) : -1;
		free(conv);
		if (rr < 0) {
			en->refs--;
			merge_unlease(t);
			turn_run(t, TURN_JOB_END);
		}
		return;
	}
	if (++t->merge_tries > 400) {
		/* A turn has held the phone for 20 s: the retry will find the lead by its phone and record it. */
		engine_retry_lead_in(en, t->phone, 0);
		turn_run(t, TURN_JOB_END);
		return;
	}
	en->refs++; /* held while the timer waits, so the engine outlives it */
	if (sd_event_add_time(
	        en->event, &t->merge_timer, CLOCK_MONOTONIC, now_usec() + 50000, 10000, on_merge_retry, t) < 0)
		fatalx("engine: sd_event_add_time failed");
}

/* The write is done (or failed): its outcome goes into the state under the phone's lease, held a moment. */
enum turn_step
turn_merge(struct turn *t)
{
	struct engine *en = t->en;
	char now[24], until[24];
	const char *a[5] = {en->k_lease, en->k_in, t->phone, now, until};

	snprintf(now, sizeof(now), "%" PRIu64, realtime_usec() / 1000);
	snprintf(until, sizeof(until), "%" PRIu64, realtime_usec() / 1000 + en->o.turn_lease_ms);
	en->refs++;
	if (engine_eval(en, &en->lease_one, on_merge_lease, t, 2, a, 5) < 0) {
		en->refs--;
		return TURN_JOB_END;
	}
	return TURN_WAIT;
}

enum turn_step
turn_job_end(struct turn *t)
{
	struct engine *en = t->en;
	char *key = engine_pkey(en, t->phone, "odoo");

	if (engine_rc(en) != NULL)
		rconn_command(engine_rc(en), NULL, NULL, "DEL %s", key);
	free(key);
	engine_poll_now(en);
	return TURN_DONE;
}
