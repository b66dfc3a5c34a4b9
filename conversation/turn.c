/*
 * The turn as a state machine (see enum turn_step in turn.h for the steps and where a turn can stop).
 * This file holds the machine itself (the table, turn_run, failure, the lease's renewal, freeing) and the
 * steps that belong to no other concern: loading, taking the messages, giving up, the history, the commit
 * and the release. The others live with their concern: optout.c, classify.c, reply.c, followup.c and
 * leadjob.c.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifier/lexicon.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "conversation/outbound.h"
#include "conversation/state.h"
#include "conversation/turn.h"

static const struct {
	const char *name;
	enum turn_step (*run)(struct turn *t);
} steps[TURN_NSTEPS] = {
    [TURN_LOAD] = {"load", turn_load},
    [TURN_RETRY] = {"retry", turn_retry},
    [TURN_FOLLOWUP] = {"followup", turn_followup},
    [TURN_TAKE] = {"take", turn_take},
    [TURN_GIVE_UP] = {"give-up", turn_give_up},
    [TURN_HISTORY] = {"history", turn_history},
    [TURN_AGENT] = {"agent", turn_agent},
    [TURN_OPT] = {"opt", turn_opt},
    [TURN_BLACKLIST] = {"blacklist", turn_blacklist},
    [TURN_MEDIA] = {"media", turn_media},
    [TURN_CLASSIFY] = {"classify", turn_classify},
    [TURN_LINKS] = {"links", turn_links},
    [TURN_REPLY] = {"reply", turn_reply},
    [TURN_LEAD] = {"lead", turn_lead},
    [TURN_WRITE_LEAD] = {"write-lead", turn_write_lead},
    [TURN_HANDOFF] = {"handoff", turn_handoff},
    [TURN_COMMIT] = {"commit", turn_commit},
    [TURN_RELEASE] = {"release", turn_release},
    [TURN_JOB] = {"job", turn_job},
    [TURN_MIRROR] = {"mirror", turn_mirror},
    [TURN_MERGE] = {"merge", turn_merge},
    [TURN_JOB_END] = {"job-end", turn_job_end},
    [TURN_DONE] = {"done", turn_done},
};

void
turn_run(struct turn *t, enum turn_step s)
{
	/* A step that returns TURN_WAIT may already have been continued (and freed) by its callback. */
	while (s != TURN_WAIT) {
		t->step = s;
		s = steps[s].run(t);
	}
}

enum turn_step
turn_fail(struct turn *t, const char *why)
{
	char ph[32];

	t->failed = true;
	t->en->st.turns_failed++;
	log_warnx("engine: %s: turn failed in step %s (%s); it will be redone", log_phone(t->phone, ph, sizeof(ph)),
	    steps[t->step].name, why);
	return TURN_RELEASE;
}

void
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
	free(t->last_member);
	json_decref(t->ctl);
	json_decref(t->ctl_set);
	json_decref(t->ctl_del);
	free(t->reply);
	free(t->question);
	free(t->turn_key);
	json_decref(t->agent);
	json_decref(t->notes);
	json_decref(t->mirror_keys);
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

bool
turn_dropped(struct turn *t)
{
	struct engine *en = t->en;

	if (!engine_gone(en))
		return false;
	turn_free(t);
	engine_settle(en);
	return true;
}

enum turn_step
turn_save(struct turn *t)
{
	/* A job posts the conversation on the lead before it merges. */
	return t->in_job ? (t->mirrored ? TURN_MERGE : TURN_MIRROR) : TURN_COMMIT;
}

/* Drops field from the deletions to commit. */
static void
undelete(struct turn *t, const char *field)
{
	size_t i;
	json_t *v;

	json_array_foreach(t->ctl_del, i, v) if (strcmp(json_string_value(v), field) == 0)
	{
		json_array_remove(t->ctl_del, i);
		return;
	}
}

/* A change to the control hash: committed with the state, and seen by the rest of the turn (t->ctl). The last
   change to a field wins. */
void
turn_ctl_set(struct turn *t, const char *field, const char *value)
{
	if (t->ctl_set == NULL)
		t->ctl_set = json_object();
	json_object_set_new(t->ctl_set, field, json_string(value));
	undelete(t, field);
	json_object_set_new(t->ctl, field, json_string(value));
}

