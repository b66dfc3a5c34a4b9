/*
 * The admin dashboard's server side: its files, the sessions and the login
 * links, and the gate in front of the admin API's handlers (admin/dashboard.h).
 *
 * A session is a random id in an HttpOnly, SameSite=Strict cookie (Path=/admin);
 * Redis keeps the SHA-256 of the id, never the id, at P{admin}:session:<hex>
 * with the session's CSRF token, for dashboard.session_ttl: sessions outlive a
 * restart and every instance on one Redis knows them. A login link carries a
 * random code whose SHA-256 waits at P{admin}:login:<hex> for
 * dashboard.link_ttl; redis/dashboard-login.lua spends it and makes the
 * session in one step, so a link works once. A change (POST, DELETE) made
 * through the dashboard must carry the session's CSRF token in X-CSRF-Token and
 * come from the page's own origin, and is logged with the session that made it.
 * Every answer under /admin carries a Content-Security-Policy that allows only
 * the daemon's own files: no inline script, no other host.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gcrypt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/dashboard.h"
#include "admin/web-files.h"
#include "common/form.h"
#include "common/log.h"
#include "common/redis.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "redis/scripts.h"

#define CHARTJS_MAX (8u << 20)
#define ID_BYTES 32 /* session ids, CSRF tokens and login codes: 256 random bits, as hex */
#define ID_HEX (2 * ID_BYTES)

static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                          "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/* ---- the answers' headers ---- */

static void
secure_headers(struct http_request *req, bool cache)
{
	http_add_header(req, "Content-Security-Policy", csp);
	http_add_header(req, "X-Frame-Options", "DENY");
	http_add_header(req, "Referrer-Policy", "same-origin"); /* no-referrer would make a form's Origin "null" */
	if (cache)
		http_add_header(req, "Cache-Control", "no-cache"); /* else http.c's no-store */
}

static void
redirect(struct http_request *req, const char *to)
{
	secure_headers(req, false);
	http_add_header(req, "Location", to);
	http_reply(req, 303, "text/plain; charset=utf-8", "See Other\n", 10);
}

/* A page with one message and a link back to /admin (a login refused, Redis away). */
static void
page(struct http_request *req, unsigned status, const char *title, const char *text)
{
	char *body;
	int n;

	secure_headers(req, false);
	n = xasprintf(&body,
	    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s · crmbridge</title>"
	    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	    "<link rel=\"icon\" href=\"/admin/icon.svg\" type=\"image/svg+xml\">"
	    "<link rel=\"stylesheet\" href=\"/admin/app.css\"></head>"
	    "<body class=\"message\"><main><h1>%s</h1><p>%s</p><p><a href=\"/admin\">Open the dashboard</a></p>"
	    "</main></body></html>\n",
	    title, title, text);
	http_reply(req, status, "text/html; charset=utf-8", body, (size_t)n);
	free(body);
}

/* The session cookie: the id, or "" with Max-Age=0 to remove it. */
static void
set_cookie(struct http_request *req, const struct admin_ctx *x, const char *id)
{
	char *c;

	xasprintf(&c, DASHBOARD_COOKIE "=%s; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=%llu%s", id,
	    id[0] != '\0' ? (unsigned long long)(x->dash_session_ttl_ms / 1000) : 0ULL,
	    x->dash_secure ? "; Secure" : "");
	http_add_header(req, "Set-Cookie", c);
	free(c);
}

/* ---- ids and keys ---- */

static bool
is_id(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return n == ID_HEX;
}

/* P{admin}:<kind>:<SHA-256 of id, hex>: Redis keeps the hash, so its contents open nothing. */
static char *
id_key(const struct admin_ctx *x, const char *kind, const char *id)
{
	char hex[65], *k;

	sha256_hex(id, strlen(id), hex);
	xasprintf(&k, "%s{admin}:%s:%s", x->key_prefix, kind, hex);
	return k;
}

