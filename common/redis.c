/*
 * Redis connection manager. hiredis 0.14 (Debian 12) has no sd-event adapter
 * and no async timeouts, so both live here: an io source that reads, and
 * writes what the loop's last dispatch queued in one write() before the loop
 * polls again (its prepare callback), a timer that bounds connect, AUTH and
 * PING, and a retry timer with exponential backoff and jitter.
 */
#include "config.h"

#include <errno.h>
#include <gcrypt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "common/log.h"
#include "common/redis_url.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "common/redis.h"

#define RCONN_SCRIPTS 64

struct rconn {
	sd_event *event;
	struct redis_url url;
	struct rconn_options o;
	rconn_state_fn fn;
	void *arg;

	redisAsyncContext *ac;
	sd_event_source *io;
	uint32_t events;
	bool flushing; /* inside flush(): hiredis asking for a write then means the socket is full */
	sd_event_source *timer; /* connect deadline, ping interval, or retry */
	/*
	 * The scripts (their texts) sent whole on this connection: Redis runs a
	 * connection's commands in order, so every later EVALSHA of them finds
	 * them. Without it, the EVALSHAs queued before the first NOSCRIPT came back
	 * (hundreds in a burst after Redis restarted) were each refused and sent again.
	 */
	const char *sent_whole[RCONN_SCRIPTS];
	unsigned nsent_whole;

	enum rconn_state state;
	unsigned attempt;
	bool ping_pending;
	bool setup_failed; /* AUTH or SELECT refused on this connection */
	uint64_t ping_sent;
	bool ever_up;
	struct rconn_info info;
};

static void rc_connect(struct rconn *rc);

/* Names passed to on_setup so its error says which command failed. */
static char cmd_auth[] = "AUTH", cmd_select[] = "SELECT";

const char *
rconn_state_name(enum rconn_state s)
{
	switch (s) {
	case RCONN_UP: return "up";
	case RCONN_CONNECTING: return "connecting";
	default: return "down";
	}
}

static void
set_state(struct rconn *rc, enum rconn_state s)
{
	if (rc->state == s)
		return;
	rc->state = s;
	rc->info.state = s;
	rc->info.up_since_usec = s == RCONN_UP ? now_usec() : 0;
	if (rc->fn != NULL)
		rc->fn(rc, s, rc->arg);
}

