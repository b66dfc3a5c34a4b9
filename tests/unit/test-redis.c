/*
 * Tests for common/redis.c against a real redis-server started here: the
 * connection comes up, carries commands, notices the server going away or
 * hanging, and comes back by itself; AUTH and SELECT from the URL work;
 * commands are written once per loop iteration and none is ever left unsent.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "common/redis.h"
#include "tests/tap.h"
#include "tests/testutil.h"

static sd_event *ev;
static char dir[] = "/tmp/crmb-redis-XXXXXX";
static int port;
static int ups, downs;
static struct rconn *up_rc; /* set: on_state sends a command on it whenever it comes up */
static int up_answers;

static pid_t
redis_start(const char *password)
{
	const char *bin = getenv("REDIS_SERVER");
	char portbuf[16];
	pid_t pid;

	snprintf(portbuf, sizeof(portbuf), "%d", port);
	if ((pid = fork()) == 0) {
		int devnull = open("/dev/null", 1);
		dup2(devnull, 1);
		if (password != NULL)
			execl(bin, bin, "--port", portbuf, "--bind", "127.0.0.1", "--dir", dir, "--save", "",
			    "--appendonly", "no", "--requirepass", password, (char *)NULL);
		else
			execl(bin, bin, "--port", portbuf, "--bind", "127.0.0.1", "--dir", dir, "--save", "",
			    "--appendonly", "no", (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void
redis_stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void
on_up_answer(redisAsyncContext *ac, void *r, void *priv)
{
	if (r != NULL)
		up_answers++;
}

static void
on_state(struct rconn *rc, enum rconn_state s, void *arg)
{
	if (s == RCONN_UP)
		ups++;
	if (s == RCONN_DOWN)
		downs++;
	if (s == RCONN_UP && rc == up_rc)
		rconn_command(rc, on_up_answer, NULL, "PING");
}

/* Runs the loop until rc reaches want or ms pass; true if it did. */
static bool
wait_state(struct rconn *rc, enum rconn_state want, int ms)
{
	uint64_t end = now_usec() + (uint64_t)ms * 1000;

	while (now_usec() < end) {
		if (rconn_state(rc) == want)
			return true;
		sd_event_run(ev, 50000);
	}
	return rconn_state(rc) == want;
}

static char got[64];

static void
on_get(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;

	snprintf(got, sizeof(got), "%s", reply != NULL && reply->type == REDIS_REPLY_STRING ? reply->str : "(none)");
}

/* A burst of RPUSHes of a 64 KiB value, far more than a socket's buffer takes in one write(). */
#define BURST 256
#define BURST_VALUE (64 * 1024)

struct burst {
	struct rconn *rc;
	char *value;
	int answers, nulls, errors;
	long long len; /* LLEN once the burst is answered, -1 until then */
};

static void
on_push(redisAsyncContext *ac, void *r, void *priv)
{
	struct burst *b = priv;
	redisReply *reply = r;

	if (reply == NULL)
		b->nulls++;
	else if (reply->type != REDIS_REPLY_INTEGER)
		b->errors++;
	else
		b->answers++;
}

static void
on_len(redisAsyncContext *ac, void *r, void *priv)
{
	struct burst *b = priv;
	redisReply *reply = r;

	b->len = reply != NULL && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -2;
}

static void
send_burst(struct burst *b)
{
	int i;

	for (i = 0; i < BURST; i++)
		if (rconn_command(b->rc, on_push, b, "RPUSH burst %b", b->value, (size_t)BURST_VALUE) < 0)
			b->errors++;
	if (rconn_command(b->rc, on_len, b, "LLEN burst") < 0)
		b->len = -3;
}

/* Queues the burst from inside a reply callback, as the engine does. */
static void
on_burst_start(redisAsyncContext *ac, void *r, void *priv)
{
	if (r != NULL)
		send_burst(priv);
}

/* What a script answered: its array of strings joined with '|', "(null)" when the connection was lost. */
static char evalgot[256];
static size_t evalgot_len;
static int evals;

static void
on_evalreply(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	size_t i, n = 0;

	evals++;
	evalgot_len = 0;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
		diag("eval: %s",
		    reply == NULL                          ? "(null)"
		        : reply->type == REDIS_REPLY_ERROR ? reply->str
		                                           : "not an array");
		return;
	}
	for (i = 0; i < reply->elements; i++) {
		const redisReply *el = reply->element[i];
		/* Room for the separator, the length, the colon and the bytes (which may hold a NUL). */
		if (n + 24 + el->len >= sizeof(evalgot))
			break;
		n += (size_t)snprintf(evalgot + n, sizeof(evalgot) - n, "%s%zu:", i ? "|" : "", el->len);
		memcpy(evalgot + n, el->str, el->len);
		n += el->len;
	}
	evalgot_len = n;
}

static int counted;

static void
on_count(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;

	if (reply != NULL && reply->type == REDIS_REPLY_STRING)
		counted++;
}

/* How many commands Redis refused with NOSCRIPT so far (INFO errorstats). */
static long long
noscripts(void)
{
	redisContext *c = redisConnect("127.0.0.1", port);
	redisReply *r = c != NULL && !c->err ? redisCommand(c, "INFO errorstats") : NULL;
	long long n = 0;
	const char *p;

	if (r != NULL && r->type == REDIS_REPLY_STRING && (p = strstr(r->str, "errorstat_NOSCRIPT:count=")) != NULL)
		n = strtoll(p + strlen("errorstat_NOSCRIPT:count="), NULL, 10);
	if (r != NULL)
		freeReplyObject(r);
	if (c != NULL)
		redisFree(c);
	return n;
}

static bool
run_until(const int *flag, const long long *len, int ms)
{
	uint64_t end = now_usec() + (uint64_t)ms * 1000;

	while (now_usec() < end && (flag == NULL || *flag == 0) && (len == NULL || *len == -1))
		sd_event_run(ev, 50000);
	return (flag == NULL || *flag != 0) && (len == NULL || *len != -1);
}

int
main(void)
{
	struct rconn_options o = {
	    .connect_timeout_ms = 500, .ping_interval_ms = 200, .backoff_min_ms = 50, .backoff_max_ms = 400};
	struct rconn_info info;
	struct rconn *rc;
	char url[128];
	pid_t pid;
	uint64_t end;

	if (getenv("REDIS_SERVER") == NULL || access(getenv("REDIS_SERVER"), X_OK) != 0) {
		printf("1..0 # SKIP redis-server not available\n");
		return 0;
	}
	if (mkdtemp(dir) == NULL)
		return 99;
	crypto_init();
	sd_event_new(&ev);
	port = test_free_port();
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/3", port);
	o.url = url;

	rc = rconn_new(ev, &o, on_state, NULL);
	ok(rc != NULL, "connection object created before Redis runs");
	ok(wait_state(rc, RCONN_DOWN, 2000), "no server: down");
	rconn_get_info(rc, &info);
	ok(info.last_error[0] != '\0' && strstr(info.last_error, "connect") != NULL, "the error says why: %s",
	    info.last_error);
	is_int(rconn_command(rc, NULL, NULL, "PING"), -ENOTCONN, "commands are refused while down");

	pid = redis_start(NULL);
	ok(wait_state(rc, RCONN_UP, 5000), "server started: up within the backoff");
	is_int(ups, 1, "one up transition");
	rconn_command(rc, NULL, NULL, "SET %s %s", "k", "value-in-db-3");
	rconn_command(rc, on_get, NULL, "GET %s", "k");
	end = now_usec() + 2000000;
	while (got[0] == '\0' && now_usec() < end)
		sd_event_run(ev, 50000);
	is_str(got, "value-in-db-3", "a command round-trips");

	redis_stop(pid);
	ok(wait_state(rc, RCONN_DOWN, 3000), "server killed: down");
	pid = redis_start(NULL);
	ok(wait_state(rc, RCONN_UP, 5000), "server back: up again");
	rconn_get_info(rc, &info);
	is_int(info.reconnects, 1, "one reconnect counted");
	{
		/* The data went with the killed server; db 3 must be selected again after reconnect. */
		redisContext *c = redisConnect("127.0.0.1", port);
		redisReply *r = redisCommand(c, "SET k db3-again");
		freeReplyObject(r);
		r = redisCommand(c, "SELECT 3");
		freeReplyObject(r);
		r = redisCommand(c, "SET k db3-again");
		freeReplyObject(r);
		redisFree(c);
		got[0] = '\0';
		rconn_command(rc, on_get, NULL, "GET %s", "k");
		end = now_usec() + 2000000;
		while (got[0] == '\0' && now_usec() < end)
			sd_event_run(ev, 50000);
		is_str(got, "db3-again", "after reconnecting, the URL's database is selected again");
	}

	kill(pid, SIGSTOP);
	ok(wait_state(rc, RCONN_DOWN, 3000), "a hung server (SIGSTOP) is noticed by the PING timeout");
	kill(pid, SIGCONT);
	ok(wait_state(rc, RCONN_UP, 5000), "and recovered from when it resumes");

	{
		struct burst b = {.rc = rc, .len = -1};

		b.value = malloc(BURST_VALUE);
		memset(b.value, 'v', BURST_VALUE);
		rconn_command(rc, on_burst_start, &b, "DEL burst");
		ok(run_until(NULL, &b.len, 20000), "a burst of %d x 64 KiB queued from a reply callback is answered",
		    BURST);
		ok(b.answers == BURST && b.nulls == 0 && b.errors == 0, "every command of it once (%d answers)",
		    b.answers);
		is_int((int)b.len, BURST, "and all of it reached Redis, the last command included");

		/* Queued outside any Redis event, with nothing else pending: the loop's next iteration writes it. */
		got[0] = '\0';
		rconn_command(rc, NULL, NULL, "SET %s %s", "k", "from-main");
		rconn_command(rc, on_get, NULL, "GET %s", "k");
		sd_event_run(ev, 1000000);
		sd_event_run(ev, 1000000);
		sd_event_run(ev, 1000000);
		is_str(got, "from-main", "a command queued from outside the loop is written without another event");

		/* The connection lost with most of a burst still unsent (the server stopped, so the socket is full):
		   every command is answered once, with NULL; what is queued on the new connection as it comes up (from
		   the state callback, inside a reply callback) goes out. */
		free(b.value);
		memset(&b, 0, sizeof(b));
		b.rc = rc;
		b.len = -1;
		b.value = malloc(BURST_VALUE);
		memset(b.value, 'w', BURST_VALUE);
		up_rc = rc;
		kill(pid, SIGSTOP);
		send_burst(&b);
		end = now_usec() + 100000;
		while (now_usec() < end)
			sd_event_run(ev, 10000);
		redis_stop(pid);
		ok(run_until(NULL, &b.len, 5000),
		    "the server killed with a burst unsent: its last command is answered");
		ok(b.nulls == BURST && b.answers == 0 && b.errors == 0 && b.len == -2,
		    "every command of it once, with NULL (%d of %d)", b.nulls, BURST);
		pid = redis_start(NULL);
		ok(wait_state(rc, RCONN_UP, 5000), "the server back: up");
		ok(run_until(&up_answers, NULL, 3000), "a command queued as it came up is answered");
		up_rc = NULL;
		free(b.value);
	}

	{
		/* rconn_eval writes EVALSHA itself: binary arguments, an empty one and a large one arrive intact; a
		   script Redis does not know yet (or no longer, after SCRIPT FLUSH) is sent again whole, once. */
		static const char text[] = "return {KEYS[1], ARGV[1], ARGV[2], tostring(#ARGV[3]), ARGV[3]:sub(-3)}";
		struct rscript sc;
		const char *argv[4];
		size_t argl[4];
		static const char want[] = "3:key|5:a\0\r\nb|0:|6:100000|3:end";
		char *big = malloc(100000);
		int n;

		memset(big, 'b', 100000);
		memcpy(big + 99997, "end", 3);
		rscript_init(&sc, text);
		argv[0] = "key";
		argl[0] = 3;
		argv[1] = "a\0\r\nb";
		argl[1] = 5;
		argv[2] = "";
		argl[2] = 0;
		argv[3] = big;
		argl[3] = 100000;
		for (n = 0; n < 3; n++) {
			int before = evals;
			evalgot_len = 0;
			if (n == 2)
				rconn_command(rc, NULL, NULL, "SCRIPT FLUSH");
			ok(rconn_eval(rc, &sc, on_evalreply, NULL, 1, 4, argv, argl) == 0, "rconn_eval %d queued",
			    n + 1);
			end = now_usec() + 3000000;
			while (evals == before && now_usec() < end)
				sd_event_run(ev, 50000);
			ok(evalgot_len == sizeof(want) - 1 && memcmp(evalgot, want, evalgot_len) == 0,
			    n == 0 ? "a script Redis does not know: sent whole, answered with its arguments intact"
			        : n == 1 ? "known now: EVALSHA, answered alike"
			                 : "after SCRIPT FLUSH: sent whole again, answered alike");
		}
		free(big);
	}

	{
		/* A burst of a script new to this connection: the first call carries its text, so none of the others
		   is refused with NOSCRIPT (each was, and was sent again whole, when all went as EVALSHA). */
		static const char text2[] = "return ARGV[1]";
		struct rscript sc2;
		const char *argv[1] = {"x"};
		long long before = noscripts();
		int i;

		rscript_init(&sc2, text2);
		for (i = 0; i < 50; i++)
			rconn_eval(rc, &sc2, on_count, NULL, 0, 1, argv, NULL);
		end = now_usec() + 3000000;
		while (counted < 50 && now_usec() < end)
			sd_event_run(ev, 50000);
		is_int(counted, 50, "50 calls of a script new to the connection, queued at once, are answered");
		is_int((int)(noscripts() - before), 0, "and Redis refused none of them with NOSCRIPT");
	}
	rconn_free(rc);
	redis_stop(pid);

	pid = redis_start("right-password");
	snprintf(url, sizeof(url), "redis://:wrong-password@127.0.0.1:%d", port);
	rc = rconn_new(ev, &o, NULL, NULL);
	end = now_usec() + 1500000;
	while (now_usec() < end)
		sd_event_run(ev, 50000);
	rconn_get_info(rc, &info);
	ok(rconn_state(rc) != RCONN_UP, "a wrong password never comes up");
	ok(strstr(info.last_error, "AUTH refused") != NULL, "and the error says AUTH: %s", info.last_error);
	ok(strstr(info.last_error, "wrong-password") == NULL, "without the password");
	rconn_free(rc);

	snprintf(url, sizeof(url), "redis://:right-password@127.0.0.1:%d", port);
	rc = rconn_new(ev, &o, NULL, NULL);
	ok(wait_state(rc, RCONN_UP, 5000), "the right password comes up");
	rconn_free(rc);
	redis_stop(pid);

	sd_event_unref(ev);
	{
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			diag("could not remove %s", dir);
	}
	return done_testing();
}
