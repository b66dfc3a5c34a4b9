/*
 * The outbox's upgrade from the previous release's jobs: a walk of the key
 * space at the sender's first connection (SCAN for P{outbox}:q:* and
 * P{outbox}:job:*, one step at a time), each legacy job converted in place
 * by redis/sender-upgrade.lua, then the marker P{outbox}:upgraded so that
 * later starts skip it. Pending Redis calls hold a liveness token, as in
 * sender.c, so the walker may be freed while they are under way.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/alive.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "redis/scripts.h"
#include "twilio/sender-upgrade.h"

enum walk { WALK_NONE, WALK_UNDER_WAY, WALK_DONE };

struct sender_upgrade {
	struct rconn *const *rcp;
	struct alive *alive;
	char *k_qprefix, *k_jobprefix, *k_marker, *match;
	struct rscript script;
	enum walk walk;
	char *cursor; /* NULL before the first SCAN step */
	unsigned pending; /* steps not answered yet */
	bool failed; /* one was lost or refused: walk again later */
	long long counts[4]; /* by sender-upgrade's answer + 2: ids without a job, jobs in no queue, none, converted */
};

/* What a pending call holds instead of the walker. */
/* A step under way: the recipient or the job id it is about. */
struct upg {
	struct alive *alive;
	char *name;
};

static void *
hold(struct sender_upgrade *w)
{
	return alive_hold(w->alive);
}

/* Drops one reference; returns the walker, or NULL if it is gone. */
static struct sender_upgrade *
release(void *pd)
{
	return alive_release(pd);
}

/* The connection, when it is up. */
static struct rconn *
conn(const struct sender_upgrade *w)
{
	return *w->rcp != NULL && rconn_state(*w->rcp) == RCONN_UP ? *w->rcp : NULL;
}

static char *
key2(const char *prefix, const char *suffix)
{
	char *k;

	xasprintf(&k, "%s%s", prefix, suffix);
	return k;
}

int
sender_upgrade_one(struct sender_upgrade *w, const char *to, const char *id, redisCallbackFn *fn, void *pd)
{
	char *q, *jk;
	const char *argv[3];
	int r;

	if (conn(w) == NULL)
		return -ENOTCONN;
	q = key2(w->k_qprefix, to);
	jk = key2(w->k_jobprefix, id);
	argv[0] = q;
	argv[1] = jk;
	argv[2] = id;
	r = rconn_eval(conn(w), &w->script, fn, pd, 2, 3, argv, NULL);
	free(jk);
	free(q);
	return r;
}

static bool
all_digits(const char *p)
{
	if (*p == '\0')
		return false;
	for (; *p != '\0'; p++)
		if (!isdigit((unsigned char)*p))
			return false;
	return true;
}

/* A walk step sent: it holds the walker and names the recipient or the job it is about. */
static struct upg *
upg_new(struct sender_upgrade *w, const char *name)
{
	struct upg *u = xcalloc(1, sizeof(*u));

	u->alive = hold(w);
	u->name = name != NULL ? xstrdup(name) : NULL;
	w->pending++;
	return u;
}

/* A walk step answered: the walker, or NULL if it is gone. Call upg_settle() once its own steps are sent. */
static struct sender_upgrade *
upg_answered(struct upg *u, const redisReply *reply)
{
	struct sender_upgrade *w = release(u->alive);

	if (w != NULL && (reply == NULL || reply->type == REDIS_REPLY_ERROR))
		w->failed = true;
	return w;
}

static void upg_scan(struct sender_upgrade *w);

/* One step fewer under way; with none left, the next SCAN step, or the end of the walk. */
static void
upg_settle(struct sender_upgrade *w)
{
	if (--w->pending > 0)
		return;
	if (w->failed) {
		/* Redis went away or refused: the walk starts again from the beginning at a later tick. */
		w->walk = WALK_NONE;
		return;
	}
	if (w->cursor == NULL || strcmp(w->cursor, "0") != 0) {
		upg_scan(w);
		return;
	}
	w->walk = WALK_DONE;
	if (conn(w) != NULL)
		rconn_command(conn(w), NULL, NULL, "SET %s 1", w->k_marker);
	if (w->counts[0] + w->counts[1] + w->counts[3] > 0)
		log_notice(
		    "sender: outbox upgraded: %lld queued replies converted, %lld ids without a job and %lld jobs "
		    "in no queue dropped",
		    w->counts[3], w->counts[0], w->counts[1]);
}

