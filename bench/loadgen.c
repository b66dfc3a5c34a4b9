/*
 * crmbridge's load generator: K simulated WhatsApp customers send scripted
 * messages at a target rate as signed Twilio webhooks (libcurl multi, one
 * thread, kept-alive connections), and the bot's replies come back to a
 * Twilio Messages API sink it runs itself (libmicrohttpd, a thread per
 * connection, an injected latency), so that one process sees both ends of
 * every turn:
 *
 *   ack latency   webhook sent -> 200 received
 *   turn latency  webhook sent -> the reply reaches "Twilio" (the sink)
 *
 * Prints the figures, and JSON with --json. Used by bench/run.py.
 */
#include "config.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/form.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "twilio/signature.h"

static const char *const script[] = {
    "Hola, buenos días",
    "Busco un sofá de 3 puestos",
    "Soy María, mi presupuesto es $2000",
    "Vivo en Bogotá, mi correo es maria@example.com",
};
#define NSCRIPT (sizeof(script) / sizeof(script[0]))

struct customer {
	char phone[20];
	unsigned next; /* next script line */
	uint64_t pending[64]; /* send times (usec) of messages not yet answered, oldest first */
	unsigned npending;
};

static struct {
	const char *target, *public_url, *token, *sid;
	unsigned customers, sink_port, sink_latency_ms, max_open;
	double rate, duration, drain;
	const char *json_path;
} opt = {.customers = 100, .rate = 50, .duration = 10, .drain = 15, .sink_latency_ms = 80, .max_open = 512};

static struct customer *cust;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static double *ack_ms, *turn_ms;
static size_t nack, nturn, cap_ack, cap_turn;
static unsigned long sent, acked, failed, replies, replies_unmatched;
static unsigned long seq;

