/*
 * Tests for common/http.c over real sockets: routing (404/405 as JSON), the
 * body limit (413, by Content-Length and by chunked length), asynchronous
 * answers, the connection limit, and the request deadline that cuts a
 * client sending one byte a second.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "common/http.h"
#include "tests/tap.h"

static int port;
static int stop_fd;
static int listen_fd;
static struct http_server *srv;
static sd_event *ev;
static pthread_mutex_t ready_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready_cond = PTHREAD_COND_INITIALIZER;
static int ready;

/* ---- the server under test ---- */

static void
h_health(struct http_request *r, void *arg)
{
	http_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static void
h_echo(struct http_request *r, void *arg)
{
	size_t len;
	const char *b = http_req_body(r, &len);

	http_reply_json(r, 200, json_pack("{s:I, s:b}", "len", (json_int_t)len, "nul_terminated", b[len] == '\0'));
}

static void
h_item(struct http_request *r, void *arg)
{
	http_reply_json(r, 200, json_pack("{s:s, s:s}", "id", http_req_param(r, 0), "query", http_req_query(r)));
}

static int
later(sd_event_source *s, uint64_t usec, void *arg)
{
	http_reply(arg, 202, "text/plain", "later", 5);
	sd_event_source_unref(s);
	return 0;
}

static void
h_async(struct http_request *r, void *arg)
{
	sd_event_add_time(ev, NULL, CLOCK_MONOTONIC, now_usec() + 200000, 1000, later, r);
}

/* What http_on_reply told (written by the server thread, read after the answer arrived). */
static volatile unsigned told_status, told_count;

static void
told(struct http_request *r, unsigned status, void *arg)
{
	told_status = status;
	told_count++;
}

static int
later_told(sd_event_source *s, uint64_t usec, void *arg)
{
	http_reply(arg, 409, "text/plain", "no", 2);
	sd_event_source_unref(s);
	return 0;
}

static void
h_told(struct http_request *r, void *arg)
{
	http_on_reply(r, told, NULL);
	http_add_header(r, "Cache-Control", "no-cache");
	sd_event_add_time(ev, NULL, CLOCK_MONOTONIC, now_usec() + 100000, 1000, later_told, r);
}

static const struct http_route routes[] = {
    {"GET", "/health", h_health},
    {"POST", "/echo", h_echo},
    {"GET", "/items/{id}", h_item},
    {"DELETE", "/items/{id}", h_item},
    {"GET", "/async", h_async},
    {"GET", "/told", h_told},
};

static int
on_stop(sd_event_source *s, int fd, uint32_t revents, void *arg)
{
	sd_event_exit(ev, 0);
	return 0;
}

static void *
server_thread(void *arg)
{
	struct http_limits lim = {
	    .max_body = 65536,
	    .max_uri = 4096,
	    .max_connections = 8,
	    .max_per_address = 6,
	    .proxies = {{.s6_addr = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1}}}, /* a local proxy */
	    .nproxies = 1,
	    .idle_timeout_s = 30,
	    .request_timeout_ms = 2000,
	    .connection_memory = 32768,
	    .body_memory = 4 * (65536 + 1), /* four whole bodies and their NULs */
	};

	sd_event_new(&ev);
	sd_event_add_io(ev, NULL, stop_fd, EPOLLIN, on_stop, NULL);
	srv = http_new(ev, listen_fd, &lim, routes, sizeof(routes) / sizeof(routes[0]), NULL);
	pthread_mutex_lock(&ready_lock);
	ready = 1;
	pthread_cond_signal(&ready_cond);
	pthread_mutex_unlock(&ready_lock);
	if (srv != NULL)
		sd_event_loop(ev);
	return NULL;
}

/* ---- a raw client ---- */

/* Connects from 127.0.0.<from> (every loopback address is local), so tests can be several clients. */
static int
dial_from(unsigned from)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct sockaddr_in src = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	src.sin_addr.s_addr = htonl(INADDR_LOOPBACK + from - 1);
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0)
		abort();
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		abort();
	return fd;
}