/* sender-upgrade's answer for one job: 1 converted, -2 an id without a job, -1 a job in no queue, 0 none. */
static void
on_upg_one(redisAsyncContext *ac, void *r, void *pd)
{
	struct upg *u = pd;
	redisReply *reply = r;
	struct sender_upgrade *w = upg_answered(u, reply);

	if (w != NULL) {
		if (reply != NULL && reply->type == REDIS_REPLY_INTEGER && reply->integer >= -2 && reply->integer <= 1)
			w->counts[reply->integer + 2]++;
		upg_settle(w);
	}
	free(u->name);
	free(u);
}

static void
upg_convert(struct sender_upgrade *w, const char *to, const char *id)
{
	struct upg *c = upg_new(w, NULL);

	if (sender_upgrade_one(w, to, id, on_upg_one, c) < 0) {
		w->failed = true;
		release(c->alive);
		free(c);
		upg_settle(w);
	}
}

static void on_upg_queue(redisAsyncContext *ac, void *r, void *pd);
static void on_upg_job(redisAsyncContext *ac, void *r, void *pd);

/* Reads a queue found by the walk (LRANGE; name is its recipient), or a legacy job's recipient (name: its id). */
static void
upg_read(struct sender_upgrade *w, const char *name, const char *key, bool queue)
{
	struct upg *u = upg_new(w, name);

	if (conn(w) == NULL ||
	    rconn_command(conn(w), queue ? on_upg_queue : on_upg_job, u, queue ? "LRANGE %s 0 -1" : "HGET %s to", key) <
	        0) {
		w->failed = true;
		w->pending--;
		release(u->alive);
		free(u->name);
		free(u);
	}
}

/* A queue's entries (u->name is the recipient): each bare id is a legacy job. */
static void
on_upg_queue(redisAsyncContext *ac, void *r, void *pd)
{
	struct upg *u = pd;
	redisReply *reply = r;
	struct sender_upgrade *w = upg_answered(u, reply);
	size_t i;

	if (w != NULL) {
		for (i = 0; reply != NULL && reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++)
			if (reply->element[i]->type == REDIS_REPLY_STRING && all_digits(reply->element[i]->str))
				upg_convert(w, u->name, reply->element[i]->str);
		upg_settle(w);
	}
	free(u->name);
	free(u);
}

/* A legacy job's recipient (u->name is its id): converted into its queue, or dropped if in none. */
static void
on_upg_job(redisAsyncContext *ac, void *r, void *pd)
{
	struct upg *u = pd;
	redisReply *reply = r;
	struct sender_upgrade *w = upg_answered(u, reply);

	if (w != NULL) {
		if (reply != NULL && reply->type == REDIS_REPLY_STRING) {
			upg_convert(w, reply->str, u->name);
		} else if (reply != NULL && reply->type == REDIS_REPLY_NIL) {
			/* Converted meanwhile (gone), or a hash without a recipient: nothing can send it. */
			char *jk = key2(w->k_jobprefix, u->name);
			if (conn(w) != NULL)
				rconn_command(conn(w), NULL, NULL, "DEL %s", jk);
			free(jk);
		}
		upg_settle(w);
	}
	free(u->name);
	free(u);
}

