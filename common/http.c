/*
 * HTTP server on libmicrohttpd. MHD runs in external-epoll mode: its epoll
 * fd and its next timeout are sources in the daemon's sd-event loop, so the
 * whole daemon is one thread. On top of MHD this adds what it lacks: a total
 * deadline for receiving a request (MHD only has an idle timeout, which a
 * client sending a byte a second never trips), a global memory budget for
 * request bodies counted as their bytes arrive, a limit on the request
 * target (414), routing with 404/405, and JSON error bodies.
 *
 * Every request is also tied to its connection: libmicrohttpd drops a
 * request it cannot parse (a query of 20,000 '&' overflows its per-connection
 * pool) without the completion callback, so what on_uri allocated is freed
 * when the connection closes.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "common/http.h"

#define HTTP_MAX_PARAMS 4
#define HTTP_MAX_HEADERS 16

/* One TCP connection, tracked for the request deadline. */
struct hconn {
	struct http_server *srv;
	int fd;
	uint64_t deadline; /* 0: none (a request is being handled) */
	struct http_request *req; /* the request on it, until completed */
	struct in6_addr addr; /* the client's (IPv4 as ::ffff:a.b.c.d) */
	bool counted; /* in the per-address counts */
	struct hconn *prev, *next;
};

struct http_request {
	struct http_server *srv;
	struct MHD_Connection *conn;
	struct hconn *hc; /* its connection, or NULL */
	char *raw_uri;
	const char *query; /* points into raw_uri */
	const char *method;
	const char *path;
	const char *pattern; /* the matched route, logged instead of the path */
	void *arg; /* what the handler was given */
	uint64_t start;
	bool started; /* the first access-handler call has happened */
	bool dispatched; /* the handler has been called */
	bool suspended;
	bool too_large;
	unsigned reject; /* an early answer (414, 503) decided before the body */
	char *body;
	size_t body_len, body_cap, reserved;
	size_t body_expect; /* the Content-Length, 0 when none */
	char *params[HTTP_MAX_PARAMS];
	struct MHD_Response *response;
	unsigned status;
	char *hdr_name[HTTP_MAX_HEADERS], *hdr_value[HTTP_MAX_HEADERS];
	unsigned nhdr;
	http_reply_fn on_reply; /* told the answer's status once (0: never answered) */
	void *on_reply_arg;
	struct http_request *sprev, *snext; /* in the list of suspended requests */
};

struct http_server {
	sd_event *event;
	struct MHD_Daemon *mhd;
	sd_event_source *io, *timer, *sweep;
	int listen_fd;
	struct http_limits lim;
	const struct http_route *routes;
	size_t nroutes;
	void *arg;
	size_t body_bytes; /* body bytes held in memory, all requests together */
	struct hconn *conns;
	struct addr_count {
		struct in6_addr addr;
		unsigned n;
	} * per_addr; /* open connections of each client address (those counted) */
	size_t nper_addr, cap_per_addr;
	struct http_request *suspended;
	struct http_stats st;
	bool rerun; /* run libmicrohttpd again: it has a connection to close */
};

static void http_run(struct http_server *s);
static void request_drop(struct http_request *r);

/* ---- addresses ---- */

int
listen_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *colon, *port;
	long long p;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (s == NULL)
		return -EINVAL;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL || end[1] != ':')
			return -EINVAL;
		hl = (size_t)(end - s - 1);
		if (hl == 0 || hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		port = end + 2;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return -EINVAL;
		hl = (size_t)(colon - s);
		if (hl == 0 || hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, hl);
		host[hl] = '\0';
		port = colon + 1;
	}
	if (parse_ll(port, 0, 65535, &p) < 0)
		return -EINVAL;
	if (s[0] == '[') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return -EINVAL;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)p);
		*len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -EINVAL;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)p);
		*len = sizeof(*a);
	}
	return 0;
}

