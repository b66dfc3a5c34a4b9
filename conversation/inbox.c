/*
 * The lead as the sales team's WhatsApp inbox (issue #22), the part that watches Odoo: every
 * engine.inbox_interval, one instance (P{odoo}:inbox:lock) asks Odoo for the chatter messages people posted on
 * leads since the watermark (one query whatever the number of leads: odoo/chatter.c), and puts each among the
 * phone's arrivals, like a webhook's message, with the MessageSid "odoo:<id>": the phone's next turn delivers
 * it under the phone's lease (conversation/agent.c), in order with the customer's messages, once (the arrival
 * is claimed once per id, the reply queued once per id). The watermark moves only after the message is
 * stored, and only forward (redis/inbox-mark.lua): a crash in between stores it again, which its claim makes
 * a no-op. The notes the turns leave for the lead ({odoo}:notes: why a message was not sent) are posted here
 * too, each once (a Message-Id of their own).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "conversation/state.h"
#include "conversation/turn.h"
#include "odoo/chatter.h"
#include "redis/scripts.h"
#include "twilio/intake.h"

/* How many messages a poll takes at most (a full page polls again at once), and notes posted per poll. */
#define INBOX_PAGE 50
#define INBOX_NOTES_S "9" /* LRANGE's last index: ten */
/* How long an arrival's claim keeps a message from being stored twice (s). */
#define INBOX_CLAIM_TTL (7 * 86400)

struct inbox {
	struct engine *en;
	struct rscript claim, mark;
	char *k_lock, *k_mark, *k_notes;
	bool busy;
	uint64_t next; /* monotonic usec */
	json_t *batch; /* the messages of this poll */
	size_t i;
	json_t *notes; /* the notes of this poll */
	size_t ni;
	int note_lead;
	bool skipped; /* Log notes passed over since the last message dealt with */
	bool via_map, from_whatsapp; /* the phone came from P{odoo}:leads; the lead came from WhatsApp */
	long long mark0; /* the watermark when this poll began */
	json_int_t seen[256]; /* messages dealt with lately: the look back reads them again */
	unsigned nseen;
	char phone[17];
};

static void inbox_next(struct inbox *ib);
static void notes_start(struct inbox *ib);
static void on_lead_phone(const struct odoo_error *e, const char *e164, bool whatsapp, void *arg);

struct inbox *
inbox_new(struct engine *en)
{
	struct inbox *ib = xcalloc(1, sizeof(*ib));

	ib->en = en;
	rscript_init(&ib->claim, redis_script_inbox_claim);
	rscript_init(&ib->mark, redis_script_inbox_mark);
	xasprintf(&ib->k_lock, "%s{odoo}:inbox:lock", en->o.key_prefix);
	xasprintf(&ib->k_mark, "%s{odoo}:inbox:mark", en->o.key_prefix);
	xasprintf(&ib->k_notes, "%s{odoo}:notes", en->o.key_prefix);
	return ib;
}

void
inbox_free(struct inbox *ib)
{
	if (ib == NULL)
		return;
	free(ib->k_lock);
	free(ib->k_mark);
	free(ib->k_notes);
	json_decref(ib->batch);
	json_decref(ib->notes);
	free(ib);
}

void
inbox_note(struct inbox *ib, int lead, json_int_t id, const char *what, const char *text)
{
	struct engine *en = ib->en;
	char key[96], *s;
	json_t *n;

	if (lead <= 0 || engine_rc(en) == NULL)
		return;
	/* Its own Message-Id: looked for before it is posted, so it is posted once. */
	snprintf(key, sizeof(key), "<wa.odoo-%" JSON_INTEGER_FORMAT ".%s@crmbridge>", id, what);
	n = json_pack("{s:i, s:s, s:s}", "lead", lead, "key", key, "text", text);
	s = json_dumps(n, JSON_COMPACT);
	if (s != NULL)
		rconn_command(engine_rc(en), NULL, NULL, "RPUSH %s %s", ib->k_notes, s);
	free(s);
	json_decref(n);
}

