/*
 * Erasure (a customer's right to be forgotten) and history retention.
 *
 * DELETE /api/conversation/{phone} removes everything crmbridge keeps about
 * one phone: its conversation, inbox, control hash and schedules, its
 * messages in the intake stream (their dedupe keys, named after the
 * MessageSid and Twilio's idempotency token only, stay until their TTL with
 * the value "erased", so a captured webhook replayed after the erasure is
 * still refused as a duplicate instead of bringing the message back), its queued and
 * given-up replies, its outbound message records, its analytics entry, the
 * spooled messages on disk and its records in the lead journal; with
 * privacy.erase_odoo the Odoo lead's WhatsApp fields are cleared and a note
 * says so. It waits for a turn in flight for the phone to end (the turn's
 * lease), so nothing is written back after it. It is a row of short
 * scripts, each on one hash slot and given every key it touches; the intake
 * stream and the key space are walked one short step at a time, so Redis
 * serves everyone else meanwhile. The phone's own keys go last, so an
 * erasure interrupted anywhere is finished by asking for it again.
 *
 * Retention: history entries older than privacy.history_retention are
 * dropped from every conversation by a sweep (SCAN, one script per key), so
 * a conversation kept alive by new messages does not keep old ones.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/form.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "common/redis.h"
#include "conversation/erase.h"
#include "conversation/journal.h"
#include "conversation/state.h"
#include "odoo/lead.h"
#include "twilio/intake.h"
#include "redis/scripts.h"

static struct rscript s_read, s_turns, s_outbox, s_dead_find, s_dead, s_intake, s_stream_find, s_stream, s_scan, s_keys,
    s_phone, prune_script;

static void
scripts_init(void)
{
	if (s_read.text != NULL)
		return;
	rscript_init(&s_read, redis_script_erase_read);
	rscript_init(&s_turns, redis_script_erase_turns);
	rscript_init(&s_outbox, redis_script_erase_outbox);
	rscript_init(&s_dead_find, redis_script_erase_dead_find);
	rscript_init(&s_dead, redis_script_erase_dead);
	rscript_init(&s_intake, redis_script_erase_intake);
	rscript_init(&s_stream_find, redis_script_erase_stream_find);
	rscript_init(&s_stream, redis_script_erase_stream);
	rscript_init(&s_scan, redis_script_erase_scan);
	rscript_init(&s_keys, redis_script_erase_keys);
	rscript_init(&s_phone, redis_script_erase_phone);
	rscript_init(&prune_script, redis_script_erase_prune);
}

/*
 * The steps of an erasure, in order, each one script (or a few pipelined)
 * on one hash slot. What a later step needs is read from the phone's own
 * keys, and those go last, so an erasure interrupted anywhere (a crash,
 * Redis down) is finished by asking for it again; every step is idempotent.
 * Keys found by reading (reply texts, dedupe claims, SCAN's finds) come back
 * to C from one script and go to the next as KEYS.
 */
enum erase_step {
	ST_READ, /* {+E164}: lead id, MessageSids; busy while a lead write runs */
	ST_TURNS, /* {turns}: schedule, arrivals, the history's claims; busy while a turn runs */
	ST_OUTBOX, /* {outbox}: queued replies, opt-out; busy while a send runs */
	ST_SCHED, /* {odoo}:pending, {followup}:due, {stats}:active: plain ZREMs */
	ST_EDEAD_FIND, /* {engine}:dead */
	ST_EDEAD,
	ST_ODEAD_FIND, /* {outbox}:dead and the reply texts */
	ST_ODEAD,
	ST_INTAKE, /* {intake} (the release before): the history's claims, the stream's last id */
	ST_STREAM_FIND, /* the stream walk, 500 entries a step */
	ST_STREAM,
	ST_SCAN, /* the key space walk, one SCAN step of 1000 */
	ST_KEYS,
	ST_PHONE, /* {+E164}: the phone's own keys; busy while a lead write runs */
	ST_DONE
};

/* A list of binary-safe strings, kept between two steps. */
struct strv {
	char **v;
	size_t *len, n, cap;
};