int
http_parse_addresses(const char *s, struct in6_addr *out, unsigned max)
{
	char one[INET6_ADDRSTRLEN];
	unsigned n = 0;

	while (s != NULL && *s != '\0') {
		size_t len = strcspn(s, " ,\t");
		struct in_addr a4;

		if (len > 0) {
			if (len >= sizeof(one) || n >= max)
				return -1;
			memcpy(one, s, len);
			one[len] = '\0';
			if (inet_pton(AF_INET, one, &a4) == 1) {
				memset(&out[n], 0, sizeof(out[n]));
				out[n].s6_addr[10] = out[n].s6_addr[11] = 0xff;
				memcpy(&out[n].s6_addr[12], &a4, 4);
			} else if (inet_pton(AF_INET6, one, &out[n]) != 1) {
				return -1;
			}
			n++;
		}
		s += len;
		s += strspn(s, " ,\t");
	}
	return (int)n;
}

int
http_listen_socket(const char *listen_addr, char *bound, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char host[INET6_ADDRSTRLEN];
	int fd, one = 1, r;

	if (listen_parse(listen_addr, &ss, &len) < 0)
		return -EINVAL;
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 511) < 0)
		goto fail;
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		goto fail;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(bound, size, "[%s]:%u", host, ntohs(a->sin6_port));
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(bound, size, "%s:%u", host, ntohs(a->sin_port));
	}
	return fd;
fail:
	r = -errno;
	close(fd);
	return r;
}

/* ---- replies ---- */

static const char *
status_name(unsigned status)
{
	switch (status) {
	case 400: return "bad_request";
	case 401: return "unauthorized";
	case 403: return "forbidden";
	case 404: return "not_found";
	case 405: return "method_not_allowed";
	case 408: return "request_timeout";
	case 409: return "conflict";
	case 413: return "payload_too_large";
	case 414: return "uri_too_long";
	case 415: return "unsupported_media_type";
	case 422: return "unprocessable_entity";
	case 429: return "too_many_requests";
	case 500: return "internal_error";
	case 503: return "service_unavailable";
	default: return status >= 500 ? "server_error" : "client_error";
	}
}

void
http_on_reply(struct http_request *r, http_reply_fn fn, void *arg)
{
	r->on_reply = fn;
	r->on_reply_arg = arg;
}

void
http_add_header(struct http_request *r, const char *name, const char *value)
{
	if (r->nhdr >= HTTP_MAX_HEADERS)
		fatalx("http: too many response headers");
	r->hdr_name[r->nhdr] = xstrdup(name);
	r->hdr_value[r->nhdr] = xstrdup(value);
	r->nhdr++;
}

void
http_reply(struct http_request *r, unsigned status, const char *content_type, const void *body, size_t len)
{
	struct MHD_Response *resp;
	unsigned i;

	if (r->response != NULL) {
		log_warnx("http: second reply to one request ignored");
		return;
	}
	resp = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		fatalx("http: cannot create a response");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	for (i = 0; i < r->nhdr; i++)
		MHD_add_response_header(resp, r->hdr_name[i], r->hdr_value[i]);
	/* Nothing is cached unless the handler said otherwise (the dashboard's files). */
	if (MHD_get_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL) == NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	r->response = resp;
	r->status = status;
	if (r->on_reply != NULL) {
		http_reply_fn fn = r->on_reply;
		r->on_reply = NULL;
		fn(r, status, r->on_reply_arg);
	}
	if (r->suspended) {
		/* Take it off the suspended list and let MHD call us again to queue it. */
		struct http_server *s = r->srv;
		if (r->sprev != NULL)
			r->sprev->snext = r->snext;
		else
			s->suspended = r->snext;
		if (r->snext != NULL)
			r->snext->sprev = r->sprev;
		r->sprev = r->snext = NULL;
		r->suspended = false;
		MHD_resume_connection(r->conn);
		http_run(s);
	}
}

void
http_reply_json(struct http_request *r, unsigned status, json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(12));

	if (text == NULL)
		fatalx("http: cannot encode JSON");
	http_reply(r, status, "application/json", text, strlen(text));
	free(text);
	json_decref(j);
}

void
http_reply_error(struct http_request *r, unsigned status, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	http_reply_json(r, status,
	    json_pack(
	        "{s:{s:i, s:s, s:s}}", "error", "code", (int)status, "status", status_name(status), "message", msg));
}

/* ---- accessors ---- */