/* The session id from the Cookie header into id; false when there is none (or it is not one of ours). */
static bool
cookie_id(struct http_request *req, char id[ID_HEX + 1])
{
	const char *c = http_req_header(req, "Cookie"), *p;
	size_t n = strlen(DASHBOARD_COOKIE);

	for (p = c; p != NULL && *p != '\0'; p = strchr(p, ';'), p = p ? p + 1 : NULL) {
		while (*p == ' ')
			p++;
		if (strncmp(p, DASHBOARD_COOKIE "=", n + 1) == 0 && is_id(p + n + 1, strcspn(p + n + 1, "; "))) {
			memcpy(id, p + n + 1, ID_HEX);
			id[ID_HEX] = '\0';
			return true;
		}
	}
	return false;
}

/*
 * A browser's request from another site: its Origin names another host than the one it asked (Host, or the
 * proxy's X-Forwarded-Host). No Origin: not a browser's cross-site request (browsers send it on every POST).
 */
static bool
cross_site(struct http_request *req)
{
	const char *o = http_req_header(req, "Origin"), *h = http_req_header(req, "Host");
	const char *fh = http_req_header(req, "X-Forwarded-Host");

	if (o == NULL)
		return false;
	if ((o = strstr(o, "://")) == NULL)
		return true; /* "null": a sandboxed frame, a file, a redirect from elsewhere */
	o += 3;
	return !((h != NULL && strcasecmp(o, h) == 0) || (fh != NULL && strcasecmp(o, fh) == 0));
}

/* ---- waiting for Redis ---- */

struct dash_op {
	struct http_request *req; /* NULL once cancelled */
	struct admin_ctx *x;
	const struct dash_route *route;
	char id[ID_HEX + 1];
	char cookie[ID_HEX + 1]; /* a new session's id, for its cookie */
	char *key; /* the session's key (the gate; owned) */
	const char *via;
	struct dash_op *next;
};

static struct dash_op *dash_ops;
static const json_t *dash_session; /* the session of the request dashboard_api is handing over now */

static struct dash_op *
op_new(struct http_request *req, struct admin_ctx *x)
{
	struct dash_op *op = xcalloc(1, sizeof(*op));

	op->req = req;
	op->x = x;
	op->next = dash_ops;
	dash_ops = op;
	return op;
}

static void
op_free(struct dash_op *op)
{
	struct dash_op **pp;

	for (pp = &dash_ops; *pp != NULL; pp = &(*pp)->next)
		if (*pp == op) {
			*pp = op->next;
			break;
		}
	free(op->key);
	free(op);
}

void
dashboard_cancel(void)
{
	struct dash_op *op;

	for (op = dash_ops; op != NULL; op = op->next)
		op->req = NULL;
}

static bool
redis_up(const struct admin_ctx *x)
{
	return x->redis != NULL && rconn_state(x->redis) == RCONN_UP;
}

static bool
off(struct http_request *req, const struct admin_ctx *x)
{
	if (x->dash_enabled)
		return false;
	secure_headers(req, false);
	http_reply_error(req, 404, "the dashboard is off (dashboard.enabled = no)");
	return true;
}

/* ---- the files ---- */

/* A file's ETag: the first 64 bits of its SHA-256, quoted. */
static void
etag_of(const void *data, size_t len, char out[20])
{
	char hex[65];

	sha256_hex(data, len, hex);
	snprintf(out, 20, "\"%.16s\"", hex);
}

int
dashboard_load_chartjs(struct admin_ctx *x, const char *path)
{
	struct stat st;
	char *buf = NULL;
	ssize_t n = 0, r;
	int fd;

	free(x->chartjs);
	x->chartjs = NULL;
	x->chartjs_len = 0;
	const char *why = NULL;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode) || st.st_size > (off_t)CHARTJS_MAX)
		why = "not a file of at most 8 MiB";
	if (why != NULL) {
		log_warnx("dashboard: cannot read Chart.js at %s (%s): the dashboard shows its figures as tables; "
		          "install Debian's libjs-chart.js or set dashboard.chartjs",
		    path, why);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (n < st.st_size && (r = read(fd, buf + n, (size_t)(st.st_size - n))) > 0)
		n += r;
	close(fd);
	if (n != st.st_size) {
		log_warnx("dashboard: %s changed while it was read: the dashboard shows its figures as tables until "
		          "the next reload",
		    path);
		free(buf);
		return -1;
	}
	x->chartjs = buf;
	x->chartjs_len = (size_t)n;
	etag_of(buf, (size_t)n, x->chartjs_etag);
	return 0;
}

