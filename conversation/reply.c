/*
 * The turn's answering steps (TURN_LINKS, TURN_REPLY): a new lead's confirmation gets the booking link and a
 * Stripe Checkout link; the reply is recorded in the history and queued once per turn key, or, outside
 * WhatsApp's 24-hour window, the configured template goes instead (or nothing).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifier/lexicon.h"
#include "common/log.h"
#include "common/template.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "conversation/outbound.h"
#include "conversation/state.h"
#include "conversation/turn.h"
#include "stripe/stripe.h"
#include "twilio/content.h"

static void
append_link(struct turn *t, enum qkey key, const char *url)
{
	struct lexicon *lx = engine_lexicon(t->en);
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
	turn_run(t, TURN_REPLY);
}

/*
 * The confirmation of a new lead carries the booking link and a Stripe Checkout link when configured. It
 * goes before the lead is written, so the Checkout session is named after the conversation (phone and
 * start), not after the Odoo lead.
 */
enum turn_step
turn_links(struct turn *t)
{
	struct engine *en = t->en;
	struct stripe *st = engine_stripe(en);
	char ref[32], idem[64];

	if (json_object_get(t->state, "links") != NULL || t->reply == NULL)
		return TURN_REPLY;
	json_object_set_new(t->state, "links", json_object());
	if (en->o.booking_url != NULL) {
		append_link(t, QK_BOOKING, en->o.booking_url);
		json_object_set_new(json_object_get(t->state, "links"), "booking", json_string(en->o.booking_url));
		en->st.links_booking++;
	}
	if (st == NULL)
		return TURN_REPLY;
	/* The same key for a turn redone after a crash: Stripe answers with the same session. */
	snprintf(ref, sizeof(ref), "wa-%s", t->phone + 1);
	snprintf(idem, sizeof(idem), "crmbridge-%s-%lld", t->phone + 1,
	    (long long)json_integer_value(json_object_get(t->state, "created_ms")));
	en->refs++;
	stripe_checkout(st, ref, idem, on_checkout, t);
	return TURN_WAIT;
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
		turn_run(t, turn_fail(t, "the reply could not be queued"));
		return;
	}
	if (parts > 0) {
		t->en->st.replies++;
		t->replied = true;
	}
	/* The suite's crash between the reply's queuing and the turn's commit: the redone turn must not send again. */
	crash_point("reply-queued");
	turn_run(t, TURN_LEAD);
}

enum turn_step
turn_send_template(
    struct turn *t, const char *content_sid, const char *mapping, const char *why, enum turn_step otherwise)
{
	struct engine *en = t->en;
	struct sender *s = engine_sender(en);
	char missing[32], ph[32], *vars, *text;
	struct sender_msg m = {0};

	if (content_sid == NULL) {
		en->st.window_skipped++;
		log_notice("engine: %s: %s outside the 24-hour window and no template is configured: not sent",
		    log_phone(t->phone, ph, sizeof(ph)), why);
		return otherwise;
	}
	if ((vars = outbound_template_vars(t->state, NULL, mapping, missing)) == NULL) {
		en->st.window_skipped++;
		log_warnx("engine: %s: %s outside the 24-hour window: template variable %s unknown; not sent",
		    log_phone(t->phone, ph, sizeof(ph)), why, missing);
		return otherwise;
	}
	text = outbound_template_text(
	    en->d.content != NULL ? content_render(*en->d.content, content_sid, vars) : NULL, content_sid, vars);
	conv_state_add(t->state, "out", text, realtime_usec() / 1000, NULL, en->o.history_cap);
	conv_state_count(t->state, "out", 1);
	free(text);
	if (s == NULL) {
		free(vars);
		return otherwise;
	}
	m.to = t->phone;
	m.content_sid = content_sid;
	m.content_vars = vars;
	m.once = t->turn_key;
	en->refs++;
	sender_send(s, &m, on_queued_reply, t); /* then TURN_LEAD */
	free(vars);
	return TURN_WAIT;
}

/* Records the reply in the history and queues it (once per turn, whatever happens next). */
enum turn_step
turn_reply(struct turn *t)
{
	struct engine *en = t->en;
	struct sender *s = engine_sender(en);
	char ph[32];
	uint64_t now = realtime_usec() / 1000;
	enum turn_step next;

	if (t->reply == NULL || *t->reply == '\0' || strcmp(conv_state_stage(t->state), "opted_out") == 0)
		return TURN_LEAD;
	if (!outbound_window_open(t->state, now, en->o.window_margin_ms, turn_ctl_ms(t, "window_closed_ms"))) {
		/* A turn done late (a dead letter retried the next day): the window may have closed meanwhile. */
		next =
		    turn_send_template(t, en->o.window_content_sid, en->o.window_variables, "the reply is", TURN_LEAD);
		if (next == TURN_WAIT)
			en->st.window_templates++;
		return next;
	}
	json_object_set_new(t->state, "last_question", json_string(t->reply));
	conv_state_add(t->state, "out", t->reply, realtime_usec() / 1000, NULL, en->o.history_cap);
	conv_state_count(t->state, "out", 1);
	if (s == NULL) {
		log_info("engine: reply to %s (no Twilio sender configured): %zu characters",
		    log_phone(t->phone, ph, sizeof(ph)), strlen(t->reply));
		en->st.replies++;
		t->replied = true;
		return TURN_LEAD;
	}
	en->refs++;
	sender_enqueue_once(s, t->phone, t->reply, t->turn_key, on_queued_reply, t);
	return TURN_WAIT;
}

/* The customer sent only a voice note or image that cannot be read: the bot asks them to write. */
enum turn_step
turn_ask_to_write(struct turn *t, const char *why)
{
	struct engine *en = t->en;
	struct lexicon *lx = engine_lexicon(en);
	const char *q = lx != NULL ? lexicon_question(lx, outbound_lang(lx, t->state), QK_MEDIA, 0) : NULL;
	char ph[32];

	en->st.media_unread++;
	log_info(
	    "engine: %s: media not read (%s): asking the customer to write", log_phone(t->phone, ph, sizeof(ph)), why);
	t->reply = xstrdup(q != NULL ? q : "Please write your message as text.");
	return TURN_REPLY;
}
