/* What ctl/admin.c shares with the other files of crmbridgectl's admin commands (status.c). */
#ifndef CRMB_CTL_ADMIN_PRIVATE_H
#define CRMB_CTL_ADMIN_PRIVATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "admin/admin.h"
#include "daemon/conf.h"

struct ctl {
	struct conf *conf;
	char base[256]; /* http://address:port of the admin endpoints */
	char webhook_base[256]; /* http://address:port of the webhooks */
	char token[ADMIN_TOKEN_MAX + 2]; /* one more byte than a token may have: longer is refused, never cut */
	char token_from[13000]; /* where the token came from, or the files looked at when none was found */
	bool json;
	bool url_given; /* --url */
};

/* GET/POST an admin endpoint; prints the daemon's error and returns NULL unless 2xx. */
json_t *admin_call(struct ctl *c, const char *method, const char *path);
void print_json(json_t *j);
const char *s_or(json_t *o, const char *key, const char *dflt);
long long i_of(json_t *o, const char *key);
void duration_text(long long s, char *out, size_t size);

/* status: the daemon and its dependencies (status.c). */
int ctl_status(struct ctl *c);
/* dashboard: a one-time login link for the admin dashboard (status.c). */
int ctl_dashboard(struct ctl *c);

#endif