/* The files are answered with an ETag of their contents: a browser asks again, and gets 304 while unchanged. */
static void
reply_file(struct http_request *req, const char *type, const void *data, size_t len, const char *etag)
{
	const char *inm = http_req_header(req, "If-None-Match");

	secure_headers(req, true);
	http_add_header(req, "ETag", etag);
	if (inm != NULL && strcmp(inm, etag) == 0)
		http_reply(req, 304, type, "", 0);
	else
		http_reply(req, 200, type, data, len);
}

void
dashboard_get_file(struct http_request *req, void *arg)
{
	struct admin_ctx *x = arg;
	const char *path = http_req_path(req);
	static char(*etags)[20]; /* the compiled-in files' ETags, made at the first request */
	unsigned i;

	if (off(req, x))
		return;
	if (strcmp(path, "/admin/chart.js") == 0) {
		if (x->chartjs == NULL) {
			secure_headers(req, false);
			http_reply_error(req, 404, "Chart.js was not found at start: install libjs-chart.js");
		} else {
			reply_file(req, "text/javascript; charset=utf-8", x->chartjs, x->chartjs_len, x->chartjs_etag);
		}
		return;
	}
	if (strcmp(path, "/admin/") == 0)
		path = "/admin";
	if (etags == NULL) {
		etags = xcalloc(web_nfiles, sizeof(*etags));
		for (i = 0; i < web_nfiles; i++)
			etag_of(web_files[i].data, web_files[i].len, etags[i]);
	}
	for (i = 0; i < web_nfiles; i++)
		if (strcmp(web_files[i].path, path) == 0) {
			reply_file(req, web_files[i].type, web_files[i].data, web_files[i].len, etags[i]);
			return;
		}
	secure_headers(req, false);
	http_reply_error(req, 404, "no such file");
}

/* ---- logging in ---- */

/*
 * Which admin token a session was opened under: the first 16 bytes of HMAC-SHA-256(token, a fixed text), as
 * hex. A session is good only while the token is the same, so changing the token (a leak) ends every session.
 */
static void
token_mark(const struct admin_ctx *x, char out[33])
{
	static const char text[] = "crmbridge dashboard session";
	unsigned char mac[32];
	gcry_mac_hd_t h;
	size_t n = sizeof(mac);

	memset(mac, 0, sizeof(mac));
	if (x->token != NULL && gcry_mac_open(&h, GCRY_MAC_HMAC_SHA256, 0, NULL) == 0) {
		if (gcry_mac_setkey(h, x->token, strlen(x->token)) == 0 &&
		    gcry_mac_write(h, text, sizeof(text) - 1) == 0)
			gcry_mac_read(h, mac, &n);
		gcry_mac_close(h);
	}
	hex_encode(mac, 16, out);
}

static json_t *
session_new(const struct admin_ctx *x, const char *via, char csrf[ID_HEX + 1])
{
	char mark[33];

	random_hex(ID_BYTES, csrf);
	token_mark(x, mark);
	return json_pack("{s:s, s:s, s:I, s:s}", "csrf", csrf, "via", via, "created_ms",
	    (json_int_t)(realtime_usec() / 1000), "token", mark);
}

static void
logged_in(struct dash_op *op)
{
	op->x->dash_logins++;
	log_notice("dashboard: a session was opened with %s (for %llu s)", op->via,
	    (unsigned long long)(op->x->dash_session_ttl_ms / 1000));
	set_cookie(op->req, op->x, op->cookie);
	redirect(op->req, "/admin");
}

