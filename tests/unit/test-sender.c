/*
 * The reply sender against a real redis-server and the Twilio REST double
 * (tests/fakes/twilio.py): a reply arrives with the right form and Basic
 * auth; long text is split in order; 429 is retried after Retry-After; 5xx
 * is retried while later replies to the same phone wait; 21211 and 20003 go
 * to the dead-letter list at once; 21610 opts the phone out; a queued reply
 * survives the sender being replaced.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/curlev.h"
#include "common/util.h"
#include "common/redis.h"
#include "twilio/sender.h"
#include "tests/tap.h"
#include "tests/testutil.h"

#define SID "AC00000000000000000000000000000000"
#define TOKEN "twilio-test-token"

static sd_event *ev;
static char dir[] = "/tmp/crmb-sender-XXXXXX";
static int redis_port, twilio_port;
static pid_t redis_pid, twilio_pid;
static struct rconn *rc;
static struct curlev *cv;

static void
start_servers(void)
{
	char port[16];

	redis_port = test_free_port();
	snprintf(port, sizeof(port), "%d", redis_port);
	if ((redis_pid = fork()) == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		execl(getenv("REDIS_SERVER"), "redis-server", "--port", port, "--bind", "127.0.0.1", "--dir", dir,
		    "--save", "", "--appendonly", "no", (char *)NULL);
		_exit(127);
	}
	{
		const char *args[] = {"--account-sid", SID, "--auth-token", TOKEN, NULL};
		twilio_pid = test_spawn_double("twilio.py", args, &twilio_port);
	}
}

/* A blocking HTTP call to the double's control endpoints; returns the body (caller frees). */
static char *
double_call(const char *path, const char *post)
{
	return test_http(twilio_port, path, post);
}

static void
ctl(const char *json)
{
	free(double_call("/_control", json));
}

static json_t *
twlog(void)
{
	char *s = double_call("/_log", NULL);
	json_t *j = json_loads(s ? s : "[]", 0, NULL);

	free(s);
	return j;
}

/* Number of requests the double answered with 201 so far. */
static size_t
count_201(void)
{
	json_t *l = twlog(), *e;
	size_t i, n = 0;

	json_array_foreach(l, i, e) if (json_integer_value(json_object_get(e, "answer")) == 201) n++;
	json_decref(l);
	return n;
}

static size_t
count_all(void)
{
	json_t *l = twlog();
	size_t n = json_array_size(l);

	json_decref(l);
	return n;
}

static void
run_ms(int ms)
{
	uint64_t end = now_usec() + (uint64_t)ms * 1000;

	while (now_usec() < end)
		sd_event_run(ev, 20000);
}

#define RUN_UNTIL(cond, ms) \
	do { \
		uint64_t end_ = now_usec() + (uint64_t)(ms)*1000; \
		while (!(cond) && now_usec() < end_) \
			sd_event_run(ev, 20000); \
	} while (0)

static int queued_result;
static void
on_queued(int parts, void *arg)
{
	queued_result = parts;
}

/* A sender polling every poll_ms, asking for status callbacks or not. */
static struct sender *
new_sender_opt(const char *token, uint64_t lease_ms, uint64_t poll_ms, int callbacks)
{
	char base[64];
	struct sender_options o = {
	    .api_base = base,
	    .account_sid = SID,
	    .auth_token = token,
	    .from = "whatsapp:+14155238886",
	    .status_callback = callbacks ? "https://bot.example.com/api/webhook/status" : NULL,
	    .key_prefix = "t:",
	    .timeout_ms = 3000,
	    .max_attempts = 4,
	    .max_in_flight = 8,
	    .lease_ms = lease_ms,
	    .backoff_min_ms = 200,
	    .backoff_max_ms = 800,
	    .poll_ms = poll_ms,
	};

	snprintf(base, sizeof(base), "http://127.0.0.1:%d", twilio_port);
	return sender_new(ev, cv, rc, &o);
}

static struct sender *
new_sender(const char *token, uint64_t lease_ms)
{
	return new_sender_opt(token, lease_ms, 100, 1);
}

static long long
redis_int(const char *fmt, const char *arg)
{
	redisContext *c = redisConnect("127.0.0.1", redis_port);
	redisReply *r = redisCommand(c, fmt, arg);
	long long v = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

	freeReplyObject(r);
	redisFree(c);
	return v;
}