void
turn_ctl_del(struct turn *t, const char *field)
{
	if (t->ctl_del == NULL)
		t->ctl_del = json_array();
	undelete(t, field);
	json_array_append_new(t->ctl_del, json_string(field));
	json_object_del(t->ctl_set, field);
	json_object_del(t->ctl, field);
}

uint64_t
turn_ctl_ms(const struct turn *t, const char *field)
{
	long long v = 0;

	parse_ll(json_string_value(json_object_get(t->ctl, field)) ?: "0", 0, INT64_MAX, &v);
	return (uint64_t)v;
}

void
turn_report(struct turn *t)
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
	r.customer = t->kind == TURN_KIND_CUSTOMER;
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
	r.messages_in = (unsigned)t->customer_in;
	r.agent_sent = t->agent_sent;
	r.agent_held = t->agent_held;
	r.first_human_ms = t->first_human_ms;
	r.turn_usec = now_usec() - t->started_usec;
	r.classify_usec = t->classify_usec;
	en->d.report(&r, en->d.report_arg);
}

static int
on_renew(sd_event_source *s, uint64_t usec, void *arg)
{
	struct turn *t = arg;
	struct engine *en = t->en;
	char until[24];

	/* A long turn (a slow model) keeps its phone; a lead job keeps the phone's lead write. */
	snprintf(until, sizeof(until), "%" PRIu64, realtime_usec() / 1000 + en->o.turn_lease_ms);
	if (engine_rc(en) != NULL && t->in_job) {
		char *key = engine_pkey(en, t->phone, "odoo");
		rconn_command(engine_rc(en), NULL, NULL, "PEXPIRE %s %" PRIu64, key, en->o.turn_lease_ms);
		free(key);
	} else if (engine_rc(en) != NULL) {
		/* The lease's value: "<until>:<attempts>" (engine-claim). */
		rconn_command(engine_rc(en), NULL, NULL, "HSET %s %s %s:%lld", en->k_lease, t->phone, until,
		    t->kind == TURN_KIND_CUSTOMER ? t->attempts : 0);
	}
	sd_event_source_set_time(s, now_usec() + en->o.turn_lease_ms * 1000 / 3);
	sd_event_source_set_enabled(s, SD_EVENT_ONESHOT); /* a time source is off once it has fired */
	return 0;
}

void
turn_start(struct engine *en, const char *phone, const char *due, long long attempts, enum turn_kind kind,
    redisReply **msgs, size_t n, size_t waiting)
{
	struct turn *t = xcalloc(1, sizeof(*t));
	size_t i;

	t->en = en;
	t->kind = kind;
	t->waiting = waiting;
	if (kind == TURN_KIND_CUSTOMER) {
		/* The messages the claim took from the arrivals: "<+E164>|<order>|<JSON>" each. */
		t->inbox = json_array();
		for (i = 0; i < n; i++) {
			const char *m = msgs[i]->type == REDIS_REPLY_STRING ? msgs[i]->str : "", *j = strchr(m, '|');
			json_t *e = NULL;
			if (j != NULL && (j = strchr(j + 1, '|')) != NULL)
				e = json_loads(j + 1, 0, NULL);
			json_array_append_new(t->inbox, e != NULL ? e : json_pack("{s:s}", "text", ""));
		}
		if (n > 0)
			t->last_member = xstrdup(msgs[n - 1]->type == REDIS_REPLY_STRING ? msgs[n - 1]->str : "");
		t->full = n >= TURN_MAX_TAKEN;
	}
	snprintf(t->phone, sizeof(t->phone), "%s", phone);
	snprintf(t->due, sizeof(t->due), "%s", due);
	t->attempts = attempts;
	t->started_usec = now_usec();
	t->next = en->turns;
	if (en->turns != NULL)
		en->turns->prev = t;
	en->turns = t;
	en->st.in_flight++;
	if (kind == TURN_KIND_CUSTOMER)
		en->st.turns++;
	if (sd_event_add_time(en->event, &t->renew, CLOCK_MONOTONIC, now_usec() + en->o.turn_lease_ms * 1000 / 3,
	        100000, on_renew, t) < 0)
		fatalx("engine: sd_event_add_time failed");
	turn_run(t, TURN_LOAD);
}