static void
on_login(redisAsyncContext *ac, void *r, void *pd)
{
	struct dash_op *op = pd;
	redisReply *reply = r;

	(void)ac;
	if (op->req == NULL) {
		op_free(op);
		return;
	}
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		page(op->req, 503, "Redis is unavailable",
		    "The dashboard keeps its sessions in Redis, which did not answer. Check that Redis runs "
		    "(crmbridgectl status), then open the link again.");
	} else if ((reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) || reply->type == REDIS_REPLY_STATUS) {
		logged_in(op);
	} else {
		op->x->dash_login_failures++;
		log_notice("dashboard: a login link was refused: already used, expired or never made");
		page(op->req, 403, "This login link does not work",
		    "A login link works once, for a few minutes. Run <code>crmbridgectl dashboard</code> for a new "
		    "one, or log in with the admin token.");
	}
	op_free(op);
}

void
dashboard_get_login(struct http_request *req, void *arg)
{
	struct admin_ctx *x = arg;
	const char *q = http_req_query(req);
	char csrf[ID_HEX + 1], *code_key, *sess_key, *js, ttl[24];
	struct dash_op *op;
	json_t *s;

	if (off(req, x))
		return;
	if (strncmp(q, "code=", 5) != 0 || !is_id(q + 5, strlen(q + 5))) {
		page(req, 400, "This is not a login link",
		    "A login link is /admin/login?code= and 64 hexadecimal characters, as "
		    "<code>crmbridgectl dashboard</code> prints it.");
		return;
	}
	if (!redis_up(x)) {
		page(req, 503, "Redis is unavailable",
		    "The dashboard keeps its sessions in Redis, which is not connected. Check Redis, then open the "
		    "link "
		    "again.");
		return;
	}
	if (strcmp(http_req_method(req), "HEAD") == 0) {
		/* A link checker asking about the link: it does not spend the code. */
		page(req, 200, "A login link", "Open it in a browser to log in.");
		return;
	}
	op = op_new(req, x);
	op->via = "a login link";
	random_hex(ID_BYTES, op->cookie);
	code_key = id_key(x, "login", q + 5);
	sess_key = id_key(x, "session", op->cookie);
	s = session_new(x, "link", csrf);
	js = json_dumps(s, JSON_COMPACT);
	snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)x->dash_session_ttl_ms);
	{
		static struct rscript sc;
		const char *argv[] = {code_key, sess_key, js, ttl};
		if (sc.text == NULL)
			rscript_init(&sc, redis_script_dashboard_login);
		if (rconn_eval(x->redis, &sc, on_login, op, 2, 4, argv, NULL) < 0) {
			page(req, 503, "Redis is unavailable", "Check Redis, then open the link again.");
			op_free(op);
		}
	}
	free(code_key);
	free(sess_key);
	free(js);
	json_decref(s);
}

void
dashboard_post_login(struct http_request *req, void *arg)
{
	struct admin_ctx *x = arg;
	struct form f = {0};
	const char *why, *body, *token;
	char csrf[ID_HEX + 1], *key, *js;
	struct dash_op *op;
	size_t len;
	json_t *s;

	if (off(req, x))
		return;
	body = http_req_body(req, &len);
	if (cross_site(req)) {
		page(req, 403, "Log in from the dashboard's own page", "This form was sent from another site.");
		return;
	}
	if (form_parse(body, len, &f, &why) < 0 || (token = form_get(&f, "token")) == NULL) {
		form_clear(&f);
		page(req, 400, "No admin token", "Type the admin token into the dashboard's form.");
		return;
	}
	if (x->token == NULL || !timingsafe_streq(token, x->token)) {
		form_clear(&f);
		x->auth_failures++;
		x->dash_login_failures++;
		log_notice("dashboard: a login with a wrong admin token was refused");
		redirect(req, "/admin?login=refused");
		return;
	}
	form_clear(&f);
	if (!redis_up(x)) {
		page(req, 503, "Redis is unavailable",
		    "The dashboard keeps its sessions in Redis, which is not connected. Check Redis, then log in "
		    "again.");
		return;
	}
	op = op_new(req, x);
	op->via = "the admin token";
	random_hex(ID_BYTES, op->cookie);
	key = id_key(x, "session", op->cookie);
	s = session_new(x, "token", csrf);
	js = json_dumps(s, JSON_COMPACT);
	if (rconn_command(
	        x->redis, on_login, op, "SET %s %s PX %llu", key, js, (unsigned long long)x->dash_session_ttl_ms) < 0) {
		page(req, 503, "Redis is unavailable", "Check Redis, then log in again.");
		op_free(op);
	}
	free(key);
	free(js);
	json_decref(s);
}