const char *
http_req_method(const struct http_request *r)
{
	return r->method;
}

const char *
http_req_path(const struct http_request *r)
{
	return r->path;
}

const char *
http_req_target(const struct http_request *r)
{
	return r->raw_uri;
}

void *
http_req_arg(const struct http_request *r)
{
	return r->arg;
}

const char *
http_req_query(const struct http_request *r)
{
	return r->query != NULL ? r->query : "";
}

const char *
http_req_header(const struct http_request *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *
http_req_body(const struct http_request *r, size_t *len)
{
	*len = r->body_len;
	return r->body != NULL ? r->body : "";
}

const char *
http_req_param(const struct http_request *r, unsigned i)
{
	return i < HTTP_MAX_PARAMS ? r->params[i] : NULL;
}

bool
http_req_peer_is_loopback(const struct http_request *r)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa;

	if (ci == NULL || (sa = ci->client_addr) == NULL)
		return false;
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

uint64_t
http_req_start(const struct http_request *r)
{
	return r->start;
}

/* ---- routing ---- */

/* Matches path against pattern segment by segment; {x} takes one non-empty segment. */
static bool
route_match(const char *pattern, const char *path, char **params)
{
	unsigned np = 0;

	while (*pattern != '\0' && *path != '\0') {
		if (*pattern == '{') {
			const char *pe = strchr(pattern, '}');
			size_t n = strcspn(path, "/");
			if (pe == NULL || n == 0 || np >= HTTP_MAX_PARAMS)
				goto nomatch;
			params[np++] = xstrndup(path, n);
			pattern = pe + 1;
			path += n;
			continue;
		}
		if (*pattern != *path)
			goto nomatch;
		pattern++;
		path++;
	}
	if (*pattern == '\0' && *path == '\0')
		return true;
nomatch:
	while (np > 0) {
		free(params[--np]);
		params[np] = NULL;
	}
	return false;
}

static bool
method_matches(const char *route_method, const char *method)
{
	return strcmp(route_method, method) == 0 || (strcmp(route_method, "GET") == 0 && strcmp(method, "HEAD") == 0);
}

/* Finds the route; returns NULL and fills allow[] (for 405) when only the path matched. */
static const struct http_route *
route_find(struct http_server *s, struct http_request *r, char *allow, size_t allow_size, bool *path_found)
{
	size_t i;

	*path_found = false;
	allow[0] = '\0';
	for (i = 0; i < s->nroutes; i++) {
		char *params[HTTP_MAX_PARAMS] = {0};
		unsigned j;

		if (!route_match(s->routes[i].pattern, r->path, params))
			continue;
		if (method_matches(s->routes[i].method, r->method)) {
			memcpy(r->params, params, sizeof(params));
			return &s->routes[i];
		}
		for (j = 0; j < HTTP_MAX_PARAMS; j++)
			free(params[j]);
		*path_found = true;
		if (strstr(allow, s->routes[i].method) == NULL) {
			if (allow[0] != '\0')
				strncat(allow, ", ", allow_size - strlen(allow) - 1);
			strncat(allow, s->routes[i].method, allow_size - strlen(allow) - 1);
			if (strcmp(s->routes[i].method, "GET") == 0)
				strncat(allow, ", HEAD", allow_size - strlen(allow) - 1);
		}
	}
	return NULL;
}

/* ---- MHD callbacks ---- */

/* ---- connections per client address ---- */

static struct addr_count *
per_addr_find(struct http_server *s, const struct in6_addr *a)
{
	size_t i;

	for (i = 0; i < s->nper_addr; i++)
		if (memcmp(&s->per_addr[i].addr, a, sizeof(*a)) == 0)
			return &s->per_addr[i];
	return NULL;
}

/*
 * Counts a new connection of h's address; false when that address already
 * holds max_per_address. A reverse proxy's address (http.proxy_addresses)
 * is not counted: all its clients arrive from it.
 */
static bool
per_addr_admit(struct http_server *s, struct hconn *h, const struct sockaddr *sa)
{
	struct addr_count *ac;
	unsigned i;

	if (s->lim.max_per_address == 0 || sa == NULL)
		return true;
	if (sa->sa_family == AF_INET) {
		memset(&h->addr, 0, sizeof(h->addr));
		h->addr.s6_addr[10] = h->addr.s6_addr[11] = 0xff;
		memcpy(&h->addr.s6_addr[12], &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		h->addr = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	} else {
		return true;
	}
	for (i = 0; i < s->lim.nproxies; i++)
		if (memcmp(&s->lim.proxies[i], &h->addr, sizeof(h->addr)) == 0)
			return true;
	if ((ac = per_addr_find(s, &h->addr)) == NULL) {
		if (s->nper_addr == s->cap_per_addr) {
			s->cap_per_addr = s->cap_per_addr == 0 ? 16 : s->cap_per_addr * 2;
			s->per_addr = xreallocarray(s->per_addr, s->cap_per_addr, sizeof(*s->per_addr));
		}
		ac = &s->per_addr[s->nper_addr++];
		ac->addr = h->addr;
		ac->n = 0;
	}
	ac->n++;
	h->counted = true;
	return ac->n <= s->lim.max_per_address;
}

static void
per_addr_release(struct http_server *s, struct hconn *h)
{
	struct addr_count *ac;

	if (!h->counted || (ac = per_addr_find(s, &h->addr)) == NULL)
		return;
	if (--ac->n == 0)
		*ac = s->per_addr[--s->nper_addr];
}

static struct hconn *
conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci != NULL ? ci->socket_context : NULL;
}

static void
on_connection(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode code)
{
	struct http_server *s = cls;
	struct hconn *h;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		const union MHD_ConnectionInfo *ca = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		h = xcalloc(1, sizeof(*h));
		h->srv = s;
		h->fd = ci != NULL ? ci->connect_fd : -1;
		if (!per_addr_admit(s, h, ca != NULL ? ca->client_addr : NULL) && h->fd >= 0) {
			/* Over its address's share: closed before it is read (MHD sees the end and drops it). */
			shutdown(h->fd, SHUT_RDWR);
			s->st.per_address_closed++;
			s->rerun = true;
		}
		h->deadline = now_usec() + s->lim.request_timeout_ms * 1000;
		h->next = s->conns;
		if (s->conns != NULL)
			s->conns->prev = h;
		s->conns = h;
		*socket_context = h;
		s->st.connections++;
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		h = *socket_context;
		if (h == NULL)
			return;
		if (h->req != NULL)
			request_drop(h->req);
		per_addr_release(s, h);
		if (h->prev != NULL)
			h->prev->next = h->next;
		else
			s->conns = h->next;
		if (h->next != NULL)
			h->next->prev = h->prev;
		free(h);
		*socket_context = NULL;
		s->st.connections--;
	}
}

