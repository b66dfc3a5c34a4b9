/*
 * The turn's reading steps (TURN_MEDIA, TURN_CLASSIFY): the voice notes and images of the burst fetched from
 * Twilio for a model that takes them, then the classifier (the model's advice checked by the rules, or the
 * rules alone), whose analysis decides the rest of the turn: the fields and the stage, a hand-off (the bot
 * pauses), a new lead (links, then the reply), or only the reply.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "conversation/outbound.h"
#include "conversation/state.h"
#include "conversation/turn.h"

static void
on_media(int r, const char *why, const char *mime, const unsigned char *data, size_t len, void *arg)
{
	struct turn *t = arg;
	struct engine *en = t->en;
	char ph[32];

	if (engine_gone(en)) {
		if (++t->media_done == t->media_wanted) {
			turn_free(t);
			engine_settle(en);
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
		turn_run(t, turn_ask_to_write(t, "it could not be fetched"));
		return;
	}
	turn_run(t, TURN_CLASSIFY);
}

/*
 * Voice notes and images of the turn's last message that has some: fetched from Twilio for the model when
 * it takes them, the customer asked to write when it does not and the message is nothing else, or the text
 * classified without them (a caption).
 */
enum turn_step
turn_media(struct turn *t)
{
	struct engine *en = t->en;
	json_t *m = NULL, *e, *media;
	size_t i;
	bool all_ok = true;

	json_array_foreach(t->inbox, i, e) if (json_array_size(json_object_get(e, "media")) > 0) m = e;
	if (m == NULL)
		return TURN_CLASSIFY;
	media = json_object_get(m, "media");
	t->media_only = json_is_true(json_object_get(m, "media_only"));
	t->media_sid = json_string_value(json_object_get(m, "sid"));
	json_array_foreach(media, i, e) all_ok &=
	    classifier_accepts_media(*en->d.classifier, json_string_value(json_object_get(e, "type")));
	if (!all_ok || en->d.media == NULL || en->d.curl == NULL || *en->d.curl == NULL) {
		if (t->media_only)
			return turn_ask_to_write(t, "the classifier has no model that takes this media");
		return TURN_CLASSIFY; /* a caption: the text is read, the media is not */
	}
	t->media_wanted = json_array_size(media);
	t->media_done = 0;
	json_array_foreach(media, i, e)
	{
		en->refs++;
		media_fetch(*en->d.curl, en->d.media, json_string_value(json_object_get(e, "url")),
		    json_string_value(json_object_get(e, "type")), on_media, t);
	}
	return TURN_WAIT;
}

/* What the voice note said (or the image showed) is kept as the message's text; the media is not. */
static void
keep_transcript(struct turn *t, const char *transcript)
{
	json_t *h = json_object_get(t->state, "history"), *e;
	size_t i;

	json_array_foreach(h, i, e) if (strcmp(json_string_value(json_object_get(e, "sid")) ?: "", t->media_sid) == 0)
	{
		char *txt;
		xasprintf(&txt, "[%s] %s",
		    t->nmedia > 0 && strncmp(t->media[0].mime, "image/", 6) == 0 ? "image" : "voice note", transcript);
		json_object_set_new(e, "text", json_string(txt));
		free(txt);
	}
	t->en->st.media_transcribed++;
}

/* A person takes over: the bot says so once, then stays quiet until resumed or the pause ends. */
static void
hand_off(struct turn *t, const struct analysis *a)
{
	struct engine *en = t->en;
	char until[24];

	conv_state_set_stage(t->state, strcmp(a->reason, "human") == 0 ? "human" : "support");
	/* A buyer who asked for a person is a sales lead handed to a salesperson, never a helpdesk ticket nor a
	   support transfer in the figures (it is a hand-off). */
	t->support = a->intent != I_SALES;
	en->st.support += t->support;
	t->human = strcmp(a->reason, "human") == 0;
	snprintf(until, sizeof(until), "%" PRIu64, realtime_usec() / 1000 + en->o.handoff_pause_ms);
	turn_ctl_set(t, "pause_until", until);
	turn_ctl_set(t, "pause_reason", t->human ? "human" : "support");
	turn_ctl_set(t, "pause_by", "bot");
	/* For the time to a person's first answer from the lead's chatter (agent.c). */
	json_object_set_new(t->state, "handoff_ms", json_integer((json_int_t)(realtime_usec() / 1000)));
	t->handoff = true;
	en->st.handoffs++;
	t->lead_after_reply = true; /* a helpdesk ticket, the lead tagged for support, or a buyer's lead */
}

/* The bot's last message in the history, or NULL. */
static const char *
last_out(const json_t *st)
{
	const json_t *h = json_object_get(st, "history");
	size_t i;

	for (i = json_array_size(h); i > 0; i--)
		if (strcmp(json_string_value(json_object_get(json_array_get(h, i - 1), "dir")) ?: "", "out") == 0)
			return json_string_value(json_object_get(json_array_get(h, i - 1), "text"));
	return NULL;
}