/*
 * How long the right to poll lasts, renewed by each poll and each message: another instance (or this one
 * restarted) takes over two intervals and a second after this one stops. A poll that outlives it (a slow Odoo)
 * is harmless: the arrivals' claims and the mark, which only goes forward, keep a message from being stored
 * twice, and a note is looked for by its Message-Id before it is posted.
 */
static uint64_t
inbox_ttl(const struct engine *en)
{
	return 2 * en->o.inbox_interval_ms + 1000;
}

/* The poll is over (done or stopped by an error): the next one after the interval, or at once after a full page. */
static void
inbox_end(struct inbox *ib, bool again)
{
	struct engine *en = ib->en;

	json_decref(ib->batch);
	ib->batch = NULL;
	json_decref(ib->notes);
	ib->notes = NULL;
	ib->busy = false;
	ib->next = now_usec() + (again ? 0 : en->o.inbox_interval_ms * 1000);
}

/* Every pending callback holds the engine: drops it; true when the engine is going (nothing more to do). */
static bool
inbox_gone(struct inbox *ib)
{
	struct engine *en = ib->en;

	if (!engine_gone(en))
		return false;
	engine_settle(en);
	return true;
}

static int
inbox_redis(struct inbox *ib, redisCallbackFn *fn, const char *fmt, const char *a, const char *b)
{
	struct engine *en = ib->en;
	int r;

	en->refs++;
	r = engine_rc(en) != NULL ? rconn_command(engine_rc(en), fn, ib, fmt, a, b) : -1;
	if (r < 0)
		en->refs--;
	return r;
}

/* ---- one message ---- */

static void
on_marked(redisAsyncContext *ac, void *r, void *pd)
{
	struct inbox *ib = pd;

	if (inbox_gone(ib))
		return;
	ib->seen[ib->nseen++ % 256] = json_integer_value(json_object_get(json_array_get(ib->batch, ib->i), "id"));
	ib->i++;
	inbox_next(ib);
}

/* The message is dealt with: the watermark goes past it. */
static void
message_done(struct inbox *ib)
{
	struct engine *en = ib->en;
	json_t *m = json_array_get(ib->batch, ib->i);
	char id[24];
	char ttl[24];
	const char *a[5] = {ib->k_lock, ib->k_mark, en->o.consumer ? en->o.consumer : "crmbridged", id, ttl};

	snprintf(id, sizeof(id), "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(m, "id")));
	snprintf(ttl, sizeof(ttl), "%" PRIu64, inbox_ttl(en));
	en->refs++;
	if (engine_eval(en, &ib->mark, on_marked, ib, 2, a, 5) < 0) {
		en->refs--;
		inbox_end(ib, false);
	}
}

static void
on_stored(redisAsyncContext *ac, void *r, void *pd)
{
	struct inbox *ib = pd;
	struct engine *en = ib->en;
	redisReply *reply = r;

	if (inbox_gone(ib))
		return;
	if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
		inbox_end(ib, false); /* Redis away: the same message next time */
		return;
	}
	if (reply->integer > 0) {
		en->st.agent_stored++;
		engine_due(en, (uint64_t)reply->integer);
	}
	message_done(ib);
}

