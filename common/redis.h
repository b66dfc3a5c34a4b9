/*
 * The daemon's Redis connection: hiredis's asynchronous API on the sd-event
 * loop, with AUTH/SELECT from REDIS_URL, a PING health check, and reconnection
 * with exponential backoff and jitter whenever the connection drops.
 */
#ifndef CRMB_REDIS_H
#define CRMB_REDIS_H

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <systemd/sd-event.h>

struct rconn;

enum rconn_state { RCONN_DOWN, RCONN_CONNECTING, RCONN_UP };

/* Told of every change of state. */
typedef void (*rconn_state_fn)(struct rconn *rc, enum rconn_state state, void *arg);

struct rconn_options {
	const char *url; /* REDIS_URL; copied */
	uint64_t connect_timeout_ms; /* for connect + AUTH + PING, and for a PING answer */
	uint64_t ping_interval_ms; /* health check while connected */
	uint64_t backoff_min_ms; /* first retry delay (0: 100 ms) */
	uint64_t backoff_max_ms; /* longest retry delay (0: 10 s) */
	const char *name; /* in log lines ("redis" when NULL); a string literal */
	const char *client_name; /* CLIENT SETNAME, so that CLIENT LIST tells them apart (NULL: none); a literal */
	int64_t priority; /* the socket's sd-event priority: lower is dispatched first (0: SD_EVENT_PRIORITY_NORMAL) */
};

struct rconn_info {
	enum rconn_state state;
	char last_error[128]; /* "" when none */
	uint64_t reconnects; /* successful connections after the first */
	uint64_t failures; /* failed attempts and lost connections */
	uint64_t ping_rtt_usec; /* last PING round trip */
	uint64_t up_since_usec; /* CLOCK_MONOTONIC, 0 when not up */
	int db;
	char endpoint[128]; /* host:port or socket path, no credentials */
};

/* Starts connecting at once. Returns NULL if the URL is invalid. fn may be NULL. */
struct rconn *rconn_new(sd_event *e, const struct rconn_options *o, rconn_state_fn fn, void *arg);
/* Closes the connection; pending commands get a NULL reply. NULL is fine. */
void rconn_free(struct rconn *rc);
/* The current state. */
enum rconn_state rconn_state(const struct rconn *rc);
/* Copies the connection's figures into info. */
void rconn_get_info(const struct rconn *rc, struct rconn_info *info);
/* A state's name: "down", "connecting" or "up". */
const char *rconn_state_name(enum rconn_state s);
/*
 * Sends a command (hiredis format) when up. fn gets the reply, or NULL if the
 * connection is lost first. Returns 0, or -ENOTCONN when not up.
 */
int rconn_command(struct rconn *rc, redisCallbackFn *fn, void *privdata, const char *fmt, ...);

/* A Lua script: sent whole (EVAL) the first time on each connection and when Redis lost it (NOSCRIPT), else EVALSHA. */
struct rscript {
	const char *text;
	char sha[41];
};

/* Computes the script's SHA-1; text is borrowed and must outlive the script (a string literal). */
void rscript_init(struct rscript *sc, const char *text);
/*
 * Runs sc with nkeys keys followed by the other arguments (argv[0..argc),
 * copied; binary-safe with argvlen, NUL-terminated text when argvlen is
 * NULL). fn gets the reply, or NULL if the connection is lost.
 * Returns 0 or -ENOTCONN.
 */
int rconn_eval(struct rconn *rc, const struct rscript *sc, redisCallbackFn *fn, void *privdata, int nkeys, int argc,
    const char **argv, const size_t *argvlen);

/* Like rconn_command with an argument vector (binary-safe). */
int rconn_command_argv(
    struct rconn *rc, redisCallbackFn *fn, void *privdata, int argc, const char **argv, const size_t *argvlen);

#endif