static void
strv_add(struct strv *sv, const char *s, size_t len)
{
	if (sv->n == sv->cap) {
		sv->cap = sv->cap ? sv->cap * 2 : 16;
		sv->v = xreallocarray(sv->v, sv->cap, sizeof(*sv->v));
		sv->len = xreallocarray(sv->len, sv->cap, sizeof(*sv->len));
	}
	sv->v[sv->n] = xmalloc(len + 1);
	memcpy(sv->v[sv->n], s, len);
	sv->v[sv->n][len] = '\0';
	sv->len[sv->n++] = len;
}

/* Adds a and b joined (a key prefix and a name). */
static void
strv_add2(struct strv *sv, const char *a, const char *b)
{
	char *s;

	xasprintf(&s, "%s%s", a, b);
	strv_add(sv, s, strlen(s));
	free(s);
}

static void
strv_clear(struct strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	sv->n = 0;
}

static void
strv_free(struct strv *sv)
{
	strv_clear(sv);
	free(sv->v);
	free(sv->len);
}

struct erase_op {
	struct http_request *req; /* NULL once cancelled */
	struct erase_ctx *x;
	char phone[17];
	json_t *answer, *redis; /* what went, so far */
	long long lead;
	enum erase_step step;
	unsigned pending; /* answers awaited in this step */
	bool failed; /* one of them was not what it should be */
	bool busy; /* one of them says the phone is busy: start over */
	char from_id[48], last[48]; /* the stream walk: from ("" once done), up to */
	char cursor[32]; /* the key space walk */
	struct strv sids, keys, args; /* the history's MessageSids; what the next step is given */
	/* Names the walks use at every step, made once: the stream, whatsapp:phone, the dedupe key prefixes, the
	   pattern of all our keys, the outbound record prefix, the phone's own key prefix. */
	char *k_stream, *from, *p_sid, *p_idem, *p_all, *p_msg, *p_own, *p_deadbody;
	uint64_t deadline;
	sd_event_source *timer;
	struct erase_op *next;
};

static struct erase_op *erase_ops;

static void
erase_free(struct erase_op *op)
{
	struct erase_op **p;

	for (p = &erase_ops; *p != NULL; p = &(*p)->next)
		if (*p == op) {
			*p = op->next;
			break;
		}
	sd_event_source_disable_unref(op->timer);
	json_decref(op->answer);
	json_decref(op->redis);
	strv_free(&op->sids);
	strv_free(&op->keys);
	strv_free(&op->args);
	free(op->k_stream);
	free(op->from);
	free(op->p_sid);
	free(op->p_idem);
	free(op->p_all);
	free(op->p_msg);
	free(op->p_own);
	free(op->p_deadbody);
	free(op);
}

void
erase_cancel(void)
{
	struct erase_op *op;

	for (op = erase_ops; op != NULL; op = op->next)
		op->req = NULL;
}

static void
erase_answer(struct erase_op *op)
{
	char ph[32];

	if (op->req != NULL) {
		log_notice("admin: everything about %s erased", log_phone(op->phone, ph, sizeof(ph)));
		http_reply_json(op->req, 200, json_incref(op->answer));
	}
	erase_free(op);
}

static void
on_odoo_erased(const struct odoo_error *e, json_t *report, void *arg)
{
	struct erase_op *op = arg;
	json_t *o = json_object_get(op->answer, "odoo");

	json_object_update(o, report);
	if (e->kind == ODOO_OK && json_array_size(json_object_get(report, "leads")) == 0) {
		json_object_set_new(o, "anonymised", json_false());
		json_object_set_new(o, "why", json_string("no lead of this phone in Odoo"));
	} else if (e->kind == ODOO_OK) {
		json_object_set_new(o, "anonymised", json_true());
		op->x->stats.odoo_anonymised++;
	} else {
		/* The rest is gone already; the lead's id is in the answer for a person to finish by hand. */
		char msg[300];
		/* Cut at a character: Odoo's message may quote the customer's words, and json_string() refuses half an
		   "ñ". */
		snprintf(msg, sizeof(msg), "%s error: %.*s", odoo_kind_name(e->kind), (int)utf8_cut(e->message, 250),
		    e->message);
		json_object_set_new(o, "anonymised", json_false());
		json_object_set_new(o, "error", json_string(msg));
		op->x->stats.odoo_failed++;
	}
	erase_answer(op);
}