static char *
redis_str(const char *fmt, const char *arg)
{
	redisContext *c = redisConnect("127.0.0.1", redis_port);
	redisReply *r = redisCommand(c, fmt, arg);
	char *v = r != NULL && r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;

	freeReplyObject(r);
	redisFree(c);
	return v;
}

/* Runs one command on a connection of its own, ignoring the answer. */
static void __attribute__((format(printf, 1, 2))) redis_do(const char *fmt, ...)
{
	redisContext *c = redisConnect("127.0.0.1", redis_port);
	va_list ap;

	va_start(ap, fmt);
	freeReplyObject(redisvCommand(c, fmt, ap));
	va_end(ap);
	redisFree(c);
}

/* The number of keys matching pattern. */
static size_t
redis_count_keys(const char *pattern)
{
	redisContext *c = redisConnect("127.0.0.1", redis_port);
	redisReply *r = redisCommand(c, "KEYS %s", pattern);
	size_t n = r != NULL && r->type == REDIS_REPLY_ARRAY ? r->elements : 0;

	freeReplyObject(r);
	redisFree(c);
	return n;
}

/* The Body of every request the double answered with 201, joined with '|'. */
static void
bodies_201(char *out, size_t len)
{
	json_t *l = twlog(), *e;
	size_t i, w = 0;

	out[0] = '\0';
	json_array_foreach(l, i, e)
	{
		if (json_integer_value(json_object_get(e, "answer")) == 201 && w < len)
			w += (size_t)snprintf(out + w, len - w, "%s%s", w > 0 ? "|" : "",
			    json_string_value(json_object_get(json_object_get(e, "form"), "Body")) ?: "?");
	}
	json_decref(l);
}

/*
 * Redis commands run since the last CONFIG RESETSTAT (INFO commandstats: calls,
 * those inside scripts included), leaving out the test's own INFO and CONFIG
 * and the connection's PING health check; what they were goes into what.
 */
static long long
redis_calls(char *what, size_t len)
{
	redisContext *c = redisConnect("127.0.0.1", redis_port);
	redisReply *r = redisCommand(c, "INFO commandstats");
	long long n = 0, calls;
	char name[64];
	const char *p;
	size_t w = 0;

	what[0] = '\0';
	for (p = r != NULL && r->type == REDIS_REPLY_STRING ? r->str : ""; (p = strstr(p, "cmdstat_")) != NULL; p++) {
		if (sscanf(p, "cmdstat_%63[^:]:calls=%lld", name, &calls) != 2 || strcmp(name, "info") == 0 ||
		    strncmp(name, "config", 6) == 0 || strcmp(name, "ping") == 0)
			continue;
		n += calls;
		if (w < len)
			w += (size_t)snprintf(what + w, len - w, " %s=%lld", name, calls);
	}
	freeReplyObject(r);
	redisFree(c);
	return n;
}

/* The "job" of every SID record ({outbox}:msg:<sid>), up to max; returns how many. */
static size_t
msg_jobs(char (*out)[48], size_t max)
{
	redisContext *c = redisConnect("127.0.0.1", redis_port);
	redisReply *r = redisCommand(c, "KEYS t:{outbox}:msg:*");
	size_t i, n = 0;

	for (i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements && n < max; i++) {
		redisReply *j = redisCommand(c, "HGET %s job", r->element[i]->str);
		if (j != NULL && j->type == REDIS_REPLY_STRING)
			snprintf(out[n++], 48, "%s", j->str);
		freeReplyObject(j);
	}
	freeReplyObject(r);
	redisFree(c);
	return n;
}

static void
redis_resetstat(void)
{
	redisContext *c = redisConnect("127.0.0.1", redis_port);

	freeReplyObject(redisCommand(c, "CONFIG RESETSTAT"));
	redisFree(c);
}

