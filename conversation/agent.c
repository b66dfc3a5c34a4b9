/*
 * The lead as the sales team's WhatsApp inbox (issue #22), the turn's side (TURN_AGENT, TURN_MIRROR).
 *
 * A salesperson's "Send message" on a lead comes among the phone's arrivals (conversation/inbox.c) with the
 * MessageSid "odoo:<id>" and an "agent" object. The turn that takes it records it in the history as the
 * business's, pauses the bot (handoff.pause) and delivers it (TURN_AGENT): queued once per Odoo message inside
 * the 24-hour window; outside it kept in the state ("held"), the re-opening template sent, and delivered when
 * the customer answers; refused (opted out, blocked, no template) with a note on the lead saying why. A Log note
 * holding the resume command (engine.inbox_resume_command, "/bot") gives the customer back to the bot.
 *
 * The lead job posts the conversation on the lead (TURN_MIRROR): every history entry not yet marked posted ("c"),
 * each with a Message-Id of its own (odoo/chatter.c), so a post redone after a crash or an unanswered
 * call posts only what is missing; the customer's messages notify the salesperson who is talking to them.
 * Notes for the lead are left in P{odoo}:notes after the commit, and posted by the inbox's poll.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "conversation/outbound.h"
#include "conversation/state.h"
#include "conversation/turn.h"
#include "odoo/chatter.h"
#include "twilio/content.h"

/*
 * A note for the lead about Odoo message id (what: which note, so that each is posted once), left for the
 * inbox's poll once the turn is committed.
 */
