/*
 * Follow-ups (TURN_FOLLOWUP, and the schedule kept at each commit): a quiet conversation that is still warm,
 * not opted out and not with a person gets the unanswered question once more (free text inside the 24-hour
 * window, the follow-up template outside), up to the configured number, each timed from the customer's last
 * message. A follow-up turn is named by that message and the count, so it is queued once.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "conversation/outbound.h"
#include "conversation/state.h"
#include "conversation/turn.h"

void
turn_schedule_followups(struct turn *t)
{
	struct engine *en = t->en;
	json_int_t sent = json_integer_value(json_object_get(t->state, "followups_sent"));
	json_int_t last = json_integer_value(json_object_get(t->state, "last_inbound_ms"));

	if (engine_rc(en) == NULL || en->o.nfollowups == 0 || t->kind == TURN_KIND_LEAD_RETRY)
		return;
	if (t->schedule_followup && sent < (json_int_t)en->o.nfollowups && last > 0)
		rconn_command(engine_rc(en), NULL, NULL, "ZADD %s %" PRIu64 " %s", en->k_followup,
		    (uint64_t)last + en->o.followup_delays[sent], t->phone);
	else
		rconn_command(engine_rc(en), NULL, NULL, "ZREM %s %s", en->k_followup, t->phone);
}

static void
on_followup_queued(int parts, void *arg)
{
	struct turn *t = arg;

	if (turn_dropped(t))
		return;
	if (parts == -EPERM) {
		json_object_set_new(t->state, "opted_out", json_true());
		conv_state_set_stage(t->state, "opted_out");
		t->schedule_followup = false;
	} else if (parts < 0) {
		turn_run(t, turn_fail(t, "the follow-up could not be queued"));
		return;
	} else {
		t->en->st.followups_sent++;
		t->followup_sent = 1;
	}
	turn_run(t, TURN_COMMIT);
}

enum turn_step
turn_followup(struct turn *t)
{
	struct engine *en = t->en;
	struct sender *s = engine_sender(en);
	struct lexicon *lx = engine_lexicon(en);
	json_int_t sent = json_integer_value(json_object_get(t->state, "followups_sent"));
	uint64_t now = realtime_usec() / 1000;
	char ph[32], *text;
	struct sender_msg m = {0};

	if (t->waiting > 0)
		return TURN_RELEASE; /* the customer wrote: that turn decides what comes next */
	if (t->fresh || !outbound_followup_eligible(t->state) || turn_ctl_ms(t, "pause_until") > now ||
	    turn_ctl_ms(t, "blocked_ms") > 0 || sent >= (json_int_t)en->o.nfollowups || lx == NULL) {
		if (engine_rc(en) != NULL)
			rconn_command(engine_rc(en), NULL, NULL, "ZREM %s %s", en->k_followup, t->phone);
		return TURN_RELEASE;
	}
	xasprintf(&t->turn_key, "%s:followup:%" PRIi64 ":%" PRIi64, t->phone,
	    (int64_t)json_integer_value(json_object_get(t->state, "last_inbound_ms")), (int64_t)sent);
	json_object_set_new(t->state, "followups_sent", json_integer(sent + 1));
	json_object_set_new(t->state, "followup_last_ms", json_integer((json_int_t)now));
	t->schedule_followup = true;
	log_info(
	    "engine: %s: follow-up %d of %u", log_phone(t->phone, ph, sizeof(ph)), (int)sent + 1, en->o.nfollowups);
	if (!outbound_window_open(t->state, now, en->o.window_margin_ms, turn_ctl_ms(t, "window_closed_ms"))) {
		/* Set first: once the template is queued, its callback may already have ended the turn. */
		t->followup_sent = 2;
		if (turn_send_template(t, en->o.followup_content_sid, en->o.followup_variables, "a follow-up is",
		        TURN_COMMIT) == TURN_WAIT) {
			en->st.followups_templates++;
			return TURN_WAIT;
		}
		t->followup_sent = 0;
		t->schedule_followup = false; /* nothing more can go out until the customer writes */
		return TURN_COMMIT;
	}
	if ((text = outbound_followup_text(lx, t->state, (unsigned)sent)) == NULL || s == NULL) {
		free(text);
		return TURN_COMMIT;
	}
	conv_state_add(t->state, "out", text, now, NULL, en->o.history_cap);
	conv_state_count(t->state, "out", 1);
	m.to = t->phone;
	m.text = text;
	m.once = t->turn_key;
	en->refs++;
	sender_send(s, &m, on_followup_queued, t);
	free(text);
	return TURN_WAIT;
}