static void
request_free(struct http_request *r)
{
	unsigned i;

	if (r == NULL)
		return;
	if (r->hc != NULL && r->hc->req == r)
		r->hc->req = NULL;
	r->srv->body_bytes -= r->reserved;
	for (i = 0; i < HTTP_MAX_PARAMS; i++)
		free(r->params[i]);
	for (i = 0; i < r->nhdr; i++) {
		free(r->hdr_name[i]);
		free(r->hdr_value[i]);
	}
	if (r->on_reply != NULL)
		r->on_reply(r, 0, r->on_reply_arg);
	if (r->response != NULL)
		MHD_destroy_response(r->response);
	free(r->body);
	free(r->raw_uri);
	free(r);
}

/*
 * A request libmicrohttpd gave up on without completing it (it closed the
 * connection, or started the next request line): nobody else will free it.
 * One a handler holds (dispatched) is left alone: its answer is still owed.
 */
static void
request_drop(struct http_request *r)
{
	if (r->dispatched) {
		log_warnx("http: a connection closed under a request being answered");
		r->hc->req = NULL;
		r->hc = NULL;
		return;
	}
	r->srv->st.closed_early++;
	request_free(r);
}

/* Called when the request line has been read: we keep the raw URI for signature checks. */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct http_server *s = cls;
	struct http_request *r = xcalloc(1, sizeof(*r));
	struct hconn *h = conn_of(c);
	char *q;

	r->srv = s;
	r->conn = c;
	r->start = now_usec();
	if (strlen(uri) > s->lim.max_uri) {
		/* Refused before it costs more: neither copied nor routed. */
		r->reject = 414;
		r->raw_uri = xstrdup("");
	} else {
		r->raw_uri = xstrdup(uri);
		if ((q = strchr(r->raw_uri, '?')) != NULL)
			r->query = q + 1;
	}
	if (h != NULL) {
		if (h->req != NULL)
			request_drop(h->req);
		h->req = r;
		r->hc = h;
	}
	return r;
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	struct http_request *r = *con_cls;
	struct hconn *h = conn_of(c);

	if (r != NULL && r->dispatched && s->st.in_flight > 0)
		s->st.in_flight--;
	request_free(r);
	*con_cls = NULL;
	/* The next request on a kept-alive connection gets a fresh deadline. */
	if (h != NULL)
		h->deadline = now_usec() + s->lim.request_timeout_ms * 1000;
}