int
main(void)
{
	struct rconn_options ro = {.connect_timeout_ms = 1000, .ping_interval_ms = 500};
	struct sender *s;
	struct sender_stats st;
	char url[64];
	json_t *l, *e;
	size_t i;

	if (getenv("REDIS_SERVER") == NULL || access(getenv("REDIS_SERVER"), X_OK) != 0 ||
	    getenv("TOP_SRCDIR") == NULL) {
		printf("1..0 # SKIP redis-server or the source tree not available\n");
		return 0;
	}
	if (mkdtemp(dir) == NULL)
		return 99;
	crypto_init();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	start_servers();
	if (!ok(twilio_port > 0, "the Twilio double started"))
		return done_testing();
	sd_event_new(&ev);
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", redis_port);
	ro.url = url;
	rc = rconn_new(ev, &ro, NULL, NULL);
	RUN_UNTIL(rconn_state(rc) == RCONN_UP, 5000);
	ok(rconn_state(rc) == RCONN_UP, "Redis up");
	cv = curlev_new(ev);
	s = new_sender(TOKEN, 2000);

	/* ---- one reply ---- */
	sender_enqueue(
	    s, "whatsapp:+573001112233", "¡Hola María! ¿Tienes algún presupuesto en mente?", on_queued, NULL);
	RUN_UNTIL(count_201() == 1, 5000);
	is_int(queued_result, 1, "queued as one part");
	l = twlog();
	e = json_array_get(l, 0);
	ok(json_is_true(json_object_get(e, "auth_ok")), "Basic auth AccountSid:AuthToken, the account in the path");
	is_str(json_string_value(json_object_get(json_object_get(e, "form"), "To")), "whatsapp:+573001112233", "To");
	is_str(json_string_value(json_object_get(json_object_get(e, "form"), "From")), "whatsapp:+14155238886", "From");
	is_str(json_string_value(json_object_get(json_object_get(e, "form"), "Body")),
	    "¡Hola María! ¿Tienes algún presupuesto en mente?", "Body in UTF-8");
	is_str(json_string_value(json_object_get(json_object_get(e, "form"), "StatusCallback")),
	    "https://bot.example.com/api/webhook/status", "StatusCallback");
	{
		char *sid = strdup(json_string_value(json_object_get(e, "sid")) ?: "none"), key[128];
		snprintf(key, sizeof(key), "t:{outbox}:msg:%s", sid);
		RUN_UNTIL(redis_int("EXISTS %s", key) == 1, 2000);
		ok(redis_int("EXISTS %s", key) == 1, "the Twilio SID is recorded for delivery reports");
		sender_record_status(s, sid, "delivered", 0);
		run_ms(100);
		free(sid);
		{
			char *v = redis_str("HGET %s status", key);
			is_str(v, "delivered", "a status callback updates it");
			free(v);
		}
	}
	json_decref(l);
	run_ms(300);
	is_int(redis_int("ZCARD %s", "t:{outbox}:due"), 0, "the outbox is empty afterwards");

	/* ---- long text ---- */
	{
		char text[3600];
		size_t n = 0;
		memset(text, 0, sizeof(text));
		while (n + 40 < 3500) {
			memcpy(text + n, "Tenemos sofás de tres puestos en cuero. ", 41);
			n += strlen("Tenemos sofás de tres puestos en cuero. ");
		}
		ctl("{\"reset\": true}");
		sender_enqueue(s, "+573001112233", text, on_queued, NULL);
		RUN_UNTIL(count_201() == 3, 8000);
		is_int(queued_result, 3, "3,480 characters are queued as three parts");
		l = twlog();
		{
			char joined[4000] = "";
			int fits = 1;
			json_array_foreach(l, i, e)
			{
				const char *b = json_string_value(json_object_get(json_object_get(e, "form"), "Body"));
				size_t cps = 0;
				for (const char *p = b; *p; p++)
					cps += ((unsigned char)*p & 0xc0) != 0x80;
				fits &= cps <= 1600;
				strncat(joined, b, sizeof(joined) - strlen(joined) - 1);
			}
			ok(fits, "each part has at most 1,600 characters");
			is_str(joined, text, "the parts arrive in order and add up to the text");
		}
		json_decref(l);
	}

	/* ---- 429 with Retry-After ---- */
	ctl("{\"reset\": true, \"script\": [{\"status\": 429, \"code\": 20429, \"retry_after\": \"1\"}]}");
	sender_get_stats(s, &st);
	{
		uint64_t retries = st.retries, t0 = now_usec();
		sender_enqueue(s, "+573001112244", "retry me", NULL, NULL);
		RUN_UNTIL(count_201() == 1, 6000);
		is_int(count_201(), 1, "a 429 is retried and then delivered");
		ok(now_usec() - t0 >= 900000, "after the 1 s Retry-After (%.2f s)", (double)(now_usec() - t0) / 1e6);
		sender_get_stats(s, &st);
		is_int(st.retries, retries + 1, "one retry counted");
	}

	/* ---- 500s: retried, and the next reply to the same phone waits its turn ---- */
	ctl("{\"reset\": true, \"script\": [{\"status\": 500}, {\"status\": 503}]}");
	sender_enqueue(s, "+573001112255", "first", NULL, NULL);
	run_ms(50);
	sender_enqueue(s, "+573001112255", "second", NULL, NULL);
	RUN_UNTIL(count_201() == 2, 8000);
	l = twlog();
	is_int(json_array_size(l), 4, "two failures, then both replies");
	{
		const char *b2 =
		    json_string_value(json_object_get(json_object_get(json_array_get(l, 2), "form"), "Body"));
		const char *b3 =
		    json_string_value(json_object_get(json_object_get(json_array_get(l, 3), "form"), "Body"));
		ok(b2 && b3 && strcmp(b2, "first") == 0 && strcmp(b3, "second") == 0,
		    "the second reply went out only after the first");
	}
	json_decref(l);

	/* ---- 21211: no retry, dead letter ---- */
	ctl("{\"reset\": true, \"script\": [{\"status\": 400, \"code\": 21211}]}");
	sender_get_stats(s, &st);
	{
		uint64_t dead = st.dead;
		sender_enqueue(s, "+573001112266", "to a bad number", NULL, NULL);
		RUN_UNTIL(count_all() == 1 && redis_int("LLEN %s", "t:{outbox}:dead") >= 1, 4000);
		run_ms(1000);
		is_int(count_all(), 1, "21211 is not retried");
		sender_get_stats(s, &st);
		is_int(st.dead, dead + 1, "it is counted as a dead letter");
		{
			char *rec = redis_str("LINDEX %s 0", "t:{outbox}:dead");
			ok(rec != NULL && strstr(rec, "21211") != NULL && strstr(rec, "to a bad number") == NULL,
			    "the dead-letter record names the error, not the text");
			free(rec);
		}
		is_int(redis_int("ZSCORE %s +573001112266", "t:{outbox}:due"), -1, "and the queue moves on");
	}

	/* ---- 21610: opted out ---- */
	ctl("{\"reset\": true, \"opted_out\": [\"+573001112277\"]}");
	sender_enqueue(s, "+573001112277", "hola", NULL, NULL);
	RUN_UNTIL(count_all() == 1, 4000);
	run_ms(500);
	is_int(redis_int("SISMEMBER t:{outbox}:optout %s", "+573001112277"), 1, "21610 marks the phone opted out");
	queued_result = 0;
	sender_enqueue(s, "whatsapp:+573001112277", "otra vez", on_queued, NULL);
	RUN_UNTIL(queued_result != 0, 2000);
	is_int(queued_result, -EPERM, "nothing more is queued for it");
	is_int(count_all(), 1, "and nothing more is sent");

	/* ---- bad credentials: 20003, no retry ---- */
	{
		struct sender *bad = new_sender("wrong-token", 2000);
		ctl("{\"reset\": true}");
		sender_free(s);
		sender_enqueue(bad, "+573001112288", "hola", NULL, NULL);
		RUN_UNTIL(count_all() == 1, 4000);
		run_ms(1000);
		is_int(count_all(), 1, "a 401 (20003) is not retried");
		sender_get_stats(bad, &st);
		ok(st.dead == 1 && st.last_error_code == 20003, "it is a dead letter with code 20003");
		sender_free(bad);
	}

	/* ---- a queued reply survives a restart ---- */
	ctl("{\"reset\": true, \"script\": [{\"status\": 500}, {\"status\": 500}, {\"status\": 500}]}");
	s = new_sender(TOKEN, 1000);
	sender_enqueue(s, "+573001112299", "survive", NULL, NULL);
	RUN_UNTIL(count_all() >= 1, 4000);
	sender_free(s); /* gone while the reply waits for its retry */
	ok(redis_int("EXISTS %s", "t:{outbox}:q:+573001112299") == 1, "the reply is still queued in Redis");
	ctl("{\"reset\": true}");
	s = new_sender(TOKEN, 1000);
	RUN_UNTIL(count_201() == 1, 8000);
	is_int(count_201(), 1, "a new sender delivers it exactly once");

	/* A turn redone after a crash queues its reply once. */
	ctl("{\"reset\": true}");
	queued_result = -99;
	sender_enqueue_once(s, "+573001113344", "only once", "turn-abc", on_queued, NULL);
	RUN_UNTIL(queued_result != -99, 2000);
	is_int(queued_result, 1, "sender_enqueue_once queues the reply");
	queued_result = -99;
	sender_enqueue_once(s, "+573001113344", "only once", "turn-abc", on_queued, NULL);
	RUN_UNTIL(queued_result != -99, 2000);
	is_int(queued_result, 0, "the same key again queues nothing");
	RUN_UNTIL(count_201() == 1, 4000);
	run_ms(500);
	is_int(count_all(), 1, "and one message is sent");
	sender_free(s);

	/* ---- an attempt whose outcome is unknown is looked up, not repeated ---- */
	ctl("{\"reset\": true, \"latency_ms\": 4000}");
	s = new_sender(TOKEN, 30000);
	sender_enqueue(s, "+573001115566", "slow but delivered", NULL, NULL);
	/* The first attempt times out at 3 s after the request went out; Twilio creates the message at 4 s. */
	RUN_UNTIL(count_201() == 1, 6000);
	ctl("{\"latency_ms\": 0}");
	sender_get_stats(s, &st);
	RUN_UNTIL((sender_get_stats(s, &st), st.reconciled == 1), 8000);
	is_int(st.reconciled, 1, "after a timeout, the retry finds the message in Twilio's list");
	run_ms(500);
	is_int(count_201(), 1, "and does not send it again");
	ok(redis_int("EXISTS %s", "t:{outbox}:q:+573001115566") == 0, "the reply is done");
	sender_free(s);

	ctl("{\"reset\": true, \"latency_ms\": 1500}");
	s = new_sender(TOKEN, 1000);
	sender_enqueue(s, "+573001117788", "sent, then the daemon died", NULL, NULL);
	RUN_UNTIL(count_all() == 1, 4000);
	run_ms(300);
	sender_free(s); /* killed while Twilio works on it: the outcome is unknown */
	{
		struct timespec ts = {2, 0};
		nanosleep(&ts, NULL); /* Twilio finishes; the lease expires */
	}
	ctl("{\"latency_ms\": 0}");
	is_int(count_201(), 1, "Twilio accepted the message of the dead sender");
	s = new_sender(TOKEN, 1000);
	RUN_UNTIL((sender_get_stats(s, &st), st.reconciled == 1), 6000);
	is_int(st.reconciled, 1, "a new sender finds it in Twilio's list");
	run_ms(500);
	is_int(count_201(), 1, "and sends nothing twice");
	sender_free(s);

	ctl("{\"reset\": true}");
	s = new_sender(TOKEN, 30000);
	sender_enqueue(s, "+573001119900", "plain", NULL, NULL);
	RUN_UNTIL(count_201() == 1, 4000);
	sender_get_stats(s, &st);
	is_int(st.reconciled, 0, "an ordinary send does not look anything up");
	sender_free(s);

	/*
	 * ---- the upgrade from the previous release's outbox ----
	 * It kept bare job ids in the queues and each job in a hash {outbox}:job:<id>. Written here by hand as it
	 * wrote them: each reply must go out once, in order, and no job hash may be left (they hold the text).
	 */
	ctl("{\"reset\": true}");
	redis_do("DEL t:{outbox}:upgraded");
	redis_do(
	    "HSET t:{outbox}:job:901 to +573001120001 body %s attempts 0 created_ms 1 part 1 parts 2", "legacy one");
	redis_do(
	    "HSET t:{outbox}:job:902 to +573001120001 body %s attempts 0 created_ms 1 part 2 parts 2", "legacy two");
	redis_do("RPUSH t:{outbox}:q:+573001120001 901 902");
	redis_do("ZADD t:{outbox}:due 1 +573001120001");
	redis_do("RPUSH t:{outbox}:q:+573001120002 903"); /* its hash is gone */
	redis_do("ZADD t:{outbox}:due 1 +573001120002");
	redis_do(
	    "HSET t:{outbox}:job:904 to +573001120003 body %s attempts 0 created_ms 1 part 1 parts 1", "in no queue");
	s = new_sender(TOKEN, 2000);
	RUN_UNTIL(count_201() >= 2 && redis_count_keys("t:{outbox}:job:*") == 0 &&
	        redis_int("EXISTS %s", "t:{outbox}:upgraded") == 1,
	    5000);
	run_ms(500);
	{
		char b[256];
		bodies_201(b, sizeof(b));
		is_str(b, "legacy one|legacy two", "replies queued before the upgrade go out once each, in order");
	}
	is_int((long long)redis_count_keys("t:{outbox}:job:*"), 0, "no legacy job hash is left");
	ok(redis_int("EXISTS %s", "t:{outbox}:q:+573001120001") == 0 &&
	        redis_int("EXISTS %s", "t:{outbox}:q:+573001120002") == 0,
	    "the queues are done, an id without its job dropped");
	is_int(redis_int("EXISTS %s", "t:{outbox}:upgraded"), 1, "the walk is marked done");
	sender_free(s);

	/* A legacy job a claim meets (an older instance still queueing, the walk done): converted, not dropped. */
	ctl("{\"reset\": true}");
	redis_do("HSET t:{outbox}:job:905 to +573001120004 body %s attempts 0 created_ms 1 part 1 parts 1 sent_ms %s",
	    "legacy in flight", "1");
	redis_do("RPUSH t:{outbox}:q:+573001120004 905");
	redis_do("ZADD t:{outbox}:due 1 +573001120004");
	s = new_sender(TOKEN, 2000);
	RUN_UNTIL(count_201() == 1 && redis_int("EXISTS %s", "t:{outbox}:q:+573001120004") == 0, 5000);
	run_ms(300);
	is_int(count_201(), 1, "a legacy head met by a claim is converted and sent once");
	is_int((long long)redis_count_keys("t:{outbox}:job:*"), 0, "and its hash is gone");
	sender_free(s);

	/*
	 * A job an older release queued, with its numeric id from P{outbox}:seq, and this sender's reply behind
	 * it: both go out once, in order (ids are opaque strings), and the counter is not written.
	 */
	ctl("{\"reset\": true}");
	redis_do("RPUSH t:{outbox}:q:+573001120005 %s",
	    "{\"id\":\"41\",\"body\":\"queued before\",\"attempts\":0,\"created_ms\":\"1\",\"part\":1,\"parts\":1}");
	redis_do("ZADD t:{outbox}:due 1 +573001120005");
	redis_do("SET t:{outbox}:seq 41");
	s = new_sender(TOKEN, 2000);
	sender_enqueue(s, "+573001120005", "queued now", NULL, NULL);
	RUN_UNTIL(count_201() == 2 && redis_int("EXISTS %s", "t:{outbox}:q:+573001120005") == 0, 5000);
	run_ms(300);
	{
		char b[256], *seq = redis_str("GET %s", "t:{outbox}:seq");
		bodies_201(b, sizeof(b));
		is_str(b, "queued before|queued now",
		    "a job the previous release queued (its id from the counter) and a new one go out once, in order");
		is_str(seq, "41", "the old counter is left as it was");
		free(seq);
	}
	sender_free(s);
	redis_do("DEL t:{outbox}:seq");

	/*
	 * Job ids are made in C: two senders at once (two instances) and one made after a restart never make
	 * the same, and they are short, of [0-9a-z.-]. Read from the SID records (status callbacks on).
	 */
	ctl("{\"reset\": true}");
	redis_do("EVAL %s 0", "for _, k in ipairs(redis.call('KEYS', 't:{outbox}:msg:*')) do redis.call('DEL', k) end");
	{
		struct sender *a = new_sender(TOKEN, 2000), *b = new_sender(TOKEN, 2000);
		char ids[8][48], nonces[3][48];
		size_t nid;

		for (int k = 0; k < 2; k++) {
			sender_enqueue(a, "+573001120006", "from a", NULL, NULL);
			sender_enqueue(b, "+573001120007", "from b", NULL, NULL);
		}
		RUN_UNTIL(count_201() == 4, 5000);
		sender_free(a); /* a restart */
		a = new_sender(TOKEN, 2000);
		sender_enqueue(a, "+573001120006", "from a again", NULL, NULL);
		RUN_UNTIL(count_201() == 5 && redis_count_keys("t:{outbox}:msg:*") == 5, 5000);
		nid = msg_jobs(ids, 8);
		is_int(nid, 5, "five replies sent, five job ids recorded");
		{
			int distinct = 1, shaped = 1;
			size_t nn = 0;
			for (size_t x = 0; x < nid; x++) {
				size_t len = strlen(ids[x]), dash = strcspn(ids[x], "-"), dot = strcspn(ids[x], ".");
				int seen = 0;
				shaped &= len <= 30 &&
				    strspn(ids[x], "0123456789abcdefghijklmnopqrstuvwxyz.-") == len && dash > 0 &&
				    dash < dot && dot < len;
				for (size_t y = 0; y < x; y++)
					distinct &= strcmp(ids[x], ids[y]) != 0;
				for (size_t y = 0; y < nn; y++)
					seen |= strncmp(nonces[y], ids[x], dash) == 0 && nonces[y][dash] == '\0';
				if (!seen && nn < 3)
					snprintf(nonces[nn++], sizeof(nonces[0]), "%.*s", (int)dash, ids[x]);
			}
			ok(distinct, "the job ids are all different");
			ok(shaped, "each is <random>-<count>.<part>, at most 30 characters of [0-9a-z.-]");
			is_int(nn, 3, "each sender (two at once, one after a restart) has a random part of its own");
		}
		is_int(redis_int("EXISTS %s", "t:{outbox}:seq"), 0, "no counter is written in Redis");
		sender_free(a);
		sender_free(b);
	}

	/*
	 * ---- Redis commands per reply ----
	 * Counted with INFO commandstats (commands inside scripts included), with the timed poll out of the way
	 * (a minute): what one reply of one and of two parts costs, with status callbacks on and off, and a
	 * reply with a once-key (a turn's).
	 */
	for (int cb = 1; cb >= 0; cb--) {
		s = new_sender_opt(TOKEN, 30000, 60000, cb);
		run_ms(300); /* what the last sender left in the connection's buffer */
		for (int parts = 1; parts <= 3; parts++) {
			char text[2400], what[512], once[32];
			int np = parts == 3 ? 1 : parts, most;
			long long n;

			memset(text, 'a', sizeof(text));
			text[np == 1 ? 100 : 2000] = '\0';
			snprintf(once, sizeof(once), "turn-count-%d", cb);
			ctl("{\"reset\": true}");
			redis_resetstat();
			sender_enqueue_once(s, "+573001110000", text, parts == 3 ? once : NULL, NULL, NULL);
			RUN_UNTIL(count_201() == (size_t)np, 4000);
			run_ms(300);
			n = redis_calls(what, sizeof(what));
			diag("a reply of %d part(s)%s, status callbacks %s: %lld commands:%s", np,
			    parts == 3 ? " with a once-key" : "", cb ? "on" : "off", n, what);
			is_int(count_201(), np, "a reply of %d part(s)%s is sent (status callbacks %s)", np,
			    parts == 3 ? " with a once-key" : "", cb ? "on" : "off");
			/* Handed out by the enqueue (EVALSHA, SISMEMBER, RPUSH, ZADD; SET NX with a once-key) and the
			   done (EVALSHA, LPOP, ZREM; a further part LPOP, LPUSH, ZADD), no claim: 7, +4 a further part,
			   +1 with a once-key, +2 a part for the SID record with status callbacks. Was 10 (+5, +2, +2),
			   and 21 (+14) before the hand-offs. */
			most = (cb ? 9 : 7) + (np - 1) * (cb ? 6 : 4) + (parts == 3);
			ok(n <= most, "at most %d commands for it", most);
		}
		sender_free(s);
	}

	curlev_free(cv);
	rconn_free(rc);
	sd_event_unref(ev);
	kill(twilio_pid, SIGTERM);
	kill(redis_pid, SIGKILL);
	waitpid(twilio_pid, NULL, 0);
	waitpid(redis_pid, NULL, 0);
	{
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			diag("could not remove %s", dir);
	}
	curl_global_cleanup();
	return done_testing();
}
