/*
 * The outbox's upgrade from the previous release's format, where a
 * recipient's queue P{outbox}:q:<to> held bare job ids and each job was a
 * hash P{outbox}:job:<id>: each such job becomes today's JSON job in place
 * (redis/sender-upgrade.lua). The sender walks the key space once, at its
 * first connection, and converts a legacy head a claim reports at once.
 */
#ifndef CRMB_SENDER_UPGRADE_H
#define CRMB_SENDER_UPGRADE_H

#include <stdbool.h>

#include "common/redis.h"

struct sender_upgrade;

/* A walker for the keys under key_prefix (copied), sending on *rcp (borrowed; read at each step, may change). */
struct sender_upgrade *sender_upgrade_new(const char *key_prefix, struct rconn *const *rcp);
/* Stops; steps still under way end without touching it. NULL is fine. */
void sender_upgrade_free(struct sender_upgrade *u);
/*
 * Starts the walk unless it is under way or done (P{outbox}:upgraded set):
 * SCAN of the queues and job hashes, one step of 1000 at a time. A walk cut
 * short (Redis gone) starts again at the next call.
 */
void sender_upgrade_walk(struct sender_upgrade *u);
/* Whether the walk has finished (here or in an earlier run). */
bool sender_upgrade_done(const struct sender_upgrade *u);
/*
 * Converts the legacy job id queued for to (+E164); fn gets the script's
 * answer (1 converted, -2 an id without a job, -1 a job in no queue, 0
 * nothing to do), or
 * NULL. Returns 0, or -ENOTCONN (fn is then not called).
 */
int sender_upgrade_one(struct sender_upgrade *u, const char *to, const char *id, redisCallbackFn *fn, void *pd);

#endif