static void
push(double **arr, size_t *n, size_t *cap, double v)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 4096;
		*arr = xreallocarray(*arr, *cap, sizeof(double));
	}
	(*arr)[(*n)++] = v;
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double
pct(double *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static struct customer *
find(const char *phone)
{
	/* Phones are +57310 followed by the customer's index in 7 digits. */
	long long i;

	if (strncmp(phone, "whatsapp:", 9) == 0)
		phone += 9;
	if (strncmp(phone, "+57310", 6) != 0 || parse_ll(phone + 6, 0, (long long)opt.customers - 1, &i) < 0)
		return NULL;
	return &cust[i];
}

/* ---- the Twilio Messages API sink ---- */

struct up {
	char *data;
	size_t len;
};

static enum MHD_Result
answer(struct MHD_Connection *c, unsigned status, const char *body)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(body), (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
sink(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version, const char *data,
    size_t *size, void **st)
{
	struct up *u = *st;
	struct form f;
	const char *why;
	char body[256];
	struct customer *cu;
	uint64_t now;

	if (u == NULL) {
		*st = xcalloc(1, sizeof(*u));
		return MHD_YES;
	}
	if (*size > 0) {
		u->data = xreallocarray(u->data, u->len + *size + 1, 1);
		memcpy(u->data + u->len, data, *size);
		u->len += *size;
		u->data[u->len] = '\0';
		*size = 0;
		return MHD_YES;
	}
	if (strcmp(method, "GET") == 0) /* the sender's look-up after an interrupted send: nothing to find */
		return answer(c, 200, "{\"messages\":[],\"page\":0,\"page_size\":50}");
	if (u->data == NULL || form_parse(u->data, u->len, &f, &why) < 0)
		return answer(c, 400, "{\"code\":21602,\"message\":\"Message body is required.\",\"status\":400}");
	now = now_usec();
	pthread_mutex_lock(&mu);
	replies++;
	cu = find(form_get(&f, "To") ?: "");
	if (cu != NULL && cu->npending > 0) {
		/* The reply answers every message of the burst it was coalesced from. */
		push(&turn_ms, &nturn, &cap_turn, (double)(now - cu->pending[0]) / 1000.0);
		cu->npending = 0;
	} else {
		replies_unmatched++;
	}
	snprintf(body, sizeof(body), "{\"sid\":\"SM%032lx\",\"status\":\"queued\",\"num_segments\":\"1\"}", replies);
	pthread_mutex_unlock(&mu);
	form_clear(&f);
	if (opt.sink_latency_ms > 0)
		usleep(opt.sink_latency_ms * 1000);
	return answer(c, 201, body);
}

static void
sink_done(void *cls, struct MHD_Connection *c, void **st, enum MHD_RequestTerminationCode t)
{
	struct up *u = *st;

	if (u != NULL) {
		free(u->data);
		free(u);
	}
	*st = NULL;
}

/* ---- the customers ---- */

struct req {
	CURL *e;
	struct curl_slist *h;
	char *body;
	uint64_t t0; /* when its client sent it */
	struct customer *c;
	struct req *next; /* waiting for a free client */
};

static size_t
discard(char *p, size_t s, size_t n, void *u)
{
	return s * n;
}

static struct req *
make_request(struct customer *c)
{
	struct req *r = xcalloc(1, sizeof(*r));
	char sidv[40], from[40], url[512], sig[29], hdr[64], *k, *v;
	const char *text = script[c->next % NSCRIPT];
	struct form_param p[6];
	struct form f = {p, 6};
	size_t i;

	snprintf(sidv, sizeof(sidv), "SM%08x%024lx", (unsigned)getpid(), ++seq);
	snprintf(from, sizeof(from), "whatsapp:%s", c->phone);
	p[0] = (struct form_param){xstrdup("MessageSid"), xstrdup(sidv)};
	p[1] = (struct form_param){xstrdup("AccountSid"), xstrdup(opt.sid)};
	p[2] = (struct form_param){xstrdup("From"), xstrdup(from)};
	p[3] = (struct form_param){xstrdup("To"), xstrdup("whatsapp:+14155238886")};
	p[4] = (struct form_param){xstrdup("Body"), xstrdup(text)};
	p[5] = (struct form_param){xstrdup("NumMedia"), xstrdup("0")};
	snprintf(url, sizeof(url), "%s/api/webhook/whatsapp", opt.public_url);
	twsig_compute(opt.token, url, &f, sig);
	r->e = curl_easy_init();
	for (i = 0; i < f.n; i++) {
		char *prev = r->body;
		k = curl_easy_escape(r->e, p[i].name, 0);
		v = curl_easy_escape(r->e, p[i].value, 0);
		xasprintf(&r->body, "%s%s%s=%s", prev ? prev : "", prev ? "&" : "", k, v);
		free(prev);
		curl_free(k);
		curl_free(v);
		free(p[i].name);
		free(p[i].value);
	}
	snprintf(hdr, sizeof(hdr), "X-Twilio-Signature: %s", sig);
	r->h = curl_slist_append(NULL, hdr);
	r->h = curl_slist_append(r->h, "Content-Type: application/x-www-form-urlencoded");
	snprintf(url, sizeof(url), "%s/api/webhook/whatsapp", opt.target);
	curl_easy_setopt(r->e, CURLOPT_URL, url);
	curl_easy_setopt(r->e, CURLOPT_POSTFIELDS, r->body);
	curl_easy_setopt(r->e, CURLOPT_HTTPHEADER, r->h);
	curl_easy_setopt(r->e, CURLOPT_TIMEOUT_MS, 15000L);
	curl_easy_setopt(r->e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->e, CURLOPT_WRITEFUNCTION, discard);
	r->c = c;
	c->next++;
	return r;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {{"target", 1, NULL, 't'}, {"public-url", 1, NULL, 'p'},
	    {"auth-token", 1, NULL, 'a'}, {"account-sid", 1, NULL, 's'}, {"customers", 1, NULL, 'k'},
	    {"rate", 1, NULL, 'r'}, {"duration", 1, NULL, 'd'}, {"drain", 1, NULL, 'D'}, {"sink-port", 1, NULL, 'P'},
	    {"sink-latency-ms", 1, NULL, 'L'}, {"json", 1, NULL, 'j'}, {"max-open", 1, NULL, 'o'}, {0, 0, 0, 0}};
	struct MHD_Daemon *mhd;
	struct sockaddr_in sa = {0};
	CURLM *m;
	struct req *wait_head = NULL, *wait_tail = NULL, **pre;
	uint64_t start, next, step;
	size_t npre, k = 0;
	unsigned open = 0, ci = 0, i;
	int ch, still;
	long long v;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 't': opt.target = optarg; break;
		case 'p': opt.public_url = optarg; break;
		case 'a': opt.token = optarg; break;
		case 's': opt.sid = optarg; break;
		case 'k': opt.customers = (unsigned)(parse_ll(optarg, 1, 10000000, &v) == 0 ? v : 100); break;
		case 'r': opt.rate = atof(optarg); break;
		case 'd': opt.duration = atof(optarg); break;
		case 'D': opt.drain = atof(optarg); break;
		case 'P': opt.sink_port = (unsigned)(parse_ll(optarg, 1, 65535, &v) == 0 ? v : 0); break;
		case 'L': opt.sink_latency_ms = (unsigned)(parse_ll(optarg, 0, 60000, &v) == 0 ? v : 0); break;
		case 'j': opt.json_path = optarg; break;
		case 'o': opt.max_open = (unsigned)(parse_ll(optarg, 1, 100000, &v) == 0 ? v : 512); break;
		default: return 2;
		}
	}
	if (opt.target == NULL || opt.public_url == NULL || opt.token == NULL || opt.sid == NULL ||
	    opt.sink_port == 0 || opt.rate <= 0) {
		fprintf(stderr,
		    "usage: loadgen --target URL --public-url URL --auth-token T --account-sid AC… "
		    "--sink-port P [--customers K] [--rate R] [--duration S] [--drain S] "
		    "[--sink-latency-ms MS] [--json FILE]\n");
		return 2;
	}
	crypto_init();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	cust = xcalloc(opt.customers, sizeof(*cust));
	for (i = 0; i < opt.customers; i++)
		snprintf(cust[i].phone, sizeof(cust[i].phone), "+57310%07u", i);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)opt.sink_port);
	sa.sin_addr.s_addr = htonl(0x7f000001);
	mhd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, sink,
	    NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, sink_done, NULL,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)4096,
	    MHD_OPTION_END);
	if (mhd == NULL) {
		fprintf(stderr, "loadgen: cannot listen on 127.0.0.1:%u\n", opt.sink_port);
		return 1;
	}
	m = curl_multi_init();
	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)opt.max_open);
	/*
	 * At most max_open requests at once, like as many clients each sending its next message when the last
	 * one is answered: the rest wait here, so that an acknowledgement is timed from when its client sent it,
	 * not from when it was generated (curl would otherwise queue it and count the wait).
	 */
	/*
	 * Every request is built (signed, its curl handle made) before the clock starts. Built as they were
	 * sent, a burst of 1,500 took the load generator some 40 ms of CPU while the first clients' answers
	 * waited unread, and that wait was counted as the daemon's (the 48 slowest acknowledgements were the
	 * first 48, all 44 ms).
	 */
	step = (uint64_t)(1e6 / opt.rate);
	if (step == 0)
		step = 1;
	npre = (size_t)(((uint64_t)(opt.duration * 1e6) + step - 1) / step);
	pre = xcalloc(npre ? npre : 1, sizeof(*pre));
	for (k = 0; k < npre; k++)
		pre[k] = make_request(&cust[ci++ % opt.customers]);
	k = 0;
	start = now_usec();
	next = start;
	/* Open loop: a message every 1/rate seconds, the customers in turn, whatever the daemon's speed. */
	for (;;) {
		uint64_t now = now_usec();
		CURLMsg *msg;
		int left;

		while (now >= next && k < npre) {
			struct req *r = pre[k++];
			struct customer *c = r->c;
			pthread_mutex_lock(&mu);
			if (c->npending < 64)
				c->pending[c->npending++] = now;
			sent++;
			pthread_mutex_unlock(&mu);
			if (wait_tail != NULL)
				wait_tail->next = r;
			else
				wait_head = r;
			wait_tail = r;
			next += step;
		}
		while (wait_head != NULL && open < opt.max_open) {
			struct req *r = wait_head;
			if ((wait_head = r->next) == NULL)
				wait_tail = NULL;
			r->t0 = now_usec();
			curl_multi_add_handle(m, r->e);
			open++;
		}
		curl_multi_perform(m, &still);
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			struct req *r;
			long status = 0;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
			pthread_mutex_lock(&mu);
			if (msg->data.result == CURLE_OK && status == 200) {
				acked++;
				push(&ack_ms, &nack, &cap_ack, (double)(now_usec() - r->t0) / 1000.0);
			} else {
				failed++;
			}
			pthread_mutex_unlock(&mu);
			curl_multi_remove_handle(m, r->e);
			curl_easy_cleanup(r->e);
			curl_slist_free_all(r->h);
			free(r->body);
			free(r);
			open--;
		}
		if (k == npre && open == 0 && wait_head == NULL)
			break;
		curl_multi_poll(m, NULL, 0, k == npre ? 50 : (int)((next > now ? next - now : 0) / 1000), NULL);
	}
	{
		/* The last replies: until every message is answered or the drain time is over. */
		uint64_t until = now_usec() + (uint64_t)(opt.drain * 1e6);
		for (;;) {
			unsigned waiting = 0;
			pthread_mutex_lock(&mu);
			for (i = 0; i < opt.customers; i++)
				waiting += cust[i].npending > 0;
			pthread_mutex_unlock(&mu);
			if (waiting == 0 || now_usec() >= until)
				break;
			usleep(50000);
		}
	}
	MHD_stop_daemon(mhd);
	free(pre);
	curl_multi_cleanup(m);
	{
		double secs = opt.duration;
		unsigned unanswered = 0;
		json_t *j;
		for (i = 0; i < opt.customers; i++)
			unanswered += cust[i].npending;
		qsort(ack_ms, nack, sizeof(double), cmp_d);
		qsort(turn_ms, nturn, sizeof(double), cmp_d);
		j = json_pack("{s:i, s:f, s:f, s:I, s:I, s:I, s:f, s:{s:f, s:f, s:f, s:f}, s:I, s:I, s:{s:f, s:f, s:f, "
		              "s:f}, s:I}",
		    "customers", (int)opt.customers, "rate", opt.rate, "duration_s", secs, "sent", (json_int_t)sent,
		    "acked", (json_int_t)acked, "failed", (json_int_t)failed, "acked_per_s", (double)acked / secs,
		    "ack_ms", "p50", pct(ack_ms, nack, 50), "p99", pct(ack_ms, nack, 99), "p999",
		    pct(ack_ms, nack, 99.9), "max", nack ? ack_ms[nack - 1] : 0.0, "replies", (json_int_t)replies,
		    "turns_measured", (json_int_t)nturn, "turn_ms", "p50", pct(turn_ms, nturn, 50), "p99",
		    pct(turn_ms, nturn, 99), "p999", pct(turn_ms, nturn, 99.9), "max", nturn ? turn_ms[nturn - 1] : 0.0,
		    "unanswered", (json_int_t)unanswered);
		printf("loadgen: %u customers, %.0f msg/s for %.0f s: sent %lu, acked %lu, failed %lu; ack p50 %.2f ms "
		       "p99 %.2f ms p99.9 %.2f ms; %lu replies, turn p50 %.0f ms p99 %.0f ms; %u unanswered\n",
		    opt.customers, opt.rate, secs, sent, acked, failed, pct(ack_ms, nack, 50), pct(ack_ms, nack, 99),
		    pct(ack_ms, nack, 99.9), replies, pct(turn_ms, nturn, 50), pct(turn_ms, nturn, 99), unanswered);
		if (opt.json_path != NULL)
			json_dump_file(j, opt.json_path, JSON_INDENT(1));
		json_decref(j);
	}
	free(ack_ms);
	free(turn_ms);
	free(cust);
	curl_global_cleanup();
	return 0;
}