/* ---- load ---- */

/*
 * A turn redone after a crash between its commit and its release finds messages its history already has
 * (the commit stores the state in the phone's slot, the release takes the messages out of the arrivals in the
 * turns' slot): those are left out, and taken out of the arrivals with the rest by this turn's release.
 */
static void
turn_skip_done(struct turn *t)
{
	json_t *h = json_object_get(t->state, "history"), *e;
	size_t i = 0, j;

	while (i < json_array_size(t->inbox)) {
		const char *sid = json_string_value(json_object_get(json_array_get(t->inbox, i), "sid"));
		bool seen = false;
		json_array_foreach(h, j, e)
		{
			const char *hs = json_string_value(json_object_get(e, "sid"));
			if (sid != NULL && hs != NULL && strcmp(sid, hs) == 0) {
				seen = true;
				break;
			}
		}
		if (seen)
			json_array_remove(t->inbox, i);
		else
			i++;
	}
	t->taken = json_array_size(t->inbox);
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
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
		turn_run(t, turn_fail(t, "Redis unavailable at load"));
		return;
	}
	t->ctl = json_object();
	if (reply->element[1]->type == REDIS_REPLY_ARRAY)
		for (i = 0; i + 1 < reply->element[1]->elements; i += 2)
			json_object_set_new(t->ctl, reply->element[1]->element[i]->str,
			    json_stringn(
			        reply->element[1]->element[i + 1]->str, reply->element[1]->element[i + 1]->len));
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
	if (t->kind == TURN_KIND_CUSTOMER)
		turn_skip_done(t);
	turn_run(t,
	    t->kind == TURN_KIND_LEAD_RETRY     ? TURN_RETRY
	        : t->kind == TURN_KIND_FOLLOWUP ? TURN_FOLLOWUP
	                                        : TURN_TAKE);
}

enum turn_step
turn_load(struct turn *t)
{
	struct engine *en = t->en;
	char *conv = engine_pkey(en, t->phone, "conv"), *ctl = engine_pkey(en, t->phone, "ctl");
	const char *a[2] = {conv, ctl};
	int r;

	en->refs++;
	r = engine_eval(en, &en->load, on_loaded, t, 2, a, 2); /* one round trip, both in the phone's slot */
	free(conv);
	free(ctl);
	if (r < 0) {
		en->refs--;
		return TURN_DONE; /* Redis away: the lease expires and the phone is claimed again */
	}
	return TURN_WAIT;
}

/* ---- the customer's messages ---- */

enum turn_step
turn_take(struct turn *t)
{
	if (t->taken == 0)
		return TURN_RELEASE; /* nothing new: the burst was handled */
	if (t->attempts > t->en->o.max_turn_attempts)
		return TURN_GIVE_UP;
	return TURN_HISTORY;
}

/* Failing again and again: set aside with the reason, and the conversation goes on. */
enum turn_step
turn_give_up(struct turn *t)
{
	struct engine *en = t->en;
	json_t *rec = json_pack("{s:s, s:O, s:I, s:s}", "phone", t->phone, "messages", t->inbox, "at_ms",
	    (json_int_t)(realtime_usec() / 1000), "reason", "the turn failed repeatedly");
	char *s = json_dumps(rec, JSON_COMPACT), ph[32];

	rconn_command(engine_rc(en), NULL, NULL, "LPUSH %s %s", en->k_dead, s);
	rconn_command(engine_rc(en), NULL, NULL, "LTRIM %s 0 999", en->k_dead);
	free(s);
	json_decref(rec);
	en->st.dead_letters++;
	log_error("engine: %s: turn given up after %lld attempts; in the dead-letter list",
	    log_phone(t->phone, ph, sizeof(ph)), t->attempts - 1);
	/* The stored state stays; only the messages taken are dropped (the release takes them out). */
	return TURN_RELEASE;
}