static void run_step(struct erase_op *op);

static int
on_retry(sd_event_source *s, uint64_t usec, void *arg)
{
	struct erase_op *op = arg;

	op->timer = sd_event_source_disable_unref(op->timer);
	if (op->req == NULL) {
		erase_free(op);
		return 0;
	}
	op->step = ST_READ;
	snprintf(op->cursor, sizeof(op->cursor), "0");
	run_step(op);
	return 0;
}

/* The Redis part is done: the lead journal, then the Odoo lead, then the answer. */
static void
erase_finish(struct erase_op *op)
{
	struct erase_ctx *x = op->x;
	long long lead = op->lead;
	int n;

	json_object_set(op->answer, "redis", op->redis);
	/* The lead journal (leads kept without Odoo). */
	if (x->journal != NULL) {
		n = journal_erase(x->journal, op->phone);
		json_object_set_new(
		    op->answer, "journal_records", n >= 0 ? json_integer(n) : json_string(strerror(-n)));
	}
	x->stats.erased++;
	if (x->leads != NULL && x->erase_odoo) {
		/* Every lead of the phone, not only the one this conversation wrote: older, lost and won ones too. */
		json_object_set_new(op->answer, "odoo",
		    lead > 0 ? json_pack("{s:I}", "lead_id", (json_int_t)lead) : json_pack("{s:n}", "lead_id"));
		lead_erase(x->leads, op->phone, lead > 0 ? (int)lead : 0, on_odoo_erased, op);
		return;
	}
	json_object_set_new(op->answer, "odoo",
	    lead > 0 ? json_pack("{s:I, s:b, s:s}", "lead_id", (json_int_t)lead, "anonymised", 0, "why",
	                   x->leads == NULL ? "no Odoo configured" : "privacy.erase_odoo is off")
	             : json_null());
	erase_answer(op);
}

static void
count(struct erase_op *op, const char *what, long long n)
{
	json_object_set_new(op->redis, what, json_integer(json_integer_value(json_object_get(op->redis, what)) + n));
}

/* Redis failed at a step: what went is gone, the rest is there; the erasure can simply be asked again. */
static void
step_failed(struct erase_op *op)
{
	if (op->req != NULL)
		http_reply_error(op->req, 503,
		    op->step == ST_READ ? "Redis unavailable; nothing was erased there (try again)"
		                        : "Redis failed during the erasure; part of it is done: ask again");
	erase_free(op);
}

/* A step's script says a turn, a send or a lead write for the phone is under way: the erasure starts over. */
static void
step_busy(struct erase_op *op)
{
	if (now_usec() > op->deadline) {
		http_reply_error(op->req, 503, "a turn for this phone is in progress; try again in a minute");
		erase_free(op);
		return;
	}
	if (sd_event_add_time(op->x->event, &op->timer, CLOCK_MONOTONIC, now_usec() + 200000, 10000, on_retry, op) <
	    0) {
		http_reply_error(op->req, 503, "cannot wait for the turn in progress");
		erase_free(op);
	}
}

static bool
is_busy(const redisReply *r)
{
	return r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[0]->str, "busy") == 0;
}

static long long
int_at(const redisReply *r, size_t i)
{
	return r->type == REDIS_REPLY_ARRAY && i < r->elements && r->element[i]->type == REDIS_REPLY_INTEGER
	    ? r->element[i]->integer
	    : 0;
}