/* ---- login links (crmbridgectl dashboard) ---- */

static void
on_link(redisAsyncContext *ac, void *r, void *pd)
{
	struct dash_op *op = pd;
	redisReply *reply = r;
	char *path;

	(void)ac;
	if (op->req == NULL) {
		op_free(op);
		return;
	}
	if (reply == NULL || reply->type != REDIS_REPLY_STATUS) {
		http_reply_error(op->req, 503, "Redis unavailable: login links are kept there");
	} else {
		op->x->dash_links++;
		log_notice("dashboard: a login link was made (it works once, for %llu s)",
		    (unsigned long long)(op->x->dash_link_ttl_ms / 1000));
		xasprintf(&path, "/admin/login?code=%s", op->id);
		http_reply_json(op->req, 200,
		    json_pack(
		        "{s:s, s:I}", "path", path, "expires_in_s", (json_int_t)(op->x->dash_link_ttl_ms / 1000)));
		free(path);
	}
	explicit_bzero(op->id, sizeof(op->id));
	op_free(op);
}

void
dashboard_post_link(struct http_request *req, void *arg)
{
	struct admin_ctx *x = arg;
	struct dash_op *op;
	char *key;

	if (off(req, x))
		return;
	if (!redis_up(x)) {
		http_reply_error(req, 503, "Redis unavailable: login links are kept there");
		return;
	}
	op = op_new(req, x);
	random_hex(ID_BYTES, op->id);
	key = id_key(x, "login", op->id);
	if (rconn_command(x->redis, on_link, op, "SET %s 1 PX %llu NX", key, (unsigned long long)x->dash_link_ttl_ms) <
	    0) {
		http_reply_error(req, 503, "Redis unavailable: login links are kept there");
		op_free(op);
	}
	free(key);
}

/* ---- the gate in front of the API ---- */

/* The phone a route names, masked for the log ("" when it names none). */
static const char *
route_phone(struct http_request *req, char *buf, size_t size)
{
	const char *p = http_req_param(req, 0);

	return p != NULL ? log_phone(p, buf, size) : "";
}

/* A change made through the dashboard, logged once its answer is known. */
struct audit {
	struct admin_ctx *x;
	const char *what, *via;
	char method[8], phone[32];
};

static void
audited(struct http_request *req, unsigned status, void *arg)
{
	struct audit *a = arg;

	(void)req;
	if (status >= 200 && status < 300) {
		a->x->dash_actions++;
		log_notice("dashboard: %s%s%s (%s, a session opened with %s)", a->what, a->phone[0] ? " " : "",
		    a->phone, a->method, a->via);
	} else {
		log_notice("dashboard: %s%s%s failed (%s answered %u, a session opened with %s)", a->what,
		    a->phone[0] ? " " : "", a->phone, a->method, status, a->via);
	}
	free(a);
}

static void
audit(const struct dash_op *op, const json_t *s)
{
	struct audit *a = xcalloc(1, sizeof(*a));

	a->x = op->x;
	a->what = op->route->what;
	a->via = strcmp(json_string_value(json_object_get(s, "via")) ?: "", "link") == 0 ? "a login link"
	                                                                                 : "the admin token";
	snprintf(a->method, sizeof(a->method), "%s", http_req_method(op->req));
	route_phone(op->req, a->phone, sizeof(a->phone));
	http_on_reply(op->req, audited, a);
}