static enum MHD_Result
queue_response(struct http_request *r)
{
	struct http_server *s = r->srv;
	enum MHD_Result ret;

	s->st.requests++;
	if (r->status >= 500)
		s->st.status_5xx++;
	else if (r->status >= 400)
		s->st.status_4xx++;
	else if (r->status >= 300)
		s->st.status_3xx++;
	else
		s->st.status_2xx++;
	if (r->status == 413)
		s->st.too_large++;
	else if (r->status == 414)
		s->st.too_long++;
	/* Paths may carry a phone number: the access log names the route instead. */
	log_debug("http: %s %s %u %.1f ms", r->method != NULL ? r->method : "-",
	    r->pattern != NULL ? r->pattern : "(no route)", r->status, (double)(now_usec() - r->start) / 1000.0);
	ret = MHD_queue_response(r->conn, r->status, r->response);
	MHD_destroy_response(r->response);
	r->response = NULL;
	return ret;
}

/* Reserves n more body bytes from the global budget; false when it is spent. */
static bool
body_reserve(struct http_request *r, size_t n)
{
	struct http_server *s = r->srv;

	if (s->body_bytes + n > s->lim.body_memory)
		return false;
	s->body_bytes += n;
	r->reserved += n;
	return true;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
    const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct http_server *s = cls;
	struct http_request *r = *con_cls;
	const struct http_route *route;

	if (r == NULL) /* cannot happen: on_uri always sets it */
		return MHD_NO;

	if (!r->started) {
		const char *cl;
		char allow[64];
		bool path_found;

		r->started = true;
		r->method = method;
		r->path = url;
		if (r->reject == 414) {
			http_reply_error(r, 414, "request target longer than %zu bytes", s->lim.max_uri);
			return queue_response(r);
		}
		if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL &&
		    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH) != NULL) {
			/* RFC 9112 6.1: the framing is ambiguous (a smuggling attempt): answer and close. */
			s->st.conflicting_length++;
			http_add_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
			http_reply_error(r, 400, "both Content-Length and Transfer-Encoding: send one of them");
			return queue_response(r);
		}
		route = route_find(s, r, allow, sizeof(allow), &path_found);
		if (route == NULL) {
			if (path_found) {
				http_add_header(r, "Allow", allow);
				http_reply_error(r, 405, "method %s not allowed here", method);
			} else {
				http_reply_error(r, 404, "no such endpoint");
			}
			return queue_response(r);
		}
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL) {
			long long n;
			if (parse_ll(cl, 0, LLONG_MAX, &n) < 0) {
				http_reply_error(r, 400, "bad Content-Length");
				return queue_response(r);
			}
			if ((unsigned long long)n > s->lim.max_body) {
				http_reply_error(r, 413, "body larger than %zu bytes", s->lim.max_body);
				return queue_response(r);
			}
			/* Nothing is reserved yet: the budget counts bytes as they arrive, so connections that
			   announce a body and send none cost nothing. The length only sizes the buffer. */
			r->body_expect = (size_t)n;
		}
		return MHD_YES;
	}

	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (r->too_large || r->reject != 0)
			return MHD_YES; /* discard the rest; the answer is decided */
		if (r->body_len + n > s->lim.max_body) {
			r->too_large = true;
			return MHD_YES;
		}
		if (r->body_len + n + 1 > r->body_cap) {
			size_t cap = r->body_cap == 0 ? 1024 : r->body_cap;
			while (cap < r->body_len + n + 1)
				cap *= 2;
			/* With a Content-Length, no more than it needs; chunked bodies grow by doubling. */
			if (r->body_expect > 0 && r->body_len + n <= r->body_expect && cap > r->body_expect + 1)
				cap = r->body_expect + 1;
			if (cap > s->lim.max_body + 1)
				cap = s->lim.max_body + 1;
			/* Reserved as the buffer grows, that is as the bytes arrive. */
			if (cap > r->reserved && !body_reserve(r, cap - r->reserved)) {
				r->reject = 503;
				return MHD_YES;
			}
			r->body = xreallocarray(r->body, cap, 1);
			r->body_cap = cap;
		}
		memcpy(r->body + r->body_len, upload_data, n);
		r->body_len += n;
		r->body[r->body_len] = '\0';
		return MHD_YES;
	}

	if (r->response != NULL) /* resumed after an asynchronous reply */
		return queue_response(r);
	if (r->dispatched) /* spurious call while suspended */
		return MHD_YES;

	/* The whole request is here. */
	{
		struct hconn *h = conn_of(c);
		if (h != NULL)
			h->deadline = 0;
	}
	if (r->too_large) {
		http_reply_error(r, 413, "body larger than %zu bytes", s->lim.max_body);
		return queue_response(r);
	}
	if (r->reject == 503) {
		http_add_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
		http_reply_error(r, 503, "too many requests in progress, retry");
		return queue_response(r);
	}
	{
		char allow[64];
		bool path_found;
		unsigned i;

		for (i = 0; i < HTTP_MAX_PARAMS; i++) {
			free(r->params[i]);
			r->params[i] = NULL;
		}
		route = route_find(s, r, allow, sizeof(allow), &path_found);
	}
	r->pattern = route->pattern;
	r->dispatched = true;
	s->st.in_flight++;
	r->arg = route->arg != NULL ? route->arg : s->arg;
	if (route->allow == NULL || route->allow(r, s->arg))
		route->fn(r, r->arg);
	if (r->response != NULL)
		return queue_response(r);
	/* The handler answers later: park the connection. */
	r->suspended = true;
	r->snext = s->suspended;
	if (s->suspended != NULL)
		s->suspended->sprev = r;
	s->suspended = r;
	MHD_suspend_connection(c);
	return MHD_YES;
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[256];

	struct http_server *s = cls;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_debug("http: libmicrohttpd: %s", buf);
	/* It gave up on a request (malformed, over its memory): it closes the connection on its next run. */
	if (strstr(buf, "Closing connection") != NULL)
		s->rerun = true;
}