/* Stores the message among the phone's arrivals (files: the names of its attachments, or NULL). */
static void
store(struct inbox *ib, const char *files)
{
	struct engine *en = ib->en;
	json_t *m = json_array_get(ib->batch, ib->i);
	bool note = strcmp(json_string_value(json_object_get(m, "subtype")) ?: "", "note") == 0;
	char sid[40], *entry, *member, *text = chatter_html_text(json_string_value(json_object_get(m, "body")));
	uint64_t now = realtime_usec() / 1000;
	char now_s[24];
	json_t *e;
	struct intake_store_args a = {.prefix = en->o.key_prefix, .phone = ib->phone, .claim_ttl_s = INBOX_CLAIM_TTL};
	int r;

	snprintf(sid, sizeof(sid), "odoo:%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(m, "id")));
	snprintf(now_s, sizeof(now_s), "%" PRIu64, now);
	e = json_pack("{s:s, s:s, s:s, s:{s:O, s:O, s:s, s:i}}", "sid", sid, "text", note ? "" : text, "t_ms", now_s,
	    "agent", "id", json_object_get(m, "id"), "lead", json_object_get(m, "res_id"), "by",
	    json_string_value(json_object_get(m, "author")) ?: "", "partner",
	    (int)json_integer_value(json_object_get(m, "author_id")));
	free(text);
	if (note)
		json_object_set_new(json_object_get(e, "agent"), "cmd", json_string("resume"));
	if (files != NULL && *files != '\0')
		json_object_set_new(json_object_get(e, "agent"), "files", json_string(files));
	entry = json_dumps(e, JSON_COMPACT);
	json_decref(e);
	member = intake_member(ib->phone, now, (unsigned)(ib->i % 1000000), entry);
	a.sid = sid;
	a.member = member;
	en->refs++;
	r = engine_rc(en) != NULL ? intake_store(engine_rc(en), &en->store, &a, on_stored, ib) : -1;
	free(member);
	free(entry);
	if (r < 0) {
		en->refs--;
		inbox_end(ib, false);
	}
}

static void
on_files(const struct odoo_error *e, char *names, void *arg)
{
	struct inbox *ib = arg;

	if (inbox_gone(ib))
		return;
	/* Unreadable attachments are still reported, without their names. */
	store(ib, e->kind == ODOO_OK ? names : "(attachments)");
}

/* The lead's phone is known: a note asking for the bot back, or a message for the customer. */
static void
phone_known(struct inbox *ib)
{
	struct engine *en = ib->en;
	json_t *m = json_array_get(ib->batch, ib->i), *files = json_object_get(m, "attachment_ids");

	if (json_array_size(files) > 0 && engine_leads(en) != NULL &&
	    strcmp(json_string_value(json_object_get(m, "subtype")), "comment") == 0) {
		en->refs++;
		chatter_attachment_names(engine_leads(en), files, on_files, ib);
		return;
	}
	store(ib, NULL);
}

/* A message on a lead that has no WhatsApp conversation: said on the lead (a Log note is only skipped). */
static void
no_phone(struct inbox *ib)
{
	json_t *m = json_array_get(ib->batch, ib->i);

	/* A lead that did not come from WhatsApp: "Send message" is e-mail there, as ever; nothing to say. */
	if (ib->from_whatsapp && strcmp(json_string_value(json_object_get(m, "subtype")), "comment") == 0) {
		ib->en->st.agent_refused++;
		inbox_note(ib, (int)json_integer_value(json_object_get(m, "res_id")),
		    json_integer_value(json_object_get(m, "id")), "nophone",
		    "Not sent on WhatsApp: this lead has no WhatsApp conversation with crmbridge (none of its numbers "
		    "wrote to the business number), so there is no one to send it to.");
	}
	message_done(ib);
}

static void
on_conv(redisAsyncContext *ac, void *r, void *pd)
{
	struct inbox *ib = pd;
	struct engine *en = ib->en;
	redisReply *reply = r;
	json_t *m = json_array_get(ib->batch, ib->i), *st;
	const char *why;
	int lead = (int)json_integer_value(json_object_get(m, "res_id"));

	if (inbox_gone(ib))
		return;
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		inbox_end(ib, false);
		return;
	}
	st = reply->type == REDIS_REPLY_STRING ? conv_state_parse(reply->str, reply->len, &why) : NULL;
	if (st == NULL || json_integer_value(json_object_get(st, "lead_id")) != lead) {
		json_decref(st);
		if (ib->via_map && engine_rc(en) != NULL) {
			/* The map is stale (erased, expired, another lead since): forgotten, and Odoo asked. */
			rconn_command(engine_rc(en), NULL, NULL, "HDEL %s %d", en->k_leads, lead);
			ib->via_map = false;
			en->refs++;
			chatter_lead_phone(engine_leads(en), lead, on_lead_phone, ib);
			return;
		}
		no_phone(ib);
		return;
	}
	json_decref(st);
	/* Found through Odoo: remembered, so the next message on this lead needs no question to Odoo. */
	if (!ib->via_map && engine_rc(en) != NULL)
		rconn_command(engine_rc(en), NULL, NULL, "HSET %s %d %s", en->k_leads, lead, ib->phone);
	phone_known(ib);
}

