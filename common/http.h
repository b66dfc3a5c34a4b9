/*
 * The HTTP server: libmicrohttpd in external-epoll mode, driven by the
 * daemon's sd-event loop on one thread. It enforces the request limits,
 * routes by method and path, and answers errors as JSON. A handler may
 * answer at once or later (the connection is suspended meanwhile).
 */
#ifndef CRMB_HTTP_H
#define CRMB_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#define HTTP_MAX_PROXIES 8

struct http_server;
struct http_request;

/* Called once the whole request has arrived; must answer now or later with http_reply*. */
typedef void (*http_handler_fn)(struct http_request *req, void *arg);

/*
 * Says whether a request may reach its handler; a refusal must answer (401, ...) before returning false.
 * Called with the server's arg.
 */
typedef bool (*http_allow_fn)(struct http_request *req, void *arg);

struct http_route {
	const char *method; /* "GET" (also serves HEAD), "POST", ... */
	const char *pattern; /* "/health", "/api/conversation/{phone}/status" */
	http_handler_fn fn;
	void *arg; /* passed to fn; NULL: the server's arg */
	http_allow_fn allow; /* run before fn; NULL: everyone may */
};

struct http_limits {
	size_t max_body; /* larger bodies get 413 */
	size_t max_uri; /* longer request targets (path and query) get 414 */
	unsigned max_connections; /* further connections are refused */
	unsigned max_per_address; /* further connections from one address are closed at once; 0: no limit */
	struct in6_addr proxies[HTTP_MAX_PROXIES]; /* addresses the per-address limit spares (IPv4 as ::ffff:a.b.c.d) */
	unsigned nproxies;
	unsigned idle_timeout_s; /* an idle connection is closed after this */
	uint64_t request_timeout_ms; /* a request must arrive whole within this */
	size_t connection_memory; /* per-connection memory for headers */
	size_t body_memory; /* all body bytes received and not yet answered; beyond: 503 */
};

struct http_stats {
	uint64_t requests;
	uint64_t status_2xx, status_3xx, status_4xx, status_5xx;
	uint64_t too_large; /* 413 answers */
	uint64_t too_long; /* 414 answers */
	uint64_t closed_early; /* requests libmicrohttpd dropped before they were whole (malformed, over its memory) */
	uint64_t
	    conflicting_length; /* requests with both Content-Length and Transfer-Encoding, answered 400 and closed */
	uint64_t per_address_closed; /* connections closed for being over max_per_address */
	uint64_t slow_clients; /* connections cut for not sending a request in time */
	uint64_t connections; /* open now */
	uint64_t in_flight; /* requests received and not yet answered */
};

/*
 * Parses "ADDRESS:PORT" (numeric IPv4, or IPv6 in brackets) into ss.
 * Returns 0 or -EINVAL.
 */
int listen_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len);
/*
 * Parses numeric IPv4 and IPv6 addresses separated by spaces or commas into
 * out (IPv4 as ::ffff:a.b.c.d). Returns how many, or -1 when one is not an
 * address or there are more than max.
 */
int http_parse_addresses(const char *s, struct in6_addr *out, unsigned max);
/*
 * Creates a listening TCP socket for "ADDRESS:PORT" (port 0 picks a free
 * one) and writes the address it got into bound. Returns the fd or -errno.
 */
int http_listen_socket(const char *listen, char *bound, size_t size);

/*
 * Starts serving on listen_fd (which the server then owns). routes and arg
 * are borrowed for the server's lifetime; arg is passed to every route's
 * allow function, and to its handler unless the route has an arg of its own.
 * Returns NULL and logs why on failure.
 */
struct http_server *http_new(sd_event *e, int listen_fd, const struct http_limits *lim, const struct http_route *routes,
    size_t nroutes, void *arg);
/* The server's sd-event priority (lower is dispatched first): its requests go ahead of other ready work. */
void http_set_priority(struct http_server *s, int64_t priority);
/* Stops serving; suspended requests are answered 503 first. NULL is fine. */
void http_free(struct http_server *s);
/* Closes the listening socket; connections already open continue. */
void http_quiesce(struct http_server *s);
/* Applies the limits that can change while running (body size, timeouts, memory). */
void http_set_limits(struct http_server *s, const struct http_limits *lim);
/* Copies the counters into st. */
void http_get_stats(const struct http_server *s, struct http_stats *st);

/* Request accessors: strings are borrowed and live until the request is answered. */
const char *http_req_method(const struct http_request *r);
/* The decoded path, without the query. */
const char *http_req_path(const struct http_request *r);
/* The request target (path and query) exactly as received, for signatures. */
const char *http_req_target(const struct http_request *r);
/* The arg the request's handler was given (the route's, or the one given to http_new). */
void *http_req_arg(const struct http_request *r);
/* The query string exactly as received (without '?'), or "" when none. */
const char *http_req_query(const struct http_request *r);
/* A request header (case-insensitive), or NULL. */
const char *http_req_header(const struct http_request *r, const char *name);
/* The body and its length; the body is NUL-terminated for convenience. */
const char *http_req_body(const struct http_request *r, size_t *len);
/* The i-th {placeholder} of the matched route, or NULL. */
const char *http_req_param(const struct http_request *r, unsigned i);
/* True when the client connected from a loopback address. */
bool http_req_peer_is_loopback(const struct http_request *r);
/* When the request line arrived (CLOCK_MONOTONIC, microseconds). */
uint64_t http_req_start(const struct http_request *r);

/* Told a request's answer: its status, or 0 when the request ended without one (the server stopping). */
typedef void (*http_reply_fn)(struct http_request *r, unsigned status, void *arg);
/* Sets the one function told when r is answered (an audit of what happened, after the fact). */
void http_on_reply(struct http_request *r, http_reply_fn fn, void *arg);
/* Adds a response header; call before replying. Both strings are copied. */
void http_add_header(struct http_request *r, const char *name, const char *value);
/* Answers with a copy of body. May be called from the handler or later. */
void http_reply(struct http_request *r, unsigned status, const char *content_type, const void *body, size_t len);
/* Answers with JSON; steals the reference to j. */
void http_reply_json(struct http_request *r, unsigned status, json_t *j);
/* Answers {"error": {"code": status, "status": name, "message": ...}}. */
void
http_reply_error(struct http_request *r, unsigned status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