/* ---- loop integration ---- */

static void
http_run(struct http_server *s)
{
	MHD_UNSIGNED_LONG_LONG to;

	int rounds = 0;

	if (s->mhd == NULL)
		return;
	/*
	 * A timeout of 0 means MHD has more to do right now (a resumed
	 * connection, a response to write): run it again at once rather than
	 * through a timer, which sd-event may coalesce by its accuracy.
	 */
	do {
		s->rerun = false;
		MHD_run(s->mhd);
	} while ((s->rerun || (MHD_get_timeout(s->mhd, &to) == MHD_YES && to == 0)) && ++rounds < 8);
	if (MHD_get_timeout(s->mhd, &to) == MHD_YES) {
		sd_event_source_set_time(s->timer, now_usec() + (uint64_t)to * 1000);
		sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
	} else {
		sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
	}
}

static int
on_io(sd_event_source *es, int fd, uint32_t revents, void *arg)
{
	http_run(arg);
	return 0;
}

static int
on_timer(sd_event_source *es, uint64_t usec, void *arg)
{
	http_run(arg);
	return 0;
}

/* Cuts connections that did not deliver a whole request within request_timeout. */
static int
on_sweep(sd_event_source *es, uint64_t usec, void *arg)
{
	struct http_server *s = arg;
	uint64_t now = now_usec();
	struct hconn *h;

	for (h = s->conns; h != NULL; h = h->next) {
		if (h->deadline != 0 && now > h->deadline && h->fd >= 0) {
			log_debug("http: closing a connection that sent no complete request in %" PRIu64 " ms",
			    s->lim.request_timeout_ms);
			shutdown(h->fd, SHUT_RDWR);
			h->deadline = 0;
			s->st.slow_clients++;
		}
	}
	sd_event_source_set_time(es, now + 250000);
	/*
	 * Run MHD on every sweep: at the connection limit it takes its
	 * listening socket out of epoll and puts it back only at the start of its
	 * next run, which no socket event may trigger once connections closed.
	 */
	http_run(s);
	return 0;
}