/*
 * After the lead the conversation goes on, never with the lead's confirmation again: a question is passed to
 * the advisor (kept in t->question, which the lead job notes on the lead; nothing is answered by guessing), new
 * details are acknowledged as added to the request (the lead is updated after the reply), anything else gets
 * a short answer; not the same words as the bot's last message. A lexicon without these keeps the analysis'.
 */
static void
after_lead_reply(struct turn *t, const struct analysis *a, int changed)
{
	struct lexicon *lx = engine_lexicon(t->en);
	const char *prev = last_out(t->state), *r;
	bool question = false;
	enum qkey k;
	json_t *m;
	size_t i;

	if (a->fact != NULL && a->fact_all) {
		/* The business profile answers every question (hours, delivery, ...): the customer gets the facts. */
		free(t->reply);
		t->reply = xstrdup(a->fact);
		return;
	}
	json_array_foreach(t->inbox, i, m)
	{
		const char *text = json_string_value(json_object_get(m, "text")) ?: "";
		if (strchr(text, '?') != NULL || strstr(text, "\u00bf") != NULL) {
			char *n;
			xasprintf(&n, "%s%s%s", question ? t->question : "", question ? " / " : "", text);
			free(t->question);
			t->question = n;
			question = true;
		}
	}
	k = question ? QK_AFTER_QUESTION : changed > 0 ? QK_AFTER_UPDATE : QK_AFTER_THANKS;
	if (lx == NULL || (r = lexicon_question(lx, a->lang, k, 0)) == NULL)
		return;
	if (prev != NULL && strcmp(r, prev) == 0 && lexicon_question(lx, a->lang, k, 1) != NULL)
		r = lexicon_question(lx, a->lang, k, 1);
	free(t->reply);
	/* Some questions have a fact and some not: the facts, and the rest goes to the advisor (noted). */
	if (a->fact != NULL && question)
		xasprintf(&t->reply, "%s %s", a->fact, r);
	else
		t->reply = xstrdup(r);
}

/* The analysis decides the rest of the turn. */
static enum turn_step
classified(struct turn *t, const struct analysis *a)
{
	const char *last_sid = json_string_value(json_object_get(json_array_get(t->inbox, t->taken - 1), "sid"));
	bool has_lead = json_is_integer(json_object_get(t->state, "lead_id"));
	/* The customer was told the lead is made: what follows is "after the lead", whether Odoo answered yet or not. */
	bool after = has_lead || json_is_true(json_object_get(t->state, "lead_confirmed"));

	analysis_copy(&t->a, a);
	t->classified = true;
	t->classify_usec = now_usec() - t->classify_start;
	if (a->transcript != NULL && t->media_sid != NULL)
		keep_transcript(t, a->transcript);
	else if (t->nmedia > 0 && t->media_only && strcmp(a->source ?: "rules", "rules") == 0)
		/* The model failed and the rules cannot hear a voice note: ask for text instead of guessing. */
		return turn_ask_to_write(t, "the model did not answer");
	int changed = conv_state_merge(t->state, a, last_sid, realtime_usec() / 1000);
	t->reply = a->reply != NULL ? xstrdup(a->reply) : NULL;
	if (after && a->action != A_TRANSFER_TO_SUPPORT)
		after_lead_reply(t, a, changed);
	if (strcmp(conv_state_stage(t->state), "new") == 0 || strcmp(conv_state_stage(t->state), "contacted") == 0)
		conv_state_set_stage(t->state, "gathering_info");
	if (a->lang[0] != '\0')
		json_object_set_new(t->state, "lang", json_string(a->lang));
	/* Quiet and still warm after this reply: follow-ups are scheduled at the commit. */
	t->schedule_followup = a->action != A_CREATE_LEAD && a->action != A_TRANSFER_TO_SUPPORT && !has_lead &&
	    a->quality == Q_WARM && a->reply != NULL;
	if (a->action == A_TRANSFER_TO_SUPPORT) {
		hand_off(t, a);
		return TURN_REPLY;
	}
	/* A lead is written when the policy says so, and kept up to date once it exists (never a second one). */
	if (a->action == A_CREATE_LEAD || after) {
		t->lead_after_reply = true;
		if (after || a->action != A_CREATE_LEAD)
			return TURN_REPLY;
		json_object_set_new(t->state, "lead_confirmed", json_true());
		return TURN_LINKS;
	}
	return TURN_REPLY;
}

static void
on_classified(const struct analysis *a, void *arg)
{
	struct turn *t = arg;

	if (turn_dropped(t))
		return;
	turn_run(t, classified(t, a));
}

/* Runs the classifier on the conversation, with the turn's media when it has some. */
enum turn_step
turn_classify(struct turn *t)
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
	return TURN_WAIT;
}