static void
on_lead_phone(const struct odoo_error *e, const char *e164, bool whatsapp, void *arg)
{
	struct inbox *ib = arg;
	struct engine *en = ib->en;
	char *k;

	if (inbox_gone(ib))
		return;
	ib->from_whatsapp = whatsapp;
	if (e->kind != ODOO_OK && e->kind != ODOO_DATA) {
		log_warnx("inbox: the lead's phone could not be read (%s error: %s); trying again",
		    odoo_kind_name(e->kind), e->message);
		inbox_end(ib, false);
		return;
	}
	if (e->kind != ODOO_OK || *e164 == '\0') {
		no_phone(ib);
		return;
	}
	/* The conversation of that number is this lead's only if it says so (a lead crmbridge wrote or found). */
	snprintf(ib->phone, sizeof(ib->phone), "%s", e164);
	k = engine_pkey(en, e164, "conv");
	if (inbox_redis(ib, on_conv, "GET %s", k, NULL) < 0)
		inbox_end(ib, false);
	free(k);
}

static void
on_mapped(redisAsyncContext *ac, void *r, void *pd)
{
	struct inbox *ib = pd;
	struct engine *en = ib->en;
	redisReply *reply = r;
	json_t *m = json_array_get(ib->batch, ib->i);

	if (inbox_gone(ib))
		return;
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		inbox_end(ib, false);
		return;
	}
	if (reply->type == REDIS_REPLY_STRING && reply->len < sizeof(ib->phone) && engine_leads(en) != NULL) {
		/* The conversation of that phone must still have this lead (erased or moved on: the map is stale). */
		char *k;
		memcpy(ib->phone, reply->str, reply->len);
		ib->phone[reply->len] = '\0';
		ib->via_map = ib->from_whatsapp = true;
		k = engine_pkey(en, ib->phone, "conv");
		if (inbox_redis(ib, on_conv, "GET %s", k, NULL) < 0)
			inbox_end(ib, false);
		free(k);
		return;
	}
	ib->via_map = false;
	if (engine_leads(en) == NULL) {
		inbox_end(ib, false);
		return;
	}
	/* A lead of a release before the inbox, or a conversation the map lost: its number, from Odoo. */
	en->refs++;
	chatter_lead_phone(engine_leads(en), (int)json_integer_value(json_object_get(m, "res_id")), on_lead_phone, ib);
}

/* Whether the look back read a message this process dealt with already (at or below the poll's mark). */
static bool
seen(const struct inbox *ib, json_int_t id)
{
	if (id > ib->mark0)
		return false;
	for (unsigned i = 0; i < 256 && i < ib->nseen; i++)
		if (ib->seen[i] == id)
			return true;
	return false;
}

/* A Log note matters only as the command that gives the customer back to the bot. */
static bool
is_command(const struct engine *en, json_t *m)
{
	char *t = chatter_html_text(json_string_value(json_object_get(m, "body")));
	bool yes = strcasecmp(t, en->o.inbox_resume_command != NULL ? en->o.inbox_resume_command : "/bot") == 0;

	free(t);
	return yes;
}