/* Takes in one answer of the current step; false when it is not what the step expects. */
static bool
take(struct erase_op *op, const redisReply *r)
{
	size_t i;

	switch (op->step) {
	case ST_READ: /* {lead_id or -1, sids...} */
		if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_INTEGER)
			return false;
		op->lead = r->element[0]->integer;
		strv_clear(&op->sids);
		for (i = 1; i < r->elements; i++)
			if (r->element[i]->type == REDIS_REPLY_STRING)
				strv_add(&op->sids, r->element[i]->str, r->element[i]->len);
		return true;
	case ST_TURNS: /* {entries removed, claims marked} */
		count(op, "schedules", int_at(r, 0));
		count(op, "dedupe_keys", int_at(r, 1));
		return r->type == REDIS_REPLY_ARRAY && r->elements == 2;
	case ST_SCHED: /* ZREM's count */
		count(op, "schedules", r->type == REDIS_REPLY_INTEGER ? r->integer : int_at(r, 0));
		return r->type == REDIS_REPLY_INTEGER || r->type == REDIS_REPLY_ARRAY;
	case ST_OUTBOX: /* {queued jobs, opt-out} */
		count(op, "queued_replies", int_at(r, 0));
		count(op, "opt_out", int_at(r, 1));
		return r->type == REDIS_REPLY_ARRAY && r->elements == 2;
	case ST_EDEAD_FIND:
	case ST_ODEAD_FIND: { /* {records..., "", jobs...} */
		bool jobs = false;
		if (r->type != REDIS_REPLY_ARRAY)
			return false;
		strv_clear(&op->keys);
		strv_clear(&op->args);
		for (i = 0; i < r->elements; i++) {
			const redisReply *e = r->element[i];
			if (e->type != REDIS_REPLY_STRING)
				continue;
			if (!jobs && e->len == 0)
				jobs = true;
			else if (!jobs)
				strv_add(&op->args, e->str, e->len);
			else if (op->step == ST_ODEAD_FIND)
				strv_add2(&op->keys, op->p_deadbody, e->str);
		}
		return true;
	}
	case ST_EDEAD:
	case ST_ODEAD:
		count(op, "dead_letters", r->type == REDIS_REPLY_INTEGER ? r->integer : 0);
		return r->type == REDIS_REPLY_INTEGER;
	case ST_INTAKE: /* {claims marked, the stream's last id} */
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[1]->type != REDIS_REPLY_STRING)
			return false;
		count(op, "dedupe_keys", int_at(r, 0));
		snprintf(op->last, sizeof(op->last), "%s", r->element[1]->str);
		/* An empty stream: no walk. */
		snprintf(op->from_id, sizeof(op->from_id), "%s", op->last[0] != '\0' ? "-" : "");
		return true;
	case ST_STREAM_FIND: /* {next start or "", then id, sid, idem per entry of the phone} */
		if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_STRING)
			return false;
		snprintf(op->from_id, sizeof(op->from_id), "%s", r->element[0]->str);
		strv_clear(&op->keys);
		strv_clear(&op->args);
		for (i = 1; i + 2 < r->elements; i += 3) {
			redisReply **e = r->element + i;
			if (e[0]->type != REDIS_REPLY_STRING || e[1]->type != REDIS_REPLY_STRING ||
			    e[2]->type != REDIS_REPLY_STRING)
				continue;
			strv_add(&op->args, e[0]->str, e[0]->len);
			if (e[1]->len > 0)
				strv_add2(&op->keys, op->p_sid, e[1]->str);
			if (e[2]->len > 0)
				strv_add2(&op->keys, op->p_idem, e[2]->str);
		}
		return true;
	case ST_STREAM: /* {entries deleted, claims marked} */
		count(op, "intake_messages", int_at(r, 0));
		count(op, "dedupe_keys", int_at(r, 1));
		return r->type == REDIS_REPLY_ARRAY && r->elements == 2;
	case ST_SCAN: /* {next cursor, keys found...} */
		if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_STRING)
			return false;
		snprintf(op->cursor, sizeof(op->cursor), "%s", r->element[0]->str);
		strv_clear(&op->keys);
		for (i = 1; i < r->elements; i++)
			if (r->element[i]->type == REDIS_REPLY_STRING)
				strv_add(&op->keys, r->element[i]->str, r->element[i]->len);
		return true;
	case ST_KEYS:
		count(op, "outbound_records", r->type == REDIS_REPLY_INTEGER ? r->integer : 0);
		return r->type == REDIS_REPLY_INTEGER;
	case ST_PHONE: /* {keys deleted} */
		count(op, "conversation_keys", int_at(r, 0));
		return r->type == REDIS_REPLY_ARRAY && r->elements == 1;
	case ST_DONE: break;
	}
	return false;
}