struct http_server *
http_new(sd_event *e, int listen_fd, const struct http_limits *lim, const struct http_route *routes, size_t nroutes,
    void *arg)
{
	struct http_server *s = xcalloc(1, sizeof(*s));
	const union MHD_DaemonInfo *di;
	int r;

	s->event = sd_event_ref(e);
	s->lim = *lim;
	s->routes = routes;
	s->nroutes = nroutes;
	s->arg = arg;
	s->listen_fd = listen_fd;
	s->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL,
	    on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, MHD_OPTION_LISTEN_SOCKET, listen_fd,
	    MHD_OPTION_CONNECTION_LIMIT, lim->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, lim->idle_timeout_s,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, lim->connection_memory, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_END);
	if (s->mhd == NULL) {
		log_warnx("http: libmicrohttpd failed to start");
		goto fail;
	}
	if ((di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD)) == NULL) {
		log_warnx("http: libmicrohttpd has no epoll fd");
		goto fail;
	}
	if ((r = sd_event_add_io(e, &s->io, di->epoll_fd, EPOLLIN, on_io, s)) < 0 ||
	    (r = sd_event_add_time(e, &s->timer, CLOCK_MONOTONIC, 0, 1, on_timer, s)) < 0 ||
	    (r = sd_event_add_time(e, &s->sweep, CLOCK_MONOTONIC, now_usec() + 250000, 50000, on_sweep, s)) < 0) {
		errno = -r;
		log_warn("http: sd-event");
		goto fail;
	}
	sd_event_source_set_enabled(s->sweep, SD_EVENT_ON);
	http_run(s);
	return s;
fail:
	http_free(s);
	return NULL;
}

void
http_quiesce(struct http_server *s)
{
	int fd;

	if (s == NULL || s->mhd == NULL || s->listen_fd < 0)
		return;
	fd = MHD_quiesce_daemon(s->mhd);
	if (fd >= 0)
		close(fd);
	s->listen_fd = -1;
}

void
http_set_limits(struct http_server *s, const struct http_limits *lim)
{
	/* MHD fixes the connection limit, idle timeout and pool size at start; one address's share (and the
	   proxies spared from it) apply to new connections. */
	s->lim.max_body = lim->max_body;
	s->lim.max_per_address = lim->max_per_address;
	memcpy(s->lim.proxies, lim->proxies, sizeof(s->lim.proxies));
	s->lim.nproxies = lim->nproxies;
	s->lim.max_uri = lim->max_uri;
	s->lim.request_timeout_ms = lim->request_timeout_ms;
	s->lim.body_memory = lim->body_memory;
}

void
http_get_stats(const struct http_server *s, struct http_stats *st)
{
	*st = s->st;
}

void
http_set_priority(struct http_server *s, int64_t priority)
{
	sd_event_source_set_priority(s->io, priority);
	sd_event_source_set_priority(s->timer, priority);
}

void
http_free(struct http_server *s)
{
	if (s == NULL)
		return;
	while (s->suspended != NULL)
		http_reply_error(s->suspended, 503, "server shutting down");
	if (s->mhd != NULL) {
		MHD_run(s->mhd);
		MHD_stop_daemon(s->mhd);
		s->listen_fd = -1; /* MHD closed it */
	}
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	sd_event_source_disable_unref(s->io);
	sd_event_source_disable_unref(s->timer);
	sd_event_source_disable_unref(s->sweep);
	sd_event_unref(s->event);
	free(s->per_addr);
	free(s);
}