static void
inbox_next(struct inbox *ib)
{
	struct engine *en = ib->en;
	json_t *m;
	char lead[16];

	for (; (m = json_array_get(ib->batch, ib->i)) != NULL; ib->i++) {
		if (seen(ib, json_integer_value(json_object_get(m, "id"))))
			continue; /* read again by the look back, dealt with already */
		if (strcmp(json_string_value(json_object_get(m, "subtype")), "comment") == 0 || is_command(en, m))
			break;
		ib->skipped = true;
	}
	if (m == NULL) {
		if (ib->skipped) {
			/* The last ones were Log notes: the mark goes past them too. */
			ib->skipped = false;
			ib->i = json_array_size(ib->batch) - 1;
			message_done(ib);
			return;
		}
		notes_start(ib);
		return;
	}
	ib->skipped = false;
	en->st.agent_seen++;
	snprintf(lead, sizeof(lead), "%d", (int)json_integer_value(json_object_get(m, "res_id")));
	if (inbox_redis(ib, on_mapped, "HGET %s %s", en->k_leads, lead) < 0)
		inbox_end(ib, false);
}

/* ---- the poll ---- */

static void
on_since(const struct odoo_error *e, json_t *messages, void *arg)
{
	struct inbox *ib = arg;

	if (inbox_gone(ib))
		return;
	if (e->kind != ODOO_OK) {
		ib->en->st.agent_poll_failed++;
		log_warnx("inbox: the salespeople's messages could not be read (%s error: %s); trying again in %" PRIu64
		          " s",
		    odoo_kind_name(e->kind), e->message, ib->en->o.inbox_interval_ms / 1000);
		inbox_end(ib, false);
		return;
	}
	ib->batch = json_incref(messages);
	ib->i = 0;
	inbox_next(ib);
}

static void
on_first_mark(redisAsyncContext *ac, void *r, void *pd)
{
	struct inbox *ib = pd;

	if (inbox_gone(ib))
		return;
	inbox_end(ib, false);
}

static void
on_last_id(const struct odoo_error *e, long long id, void *arg)
{
	struct inbox *ib = arg;
	struct engine *en = ib->en;
	char s[24], ttl[24];
	const char *a[5] = {ib->k_lock, ib->k_mark, en->o.consumer ? en->o.consumer : "crmbridged", s, ttl};

	if (inbox_gone(ib))
		return;
	if (e->kind != ODOO_OK) {
		inbox_end(ib, false);
		return;
	}
	/* What was written before crmbridge watched is not sent now: the watermark starts at the newest message. */
	snprintf(s, sizeof(s), "%lld", id);
	snprintf(ttl, sizeof(ttl), "%" PRIu64, inbox_ttl(en));
	log_info("inbox: watching the leads' chatter for the sales team's messages from mail.message %lld on", id);
	en->refs++;
	if (engine_eval(en, &ib->mark, on_first_mark, ib, 2, a, 5) < 0) {
		en->refs--;
		inbox_end(ib, false);
	}
}

static void
on_claimed(redisAsyncContext *ac, void *r, void *pd)
{
	struct inbox *ib = pd;
	struct engine *en = ib->en;
	redisReply *reply = r;
	long long mark = 0;

	if (inbox_gone(ib))
		return;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    reply->element[0]->type != REDIS_REPLY_INTEGER || reply->element[0]->integer != 1 ||
	    engine_leads(en) == NULL) {
		inbox_end(ib, false); /* another instance polls (or Redis is away) */
		return;
	}
	en->refs++;
	if (reply->element[1]->len == 0) {
		chatter_last_id(engine_leads(en), on_last_id, ib);
		return;
	}
	parse_ll(reply->element[1]->str, 0, INT64_MAX, &mark);
	ib->mark0 = mark;
	chatter_since(engine_leads(en), mark, INBOX_PAGE, on_since, ib);
}

