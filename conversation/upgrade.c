/*
 * The upgrade from the releases before the arrivals. Then, the intake appended each message to
 * P{intake}:stream and the engine routed it to its phone's inbox, P{+E164}:inbox, from which a turn took it.
 * Now the intake adds it to P{turns}:in itself. What an old release left behind is moved there by the
 * intake's own script (intake-store), whose MessageSid claim makes a second move of the same message a no-op:
 *
 *  - the stream: read as before (consumer group "engine", one XACK a batch, XAUTOCLAIM of what a dead
 *    reader left) until engine-drain finds everything delivered and acknowledged and deletes it; looked at
 *    again once a minute (an old instance still running);
 *  - the inboxes: one walk of the key space (SCAN MATCH P{+*}:inbox), each inbox moved and then deleted;
 *    at its end the old hashes P{turns}:first and P{turns}:attempts are deleted (the burst's start is now
 *    the oldest message waiting, the attempts are in the lease) and the marker P{turns}:inboxes-moved set,
 *    so that later starts skip the walk (one GET).
 *
 * Both go on while turns run; a phone whose old messages are moved later has them answered by the turn
 * they make due.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "conversation/state.h"
#include "conversation/turn.h"
#include "redis/scripts.h"
#include "twilio/intake.h"

/* How long the claim of a moved message lasts (s): a copy met later in the stream or an inbox is a duplicate. */
#define MOVED_CLAIM_TTL 172800

/* One message moved into the arrivals, answered in fn with pd. */
static int
move_one(struct engine *en, const char *phone, const char *sid, const char *entry, uint64_t t_ms, unsigned seq,
    redisCallbackFn *fn, void *pd)
{
	char *member = intake_member(phone, t_ms, seq, entry);
	struct intake_store_args a = {
	    .prefix = en->o.key_prefix, .sid = sid, .phone = phone, .member = member, .claim_ttl_s = MOVED_CLAIM_TTL};
	int r = -ENOTCONN;

	en->refs++;
	if (engine_rc(en) == NULL || (r = intake_store(engine_rc(en), &en->store, &a, fn, pd)) < 0)
		en->refs--;
	free(member);
	return r;
}

/* ---- the stream ---- */

/* One XREADGROUP's entries: acknowledged together (one XACK) once each is moved. */
struct route_batch {
	struct engine *en;
	unsigned left; /* entries still being moved, and the reader's own hold */
	const char **argv; /* "XACK", the stream, "engine", then the ids moved */
	size_t n;
};

struct route_op {
	struct route_batch *batch;
	char *id;
};

/* The batch's last entry (or its reader, done with it) sends the one XACK and polls for the turns now due. */
static void
batch_end(struct route_batch *b)
{
	struct engine *en = b->en;

	if (--b->left > 0)
		return;
	if (b->n > 3 && !en->dying && engine_rc(en) != NULL)
		rconn_command_argv(engine_rc(en), NULL, NULL, (int)b->n, b->argv, NULL);
	for (size_t i = 3; i < b->n; i++)
		free((char *)(uintptr_t)b->argv[i]);
	free(b->argv);
	free(b);
	if (!en->dying)
		engine_poll_now(en);
}

static void
on_route(redisAsyncContext *ac, void *r, void *pd)
{
	struct route_op *op = pd;
	struct route_batch *b = op->batch;
	struct engine *en = b->en;
	bool gone = engine_gone(en);

	if (!gone && r != NULL && ((redisReply *)r)->type == REDIS_REPLY_INTEGER) {
		/* Moved (or moved before): acknowledged with its batch. */
		if (((redisReply *)r)->integer > 0)
			en->st.routed++;
		b->argv[b->n++] = op->id;
	} else {
		/* Not acknowledged: the entry stays pending and is claimed again later. */
		free(op->id);
	}
	free(op);
	batch_end(b);
	if (gone)
		engine_settle(en);
}