static int
dial(void)
{
	return dial_from(1);
}

static void
send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

struct resp {
	int status;
	char head[4096];
	char body[8192];
};

/* Reads one response (headers + Content-Length body) or until close; -1 on timeout. */
static int
read_resp(int fd, struct resp *r, int timeout_ms)
{
	static char buf[16384];
	size_t len = 0;
	char *end = NULL;
	long clen = -1;

	memset(r, 0, sizeof(*r));
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (end != NULL && clen >= 0 && len >= (size_t)(end + 4 - buf) + (size_t)clen)
			break;
		if (poll(&p, 1, timeout_ms) <= 0)
			return -1;
		n = recv(fd, buf + len, sizeof(buf) - len - 1, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if (end == NULL && (end = strstr(buf, "\r\n\r\n")) != NULL) {
			char *cl = strcasestr(buf, "\r\nContent-Length:");
			clen = cl != NULL && cl < end ? strtol(cl + 17, NULL, 10) : -1;
		}
	}
	if (end == NULL)
		return len == 0 ? 0 : -1;
	snprintf(r->head, sizeof(r->head), "%.*s", (int)(end - buf), buf);
	snprintf(r->body, sizeof(r->body), "%s", end + 4);
	sscanf(buf, "HTTP/1.%*d %d", &r->status);
	return r->status;
}

static int
request(const char *raw, struct resp *r)
{
	int fd = dial(), st;

	send_all(fd, raw, strlen(raw));
	st = read_resp(fd, r, 5000);
	close(fd);
	return st;
}

/* Waits until the server closes fd (recv gives 0 or an error); returns seconds waited, or -1. */
static double
wait_closed(int fd, int max_ms, const char *drip)
{
	uint64_t t0 = now_usec();
	size_t i = 0;

	while ((now_usec() - t0) / 1000 < (uint64_t)max_ms) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		char c;

		/* One byte a second, as a slowloris client does. */
		if (drip != NULL && drip[i] != '\0' && send(fd, &drip[i], 1, MSG_NOSIGNAL) == 1)
			i++;
		if (poll(&p, 1, 1000) > 0) {
			ssize_t n = recv(fd, &c, 1, 0);
			if (n <= 0)
				return (double)(now_usec() - t0) / 1e6;
		}
	}
	return -1;
}

/* ---- tests ---- */

