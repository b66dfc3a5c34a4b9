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
#include "daemon.h"

#define TOKEN_FILE "admin.token"

/* Reads a token from path into out; 0, or -1 when missing or unusable. */
static int
read_token(const char *path, char *out, size_t size)
{
	char buf[256];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
		log_warnx("admin: %s is not a private regular file; ignoring it", path);
		close(fd);
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (strlen(buf) < 16 || strlen(buf) >= size)
		return -1;
	snprintf(out, size, "%s", buf);
	return 0;
}

int
admin_token_init(struct daemon *d)
{
	char path[4096], tmp[4100], hex[65];
	unsigned char raw[32];
	size_t i;
	int fd;

	if (d->conf->admin_token != NULL) {
		snprintf(d->admin_token, sizeof(d->admin_token), "%s", d->conf->admin_token);
		d->admin_token_generated = false;
		return 0;
	}
	snprintf(path, sizeof(path), "%s/" TOKEN_FILE, d->conf->state_dir);
	if (read_token(path, d->admin_token, sizeof(d->admin_token)) == 0) {
		d->admin_token_generated = true;
		log_notice("admin: using the admin token in %s (CRMBRIDGE_ADMIN_TOKEN not set)", path);
		return 0;
	}
	gcry_randomize(raw, sizeof(raw), GCRY_STRONG_RANDOM);
	for (i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		log_error("admin: cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	if (dprintf(fd, "%s\n", hex) < 0 || fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
		log_error("admin: cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	snprintf(d->admin_token, sizeof(d->admin_token), "%s", hex);
	d->admin_token_generated = true;
	log_notice("admin: CRMBRIDGE_ADMIN_TOKEN not set; generated one in %s (crmbridgectl reads it there)", path);
	return 0;
}

bool
admin_allowed(struct http_request *req, struct daemon *d)
{
	const char *auth = http_req_header(req, "Authorization");

	if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0 && d->admin_token[0] != '\0' &&
	    timingsafe_streq(auth + 7, d->admin_token))
		return true;
	d->auth_failures++;
	http_add_header(req, "WWW-Authenticate", "Bearer realm=\"crmbridge\"");
	http_reply_error(
	    req, 401, auth == NULL ? "this endpoint needs Authorization: Bearer <admin token>" : "wrong bearer token");
	return false;
}