static void
route_entry(struct engine *en, struct route_batch *b, redisReply *entry)
{
	redisReply *fields;
	const char *sid = NULL, *from = NULL, *form = NULL, *ms = NULL;
	size_t formlen = 0, i;
	long long t_ms = 0;
	char phone[17], *json = NULL;
	struct route_op *op;

	if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 || entry->element[0]->type != REDIS_REPLY_STRING ||
	    (fields = entry->element[1])->type != REDIS_REPLY_ARRAY)
		return;
	for (i = 0; i + 1 < fields->elements; i += 2) {
		const char *k = fields->element[i]->str;
		redisReply *v = fields->element[i + 1];
		if (strcmp(k, "sid") == 0)
			sid = v->str;
		else if (strcmp(k, "from") == 0)
			from = v->str;
		else if (strcmp(k, "form") == 0)
			form = v->str, formlen = v->len;
		else if (strcmp(k, "received_ms") == 0)
			ms = v->str;
	}
	if (ms != NULL)
		parse_ll(ms, 0, INT64_MAX, &t_ms);
	if (sid == NULL || from == NULL || form == NULL || conv_phone_param(from, phone) < 0 ||
	    (json = intake_entry_json(sid, form, formlen, (uint64_t)t_ms)) == NULL) {
		/* The intake checked all this; a bad entry is acknowledged and logged, not retried forever. */
		log_error("engine: intake entry %s is malformed; acknowledged without a turn", entry->element[0]->str);
		rconn_command(engine_rc(en), NULL, NULL, "XACK %s engine %s", en->k_stream, entry->element[0]->str);
		return;
	}
	op = xcalloc(1, sizeof(*op));
	op->batch = b;
	op->id = xstrdup(entry->element[0]->str);
	b->left++;
	if (move_one(en, phone, sid, json, (uint64_t)t_ms, 0, on_route, op) < 0) {
		free(op->id);
		free(op);
		batch_end(b);
	}
	free(json);
}

static void drain_check(struct engine *en);

static void
on_read(redisAsyncContext *ac, void *r, void *pd)
{
	struct engine *en = pd;
	redisReply *reply = r, *entries = NULL;
	struct route_batch *b;
	size_t i;

	if (engine_gone(en)) {
		engine_settle(en);
		return;
	}
	en->up.reading = false;
	if (reply == NULL)
		return;
	if (reply->type == REDIS_REPLY_ERROR) {
		if (strncmp(reply->str, "NOGROUP", 7) == 0)
			en->up.group_ready = false;
		return;
	}
	/* XREADGROUP: [[stream, [entries]]]; XAUTOCLAIM: [cursor, [entries], [deleted]]. */
	if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 && reply->element[0]->type == REDIS_REPLY_ARRAY)
		entries = reply->element[0]->elements == 2 ? reply->element[0]->element[1] : NULL;
	else if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2)
		entries = reply->element[1];
	if (reply->type == REDIS_REPLY_NIL ||
	    (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 && reply->element[0]->type == REDIS_REPLY_ARRAY &&
	        entries != NULL && entries->type == REDIS_REPLY_ARRAY && entries->elements == 0)) {
		/* Nothing new for this instance: is the stream drained (then gone)? */
		drain_check(en);
		return;
	}
	if (entries == NULL || entries->type != REDIS_REPLY_ARRAY || entries->elements == 0)
		return;
	en->pace.found = true;
	b = xcalloc(1, sizeof(*b));
	b->en = en;
	b->left = 1; /* this reader's own hold, so that an entry done at once does not end the batch */
	b->argv = xreallocarray(NULL, entries->elements + 3, sizeof(*b->argv));
	b->argv[b->n++] = "XACK";
	b->argv[b->n++] = en->k_stream;
	b->argv[b->n++] = "engine";
	for (i = 0; i < entries->elements; i++)
		route_entry(en, b, entries->element[i]);
	batch_end(b);
}

static void
on_group(redisAsyncContext *ac, void *r, void *pd)
{
	struct engine *en = pd;
	redisReply *reply = r;

	if (engine_gone(en)) {
		engine_settle(en);
		return;
	}
	if (reply != NULL &&
	    (reply->type == REDIS_REPLY_STATUS ||
	        (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "BUSYGROUP", 9) == 0)))
		en->up.group_ready = true;
}

static void
on_drained(redisAsyncContext *ac, void *r, void *pd)
{
	struct engine *en = pd;
	redisReply *reply = r;

	if (engine_gone(en)) {
		engine_settle(en);
		return;
	}
	en->up.draining = false;
	if (reply == NULL || reply->type != REDIS_REPLY_INTEGER)
		return; /* asked again at the next poll */
	if (reply->integer == 1 && en->up.stream > 0)
		log_notice("engine: the intake stream of the release before is drained and deleted");
	if (reply->integer == 0 && en->up.stream <= 0)
		log_notice("engine: moving what the intake stream of the release before holds");
	en->up.stream = reply->integer == 1 ? 0 : 1;
}