static void
set_error(struct rconn *rc, const char *what, const char *detail)
{
	snprintf(
	    rc->info.last_error, sizeof(rc->info.last_error), "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
}

static void
arm_timer(struct rconn *rc, uint64_t ms)
{
	sd_event_source_set_time(rc->timer, now_usec() + ms * 1000);
	sd_event_source_set_enabled(rc->timer, SD_EVENT_ONESHOT);
}

/* ---- the sd-event adapter for hiredis ---- */

static void
ev_update(struct rconn *rc, uint32_t events)
{
	if (rc->io == NULL || events == rc->events)
		return;
	rc->events = events;
	if (events == 0) {
		sd_event_source_set_enabled(rc->io, SD_EVENT_OFF);
	} else {
		sd_event_source_set_io_events(rc->io, events);
		sd_event_source_set_enabled(rc->io, SD_EVENT_ON);
	}
}

static void
ev_add_read(void *p)
{
	struct rconn *rc = p;
	ev_update(rc, rc->events | EPOLLIN);
}
static void
ev_del_read(void *p)
{
	struct rconn *rc = p;
	ev_update(rc, rc->events & ~(uint32_t)EPOLLIN);
}

/*
 * hiredis asks for a write after every command it queues. Arming EPOLLOUT for
 * that cost two epoll_ctl calls and a wake-up per batch; instead the io
 * source's prepare callback writes the whole buffer before the loop polls
 * again, and EPOLLOUT is armed only to learn that the connection is
 * established, or when that write could not take everything (the socket is
 * full).
 */
static void
ev_add_write(void *p)
{
	struct rconn *rc = p;

	if (rc->flushing || rc->ac == NULL || !(rc->ac->c.flags & REDIS_CONNECTED))
		ev_update(rc, rc->events | EPOLLOUT);
}
static void
ev_del_write(void *p)
{
	struct rconn *rc = p;
	ev_update(rc, rc->events & ~(uint32_t)EPOLLOUT);
}

static void
ev_cleanup(void *p)
{
	struct rconn *rc = p;

	rc->io = sd_event_source_disable_unref(rc->io);
	rc->events = 0;
}

/* Writes what hiredis holds in one write(), unless EPOLLOUT is armed (on_io writes when the socket takes more). */
static void
flush(struct rconn *rc)
{
	redisAsyncContext *ac = rc->ac;

	if (ac == NULL || !(ac->c.flags & REDIS_CONNECTED) || (rc->events & EPOLLOUT) || sdslen(ac->c.obuf) == 0)
		return;
	/* A write error frees ac in here (on_disconnect clears rc->ac); rc itself stays. */
	rc->flushing = true;
	redisAsyncHandleWrite(ac);
	rc->flushing = false;
}

/*
 * Before each poll. Answers waiting to be read (the io source pending): on_io
 * writes after reading them, together with what their callbacks queue.
 */
static int
on_prepare(sd_event_source *es, void *arg)
{
	struct rconn *rc = arg;

	if (sd_event_source_get_pending(es) == 0)
		flush(rc); /* may free ac and unref es: sd-event keeps es until this returns */
	return 0;
}

static int
on_io(sd_event_source *es, int fd, uint32_t revents, void *arg)
{
	struct rconn *rc = arg;

	if (rc->ac != NULL && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		redisAsyncHandleRead(rc->ac);
	/* The read may have ended the connection. */
	if (rc->ac != NULL && (revents & (EPOLLOUT | EPOLLERR)))
		redisAsyncHandleWrite(rc->ac);
	flush(rc);
	return 0;
}

/* ---- connection life ---- */

static void
schedule_retry(struct rconn *rc)
{
	uint64_t lo = rc->o.backoff_min_ms, hi = rc->o.backoff_max_ms, d = lo;
	unsigned i;

	for (i = 0; i < rc->attempt && d < hi; i++)
		d *= 2;
	if (d > hi)
		d = hi;
	/* Jitter between half and all of the delay, so many daemons don't retry in step. */
	d = d / 2 + random_below(d / 2 + 1);
	rc->attempt++;
	rc->info.failures++;
	/* Said in the log at the 1st, 2nd, 4th, 8th… failure in a row: at start nothing else would say why the
	   service waits (only sd_notify's STATUS, which systemd drops when the start times out). */
	if ((rc->attempt & (rc->attempt - 1)) == 0)
		log_warnx(
		    "%s: cannot reach Redis at %s: %s (attempt %u); retrying: check that Redis runs there and that "
		    "redis.url (REDIS_URL) is right",
		    rc->o.name, rc->info.endpoint, rc->info.last_error[0] != '\0' ? rc->info.last_error : "no answer",
		    rc->attempt);
	set_state(rc, RCONN_DOWN);
	log_debug("%s: retrying in %llu ms", rc->o.name, (unsigned long long)d);
	arm_timer(rc, d);
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rconn *rc = ac->data;

	if (rc == NULL)
		return;
	rc->ac = NULL;
	rc->ping_pending = false;
	if (status != REDIS_OK)
		set_error(rc, "connection lost", ac->errstr);
	if (rc->state == RCONN_UP)
		log_warnx("%s: connection to %s lost, reconnecting", rc->o.name, rc->info.endpoint);
	schedule_retry(rc);
}

/* Drops the connection without waiting for answers (the server may be hung). */
static void
drop(struct rconn *rc, const char *why)
{
	redisAsyncContext *ac = rc->ac;

	set_error(rc, why, NULL);
	if (ac == NULL)
		return;
	/*
	 * redisAsyncFree calls on_disconnect only for a connected context: detach
	 * first and schedule the retry here, once, whatever hiredis does.
	 */
	ac->data = NULL;
	rc->ac = NULL;
	redisAsyncFree(ac);
	rc->ping_pending = false;
	if (rc->state == RCONN_UP)
		log_warnx("%s: %s: %s, reconnecting", rc->o.name, rc->info.endpoint, why);
	schedule_retry(rc);
}

static void
on_ping(redisAsyncContext *ac, void *r, void *privdata)
{
	struct rconn *rc = privdata;
	redisReply *reply = r;

	if (ac->data == NULL || rc->ac != ac)
		return; /* answer to a connection we already dropped */
	rc->ping_pending = false;
	if (reply == NULL)
		return;
	if (rc->setup_failed)
		return; /* the AUTH/SELECT error is the one worth keeping */
	if (reply->type != REDIS_REPLY_STATUS || strcmp(reply->str, "PONG") != 0) {
		set_error(rc, "PING", reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected answer");
		redisAsyncDisconnect(ac);
		return;
	}
	rc->info.ping_rtt_usec = now_usec() - rc->ping_sent;
	if (rc->state != RCONN_UP) {
		if (rc->ever_up)
			rc->info.reconnects++;
		rc->ever_up = true;
		rc->attempt = 0;
		rc->info.last_error[0] = '\0';
		log_info("%s: connected to %s (db %d)", rc->o.name, rc->info.endpoint, rc->url.db);
		set_state(rc, RCONN_UP);
	}
	arm_timer(rc, rc->o.ping_interval_ms);
}

/* AUTH and SELECT must succeed; their errors are configuration problems worth showing. */
static void
on_setup(redisAsyncContext *ac, void *r, void *privdata)
{
	struct rconn *rc = ac->data;
	redisReply *reply = r;

	if (rc == NULL || reply == NULL)
		return;
	if (reply->type == REDIS_REPLY_ERROR) {
		char what[32];
		snprintf(what, sizeof(what), "%s refused", (const char *)privdata);
		rc->setup_failed = true;
		set_error(rc, what, reply->str);
		log_warnx("%s: %s: %s", rc->o.name, rc->info.endpoint, rc->info.last_error);
		redisAsyncDisconnect(ac);
	}
}

static void
send_ping(struct rconn *rc)
{
	rc->ping_pending = true;
	rc->ping_sent = now_usec();
	if (redisAsyncCommand(rc->ac, on_ping, rc, "PING") != REDIS_OK)
		drop(rc, "cannot send PING");
}

static void
on_connect(const redisAsyncContext *cac, int status)
{
	struct rconn *rc = cac->data;

	if (rc == NULL)
		return;
	if (status != REDIS_OK) {
		/* hiredis frees the context after this callback. */
		set_error(rc, "connect", cac->errstr);
		log_debug("%s: cannot connect to %s: %s", rc->o.name, rc->info.endpoint, cac->errstr);
		rc->ac = NULL;
		schedule_retry(rc);
		return;
	}
	rc->setup_failed = false;
	if (rc->url.password != NULL) {
		if (rc->url.username != NULL)
			redisAsyncCommand(rc->ac, on_setup, cmd_auth, "AUTH %s %s", rc->url.username, rc->url.password);
		else
			redisAsyncCommand(rc->ac, on_setup, cmd_auth, "AUTH %s", rc->url.password);
	}
	if (rc->url.db != 0)
		redisAsyncCommand(rc->ac, on_setup, cmd_select, "SELECT %d", rc->url.db);
	/* Only a label: a user whose ACL refuses it still gets a working connection. */
	if (rc->o.client_name != NULL)
		redisAsyncCommand(rc->ac, NULL, NULL, "CLIENT SETNAME %s", rc->o.client_name);
	send_ping(rc);
}

static int
on_timer(sd_event_source *es, uint64_t usec, void *arg)
{
	struct rconn *rc = arg;

	switch (rc->state) {
	case RCONN_DOWN: rc_connect(rc); break;
	case RCONN_CONNECTING: drop(rc, "connect timed out"); break;
	case RCONN_UP:
		if (rc->ping_pending) {
			drop(rc, "PING timed out");
			break;
		}
		send_ping(rc);
		/* The answer re-arms the interval; this bounds the wait for it. */
		arm_timer(rc, rc->o.connect_timeout_ms);
		break;
	}
	return 0;
}

static void
rc_connect(struct rconn *rc)
{
	redisAsyncContext *ac;
	int r;

	if (rc->url.path != NULL)
		ac = redisAsyncConnectUnix(rc->url.path);
	else
		ac = redisAsyncConnect(rc->url.host, rc->url.port);
	if (ac == NULL)
		fatalx("redis: out of memory");
	if (ac->err) {
		set_error(rc, "connect", ac->errstr);
		log_debug("%s: cannot connect to %s: %s", rc->o.name, rc->info.endpoint, ac->errstr);
		redisAsyncFree(ac);
		schedule_retry(rc);
		return;
	}
	rc->ac = ac;
	ac->data = rc;
	rc->nsent_whole = 0;
	if ((r = sd_event_add_io(rc->event, &rc->io, ac->c.fd, 0, on_io, rc)) < 0)
		fatalx("redis: sd_event_add_io: %s", strerror(-r));
	if ((r = sd_event_source_set_prepare(rc->io, on_prepare)) < 0)
		fatalx("redis: sd_event_source_set_prepare: %s", strerror(-r));
	if (rc->o.priority != 0 && (r = sd_event_source_set_priority(rc->io, rc->o.priority)) < 0)
		fatalx("redis: sd_event_source_set_priority: %s", strerror(-r));
	ac->ev.data = rc;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	set_state(rc, RCONN_CONNECTING);
	arm_timer(rc, rc->o.connect_timeout_ms);
	/* Setting the callbacks after the hooks makes hiredis wait for the first write event. */
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	redisAsyncSetConnectCallback(ac, on_connect);
}

struct rconn *
rconn_new(sd_event *e, const struct rconn_options *o, rconn_state_fn fn, void *arg)
{
	struct rconn *rc = xcalloc(1, sizeof(*rc));
	const char *why;
	int r;

	if (redis_url_parse(o->url, &rc->url, &why) < 0) {
		free(rc);
		return NULL;
	}
	rc->event = sd_event_ref(e);
	rc->o = *o;
	rc->o.url = NULL;
	if (rc->o.backoff_min_ms == 0)
		rc->o.backoff_min_ms = 100;
	if (rc->o.backoff_max_ms == 0)
		rc->o.backoff_max_ms = 10000;
	if (rc->o.name == NULL)
		rc->o.name = "redis";
	rc->fn = fn;
	rc->arg = arg;
	rc->info.db = rc->url.db;
	if (rc->url.path != NULL)
		snprintf(rc->info.endpoint, sizeof(rc->info.endpoint), "unix:%s", rc->url.path);
	else if (strchr(rc->url.host, ':') != NULL)
		snprintf(rc->info.endpoint, sizeof(rc->info.endpoint), "[%s]:%d", rc->url.host, rc->url.port);
	else
		snprintf(rc->info.endpoint, sizeof(rc->info.endpoint), "%s:%d", rc->url.host, rc->url.port);
	if ((r = sd_event_add_time(e, &rc->timer, CLOCK_MONOTONIC, 0, 10000, on_timer, rc)) < 0)
		fatalx("redis: sd_event_add_time: %s", strerror(-r));
	rc_connect(rc);
	return rc;
}

void
rconn_free(struct rconn *rc)
{
	if (rc == NULL)
		return;
	rc->fn = NULL;
	if (rc->ac != NULL) {
		redisAsyncContext *ac = rc->ac;
		ac->data = NULL;
		rc->ac = NULL;
		redisAsyncFree(ac);
	}
	rc->io = sd_event_source_disable_unref(rc->io);
	sd_event_source_disable_unref(rc->timer);
	sd_event_unref(rc->event);
	redis_url_clear(&rc->url);
	free(rc);
}

enum rconn_state
rconn_state(const struct rconn *rc)
{
	return rc->state;
}

void
rconn_get_info(const struct rconn *rc, struct rconn_info *info)
{
	*info = rc->info;
}

int
rconn_command(struct rconn *rc, redisCallbackFn *fn, void *privdata, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (rc->state != RCONN_UP || rc->ac == NULL)
		return -ENOTCONN;
	va_start(ap, fmt);
	r = redisvAsyncCommand(rc->ac, fn, privdata, fmt, ap);
	va_end(ap);
	return r == REDIS_OK ? 0 : -ENOTCONN;
}

int
rconn_command_argv(
    struct rconn *rc, redisCallbackFn *fn, void *privdata, int argc, const char **argv, const size_t *argvlen)
{
	if (rc->state != RCONN_UP || rc->ac == NULL)
		return -ENOTCONN;
	return redisAsyncCommandArgv(rc->ac, fn, privdata, argc, argv, argvlen) == REDIS_OK ? 0 : -ENOTCONN;
}

void
rscript_init(struct rscript *sc, const char *text)
{
	unsigned char d[20];

	sc->text = text;
	gcry_md_hash_buffer(GCRY_MD_SHA1, d, text, strlen(text));
	hex_encode(d, sizeof(d), sc->sha);
}

/*
 * The commands of rconn_eval are written here in Redis's protocol, into one
 * buffer of the exact size: hiredis's redisAsyncCommandArgv grows an sds
 * argument by argument with sdscatfmt (and rconn_eval copied every argument
 * first, to be able to send it again), which cost a tenth of the daemon's
 * instructions. What goes over the wire is the same.
 */
static size_t
dec_len(size_t n)
{
	size_t d = 1;

	while (n >= 10) {
		n /= 10;
		d++;
	}
	return d;
}

static char *
put_dec(char *p, size_t n)
{
	size_t d = dec_len(n), i;

	for (i = d; i > 0; i--) {
		p[i - 1] = (char)('0' + n % 10);
		n /= 10;
	}
	return p + d;
}

/* The size of one argument as "$<len>\r\n<bytes>\r\n". */
static size_t
bulk_size(size_t n)
{
	return 1 + dec_len(n) + 2 + n + 2;
}

static char *
put_bulk(char *p, const char *s, size_t n)
{
	*p++ = '$';
	p = put_dec(p, n);
	*p++ = '\r';
	*p++ = '\n';
	memcpy(p, s, n);
	p += n;
	*p++ = '\r';
	*p++ = '\n';
	return p;
}

/* "*<n>\r\n" followed by the command's name and the script (its SHA-1 or its text). */
static char *
put_head(char *p, int nargs, const char *name, const char *script, size_t scriptlen)
{
	*p++ = '*';
	p = put_dec(p, (size_t)nargs);
	*p++ = '\r';
	*p++ = '\n';
	p = put_bulk(p, name, strlen(name));
	return put_bulk(p, script, scriptlen);
}

static size_t
head_size(int nargs, const char *name, size_t scriptlen)
{
	return 1 + dec_len((size_t)nargs) + 2 + bulk_size(strlen(name)) + bulk_size(scriptlen);
}

/* One script call in flight, with what is needed to send it again as EVAL. */
struct evalreq {
	struct rconn *rc;
	/* The script's text (a string literal): its rscript may be freed (a reload) while the call is in flight. */
	const char *text;
	redisCallbackFn *fn;
	void *privdata;
	int nargs; /* including the command, the script and numkeys */
	char *cmd; /* the command as sent: EVALSHA, or EVAL when full */
	size_t len;
	size_t head; /* where numkeys starts in cmd: what follows is the same for EVAL */
	bool full;
};

static void
evalreq_free(struct evalreq *e)
{
	free(e->cmd);
	free(e);
}

static void
on_eval(redisAsyncContext *ac, void *r, void *privdata)
{
	struct evalreq *e = privdata;
	redisReply *reply = r;

	if (reply != NULL && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0 && !e->full &&
	    e->rc->ac == ac) {
		/* Redis restarted or flushed its scripts: send the text once; it is cached again. */
		size_t tl = strlen(e->text), tail = e->len - e->head, hl = head_size(e->nargs, "EVAL", tl);
		char *cmd = xmalloc(hl + tail), *p;

		p = put_head(cmd, e->nargs, "EVAL", e->text, tl);
		memcpy(p, e->cmd + e->head, tail);
		free(e->cmd);
		e->cmd = cmd;
		e->len = hl + tail;
		e->head = hl;
		e->full = true;
		if (redisAsyncFormattedCommand(ac, on_eval, e, e->cmd, e->len) == REDIS_OK)
			return;
		reply = NULL;
	}
	if (e->fn != NULL)
		e->fn(ac, reply, e->privdata);
	evalreq_free(e);
}

/* True if the script was sent whole on this connection already; else counts it as sent now, when there is room. */
static bool
known_script(struct rconn *rc, const char *text)
{
	unsigned i;

	for (i = 0; i < rc->nsent_whole; i++)
		if (rc->sent_whole[i] == text)
			return true;
	if (rc->nsent_whole == RCONN_SCRIPTS)
		return true; /* no room to remember it: EVALSHA, and NOSCRIPT sends it whole */
	rc->sent_whole[rc->nsent_whole++] = text;
	return false;
}

int
rconn_eval(struct rconn *rc, const struct rscript *sc, redisCallbackFn *fn, void *privdata, int nkeys, int argc,
    const char **argv, const size_t *argvlen)
{
	struct evalreq *e;
	char nk[24], *p;
	size_t nkl, len;
	int i;

	if (rc->state != RCONN_UP || rc->ac == NULL)
		return -ENOTCONN;
	e = xcalloc(1, sizeof(*e));
	e->rc = rc;
	e->text = sc->text;
	e->fn = fn;
	e->privdata = privdata;
	e->nargs = argc + 3;
	e->full = !known_script(rc, sc->text);
	if (nkeys >= 0)
		nkl = (size_t)(put_dec(nk, (size_t)nkeys) - nk); /* snprintf cost more than the rest of the header */
	else
		nkl = (size_t)snprintf(nk, sizeof(nk), "%d", nkeys);
	if (e->full)
		e->head = head_size(e->nargs, "EVAL", strlen(sc->text));
	else
		e->head = head_size(e->nargs, "EVALSHA", 40);
	len = e->head + bulk_size(nkl);
	for (i = 0; i < argc; i++)
		len += bulk_size(argvlen != NULL ? argvlen[i] : strlen(argv[i]));
	e->cmd = xmalloc(len);
	e->len = len;
	if (e->full)
		p = put_head(e->cmd, e->nargs, "EVAL", sc->text, strlen(sc->text));
	else
		p = put_head(e->cmd, e->nargs, "EVALSHA", sc->sha, 40);
	p = put_bulk(p, nk, nkl);
	for (i = 0; i < argc; i++)
		p = put_bulk(p, argv[i], argvlen != NULL ? argvlen[i] : strlen(argv[i]));
	if (redisAsyncFormattedCommand(rc->ac, on_eval, e, e->cmd, e->len) != REDIS_OK) {
		evalreq_free(e);
		return -ENOTCONN;
	}
	return 0;
}