/* The step after the current one, skipping the walk steps that have nothing to do. */
static enum erase_step
next_step(const struct erase_op *op)
{
	switch (op->step) {
	case ST_EDEAD_FIND: return op->args.n > 0 ? ST_EDEAD : ST_ODEAD_FIND;
	case ST_ODEAD_FIND: return op->args.n > 0 ? ST_ODEAD : ST_INTAKE;
	case ST_INTAKE: return op->from_id[0] != '\0' ? ST_STREAM_FIND : ST_SCAN;
	case ST_STREAM_FIND: return op->args.n > 0 ? ST_STREAM : op->from_id[0] != '\0' ? ST_STREAM_FIND : ST_SCAN;
	case ST_STREAM: return op->from_id[0] != '\0' ? ST_STREAM_FIND : ST_SCAN;
	case ST_SCAN: return op->keys.n > 0 ? ST_KEYS : strcmp(op->cursor, "0") != 0 ? ST_SCAN : ST_PHONE;
	case ST_KEYS: return strcmp(op->cursor, "0") != 0 ? ST_SCAN : ST_PHONE;
	default: return op->step + 1;
	}
}

static void
on_step(redisAsyncContext *ac, void *r, void *pd)
{
	struct erase_op *op = pd;
	redisReply *reply = r;

	op->pending--;
	if (op->req == NULL) {
		if (op->pending == 0)
			erase_free(op);
		return;
	}
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR || (!is_busy(reply) && !take(op, reply)))
		op->failed = true;
	else if (is_busy(reply))
		op->busy = true;
	if (op->pending > 0)
		return;
	if (op->failed) {
		step_failed(op);
		return;
	}
	if (op->busy) {
		op->busy = false;
		step_busy(op);
		return;
	}
	op->step = next_step(op);
	run_step(op);
}

/* Sends one script call of the step; argv holds nkeys keys, then the other arguments. */
static void
step_send(struct erase_op *op, const struct rscript *sc, int nkeys, int argc, const char **argv, const size_t *argvlen)
{
	if (op->x->redis != NULL && rconn_eval(op->x->redis, sc, on_step, op, nkeys, argc, argv, argvlen) == 0)
		op->pending++;
	else
		op->failed = true;
}

/* The hash tag of a key (what decides its slot), or the whole key when it has none. */
static void
key_tag(const char *k, size_t len, const char **tag, size_t *tlen)
{
	const char *o = memchr(k, '{', len), *c = o != NULL ? memchr(o + 1, '}', len - (size_t)(o + 1 - k)) : NULL;

	if (o != NULL && c != NULL && c > o + 1) {
		*tag = o + 1;
		*tlen = (size_t)(c - o - 1);
	} else {
		*tag = k;
		*tlen = len;
	}
}

/* erase-keys on the keys SCAN found, one call per hash tag (so per slot), pipelined. */
static void
send_keys(struct erase_op *op)
{
	size_t n = op->keys.n, i, j, m;
	const char **argv = xreallocarray(NULL, n + 2, sizeof(*argv));
	size_t *lens = xreallocarray(NULL, n + 2, sizeof(*lens));
	bool *sent = xcalloc(n, sizeof(*sent));

	for (i = 0; i < n; i++) {
		const char *t, *u;
		size_t tl, ul;
		if (sent[i])
			continue;
		key_tag(op->keys.v[i], op->keys.len[i], &t, &tl);
		for (m = 0, j = i; j < n; j++) {
			key_tag(op->keys.v[j], op->keys.len[j], &u, &ul);
			if (!sent[j] && ul == tl && memcmp(t, u, tl) == 0) {
				sent[j] = true;
				argv[m] = op->keys.v[j];
				lens[m++] = op->keys.len[j];
			}
		}
		argv[m] = op->phone;
		lens[m] = strlen(op->phone);
		argv[m + 1] = op->p_msg;
		lens[m + 1] = strlen(op->p_msg);
		step_send(op, &s_keys, (int)m, (int)m + 2, argv, lens);
	}
	free(sent);
	free(lens);
	free(argv);
}

