/*
 * Parses REDIS_URL in the forms users already know: redis://host:port/db,
 * redis://:password@host:port, redis://user:password@host, and
 * unix:///path/to/socket (with ?db=N or /db as the database).
 */
#ifndef CRMB_REDIS_URL_H
#define CRMB_REDIS_URL_H

struct redis_url {
	char *host; /* NULL for a unix socket */
	int port;
	char *path; /* unix socket path, or NULL */
	char *username; /* NULL unless given */
	char *password; /* NULL unless given */
	int db;
};

/*
 * Fills u from url; returns 0, or -EINVAL with a short reason (never the
 * URL itself, which may hold a password) in why. Free with redis_url_clear.
 */
int redis_url_parse(const char *url, struct redis_url *u, const char **why);
/* Frees the strings in u and zeroes it. */
void redis_url_clear(struct redis_url *u);

#endif