void
inbox_poll(struct inbox *ib)
{
	struct engine *en = ib->en;
	char ttl[24];
	const char *a[4] = {ib->k_lock, ib->k_mark, en->o.consumer ? en->o.consumer : "crmbridged", ttl};

	if (ib->busy || en->o.inbox_interval_ms == 0 || engine_leads(en) == NULL || now_usec() < ib->next)
		return;
	snprintf(ttl, sizeof(ttl), "%" PRIu64, inbox_ttl(en));
	ib->busy = true;
	en->refs++;
	if (engine_eval(en, &ib->claim, on_claimed, ib, 2, a, 4) < 0) {
		en->refs--;
		inbox_end(ib, false);
	}
}

/* ---- the notes the turns left for the leads ---- */

static void notes_next(struct inbox *ib);

static void
on_note_removed(redisAsyncContext *ac, void *r, void *pd)
{
	struct inbox *ib = pd;

	if (inbox_gone(ib))
		return;
	ib->ni++;
	notes_next(ib);
}

static void
on_note_posted(const struct odoo_error *e, unsigned posted, void *arg)
{
	struct inbox *ib = arg;
	struct engine *en = ib->en;
	json_t *n = json_array_get(ib->notes, ib->ni);

	if (inbox_gone(ib))
		return;
	if (e->kind == ODOO_TRANSIENT) {
		/* Kept, posted next time; one that reached Odoo unanswered is found by its Message-Id then. */
		inbox_end(ib, false);
		return;
	}
	if (e->kind != ODOO_OK) /* the lead deleted, or out of this user's reach: one note must not block the rest */
		log_warnx("inbox: a note for lead %d was refused (%s error: %s); dropped", ib->note_lead,
		    odoo_kind_name(e->kind), e->message);
	en->st.agent_notes += posted;
	if (inbox_redis(ib, on_note_removed, "LREM %s 1 %s", ib->k_notes, json_string_value(n)) < 0)
		inbox_end(ib, false);
}

static void
notes_next(struct inbox *ib)
{
	struct engine *en = ib->en;
	json_t *raw, *n;
	struct chatter_entry ce = {0};

	if ((raw = json_array_get(ib->notes, ib->ni)) == NULL || engine_leads(en) == NULL) {
		inbox_end(ib, json_array_size(ib->batch) >= INBOX_PAGE);
		return;
	}
	n = json_loads(json_string_value(raw), 0, NULL);
	ce.key = json_string_value(json_object_get(n, "key"));
	ce.text = json_string_value(json_object_get(n, "text"));
	if (ce.key == NULL || ce.text == NULL || json_integer_value(json_object_get(n, "lead")) <= 0) {
		json_decref(n);
		if (inbox_redis(ib, on_note_removed, "LREM %s 1 %s", ib->k_notes, json_string_value(raw)) < 0)
			inbox_end(ib, false);
		return;
	}
	ib->note_lead = (int)json_integer_value(json_object_get(n, "lead"));
	en->refs++;
	chatter_post(engine_leads(en), ib->note_lead, &ce, 1, 0, on_note_posted, ib);
	json_decref(n);
}

static void
on_notes(redisAsyncContext *ac, void *r, void *pd)
{
	struct inbox *ib = pd;
	redisReply *reply = r;

	if (inbox_gone(ib))
		return;
	ib->notes = json_array();
	ib->ni = 0;
	for (size_t i = 0; reply != NULL && reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++)
		if (reply->element[i]->type == REDIS_REPLY_STRING)
			json_array_append_new(ib->notes, json_stringn(reply->element[i]->str, reply->element[i]->len));
	notes_next(ib);
}

/* After the messages: the notes the turns left, a few a poll, oldest first. */
static void
notes_start(struct inbox *ib)
{
	if (inbox_redis(ib, on_notes, "LRANGE %s 0 " INBOX_NOTES_S, ib->k_notes, NULL) < 0)
		inbox_end(ib, false);
}