/* sc on key first, then op->keys as keys, then op->args (erase-dead, erase-stream). */
static void
send_found(struct erase_op *op, const struct rscript *sc, const char *first)
{
	size_t n = 1 + op->keys.n + op->args.n, i, a = 0;
	const char **argv = xreallocarray(NULL, n, sizeof(*argv));
	size_t *lens = xreallocarray(NULL, n, sizeof(*lens));

	argv[a] = first;
	lens[a++] = strlen(first);
	for (i = 0; i < op->keys.n; i++, a++)
		argv[a] = op->keys.v[i], lens[a] = op->keys.len[i];
	for (i = 0; i < op->args.n; i++, a++)
		argv[a] = op->args.v[i], lens[a] = op->args.len[i];
	step_send(op, sc, 1 + (int)op->keys.n, (int)n, argv, lens);
	free(lens);
	free(argv);
}

static void
run_step(struct erase_op *op)
{
	const char *p = op->x->key_prefix;
	char *k[5] = {NULL}, now[24];
	const char *argv[7];
	int i;

	op->failed = false;
	snprintf(now, sizeof(now), "%" PRIu64, realtime_usec() / 1000);
	switch (op->step) {
	case ST_READ:
		xasprintf(&k[0], "%s{%s}:conv", p, op->phone);
		xasprintf(&k[1], "%s{%s}:inbox", p, op->phone);
		xasprintf(&k[2], "%s{%s}:odoo", p, op->phone);
		for (i = 0; i < 3; i++)
			argv[i] = k[i];
		step_send(op, &s_read, 3, 3, argv, NULL);
		break;
	case ST_TURNS: {
		static const char *const tk[] = {"due", "first", "lease", "attempts", "in"};
		size_t n = 5 + op->sids.n + 2, j, a = 0;
		const char **v = xreallocarray(NULL, n, sizeof(*v));
		char **ks = xreallocarray(NULL, 5 + op->sids.n, sizeof(*ks));
		for (j = 0; j < 5; j++)
			xasprintf(&ks[j], "%s{turns}:%s", p, tk[j]);
		for (j = 0; j < op->sids.n; j++)
			xasprintf(&ks[5 + j], "%s{turns}:sid:%s", p, op->sids.v[j]);
		for (j = 0; j < 5 + op->sids.n; j++)
			v[a++] = ks[j];
		v[a++] = op->phone;
		v[a++] = now;
		step_send(op, &s_turns, (int)(5 + op->sids.n), (int)n, v, NULL);
		for (j = 0; j < 5 + op->sids.n; j++)
			free(ks[j]);
		free(ks);
		free(v);
		break;
	}
	case ST_OUTBOX:
		xasprintf(&k[0], "%s{outbox}:due", p);
		xasprintf(&k[1], "%s{outbox}:q:%s", p, op->phone);
		xasprintf(&k[2], "%s{outbox}:optout", p);
		for (i = 0; i < 3; i++)
			argv[i] = k[i];
		argv[3] = op->phone;
		argv[4] = now;
		step_send(op, &s_outbox, 3, 5, argv, NULL);
		break;
	case ST_SCHED: {
		static const char *const zsets[] = {"{odoo}:pending", "{followup}:due", "{stats}:active"};
		for (i = 0; i < 3; i++) {
			if (op->x->redis != NULL &&
			    rconn_command(op->x->redis, on_step, op, "ZREM %s%s %s", p, zsets[i], op->phone) == 0)
				op->pending++;
			else
				op->failed = true;
		}
		/* The lead's entry in the inbox's map (lead id -> this phone). */
		if (op->lead > 0 && op->x->redis != NULL &&
		    rconn_command(op->x->redis, on_step, op, "HDEL %s{odoo}:leads %lld", p, op->lead) == 0)
			op->pending++;
		break;
	}
	case ST_EDEAD_FIND:
	case ST_ODEAD_FIND:
		xasprintf(&k[0], "%s%s", p, op->step == ST_EDEAD_FIND ? "{engine}:dead" : "{outbox}:dead");
		argv[0] = k[0];
		argv[1] = op->phone;
		step_send(op, &s_dead_find, 1, 2, argv, NULL);
		break;
	case ST_EDEAD:
	case ST_ODEAD:
		xasprintf(&k[0], "%s%s", p, op->step == ST_EDEAD ? "{engine}:dead" : "{outbox}:dead");
		send_found(op, &s_dead, k[0]);
		break;
	case ST_INTAKE: {
		size_t n = 1 + op->sids.n, j;
		const char **v = xreallocarray(NULL, n, sizeof(*v));
		char **ks = xreallocarray(NULL, n, sizeof(*ks));
		v[0] = op->k_stream;
		for (j = 0; j < op->sids.n; j++) {
			xasprintf(&ks[j], "%s%s", op->p_sid, op->sids.v[j]);
			v[j + 1] = ks[j];
		}
		step_send(op, &s_intake, (int)n, (int)n, v, NULL);
		for (j = 0; j < op->sids.n; j++)
			free(ks[j]);
		free(ks);
		free(v);
		break;
	}
	case ST_STREAM_FIND:
		argv[0] = op->k_stream;
		argv[1] = op->from;
		argv[2] = op->from_id;
		argv[3] = op->last;
		argv[4] = "500";
		step_send(op, &s_stream_find, 1, 5, argv, NULL);
		break;
	case ST_STREAM: send_found(op, &s_stream, op->k_stream); break;
	case ST_SCAN:
		argv[0] = op->phone;
		argv[1] = op->cursor;
		argv[2] = op->p_all;
		argv[3] = op->p_msg;
		argv[4] = op->p_own;
		argv[5] = "1000";
		step_send(op, &s_scan, 0, 6, argv, NULL);
		break;
	case ST_KEYS: send_keys(op); break;
	case ST_PHONE:
		xasprintf(&k[0], "%s{%s}:conv", p, op->phone);
		xasprintf(&k[1], "%s{%s}:inbox", p, op->phone);
		xasprintf(&k[2], "%s{%s}:routed", p, op->phone);
		xasprintf(&k[3], "%s{%s}:ctl", p, op->phone);
		xasprintf(&k[4], "%s{%s}:odoo", p, op->phone);
		for (i = 0; i < 5; i++)
			argv[i] = k[i];
		step_send(op, &s_phone, 5, 5, argv, NULL);
		break;
	case ST_DONE: break;
	}
	for (i = 0; i < 5; i++)
		free(k[i]);
	if (op->step == ST_DONE)
		erase_finish(op);
	else if (op->pending == 0)
		step_failed(op);
}