/* One SCAN step: {cursor, keys}, the keys being queues and legacy jobs. */
static void
on_upg_scan(redisAsyncContext *ac, void *r, void *pd)
{
	struct upg *u = pd;
	redisReply *reply = r, *keys;
	struct sender_upgrade *w = upg_answered(u, reply);
	size_t i, nq = strlen(w != NULL ? w->k_qprefix : ""), nj = strlen(w != NULL ? w->k_jobprefix : "");

	if (w != NULL) {
		if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
		    reply->element[0]->type == REDIS_REPLY_STRING && reply->element[1]->type == REDIS_REPLY_ARRAY) {
			free(w->cursor);
			w->cursor = xstrdup(reply->element[0]->str);
			keys = reply->element[1];
			for (i = 0; i < keys->elements; i++) {
				const char *k =
				    keys->element[i]->type == REDIS_REPLY_STRING ? keys->element[i]->str : "";
				if (strncmp(k, w->k_qprefix, nq) == 0 && k[nq] == '+')
					upg_read(w, k + nq, k, true);
				else if (strncmp(k, w->k_jobprefix, nj) == 0 && all_digits(k + nj))
					upg_read(w, k + nj, k, false);
			}
		} else
			w->failed = true;
		upg_settle(w);
	}
	free(u->name);
	free(u);
}

static void
upg_scan(struct sender_upgrade *w)
{
	struct upg *u = upg_new(w, NULL);

	if (conn(w) == NULL ||
	    rconn_command(
	        conn(w), on_upg_scan, u, "SCAN %s MATCH %s COUNT 1000", w->cursor ? w->cursor : "0", w->match) < 0) {
		w->failed = true;
		release(u->alive);
		free(u);
		upg_settle(w);
	}
}

/* The marker: set once a walk finished, so later starts skip it. */
static void
on_upg_marker(redisAsyncContext *ac, void *r, void *pd)
{
	struct upg *u = pd;
	redisReply *reply = r;
	struct sender_upgrade *w = upg_answered(u, reply);

	if (w != NULL) {
		if (reply != NULL && reply->type == REDIS_REPLY_STRING) {
			w->pending--;
			w->walk = WALK_DONE;
		} else
			upg_settle(w);
	}
	free(u);
}

void
sender_upgrade_walk(struct sender_upgrade *w)
{
	struct upg *u;

	if (w->walk != WALK_NONE || conn(w) == NULL)
		return;
	w->walk = WALK_UNDER_WAY;
	w->failed = false;
	w->pending = 0;
	free(w->cursor);
	w->cursor = NULL;
	u = upg_new(w, NULL);
	if (rconn_command(conn(w), on_upg_marker, u, "GET %s", w->k_marker) < 0) {
		release(u->alive);
		free(u);
		w->pending = 0;
		w->walk = WALK_NONE;
	}
}

bool
sender_upgrade_done(const struct sender_upgrade *w)
{
	return w->walk == WALK_DONE;
}

struct sender_upgrade *
sender_upgrade_new(const char *key_prefix, struct rconn *const *rcp)
{
	struct sender_upgrade *w = xcalloc(1, sizeof(*w));
	static const char tail[] = "{outbox}:[qj]*";
	size_t i, n = strlen(key_prefix);
	char *p;

	w->rcp = rcp;
	w->alive = alive_new(w);
	xasprintf(&w->k_qprefix, "%s{outbox}:q:", key_prefix);
	xasprintf(&w->k_jobprefix, "%s{outbox}:job:", key_prefix);
	xasprintf(&w->k_marker, "%s{outbox}:upgraded", key_prefix);
	/* SCAN's pattern: the prefix with its glob characters escaped, then the queues and the jobs. */
	p = w->match = xmalloc(2 * n + sizeof(tail));
	for (i = 0; i < n; i++) {
		if (strchr("*?[]\\", key_prefix[i]) != NULL)
			*p++ = '\\';
		*p++ = key_prefix[i];
	}
	memcpy(p, tail, sizeof(tail));
	rscript_init(&w->script, redis_script_sender_upgrade);
	return w;
}

void
sender_upgrade_free(struct sender_upgrade *w)
{
	if (w == NULL)
		return;
	alive_end(w->alive);
	free(w->k_qprefix);
	free(w->k_jobprefix);
	free(w->k_marker);
	free(w->match);
	free(w->cursor);
	free(w);
}