static void
on_session(redisAsyncContext *ac, void *r, void *pd)
{
	struct dash_op *op = pd;
	redisReply *reply = r;
	struct http_request *req = op->req;
	const struct dash_route *rt = op->route;
	json_t *s = NULL;

	(void)ac;
	if (req == NULL)
		goto done;
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		http_reply_error(req, 503, "Redis unavailable: the dashboard's sessions are kept there");
		goto done;
	}
	if (reply->type != REDIS_REPLY_STRING || (s = json_loadb(reply->str, reply->len, 0, NULL)) == NULL) {
		set_cookie(req, op->x, "");
		http_reply_error(req, 401, "the session has expired or was closed: log in again at /admin");
		goto done;
	}
	{
		char mark[33];
		const char *had = json_string_value(json_object_get(s, "token"));
		token_mark(op->x, mark);
		if (had == NULL || !timingsafe_streq(had, mark)) {
			log_notice("dashboard: a session opened under another admin token was refused and closed");
			set_cookie(req, op->x, "");
			http_reply_error(
			    req, 401, "the admin token has changed since this session was opened: log in again");
			rconn_command(op->x->redis, NULL, NULL, "DEL %s", op->key);
			goto done;
		}
	}
	if (rt->write) {
		const char *t = http_req_header(req, "X-CSRF-Token"),
		           *want = json_string_value(json_object_get(s, "csrf"));
		if (t == NULL || want == NULL || !timingsafe_streq(t, want)) {
			char ph[32];
			log_notice("dashboard: a change without the session's CSRF token was refused (%s %s)", rt->what,
			    route_phone(req, ph, sizeof(ph)));
			http_reply_error(req, 403, "this change needs the session's X-CSRF-Token: reload the page");
			goto done;
		}
		audit(op, s);
	}
	/* The handler answers now or later; req is not touched here after it. */
	dash_session = s;
	rt->fn(req, rt->arg);
	dash_session = NULL;
done:
	json_decref(s);
	op_free(op);
}

void
dashboard_api(struct http_request *req, void *arg)
{
	const struct dash_route *rt = arg;
	struct admin_ctx *x = rt->x;
	struct dash_op *op;
	char *key;

	if (off(req, x))
		return;
	secure_headers(req, false);
	op = op_new(req, x);
	op->route = rt;
	if (!cookie_id(req, op->id)) {
		op_free(op);
		http_reply_error(req, 401, "no dashboard session: log in at /admin");
		return;
	}
	if (rt->write && cross_site(req)) {
		char ph[32];
		op_free(op);
		log_notice("dashboard: a change from another site was refused (%s %s, Origin %s)", rt->what,
		    route_phone(req, ph, sizeof(ph)), http_req_header(req, "Origin"));
		http_reply_error(req, 403, "a change must come from the dashboard's own page");
		return;
	}
	key = id_key(x, "session", op->id);
	op->key = xstrdup(key);
	if (!redis_up(x) || rconn_command(x->redis, on_session, op, "GET %s", key) < 0) {
		op_free(op);
		http_reply_error(req, 503, "Redis unavailable: the dashboard's sessions are kept there");
	}
	free(key);
}

void
dashboard_get_session(struct http_request *req, void *arg)
{
	struct admin_ctx *x = arg;
	const json_t *s = dash_session;

	http_reply_json(req, 200,
	    json_pack("{s:O?, s:O?, s:O?, s:I, s:s, s:b}", "csrf", json_object_get(s, "csrf"), "via",
	        json_object_get(s, "via"), "created_ms", json_object_get(s, "created_ms"), "ttl_s",
	        (json_int_t)(x->dash_session_ttl_ms / 1000), "version", PACKAGE_VERSION, "charts", x->chartjs != NULL));
}

static void
on_logout(redisAsyncContext *ac, void *r, void *pd)
{
	struct dash_op *op = pd;

	(void)ac;
	if (op->req != NULL) {
		if (r == NULL) {
			http_reply_error(op->req, 503, "Redis unavailable: the session could not be closed");
		} else {
			set_cookie(op->req, op->x, "");
			http_reply_json(op->req, 200, json_pack("{s:b}", "closed", 1));
		}
	}
	op_free(op);
}

void
dashboard_post_logout(struct http_request *req, void *arg)
{
	struct admin_ctx *x = arg;
	struct dash_op *op;
	char *key;

	op = op_new(req, x);
	if (!cookie_id(req, op->id)) {
		op_free(op);
		http_reply_error(req, 401, "no dashboard session");
		return;
	}
	key = id_key(x, "session", op->id);
	if (rconn_command(x->redis, on_logout, op, "DEL %s", key) < 0) {
		op_free(op);
		http_reply_error(req, 503, "Redis unavailable: the session could not be closed");
	}
	free(key);
}