void
erase_delete_conversation(struct http_request *req, void *arg)
{
	struct erase_ctx *x = arg;
	const char *p = http_req_param(req, 0);
	char phone[17], from[32];
	struct erase_op *op;
	int spooled = 0;

	if (p == NULL || conv_phone_param(p, phone) < 0) {
		http_reply_error(req, 400, "the phone must be +E164, whatsapp:+E164 or digits");
		return;
	}
	if (x->redis == NULL || rconn_state(x->redis) != RCONN_UP) {
		http_reply_error(req, 503, "Redis unavailable; nothing was erased (try again)");
		return;
	}
	scripts_init();
	/* The spool first: a message waiting there would otherwise land in Redis after the erase. */
	snprintf(from, sizeof(from), "whatsapp:%s", phone);
	if (x->intake != NULL && (spooled = intake_spool_erase(x->intake, from)) < 0) {
		http_reply_error(
		    req, 503, "a message from this phone is being moved from the spool into Redis; try again");
		return;
	}
	/* Before the Redis steps: what waits in memory would otherwise be written back after them. */
	if (x->forget != NULL)
		x->forget(phone, x->forget_arg);
	op = xcalloc(1, sizeof(*op));
	op->req = req;
	op->x = x;
	snprintf(op->phone, sizeof(op->phone), "%s", phone);
	xasprintf(&op->k_stream, "%s{intake}:stream", x->key_prefix);
	xasprintf(&op->from, "whatsapp:%s", phone);
	xasprintf(&op->p_sid, "%s{intake}:sid:", x->key_prefix);
	xasprintf(&op->p_idem, "%s{intake}:idem:", x->key_prefix);
	xasprintf(&op->p_all, "%s*", x->key_prefix);
	xasprintf(&op->p_msg, "%s{outbox}:msg:", x->key_prefix);
	xasprintf(&op->p_own, "%s{%s}:", x->key_prefix, phone);
	xasprintf(&op->p_deadbody, "%s{outbox}:deadbody:", x->key_prefix);
	op->answer = json_pack("{s:s, s:b, s:i}", "phone", phone, "erased", 1, "spool_files", spooled);
	op->redis = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "conversation_keys", 0, "schedules", 0,
	    "dead_letters", 0, "queued_replies", 0, "opt_out", 0, "dedupe_keys", 0, "intake_messages", 0,
	    "outbound_records", 0);
	snprintf(op->cursor, sizeof(op->cursor), "0");
	op->deadline = now_usec() + 15000000;
	op->next = erase_ops;
	erase_ops = op;
	op->step = ST_READ;
	run_step(op);
}