enum turn_step
turn_history(struct turn *t)
{
	struct engine *en = t->en;
	struct lexicon *lx = engine_lexicon(en);
	size_t i;
	json_t *m, *call;
	uint64_t now = realtime_usec() / 1000;

	json_array_foreach(t->inbox, i, m)
	{
		if (agent_take(t, m, now))
			continue; /* a salesperson's, from the lead's chatter */
		t->customer_in++;
		const char *sid = json_string_value(json_object_get(m, "sid"));
		const char *text = json_string_value(json_object_get(m, "text")) ?: "";
		const char *profile = json_string_value(json_object_get(m, "profile"));
		long long ms = 0;
		char l[3] = "";
		int w;
		parse_ll(json_string_value(json_object_get(m, "t_ms")) ?: "0", 0, INT64_MAX, &ms);
		if (t->first_in_ms == 0)
			t->first_in_ms = (uint64_t)ms;
		conv_state_add(t->state, "in", text, (uint64_t)ms, sid, en->o.history_cap);
		json_object_set_new(t->state, "last_inbound_ms", json_integer(ms));
		if (profile != NULL && *profile != '\0')
			json_object_set_new(t->state, "profile", json_string(profile));
		/* The last STOP or START of the burst decides. */
		if (lx != NULL && (w = lexicon_opt_word(lx, text, l)) != 0) {
			t->opt_word = w;
			memcpy(t->opt_lang, l, 3);
		}
	}
	conv_state_count(t->state, "in", (json_int_t)t->customer_in);
	conv_state_count(t->state, "turns", 1);
	/* The customer wrote: the window is open again, and the follow-ups start over from this message. */
	if (t->customer_in > 0 && json_object_get(t->ctl, "window_closed_ms") != NULL) {
		turn_ctl_del(t, "window_closed_ms");
	}
	/* Writing to the business undoes a block on WhatsApp (63014). */
	if (t->customer_in > 0 && json_object_get(t->ctl, "blocked_ms") != NULL) {
		turn_ctl_del(t, "blocked_ms");
	}
	if (t->customer_in > 0) {
		t->after_followup = json_integer_value(json_object_get(t->state, "followups_sent")) > 0;
		json_object_set_new(t->state, "followups_sent", json_integer(0));
	}
	/* The context of the call this conversation follows (stored by POST /api/call-completed). */
	if ((call = json_loads(json_string_value(json_object_get(t->ctl, "call")) ?: "", 0, NULL)) != NULL) {
		outbound_merge_call(t->state, call, en->o.history_cap);
		json_decref(call);
		turn_ctl_del(t, "call"); /* merged: the state has it now */
	}
	/* The turn is named by its last message: redone after a crash, it queues its reply once. */
	xasprintf(&t->turn_key, "%s:%s", t->phone,
	    json_string_value(json_object_get(json_array_get(t->inbox, t->taken - 1), "sid")) ?: "?");
	if (t->opt_word != 0)
		return agent_first(t, TURN_OPT);
	if (json_object_get(t->ctl, "pause_until") != NULL && turn_ctl_ms(t, "pause_until") <= now) {
		/* The hand-off's time is up: the bot answers again. */
		turn_ctl_del(t, "pause_until");
		turn_ctl_del(t, "pause_reason");
		turn_ctl_del(t, "pause_by");
		turn_ctl_del(t, "pause_partner");
	}
	if (t->customer_in > 0 && turn_ctl_ms(t, "pause_until") <= now &&
	    (strcmp(conv_state_stage(t->state), "human") == 0 || strcmp(conv_state_stage(t->state), "support") == 0)) {
		/*
		 * Back with the bot after a person had the conversation (handed back from Odoo or crmbridgectl, or the
		 * pause ran out): the bot reads it from this turn's messages on, with the fields it knows, so the old
		 * request for a person does not hand the customer over again.
		 */
		json_object_set_new(t->state, "context_from_ms", json_integer((json_int_t)t->first_in_ms));
		conv_state_set_stage(t->state,
		    json_integer_value(json_object_get(t->state, "lead_id")) > 0 ? "lead_created" : "gathering_info");
	}
	if (t->customer_in == 0 || json_is_true(json_object_get(t->state, "opted_out")) ||
	    turn_ctl_ms(t, "pause_until") > now) {
		/* Opted out, or a person has the conversation (or only spoke): kept in the history, not answered. */
		en->st.silenced += t->customer_in;
		t->silenced = t->customer_in > 0;
		return agent_first(t, TURN_COMMIT);
	}
	return agent_first(t, TURN_MEDIA);
}