/* Asks engine-drain whether the old intake stream holds anything left to move (deleting it otherwise). */
static void
drain_check(struct engine *en)
{
	const char *a[1] = {en->k_stream};

	if (en->up.draining || engine_rc(en) == NULL)
		return;
	en->up.draining = true;
	en->up.last_drain = now_usec();
	en->refs++;
	if (engine_eval(en, &en->drain, on_drained, en, 1, a, 1) < 0) {
		en->refs--;
		en->up.draining = false;
	}
}

static void
read_stream(struct engine *en)
{
	uint64_t now = now_usec();

	if (en->up.reading || en->up.draining)
		return;
	if (en->up.stream < 0 || (en->up.stream == 0 && now - en->up.last_drain > 60000000)) {
		drain_check(en);
		return;
	}
	if (en->up.stream == 0)
		return;
	if (!en->up.group_ready) {
		/* From the start of the stream: messages stored before the first run are not skipped. */
		en->refs++;
		if (rconn_command(engine_rc(en), on_group, en, "XGROUP CREATE %s engine 0 MKSTREAM", en->k_stream) < 0)
			en->refs--;
		return;
	}
	en->up.reading = true;
	en->refs++;
	/* Entries another (dead) instance read but never acknowledged are taken over after 30 s. */
	if (now - en->up.last_reclaim > 10000000) {
		en->up.last_reclaim = now;
		if (rconn_command(engine_rc(en), on_read, en, "XAUTOCLAIM %s engine %s 30000 0-0 COUNT 64",
		        en->k_stream, en->o.consumer) < 0) {
			en->refs--;
			en->up.reading = false;
		}
		return;
	}
	if (rconn_command(engine_rc(en), on_read, en, "XREADGROUP GROUP engine %s COUNT 64 STREAMS %s >",
	        en->o.consumer, en->k_stream) < 0) {
		en->refs--;
		en->up.reading = false;
	}
}

/* ---- the inboxes ---- */

/* One inbox being moved: deleted once every message in it is in the arrivals. */
struct inbox_op {
	struct engine *en;
	char *key;
	unsigned left;
	bool failed;
};

static void walk_step(struct engine *en);

static void
inbox_end(struct inbox_op *op)
{
	struct engine *en = op->en;

	if (--op->left > 0)
		return;
	if (!op->failed && !en->dying && engine_rc(en) != NULL)
		rconn_command(engine_rc(en), NULL, NULL, "DEL %s", op->key);
	else
		en->up.walk_failed = true;
	free(op->key);
	free(op);
	if (--en->up.walk_pending == 0 && !en->dying)
		walk_step(en);
}

static void
on_moved(redisAsyncContext *ac, void *r, void *pd)
{
	struct inbox_op *op = pd;
	struct engine *en = op->en;
	bool gone = engine_gone(en);

	if (gone || r == NULL || ((redisReply *)r)->type != REDIS_REPLY_INTEGER)
		op->failed = true;
	else if (((redisReply *)r)->integer > 0)
		en->st.routed++;
	inbox_end(op);
	if (gone)
		engine_settle(en);
}

static void
on_inbox(redisAsyncContext *ac, void *r, void *pd)
{
	struct inbox_op *op = pd;
	struct engine *en = op->en;
	redisReply *reply = r;
	bool gone = engine_gone(en);
	const char *b, *e;
	char phone[17] = "";
	size_t i;

	/* The phone is the key's hash tag: P{+E164}:inbox. */
	if ((b = strchr(op->key, '{')) != NULL && (e = strchr(b, '}')) != NULL && (size_t)(e - b - 1) < sizeof(phone))
		memcpy(phone, b + 1, (size_t)(e - b - 1));
	if (gone || reply == NULL || reply->type != REDIS_REPLY_ARRAY || phone[0] != '+') {
		op->failed = true;
	} else {
		for (i = 0; i < reply->elements; i++) {
			json_t *m = json_loadb(reply->element[i]->str, reply->element[i]->len, 0, NULL);
			const char *sid = json_string_value(json_object_get(m, "sid"));
			long long ms = 0;
			parse_ll(json_string_value(json_object_get(m, "t_ms")) ?: "0", 0, INT64_MAX, &ms);
			if (sid == NULL)
				log_error("engine: an old inbox message of %s has no MessageSid; left out", op->key);
			else {
				op->left++;
				if (move_one(en, phone, sid, reply->element[i]->str, (uint64_t)ms, (unsigned)i,
				        on_moved, op) < 0) {
					op->left--;
					op->failed = true;
				}
			}
			json_decref(m);
		}
	}
	inbox_end(op);
	if (gone)
		engine_settle(en);
}