static void
test_routing(void)
{
	struct resp r;

	is_int(request("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r), 200, "GET /health 200");
	ok(strcasestr(r.head, "Content-Type: application/json") != NULL, "JSON content type");
	ok(strstr(r.body, "\"status\":\"ok\"") != NULL, "JSON body");
	ok(strcasestr(r.head, "Cache-Control: no-store") != NULL, "responses are not cached");

	is_int(request("GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r), 404, "unknown path 404");
	ok(strstr(r.body, "{\"error\":{\"code\":404,\"status\":\"not_found\"") != NULL, "404 has a JSON error body");

	is_int(request("POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", &r), 405,
	    "wrong method 405");
	ok(strcasestr(r.head, "Allow: GET, HEAD") != NULL, "405 lists the allowed methods");
	ok(strstr(r.body, "\"code\":405") != NULL, "405 has a JSON error body");

	is_int(request("PUT /items/7 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", &r), 405,
	    "405 on a parameterised path");
	ok(strcasestr(r.head, "Allow: GET, HEAD, DELETE") != NULL, "Allow names every method of the path");

	is_int(request("HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r), 200, "HEAD served by GET");

	is_int(request("GET /told HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r), 409, "an answer given later");
	is_int((int)told_status, 409, "http_on_reply is told its status");
	is_int((int)told_count, 1, "once");
	ok(strcasestr(r.head, "Cache-Control: no-cache") != NULL && strcasestr(r.head, "no-store") == NULL,
	    "a handler's own Cache-Control replaces the no-store default");

	is_int(request("GET /items/a%2Bb?x=%2B1&y HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r), 200,
	    "path parameter route");
	ok(strstr(r.body, "\"id\":\"a+b\"") != NULL, "parameter is percent-decoded");
	ok(strstr(r.body, "\"query\":\"x=%2B1&y\"") != NULL, "query kept exactly as received");
	is_int(request("GET /items/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r), 404,
	    "empty parameter does not match");
	is_int(request("GET /health/../items/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r), 404,
	    "dot segments are not resolved into another route");

	is_int(request("GET /async HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r), 202,
	    "a handler may answer later");
	is_str(r.body, "later", "the late answer arrives");
}

static void
test_body_limit(void)
{
	static char big[70000];
	struct resp r;
	char head[256];
	int fd;

	memset(big, 'a', sizeof(big));
	fd = dial();
	snprintf(
	    head, sizeof(head), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\nConnection: close\r\n\r\n");
	send_all(fd, head, strlen(head));
	send_all(fd, big, 65536);
	is_int(read_resp(fd, &r, 5000), 200, "a 64 KiB body is accepted");
	ok(strstr(r.body, "\"len\":65536") != NULL && strstr(r.body, "\"nul_terminated\":true"),
	    "whole body delivered");
	close(fd);

	fd = dial();
	snprintf(head, sizeof(head), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 66560\r\n\r\n");
	send_all(fd, head, strlen(head));
	is_int(read_resp(fd, &r, 5000), 413, "65 KiB by Content-Length: 413 before the body is sent");
	ok(strstr(r.body, "\"status\":\"payload_too_large\"") != NULL, "413 has a JSON error body");
	close(fd);

	fd = dial();
	snprintf(head, sizeof(head),
	    "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
	send_all(fd, head, strlen(head));
	for (int i = 0; i < 7; i++) {
		send_all(fd, "2710\r\n", 6); /* 10,000 bytes a chunk */
		send_all(fd, big, 10000);
		send_all(fd, "\r\n", 2);
	}
	send_all(fd, "0\r\n\r\n", 5);
	is_int(read_resp(fd, &r, 5000), 413, "70,000 chunked bytes: 413");
	close(fd);

	is_int(
	    request("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\nConnection: close\r\n\r\n", &r) / 100,
	    4, "a malformed Content-Length is a 4xx");
}

static void
test_slow_clients(void)
{
	double t;
	int fd;

	fd = dial();
	t = wait_closed(fd, 8000, "GET /health HTTP/1.1\r\nHost: slow\r\n\r\n");
	ok(t > 1.5 && t < 4.5, "a client sending one byte a second is cut off after the 2 s deadline (%.1f s)", t);
	close(fd);

	fd = dial();
	send_all(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n", 52);
	t = wait_closed(fd, 8000, "0123456789012345678901234567890123456789");
	ok(t > 1.5 && t < 4.5, "so is one dripping its body (%.1f s)", t);
	close(fd);

	fd = dial();
	t = wait_closed(fd, 8000, NULL);
	ok(t > 1.5 && t < 4.5, "and one that connects and says nothing (%.1f s)", t);
	close(fd);
}

static void
test_connection_limit(void)
{
	int fds[8], extra, i;
	struct resp r;
	const char *req = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

	for (i = 0; i < 8; i++)
		fds[i] = dial_from(2 + (unsigned)i % 4); /* two from each of four addresses */
	usleep(200000);
	/* The ninth waits in the kernel's backlog: MHD stops accepting at the limit. */
	extra = dial();
	send_all(extra, req, strlen(req));
	is_int(read_resp(extra, &r, 1000), -1, "at the limit of 8 connections a ninth is not served");
	close(fds[0]);
	is_int(read_resp(extra, &r, 3000), 200, "once one closes, the waiting connection is served");
	close(extra);
	for (i = 1; i < 8; i++)
		close(fds[i]);
	usleep(100000);
	is_int(request(req, &r), 200, "after they all close, new connections are served");
}

static void
test_body_budget(void)
{
	int fds[4], i;
	struct resp r;
	const char *head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\nConnection: close\r\n\r\n";
	const char *small =
	    "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789";
	static char big[65536];

	/* Four connections announce 64 KiB bodies and send none: the budget counts bytes received, not promised. */
	for (i = 0; i < 4; i++) {
		fds[i] = dial_from(2);
		send_all(fds[i], head, strlen(head));
		send_all(fds[i], "abc", 3);
	}
	usleep(200000);
	is_int(request(small, &r), 200, "connections that announce big bodies and send none do not hold the budget");
	/* Four 64 KiB uploads that did arrive take it all. */
	memset(big, 'b', sizeof(big));
	for (i = 0; i < 4; i++)
		send_all(fds[i], big, 65000);
	usleep(300000);
	is_int(request(small, &r), 503, "when received bodies reach http.body_memory, a new upload gets 503");
	ok(strcasestr(r.head, "Retry-After: 1") != NULL, "with Retry-After");
	is_int(request("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r), 200,
	    "requests without a body are still served");
	send_all(fds[0], big, 65536 - 65003);
	is_int(read_resp(fds[0], &r, 5000), 200, "the uploads in progress complete");
	for (i = 0; i < 4; i++)
		close(fds[i]);
	usleep(100000);
	is_int(request("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nConnection: "
	               "close\r\n\r\n0123456789012345678901234567890123456789012345678901234567890123456789012345678901"
	               "234567890123456789",
	           &r),
	    200, "and once they end, the budget is free again");
}

/* A query of 20,000 '&' overflows libmicrohttpd's per-connection pool: it drops the request and closes. */
static void
test_query_flood(void)
{
	static char req[20100];
	struct resp r;
	int i, closed = 0, st;
	size_t n;

	n = (size_t)snprintf(req, sizeof(req), "GET /health?");
	memset(req + n, '&', 20000);
	n += 20000;
	n += (size_t)snprintf(req + n, sizeof(req) - n, " HTTP/1.1\r\nHost: x\r\n\r\n");
	for (i = 0; i < 500; i++)
		if ((st = request(req, &r)) == 0 || st == 414 || st == 431)
			closed++;
	is_int(closed, 500, "500 requests with 20,000 '&' in the query are refused or closed");
	is_int(request("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r), 200,
	    "and the server still answers");
}

static void
test_long_target(void)
{
	static char req[8192];
	struct resp r;
	size_t n = (size_t)snprintf(req, sizeof(req), "GET /health?a=");

	memset(req + n, 'x', 5000);
	n += 5000;
	snprintf(req + n, sizeof(req) - n, " HTTP/1.1\r\nHost: x\r\n\r\n");
	is_int(request(req, &r), 414, "a request target longer than max_uri gets 414");
	ok(strstr(r.body, "\"status\":\"uri_too_long\"") != NULL, "414 has a JSON error body");
	memset(req + 14, 'x', 3000);
	snprintf(req + 14 + 3000, sizeof(req) - 14 - 3000, " HTTP/1.1\r\nHost: x\r\n\r\n");
	is_int(request(req, &r), 200, "one within it is served");
}

/* RFC 9112 6.1: Content-Length with Transfer-Encoding is how requests are smuggled past a proxy. */
static void
test_conflicting_length(void)
{
	const char *req = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
	                  "5\r\nhello\r\n0\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n";
	struct resp r;
	int fd = dial();

	send_all(fd, req, strlen(req));
	is_int(read_resp(fd, &r, 5000), 400, "a request with both Content-Length and Transfer-Encoding gets 400");
	ok(strcasestr(r.head, "Connection: close") != NULL, "with Connection: close");
	ok(wait_closed(fd, 3000, NULL) >= 0, "and the connection is closed: nothing after it is read as a request");
	close(fd);
}

/* One address may hold max_per_address connections; others are still served. */
static void
test_per_address(void)
{
	int fds[6], extra, i;
	struct resp r;
	const char *req = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

	for (i = 0; i < 6; i++)
		fds[i] = dial_from(9);
	usleep(200000);
	extra = dial_from(9);
	send_all(extra, req, strlen(req));
	is_int(read_resp(extra, &r, 2000), 0, "a seventh connection from one address is closed at once");
	close(extra);
	is_int(request(req, &r), 200, "while another address is served");
	for (i = 0; i < 6; i++)
		close(fds[i]);
	usleep(100000);
	/* A reverse proxy's address (here 127.0.0.1) is spared: all its clients come from it. */
	for (i = 0; i < 6; i++)
		fds[i] = dial();
	usleep(200000);
	is_int(request(req, &r), 200, "a proxy's address may hold more (a seventh is served)");
	for (i = 0; i < 6; i++)
		close(fds[i]);
	{
		struct in6_addr a[8];
		is_int(http_parse_addresses("127.0.0.1 ::1,10.0.0.5", a, 8), 3,
		    "proxy addresses parse (IPv4, IPv6, commas)");
		ok(a[0].s6_addr[10] == 0xff && a[0].s6_addr[12] == 127 && a[2].s6_addr[15] == 5,
		    "IPv4 as ::ffff:a.b.c.d");
		is_int(http_parse_addresses("127.0.0.1 proxy.example", a, 8), -1, "a name is refused");
		is_int(http_parse_addresses("1.1.1.1 2.2.2.2 3.3.3.3", a, 2), -1, "so are too many");
	}
}

int
main(void)
{
	char bound[80];
	pthread_t th;
	struct http_stats st;
	uint64_t one = 1;

	listen_fd = http_listen_socket("127.0.0.1:0", bound, sizeof(bound));
	ok(listen_fd >= 0, "listening socket on port 0 (%s)", bound);
	port = atoi(strchr(bound, ':') + 1);
	ok(port > 0, "a free port was picked");
	ok(http_listen_socket("127.0.0.1:notaport", bound, sizeof(bound)) < 0, "a bad address is refused");
	stop_fd = eventfd(0, EFD_CLOEXEC);
	pthread_create(&th, NULL, server_thread, NULL);
	pthread_mutex_lock(&ready_lock);
	while (!ready)
		pthread_cond_wait(&ready_cond, &ready_lock);
	pthread_mutex_unlock(&ready_lock);
	if (!ok(srv != NULL, "server starts"))
		return done_testing();

	test_routing();
	test_body_limit();
	test_body_budget();
	test_slow_clients();
	test_connection_limit();
	test_query_flood();
	test_long_target();
	test_conflicting_length();
	test_per_address();

	if (write(stop_fd, &one, sizeof(one)) != sizeof(one))
		abort();
	pthread_join(th, NULL);
	http_get_stats(srv, &st);
	ok(st.too_large >= 2, "413 answers are counted (%llu)", (unsigned long long)st.too_large);
	ok(st.slow_clients >= 3, "cut slow clients are counted (%llu)", (unsigned long long)st.slow_clients);
	ok(st.status_4xx >= 6, "4xx answers are counted (%llu)", (unsigned long long)st.status_4xx);
	ok(st.closed_early >= 500, "requests libmicrohttpd dropped are counted (%llu)",
	    (unsigned long long)st.closed_early);
	is_int((int)st.too_long, 1, "so are 414 answers");
	is_int((int)st.conflicting_length, 1, "and requests with conflicting lengths");
	ok(st.per_address_closed >= 1, "and connections over an address's share (%llu)",
	    (unsigned long long)st.per_address_closed);
	http_free(srv);
	sd_event_unref(ev);
	close(stop_fd);
	return done_testing();
}