/* ---- commit and release ---- */

static void
on_committed(redisAsyncContext *ac, void *r, void *pd)
{
	struct turn *t = pd;
	redisReply *reply = r;

	if (turn_dropped(t))
		return;
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		turn_run(t, turn_fail(t, "commit failed"));
		return;
	}
	turn_report(t);
	agent_notes_push(t);
	turn_run(t, TURN_RELEASE);
}

enum turn_step
turn_commit(struct turn *t)
{
	struct engine *en = t->en;
	char *conv = engine_pkey(en, t->phone, "conv"), *ctl = engine_pkey(en, t->phone, "ctl");
	char *state, ttl[24], nset[16];
	const char **a;
	size_t n = 0, i;
	const char *k;
	json_t *v;
	int r;

	json_object_set_new(t->state, "updated_ms", json_integer((json_int_t)(realtime_usec() / 1000)));
	conv_state_prune(t->state, realtime_usec() / 1000, en->o.history_retention_ms);
	state = json_dumps(t->state, JSON_COMPACT);
	snprintf(ttl, sizeof(ttl), "%" PRIu64, en->o.conversation_ttl_s);
	snprintf(nset, sizeof(nset), "%zu", json_object_size(t->ctl_set));
	a = xcalloc(5 + 2 * json_object_size(t->ctl_set) + json_array_size(t->ctl_del), sizeof(*a));
	a[n++] = conv;
	a[n++] = ctl;
	a[n++] = state;
	a[n++] = ttl;
	a[n++] = nset;
	json_object_foreach(t->ctl_set, k, v)
	{
		a[n++] = k;
		a[n++] = json_string_value(v);
	}
	json_array_foreach(t->ctl_del, i, v) a[n++] = json_string_value(v);
	en->refs++;
	r = engine_eval(en, &en->commit, on_committed, t, 2, a, (int)n);
	if (r >= 0)
		turn_schedule_followups(t);
	free(a);
	free(conv);
	free(ctl);
	free(state);
	if (r < 0) {
		en->refs--;
		return turn_fail(t, "Redis unavailable at commit");
	}
	return TURN_WAIT;
}

static void
on_released(redisAsyncContext *ac, void *r, void *pd)
{
	struct turn *t = pd;

	if (turn_dropped(t))
		return;
	engine_poll_now(t->en);
	/* The phone is free for the next turn; its lead is written meanwhile (or its chatter brought up to date). */
	if (!t->lead_job && !t->failed && agent_mirror_due(t))
		t->lead_job = t->mirror_only = true;
	turn_run(t, t->lead_job ? TURN_JOB : TURN_DONE);
}

enum turn_step
turn_release(struct turn *t)
{
	struct engine *en = t->en;
	char now[24], attempts[24] = "";
	/* The messages dealt with leave the arrivals: a failed turn's stay, to be redone. */
	const char *last = !t->failed && t->last_member != NULL ? t->last_member : "";
	const char *a[10] = {en->k_due, en->k_lease, en->k_in, t->phone, t->due, t->failed ? "0" : "1", now, attempts,
	    last, t->full ? "1" : "0"};

	snprintf(now, sizeof(now), "%" PRIu64, realtime_usec() / 1000);
	/* A background turn's (lead retry, follow-up) count is not the customer turns': it keeps the phone's. */
	if (t->kind == TURN_KIND_CUSTOMER)
		snprintf(attempts, sizeof(attempts), "%lld", t->attempts);
	en->refs++;
	if (engine_eval(en, &en->release, on_released, t, 3, a, 10) < 0) {
		/* Redis went away: the lease expires by itself and the turn is redone. */
		en->refs--;
		return TURN_DONE;
	}
	return TURN_WAIT;
}

enum turn_step
turn_done(struct turn *t)
{
	turn_free(t);
	return TURN_WAIT;
}