static void
on_scan(redisAsyncContext *ac, void *r, void *pd)
{
	struct engine *en = pd;
	redisReply *reply = r;
	size_t i;

	if (engine_gone(en)) {
		engine_settle(en);
		return;
	}
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    reply->element[0]->type != REDIS_REPLY_STRING || reply->element[1]->type != REDIS_REPLY_ARRAY) {
		en->up.walk = -1; /* Redis went away: the walk starts over */
		return;
	}
	snprintf(en->up.cursor, sizeof(en->up.cursor), "%s", reply->element[0]->str);
	if (reply->element[1]->elements > 0 && !en->up.moved_any) {
		en->up.moved_any = true;
		log_notice("engine: moving the messages in the inboxes of the release before");
	}
	en->up.walk_pending = 1;
	for (i = 0; i < reply->element[1]->elements; i++) {
		struct inbox_op *op = xcalloc(1, sizeof(*op));
		op->en = en;
		op->key = xstrdup(reply->element[1]->element[i]->str);
		op->left = 1;
		en->up.walk_pending++;
		en->refs++;
		if (rconn_command(engine_rc(en), on_inbox, op, "LRANGE %s 0 -1", op->key) < 0) {
			en->refs--;
			en->up.walk_pending--;
			en->up.walk_failed = true;
			free(op->key);
			free(op);
		}
	}
	if (--en->up.walk_pending == 0)
		walk_step(en);
}

/* The walk's next SCAN step, or its end. */
static void
walk_step(struct engine *en)
{
	if (engine_rc(en) == NULL) {
		en->up.walk = -1;
		return;
	}
	if (strcmp(en->up.cursor, "0") == 0 && en->up.walk_started) {
		if (en->up.walk_failed) {
			en->up.walk = -1; /* what could not be moved is moved by the next walk (a minute later) */
			en->up.last_walk = now_usec();
			return;
		}
		/* The older release's hashes of burst starts and attempts: unused now, and full of phone numbers. */
		rconn_command(engine_rc(en), NULL, NULL, "DEL %s{turns}:first %s{turns}:attempts", en->o.key_prefix,
		    en->o.key_prefix);
		rconn_command(engine_rc(en), NULL, NULL, "SET %s{turns}:inboxes-moved 1", en->o.key_prefix);
		if (en->up.moved_any)
			log_notice("engine: the inboxes of the release before are moved");
		en->up.walk = 0;
		return;
	}
	en->up.walk_started = true;
	en->refs++;
	if (rconn_command(engine_rc(en), on_scan, en, "SCAN %s MATCH %s{+*}:inbox COUNT 1000", en->up.cursor,
	        en->o.key_prefix) < 0) {
		en->refs--;
		en->up.walk = -1;
	}
}

static void
on_marker(redisAsyncContext *ac, void *r, void *pd)
{
	struct engine *en = pd;
	redisReply *reply = r;

	if (engine_gone(en)) {
		engine_settle(en);
		return;
	}
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		en->up.walk = -1;
		return;
	}
	if (reply->type == REDIS_REPLY_STRING) {
		en->up.walk = 0; /* walked before */
		return;
	}
	en->up.walk = 1;
	en->up.walk_started = en->up.walk_failed = false;
	snprintf(en->up.cursor, sizeof(en->up.cursor), "0");
	walk_step(en);
}

void
upgrade_poll(struct engine *en)
{
	if (engine_rc(en) == NULL)
		return;
	read_stream(en);
	if (en->up.walk == -1 && now_usec() - en->up.last_walk > (en->up.last_walk ? 60000000 : 0)) {
		en->up.walk = 2; /* asking for the marker */
		en->up.last_walk = now_usec();
		en->refs++;
		if (rconn_command(engine_rc(en), on_marker, en, "GET %s{turns}:inboxes-moved", en->o.key_prefix) < 0) {
			en->refs--;
			en->up.walk = -1;
		}
	}
}

void
upgrade_redis_up(struct engine *en)
{
	en->up.group_ready = en->up.reading = en->up.draining = false;
	en->up.stream = -1;
	if (en->up.walk != 1)
		en->up.walk = -1;
	upgrade_poll(en);
}