/* ---- retention ---- */

struct sweep {
	char cursor[32];
	bool busy;
};

static struct sweep sweep;

static void sweep_step(struct erase_ctx *x);

static void
on_pruned(redisAsyncContext *ac, void *r, void *pd)
{
	struct erase_ctx *x = pd;
	redisReply *reply = r;

	if (reply != NULL && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1)
		x->stats.pruned_conversations++;
}

static void
on_state(redisAsyncContext *ac, void *r, void *pd)
{
	struct erase_ctx *x = pd;
	redisReply *reply = r;
	const char *why;
	json_t *st;
	char *key = NULL, *pruned;
	size_t dropped;

	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    reply->element[1]->type != REDIS_REPLY_STRING)
		return;
	key = reply->element[0]->str;
	if ((st = conv_state_parse(reply->element[1]->str, reply->element[1]->len, &why)) == NULL)
		return;
	dropped = conv_state_prune(st, realtime_usec() / 1000, x->history_retention_ms);
	if (dropped > 0) {
		const char *argv[3];
		pruned = json_dumps(st, JSON_COMPACT);
		argv[0] = key;
		argv[1] = reply->element[1]->str;
		argv[2] = pruned;
		x->stats.pruned_messages += dropped;
		rconn_eval(x->redis, &prune_script, on_pruned, x, 1, 3, argv, NULL);
		free(pruned);
	}
	json_decref(st);
}

static void
on_scan(redisAsyncContext *ac, void *r, void *pd)
{
	struct erase_ctx *x = pd;
	redisReply *reply = r;
	size_t i;

	sweep.busy = false;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
		return;
	snprintf(sweep.cursor, sizeof(sweep.cursor), "%s", reply->element[0]->str);
	for (i = 0; i < reply->element[1]->elements; i++) {
		const char *k = reply->element[1]->element[i]->str;
		rconn_command(x->redis, on_state, x, "EVAL %s 1 %s", "return {KEYS[1], redis.call('GET', KEYS[1])}", k);
	}
	if (strcmp(sweep.cursor, "0") != 0)
		sweep_step(x);
	else
		x->stats.sweeps++;
}

static void
sweep_step(struct erase_ctx *x)
{
	char *match;

	if (x->redis == NULL || rconn_state(x->redis) != RCONN_UP || sweep.busy)
		return;
	xasprintf(&match, "%s{+*}:conv", x->key_prefix);
	sweep.busy = true;
	if (rconn_command(x->redis, on_scan, x, "SCAN %s MATCH %s COUNT 500", sweep.cursor, match) < 0)
		sweep.busy = false;
	free(match);
}

void
erase_retention_sweep(struct erase_ctx *x)
{
	if (x->history_retention_ms == 0 || sweep.busy)
		return;
	scripts_init();
	snprintf(sweep.cursor, sizeof(sweep.cursor), "0");
	sweep_step(x);
}