static void note(struct turn *t, int lead, json_int_t id, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void
note(struct turn *t, int lead, json_int_t id, const char *what, const char *fmt, ...)
{
	va_list ap;
	char *text;

	if (lead <= 0)
		return;
	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		fatalx("vasprintf");
	va_end(ap);
	if (t->notes == NULL)
		t->notes = json_array();
	json_array_append_new(
	    t->notes, json_pack("{s:i, s:I, s:s, s:s}", "lead", lead, "id", id, "what", what, "text", text));
	free(text);
}

/* The customer opted out: said on the lead (the outbox refuses them too). */
static void
note_opted_out(struct turn *t, int lead, json_int_t id)
{
	t->en->st.agent_refused++;
	note(t, lead, id, "optout",
	    "Not sent on WhatsApp: the customer opted out (wrote STOP). They must write START to receive messages "
	    "again.");
}

static void keep(struct turn *t, json_t *m, int lead, json_int_t id);

bool
agent_take(struct turn *t, json_t *m, uint64_t now)
{
	struct engine *en = t->en;
	json_t *ag = json_object_get(m, "agent"), *h, *e;
	const char *by = json_string_value(json_object_get(ag, "by")) ?: "a salesperson";
	const char *text = json_string_value(json_object_get(m, "text")) ?: "";
	json_int_t id = json_integer_value(json_object_get(ag, "id"));
	int lead = (int)json_integer_value(json_object_get(ag, "lead"));
	char v[24];
	long long ms = 0;

	if (!json_is_object(ag))
		return false;
	if (strcmp(json_string_value(json_object_get(ag, "cmd")) ?: "", "resume") == 0) {
		turn_ctl_del(t, "pause_until");
		turn_ctl_del(t, "pause_reason");
		turn_ctl_del(t, "pause_by");
		turn_ctl_del(t, "pause_partner");
		en->st.agent_resumed++;
		note(t, lead, id, "resume", "The WhatsApp bot answers this customer again (asked by %s).", by);
		return true;
	}
	parse_ll(json_string_value(json_object_get(m, "t_ms")) ?: "0", 0, INT64_MAX, &ms);
	if (*text != '\0') {
		/* The business's word in the history, labelled, so the mirror leaves it (it is on the lead already). */
		conv_state_add(t->state, "out", text, (uint64_t)ms, json_string_value(json_object_get(m, "sid")),
		    en->o.history_cap);
		h = json_object_get(t->state, "history");
		e = json_array_get(h, json_array_size(h) - 1);
		json_object_set_new(e, "by", json_string(by));
		json_object_set_new(e, "odoo", json_integer(id));
	}
	conv_state_count(t->state, "agent", 1);
	/* A person is talking: the bot is quiet until the pause runs out or someone hands back. */
	snprintf(v, sizeof(v), "%" PRIu64, now + en->o.handoff_pause_ms);
	turn_ctl_set(t, "pause_until", v);
	turn_ctl_set(t, "pause_reason", "salesperson");
	turn_ctl_set(t, "pause_by", by);
	snprintf(v, sizeof(v), "%d", (int)json_integer_value(json_object_get(ag, "partner")));
	turn_ctl_set(t, "pause_partner", v);
	if (json_object_get(t->state, "handoff_ms") != NULL) {
		/* The first answer from a person since the bot handed over: how long the customer waited. */
		json_int_t h0 = json_integer_value(json_object_get(t->state, "handoff_ms"));
		t->first_human_ms = now > (uint64_t)h0 ? now - (uint64_t)h0 : 1;
		json_object_del(t->state, "handoff_ms");
	}
	if (t->agent == NULL)
		t->agent = json_array();
	json_array_append(t->agent, m);
	return true;
}

enum turn_step
agent_first(struct turn *t, enum turn_step next)
{
	json_t *m, *held = json_object_get(t->state, "held");
	size_t i;

	if (t->opt_word != 0) {
		/*
		 * STOP or START in this burst: nothing of a salesperson's goes before the opt-out is done. STOP: held
		 * messages and this burst's are not sent (a note says so); START: this burst's wait with the held ones
		 * for the customer's next message.
		 */
		json_array_foreach(t->agent, i, m)
		{
			json_t *ag = json_object_get(m, "agent");
			json_int_t id = json_integer_value(json_object_get(ag, "id"));
			int lead = (int)json_integer_value(json_object_get(ag, "lead"));
			if (*(json_string_value(json_object_get(m, "text")) ?: "") == '\0')
				continue;
			if (t->opt_word < 0) {
				keep(t, m, lead, id);
				continue;
			}
			t->en->st.agent_refused++;
			note(t, lead, id, "stop", "Not sent on WhatsApp: the customer wrote STOP (opted out).");
		}
		if (t->opt_word > 0 && json_array_size(held) > 0) {
			note(t, (int)json_integer_value(json_object_get(json_array_get(held, 0), "lead")),
			    json_integer_value(json_object_get(json_array_get(held, 0), "id")), "stopheld",
			    "Not sent on WhatsApp: the customer wrote STOP (opted out) before your held message%s "
			    "could go.",
			    json_array_size(held) == 1 ? "" : "s");
			json_object_del(t->state, "held");
		}
		return next;
	}
	if (json_array_size(t->agent) == 0 &&
	    (t->customer_in == 0 || json_array_size(json_object_get(t->state, "held")) == 0))
		return next;
	t->after_agent = next;
	t->agent_i = 0;
	return TURN_AGENT;
}

static void
on_agent_queued(int parts, void *arg)
{
	struct turn *t = arg;
	struct engine *en = t->en;
	json_t *m = json_array_get(t->agent, t->agent_i);
	json_t *ag = json_object_get(m, "agent");

	if (turn_dropped(t))
		return;
	if (parts == -EPERM) {
		/* Opted out after all (the outbox knows it first). */
		note_opted_out(t, (int)json_integer_value(json_object_get(ag, "lead")),
		    json_integer_value(json_object_get(ag, "id")));
	} else if (parts < 0) {
		turn_run(t, turn_fail(t, "a salesperson's message could not be queued"));
		return;
	} else if (t->agent_template) {
		t->agent_template = false; /* the re-opening template: the message itself is held */
	} else if (json_is_true(json_object_get(m, "held"))) {
		en->st.agent_released++;
	} else {
		en->st.agent_sent++;
		t->agent_sent++;
	}
	t->agent_i++;
	turn_run(t, TURN_AGENT);
}

/* A message kept in the state ("held") until the customer writes. */
static void
keep(struct turn *t, json_t *m, int lead, json_int_t id)
{
	json_t *held = json_object_get(t->state, "held");

	if (!json_is_array(held)) {
		held = json_array();
		json_object_set_new(t->state, "held", held);
	}
	json_array_append_new(held,
	    json_pack("{s:I, s:i, s:s, s:I}", "id", id, "lead", lead, "text",
	        json_string_value(json_object_get(m, "text")) ?: "", "t_ms", (json_int_t)(realtime_usec() / 1000)));
	t->en->st.agent_held++;
	t->agent_held++;
}

/* Outside the window: kept in the state, the re-opening template sent once, and a note saying so. */
static enum turn_step
hold(struct turn *t, json_t *m, int lead, json_int_t id)
{
	struct engine *en = t->en;
	struct sender *s = engine_sender(en);
	json_t *held = json_object_get(t->state, "held");
	char missing[32], once[48], tag[64], *vars, *text;
	struct sender_msg sm = {0};
	bool first = json_array_size(held) == 0;

	if (en->o.window_content_sid == NULL ||
	    (vars = outbound_template_vars(t->state, NULL, en->o.window_variables, missing)) == NULL) {
		en->st.agent_refused++;
		note(t, lead, id, "window",
		    "Not sent on WhatsApp: the customer's last message is more than 24 hours old, when WhatsApp allows "
		    "only approved templates, and crmbridge has no re-opening template to send (window.content_sid in "
		    "crmbridge.conf%s). Call or e-mail the customer instead.",
		    en->o.window_content_sid != NULL ? ": its variables are not known for this customer" : "");
		return TURN_AGENT;
	}
	keep(t, m, lead, id);
	note(t, lead, id, "window",
	    "Not sent yet: the customer's last WhatsApp message is more than 24 hours old, and WhatsApp then allows "
	    "only approved templates. %s Your message goes out as soon as the customer answers.",
	    first ? "crmbridge sent the re-opening template." : "The re-opening template was sent already.");
	if (!first || s == NULL) {
		free(vars);
		return TURN_AGENT;
	}
	text = outbound_template_text(
	    en->d.content != NULL ? content_render(*en->d.content, en->o.window_content_sid, vars) : NULL,
	    en->o.window_content_sid, vars);
	conv_state_add(t->state, "out", text, realtime_usec() / 1000, NULL, en->o.history_cap);
	free(text);
	snprintf(once, sizeof(once), "reopen:odoo:%" JSON_INTEGER_FORMAT, id);
	snprintf(tag, sizeof(tag), "odoo:%d:%" JSON_INTEGER_FORMAT ":reopen", lead, id);
	sm.to = t->phone;
	sm.content_sid = en->o.window_content_sid;
	sm.content_vars = vars;
	sm.once = once;
	sm.tag = tag; /* refused: the lead says that the text waits for the customer (engine_agent_result) */
	t->agent_template = true;
	en->refs++;
	sender_send(s, &sm, on_agent_queued, t);
	free(vars);
	return TURN_WAIT;
}

/* Queues one message (a salesperson's, or one held until the customer wrote) once per Odoo message. */
static enum turn_step
deliver(struct turn *t, json_t *m, const char *text, json_int_t id)
{
	struct engine *en = t->en;
	struct sender *s = engine_sender(en);
	struct sender_msg sm = {0};
	char once[40], tag[48];

	if (s == NULL) {
		en->st.agent_sent++;
		t->agent_sent++;
		t->agent_i++;
		return TURN_AGENT;
	}
	snprintf(once, sizeof(once), "odoo:%" JSON_INTEGER_FORMAT, id);
	snprintf(tag, sizeof(tag), "odoo:%d:%" JSON_INTEGER_FORMAT,
	    (int)json_integer_value(json_object_get(json_object_get(m, "agent"), "lead")), id);
	sm.to = t->phone;
	sm.text = text;
	sm.once = once;
	sm.tag = tag; /* a failure is said on the lead (engine_agent_result) */
	en->refs++;
	sender_send(s, &sm, on_agent_queued, t);
	return TURN_WAIT;
}

/* The customer wrote: what was held for the window goes now, in the order it was written. */
static void
release_held(struct turn *t)
{
	json_t *held = json_object_get(t->state, "held"), *h;
	size_t i;
	int lead = 0;

	if (t->customer_in == 0 || json_array_size(held) == 0)
		return;
	if (t->agent == NULL)
		t->agent = json_array();
	json_array_foreach(held, i, h)
	{
		json_t *m = json_pack("{s:O, s:b, s:{s:O, s:O}}", "text", json_object_get(h, "text"), "held", 1,
		    "agent", "id", json_object_get(h, "id"), "lead", json_object_get(h, "lead"));
		json_array_insert_new(t->agent, i, m);
		lead = (int)json_integer_value(json_object_get(h, "lead"));
	}
	note(t, lead, json_integer_value(json_object_get(json_array_get(held, 0), "id")), "released",
	    "The customer answered: %zu held message%s sent on WhatsApp now.", json_array_size(held),
	    json_array_size(held) == 1 ? "" : "s");
	json_object_del(t->state, "held");
}

enum turn_step
turn_agent(struct turn *t)
{
	struct engine *en = t->en;
	json_t *m, *ag;
	const char *text, *files;
	json_int_t id;
	int lead;
	char ph[32];

	if (t->agent_i == 0 && !t->agent_held_done) {
		t->agent_held_done = true;
		release_held(t);
	}
	if ((m = json_array_get(t->agent, t->agent_i)) == NULL)
		return t->after_agent;
	ag = json_object_get(m, "agent");
	id = json_integer_value(json_object_get(ag, "id"));
	lead = (int)json_integer_value(json_object_get(ag, "lead"));
	text = json_string_value(json_object_get(m, "text")) ?: "";
	if (json_is_true(json_object_get(m, "held")))
		return deliver(t, m, text, id);
	files = json_string_value(json_object_get(ag, "files"));
	if (files != NULL) {
		en->st.agent_files++;
		note(t, lead, id, "files",
		    "Not sent on WhatsApp: %s. crmbridge sends text only (Twilio takes a file only from a public web "
		    "address); put a link to the file in your message instead.",
		    files);
	}
	log_info("engine: %s: a message from %s (Odoo message %" JSON_INTEGER_FORMAT ", lead %d)",
	    log_phone(t->phone, ph, sizeof(ph)), json_string_value(json_object_get(ag, "by")) ?: "?", id, lead);
	if (*text == '\0') {
		t->agent_i++;
		return TURN_AGENT;
	}
	if (json_is_true(json_object_get(t->state, "opted_out"))) {
		note_opted_out(t, lead, id);
		t->agent_i++;
		return TURN_AGENT;
	}
	if (json_object_get(t->ctl, "blocked_ms") != NULL) {
		/* Kept like a message outside the window (no template: it would be refused too), sent if they write. */
		keep(t, m, lead, id);
		note(t, lead, id, "blocked",
		    "Not sent yet: WhatsApp reported that the customer blocked the business number (Twilio error "
		    "63014). "
		    "Your message goes out if the customer writes again.");
		t->agent_i++;
		return TURN_AGENT;
	}
	if (!outbound_window_open(
	        t->state, realtime_usec() / 1000, en->o.window_margin_ms, turn_ctl_ms(t, "window_closed_ms"))) {
		enum turn_step next = hold(t, m, lead, id);
		if (next != TURN_WAIT)
			t->agent_i++;
		return next;
	}
	return deliver(t, m, text, id);
}

/* ---- the conversation on the lead (in the lead job) ---- */

/* An entry of the history the lead's chatter has not: not marked "c" (posted) and not a salesperson's own. */
static bool
unposted(json_t *e)
{
	return !json_is_true(json_object_get(e, "c")) && json_object_get(e, "odoo") == NULL;
}

static void
entry_key(const struct turn *t, json_t *e, char key[64])
{
	chatter_key(t->phone, json_string_value(json_object_get(e, "dir")) ?: "in",
	    (uint64_t)json_integer_value(json_object_get(e, "t_ms")), json_string_value(json_object_get(e, "text")),
	    key);
}

/* Whether the history has entries the lead's chatter has not (the job posts them). */
bool
agent_mirror_due(const struct turn *t)
{
	json_t *h = json_object_get(t->state, "history"), *e;
	size_t i;

	if (engine_leads(t->en) == NULL || json_integer_value(json_object_get(t->state, "lead_id")) <= 0)
		return false;
	json_array_foreach(h, i, e)
	{
		if (unposted(e))
			return true;
	}
	return false;
}

void
agent_mirror_apply(const struct turn *t, json_t *cur)
{
	json_t *e;
	size_t i;
	char key[64];

	/*
	 * Marked by what they say, not by their place or time: a later turn may have added entries meanwhile, and a
	 * message that came while the previous turn ran is older than that turn's reply.
	 */
	if (json_object_size(t->mirror_keys) == 0)
		return;
	json_array_foreach(json_object_get(cur, "history"), i, e)
	{
		if (!unposted(e))
			continue;
		entry_key(t, e, key);
		if (json_object_get(t->mirror_keys, key) != NULL)
			json_object_set_new(e, "c", json_true());
	}
}

static void
on_mirrored(const struct odoo_error *e, unsigned posted, void *arg)
{
	struct turn *t = arg;
	struct engine *en = t->en;
	char ph[32];

	if (turn_dropped(t))
		return;
	en->st.chatter_posted += posted;
	if (e->kind != ODOO_OK) {
		/* Posted again later; what went in now is found by its Message-Id and not posted twice. */
		json_object_clear(t->mirror_keys);
		en->st.chatter_failed++;
		log_warnx("engine: %s: the conversation could not be posted on lead %d (%s error: %s); %s",
		    log_phone(t->phone, ph, sizeof(ph)), (int)json_integer_value(json_object_get(t->state, "lead_id")),
		    odoo_kind_name(e->kind), e->message,
		    e->kind == ODOO_TRANSIENT ? "trying again in 30 s"
		                              : "trying again after the customer's next message");
		if (e->kind == ODOO_TRANSIENT) {
			/* Odoo away: again soon. Refused (the lead deleted, out of reach): with the next turn, not in a loop. */
			t->mirror_retry = true;
			engine_retry_lead_in(en, t->phone, 30000);
		}
	}
	turn_run(t, TURN_MERGE);
}

enum turn_step
turn_mirror(struct turn *t)
{
	struct engine *en = t->en;
	json_t *h = json_object_get(t->state, "history"), *e;
	int lead = (int)json_integer_value(json_object_get(t->state, "lead_id"));
	int partner = 0;
	struct chatter_entry *ce;
	char(*keys)[64], *author;
	const char *name = conv_state_field(t->state, F_NAME);
	size_t i, n = 0;
	uint64_t now = realtime_usec() / 1000;

	t->mirrored = true;
	if (t->lead < 0 || lead <= 0 || engine_leads(en) == NULL || !agent_mirror_due(t))
		return TURN_MERGE;
	/* The customer's word reaches the salesperson who talks to them, as she chose in Odoo (inbox or e-mail). */
	if (strcmp(json_string_value(json_object_get(t->ctl, "pause_reason")) ?: "", "salesperson") == 0 &&
	    turn_ctl_ms(t, "pause_until") > now) {
		long long p = 0;
		parse_ll(json_string_value(json_object_get(t->ctl, "pause_partner")) ?: "0", 0, INT32_MAX, &p);
		partner = (int)p;
	}
	if (name == NULL)
		name = json_string_value(json_object_get(t->state, "profile"));
	xasprintf(&author, "%s (WhatsApp)", name != NULL && *name != '\0' ? name : "Customer");
	ce = xcalloc(json_array_size(h) + 1, sizeof(*ce));
	keys = xcalloc(json_array_size(h) + 1, sizeof(*keys));
	if (t->mirror_keys == NULL)
		t->mirror_keys = json_object();
	json_array_foreach(h, i, e)
	{
		const char *dir = json_string_value(json_object_get(e, "dir")) ?: "in";
		if (!unposted(e))
			continue;
		entry_key(t, e, keys[n]);
		json_object_set_new(t->mirror_keys, keys[n], json_true());
		ce[n].key = keys[n];
		ce[n].text = json_string_value(json_object_get(e, "text"));
		ce[n].author = strcmp(dir, "in") == 0 ? author : NULL;
		ce[n].notify = strcmp(dir, "in") == 0 && partner > 0;
		ce[n].t_ms = (uint64_t)json_integer_value(json_object_get(e, "t_ms"));
		n++;
	}
	en->refs++;
	chatter_post(engine_leads(en), lead, ce, n, partner, on_mirrored, t);
	free(ce);
	free(keys);
	free(author);
	return TURN_WAIT;
}

/* After the commit: the notes for the leads, for the inbox's poll to post. */
void
agent_notes_push(struct turn *t)
{
	struct engine *en = t->en;
	json_t *n;
	size_t i;

	json_array_foreach(t->notes, i, n) inbox_note(en->inbox, (int)json_integer_value(json_object_get(n, "lead")),
	    json_integer_value(json_object_get(n, "id")), json_string_value(json_object_get(n, "what")),
	    json_string_value(json_object_get(n, "text")));
	json_decref(t->notes);
	t->notes = NULL;
}

void
engine_agent_result(struct engine *en, const char *tag, json_t *res)
{
	long long lead = 0, id = 0;
	const char *p = tag != NULL && strncmp(tag, "odoo:", 5) == 0 ? tag + 5 : NULL, *colon;
	char *s, *text;
	const char *error;
	bool reopen;
	int code;

	if (p == NULL || strcmp(json_string_value(json_object_get(res, "status")) ?: "", "failed") != 0 ||
	    (colon = strchr(p, ':')) == NULL)
		return;
	reopen = strstr(colon + 1, ":reopen") != NULL; /* the re-opening template of a held message */
	s = xstrndup(p, (size_t)(colon - p));
	if (parse_ll(s, 1, INT32_MAX, &lead) < 0) {
		free(s);
		return;
	}
	free(s);
	s = xstrndup(colon + 1, strcspn(colon + 1, ":"));
	if (parse_ll(s, 1, INT64_MAX, &id) < 0) {
		free(s);
		return;
	}
	free(s);
	en->st.agent_failed++;
	code = (int)json_integer_value(json_object_get(res, "code"));
	error = json_string_value(json_object_get(res, "error")) ?: "an error";
	if (reopen)
		xasprintf(&text,
		    "Gave up re-opening the conversation: the re-opening template was not delivered (%s; Twilio error "
		    "%d). Your message waits in crmbridge and goes only if the customer writes; call or e-mail them "
		    "instead.",
		    error, code);
	else if (code == 63016)
		xasprintf(&text,
		    "Not delivered on WhatsApp (%s; Twilio error 63016): the 24-hour window closed. Write again after "
		    "the customer answers.",
		    error);
	else
		xasprintf(&text,
		    "Not delivered on WhatsApp (%s; Twilio error %d). What the code means: "
		    "https://www.twilio.com/docs/api/errors/%d",
		    error, code, code);
	inbox_note(en->inbox, (int)lead, id, reopen ? "reopenfailed" : "failed", text);
	free(text);
}
