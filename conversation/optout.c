/*
 * The turn's STOP and START steps (TURN_OPT, TURN_BLACKLIST): the stage, one confirmation (the sender drops
 * whatever else was queued for the phone and refuses anything more), the follow-ups stopped, and Odoo's
 * phone.blacklist when configured (retried with the lead writes when Odoo refuses).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "classifier/lexicon.h"
#include "common/log.h"
#include "common/util.h"
#include "conversation/state.h"
#include "conversation/turn.h"

static void
on_opt_queued(int parts, void *arg)
{
	struct turn *t = arg;

	if (turn_dropped(t))
		return;
	if (parts < 0 && parts != -EPERM) {
		turn_run(t, turn_fail(t, "the opt-out confirmation could not be queued"));
		return;
	}
	if (parts > 0)
		t->replied = true;
	turn_run(t, TURN_BLACKLIST);
}

/* The customer sent STOP (t->opt_word 1) or START (-1), as the burst's last such word. */
enum turn_step
turn_opt(struct turn *t)
{
	struct engine *en = t->en;
	struct sender *s = engine_sender(en);
	struct lexicon *lx = engine_lexicon(en);
	bool out = t->opt_word > 0;
	const char *lang = json_string_value(json_object_get(t->state, "lang")) ?: t->opt_lang;
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
	if (text == NULL || s == NULL)
		return TURN_BLACKLIST;
	conv_state_add(t->state, "out", text, realtime_usec() / 1000, NULL, en->o.history_cap);
	conv_state_count(t->state, "out", 1);
	m.to = t->phone;
	m.text = text;
	m.once = t->turn_key;
	m.opt = out ? 1 : -1;
	en->refs++;
	sender_send(s, &m, on_opt_queued, t);
	return TURN_WAIT;
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
		engine_retry_lead_in(en, t->phone, 30000);
		log_warnx("engine: %s: phone blacklist update deferred (%s error: %s)",
		    log_phone(t->phone, ph, sizeof(ph)), odoo_kind_name(e->kind), e->message);
	}
	if (t->kind == TURN_KIND_LEAD_RETRY && json_is_true(json_object_get(t->state, "lead_pending"))) {
		/* The lead waits too: written by a job once this is committed and the phone released. */
		t->lead_job = true;
		t->job_gen = json_integer_value(json_object_get(t->state, "lead_gen"));
	} else if (t->kind == TURN_KIND_LEAD_RETRY && e->kind == ODOO_OK && engine_rc(en) != NULL)
		rconn_command(engine_rc(en), NULL, NULL, "ZREM %s %s", en->k_pending, t->phone);
	turn_run(t, TURN_COMMIT);
}

enum turn_step
turn_blacklist(struct turn *t)
{
	struct engine *en = t->en;
	struct lead_ctx *lx = engine_leads(en);

	if (!en->o.optout_blacklist || lx == NULL) {
		json_object_del(t->state, "blacklist_pending");
		return TURN_COMMIT;
	}
	en->refs++;
	lead_blacklist(lx, t->phone, json_is_true(json_object_get(t->state, "opted_out")), on_blacklisted, t);
	return TURN_WAIT;
}
