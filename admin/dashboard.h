/*
 * The admin dashboard: a page of the project's own (admin/web/, compiled in)
 * and Debian's Chart.js, served under /admin on the admin listener. Who may
 * look is a session kept in Redis, made from a one-time login link
 * (crmbridgectl dashboard) or from the admin token typed into the page's
 * form; the page's data and actions are the admin API's own handlers,
 * mirrored under /admin/api/ behind the session (and, for a change, its
 * CSRF token and the request's origin).
 */
#ifndef CRMB_DASHBOARD_H
#define CRMB_DASHBOARD_H

#include <stdbool.h>

#include "admin/admin.h"
#include "common/http.h"

/* The session cookie's name. */
#define DASHBOARD_COOKIE "crmbridge_session"

/* An admin API route mirrored under /admin/api/ (the route's arg). */
struct dash_route {
	const char *method, *pattern; /* under /admin/api/ */
	struct admin_ctx *x;
	http_handler_fn fn; /* the admin API's handler */
	void *arg; /* its arg */
	bool write; /* changes something: needs the CSRF token, audited in the log */
	const char *what; /* for the audit line: "paused", "erased", ... */
};

/*
 * Reads Debian's Chart.js from path into x (once at start and at each reload). 0, or -1 (logged with the file,
 * what failed and what to install): the dashboard then shows its figures as tables.
 */
int dashboard_load_chartjs(struct admin_ctx *x, const char *path);

/* GET /admin and its files (arg: the struct admin_ctx). */
void dashboard_get_file(struct http_request *req, void *arg);
/* GET /admin/login?code=...: spends a one-time code, sets the session cookie, 303 to /admin. */
void dashboard_get_login(struct http_request *req, void *arg);
/* POST /admin/login (form: token): the admin token typed into the page, a session likewise. */
void dashboard_post_login(struct http_request *req, void *arg);
/* POST /api/dashboard/link (the admin token): a one-time login code, {"path", "expires_in_s"}. */
void dashboard_post_link(struct http_request *req, void *arg);
/* Any /admin/api/ route (arg: its struct dash_route): checks the session, then runs the API's handler. */
void dashboard_api(struct http_request *req, void *arg);
/* The dashboard's own API handlers, behind dashboard_api (arg: the struct admin_ctx). */
void dashboard_get_session(struct http_request *req, void *arg);
void dashboard_post_logout(struct http_request *req, void *arg);
/* Cancels the requests waiting for Redis (before the HTTP server stops). */
void dashboard_cancel(void);

#endif
