/*
 * Who may use the admin endpoints: the holder of the admin token. The
 * token is configured (CRMBRIDGE_ADMIN_TOKEN, a credential or the file);
 * without one, the daemon makes one at first start and keeps it in
 * state_dir/admin.token (mode 0600), where crmbridgectl finds it, so an
 * admin endpoint never answers without a token.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gcrypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "admin/admin.h"

#define TOKEN_FILE "admin.token"

/*
 * Reads the token kept in path into *out (caller frees). Returns 0; -ENOENT when there is no file (one is
 * made then); another -errno when the file is there but unusable, logged with the file's name and what to do,
 * because replacing it would silently lock out whoever holds the token written there.
 */
static int
read_token(const char *path, char **out)
{
	char buf[ADMIN_TOKEN_MAX + 2];
	const char *fix = "fix or remove it (a new one is made when none is there), or set CRMBRIDGE_ADMIN_TOKEN";
	size_t got = 0, len;
	struct stat st;
	int fd, r;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		if (errno == ENOENT)
			return -ENOENT;
		r = -errno;
		log_error("admin: cannot read the admin token in %s: %s; %s", path, strerror(-r), fix);
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
		log_error("admin: %s is not a private regular file (mode 0600); chmod 600 it, or %s", path, fix);
		close(fd);
		return -EPERM;
	}
	/* One byte more than a token may have: a longer one is refused, never cut. */
	while (got < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			log_error("admin: cannot read the admin token in %s: %s; %s", path, strerror(-r), fix);
			close(fd);
			return r;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	len = strcspn(buf, "\r\n");
	buf[len] = '\0';
	if (memchr(buf, '\0', len) != NULL || strlen(buf) < 16 || len > ADMIN_TOKEN_MAX) {
		log_error("admin: the admin token in %s is %s; %s", path,
		    len > ADMIN_TOKEN_MAX ? "longer than 1024 bytes" : "shorter than 16 characters, or not text", fix);
		explicit_bzero(buf, sizeof(buf));
		return -EINVAL;
	}
	*out = xstrdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

static void
set_token(struct admin_ctx *x, char *tok, bool generated)
{
	if (x->token != NULL) {
		explicit_bzero(x->token, strlen(x->token));
		free(x->token);
	}
	x->token = tok;
	x->token_generated = generated;
}

int
admin_token_init(struct admin_ctx *x, const char *configured, const char *state_dir)
{
	char path[4096], tmp[4100], hex[65], *tok;
	int fd, r;

	if (configured != NULL) {
		set_token(x, xstrdup(configured), false);
		return 0;
	}
	snprintf(path, sizeof(path), "%s/" TOKEN_FILE, state_dir);
	if ((r = read_token(path, &tok)) == 0) {
		set_token(x, tok, true);
		log_notice("admin: using the admin token in %s (server.admin_token not set)", path);
		return 0;
	}
	if (r != -ENOENT)
		goto fail;
	random_hex(32, hex); /* 256 bits */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		log_error("admin: cannot create %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (dprintf(fd, "%s\n", hex) < 0 || fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
		log_error("admin: cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		goto fail;
	}
	set_token(x, xstrdup(hex), true);
	log_notice("admin: server.admin_token not set (credential admin_token, or CRMBRIDGE_ADMIN_TOKEN); generated "
	           "one in %s (crmbridgectl reads it there)",
	    path);
	return 0;
fail:
	set_token(x, NULL, false);
	return -1;
}

void
admin_ctx_clear(struct admin_ctx *x)
{
	set_token(x, NULL, false);
	free(x->odoo_url);
	x->odoo_url = NULL;
	free(x->chartjs);
	x->chartjs = NULL;
}

bool
admin_allowed(struct http_request *req, struct admin_ctx *x)
{
	const char *auth = http_req_header(req, "Authorization");

	/* The whole token, in constant time: timingsafe_streq compares lengths too, so a prefix is refused. */
	if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0 && x->token != NULL &&
	    timingsafe_streq(auth + 7, x->token))
		return true;
	x->auth_failures++;
	http_add_header(req, "WWW-Authenticate", "Bearer realm=\"crmbridge\"");
	http_reply_error(
	    req, 401, auth == NULL ? "this endpoint needs Authorization: Bearer <admin token>" : "wrong bearer token");
	return false;
}

bool
admin_allow(struct http_request *req, void *arg)
{
	return admin_allowed(req, arg);
}

bool
admin_allow_health(struct http_request *req, void *arg)
{
	struct admin_ctx *x = arg;

	return x->health_public || admin_allowed(req, x);
}

bool
admin_allow_metrics(struct http_request *req, void *arg)
{
	struct admin_ctx *x = arg;

	return x->metrics_public || admin_allowed(req, x);
}
