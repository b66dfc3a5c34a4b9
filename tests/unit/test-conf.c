/*
 * Tests for daemon/conf.c: defaults, good and bad files (every error at
 * once, with file:line and never the value), environment overrides, secret
 * file modes, systemd credentials, cross-key checks and redaction.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/conf.h"
#include "tests/tap.h"

static char dir[] = "/tmp/crmb-conf-XXXXXX";

static const char *env_names[] = {
    "CRMBRIDGE_LISTEN",
    "CRMBRIDGE_PUBLIC_URL",
    "CRMBRIDGE_ADMIN_TOKEN",
    "CRMBRIDGE_STATE_DIR",
    "CRMBRIDGE_LOG_LEVEL",
    "CRMBRIDGE_REDIS_PREFIX",
    "REDIS_URL",
    "GOOGLE_API_KEY",
    "GEMINI_MODEL",
    "GEMINI_API_BASE",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_AUTH_TOKEN_SECONDARY",
    "TWILIO_WHATSAPP_FROM",
    "TWILIO_MESSAGING_SERVICE_SID",
    "TWILIO_API_BASE",
    "ODOO_URL",
    "ODOO_DB",
    "ODOO_USERNAME",
    "ODOO_PASSWORD",
    "CREDENTIALS_DIRECTORY",
    "STATE_DIRECTORY",
    "CRMBRIDGE_CONFIG",
};

static void
clear_env(void)
{
	size_t i;

	for (i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
		unsetenv(env_names[i]);
}

static const char *
write_file(const char *name, mode_t mode, const char *text)
{
	static char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	fchmod(fd, mode);
	close(fd);
	return path;
}

/* True if some error message contains needle. */
static int
has_error(const struct conf_errors *e, const char *needle)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		if (strstr(e->msg[i], needle) != NULL)
			return 1;
	return 0;
}

static void
dump_errors(const struct conf_errors *e)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		diag("error: %s", e->msg[i]);
}

static void
test_defaults(void)
{
	struct conf_errors e = {0};
	struct conf *c = conf_load(NULL, false, &e);

	ok(c != NULL && e.n == 0, "built-in defaults load without a file");
	if (c == NULL)
		return;
	is_str(c->listen, "127.0.0.1:8080", "default listen");
	is_int(c->http_max_body, 65536, "default body limit 64 KiB");
	is_str(c->redis_url, "redis://127.0.0.1:6379/0", "default REDIS_URL");
	is_str(c->gemini_model, "gemini-3.5-flash-lite", "default model");
	ok(c->gemini_api_key == NULL && c->odoo_url == NULL, "optional services unset");
	is_int(c->log_level, LOG_INFO, "default log level");
	conf_free(c);

	c = conf_load("/nonexistent/crmbridge.conf", false, &e);
	ok(c != NULL && c->path == NULL, "a missing default file is not an error");
	conf_free(c);
	c = conf_load("/nonexistent/crmbridge.conf", true, &e);
	ok(c == NULL && has_error(&e, "/nonexistent/crmbridge.conf: cannot open"), "a missing explicit file is");
	conf_errors_clear(&e);

	setenv("STATE_DIRECTORY", "/var/lib/private/crmbridge:/other", 1);
	c = conf_load(NULL, false, &e);
	is_str(c ? c->state_dir : NULL, "/var/lib/private/crmbridge",
	    "systemd's STATE_DIRECTORY is the default state dir");
	conf_free(c);
	unsetenv("STATE_DIRECTORY");
}

static void
test_good_file(void)
{
	struct conf_errors e = {0};
	const char *p = write_file("good.conf", 0600,
	    "; crmbridge test configuration\n"
	    "# both comment styles\n"
	    "[server]\n"
	    "listen = [::1]:0\n"
	    "public_url = https://bot.example.com\n"
	    "admin_token = \"0123456789abcdef;with-semicolon\"\n"
	    "log_level = debug\n"
	    "\n"
	    "[http]\n"
	    "max_body = 32KiB\n"
	    "request_timeout = 1500ms\n"
	    "max_connections = 64\n"
	    "\n"
	    "[redis]\n"
	    "url = unix:///run/redis/redis.sock?db=2\n"
	    "[twilio]\n"
	    "account_sid = AC00000000000000000000000000000000\n"
	    "auth_token = 12345\n"
	    "whatsapp_from = whatsapp:+14155238886\n"
	    "[odoo]\n"
	    "url = https://odoo.example.com\n"
	    "db = prod\n"
	    "username = bot@example.com\n"
	    "password = s3cret-odoo\n");
	struct conf *c = conf_load(p, true, &e);

	dump_errors(&e);
	ok(c != NULL, "a complete private file loads");
	if (c == NULL)
		return;
	is_str(c->listen, "[::1]:0", "listen from file");
	is_str(c->admin_token, "0123456789abcdef;with-semicolon", "quoted value keeps ';' and loses quotes");
	is_int(c->log_level, LOG_DEBUG, "log level from file");
	is_int(c->http_max_body, 32768, "size with unit");
	is_int(c->http_request_timeout_ms, 1500, "duration in ms");
	is_int(c->http_max_connections, 64, "integer");
	is_str(c->redis_url, "unix:///run/redis/redis.sock?db=2", "unix socket URL");
	is_str(c->odoo_password, "s3cret-odoo", "secret loaded from a 0600 file");
	ok(strstr(c->origin[0], "good.conf:4") != NULL, "origin records file:line");
	conf_free(c);
}

static void
test_bad_file(void)
{
	struct conf_errors e = {0};
	const char *p = write_file("bad.conf", 0600,
	    "orphan = 1\n" /* 1: outside a section */
	    "[server]\n" /* 2 */
	    "listen = localhost-eighty\n" /* 3: bad address */
	    "colour = blue\n" /* 4: unknown key */
	    "admin_token = short-SECRET\n" /* 5: too short, secret */
	    "[http]\n" /* 6 */
	    "max_body = 10MiB\n" /* 7: above 64 KiB */
	    "request_timeout = soon\n" /* 8: not a duration */
	    "max_connections = 10\n" /* 9 */
	    "max_connections = 11\n" /* 10: twice */
	    "[nosuch]\n" /* 11 */
	    "key = v\n" /* 12: unknown section */
	    "[gemini]\n" /* 13 */
	    "api_base = ftp://example.com\n" /* 14: wrong scheme */
	    "this line is not ini\n" /* 15: syntax */
	    "[twilio]\n" /* 16 */
	    "account_sid = ACnothex\n" /* 17 */
	    "whatsapp_from = whatsapp:+14155238886\n"); /* 18: needs account_sid */
	struct conf *c = conf_load(p, true, &e);
	size_t i;
	int leaked = 0;

	ok(c == NULL, "a bad file is refused as a whole");
	dump_errors(&e);
	ok(has_error(&e, "bad.conf:1: key 'orphan' outside a [section]"), "key outside section, line 1");
	ok(has_error(&e, "bad.conf:3: key 'server.listen': invalid"), "bad listen address, line 3");
	ok(has_error(&e, "bad.conf:4: unknown key 'server.colour'"), "unknown key, line 4");
	ok(has_error(&e, "bad.conf:5: key 'server.admin_token': invalid: too short"), "short admin token, line 5");
	ok(has_error(&e, "bad.conf:7: key 'http.max_body': invalid: size out of bounds"), "body limit bound, line 7");
	ok(has_error(&e, "bad.conf:8: key 'http.request_timeout': invalid"), "bad duration, line 8");
	ok(has_error(&e, "bad.conf:10: key 'http.max_connections' set twice (first at line 9)"), "duplicate, line 10");
	ok(has_error(&e, "bad.conf:12: unknown section [nosuch]"), "unknown section, line 12");
	ok(has_error(&e, "bad.conf:14: key 'gemini.api_base': invalid: the scheme must be"), "bad scheme, line 14");
	ok(has_error(&e, "bad.conf:15: syntax error"), "syntax error, line 15");
	ok(has_error(&e, "bad.conf:17: key 'twilio.account_sid': invalid"), "bad SID, line 17");
	ok(has_error(&e, "'twilio.account_sid' (TWILIO_ACCOUNT_SID): required to send replies"),
	    "cross-key: a sender number needs the account SID");
	ok(e.n >= 12, "every error reported at once (%zu)", e.n);
	for (i = 0; i < e.n; i++)
		if (strstr(e.msg[i], "short-SECRET") != NULL || strstr(e.msg[i], "localhost-eighty") != NULL ||
		    strstr(e.msg[i], "ACnothex") != NULL)
			leaked = 1;
	ok(!leaked, "no error message repeats a value");
	conf_errors_clear(&e);

	{
		char big[6000];
		memset(big, 'x', sizeof(big));
		memcpy(big, "[odoo]\ndb = ", 12);
		big[sizeof(big) - 2] = '\n';
		big[sizeof(big) - 1] = '\0';
		p = write_file("long.conf", 0600, big);
		c = conf_load(p, true, &e);
		ok(c == NULL && has_error(&e, "long.conf:2: line longer than"), "an over-long line is an error");
		conf_free(c);
		conf_errors_clear(&e);
	}
}

static void
test_secret_modes(void)
{
	struct conf_errors e = {0};
	struct conf *c;
	const char *p;

	p = write_file("open.conf", 0644, "[twilio]\nauth_token = TOPSECRETTOKEN\n");
	c = conf_load(p, true, &e);
	ok(c == NULL, "a world-readable file holding a secret is refused");
	dump_errors(&e);
	ok(has_error(&e,
	       "open.conf:2: key 'twilio.auth_token' is a secret but the file is readable by group or others (mode "
	       "0644)"),
	    "the refusal names file, line, key and mode");
	ok(has_error(&e, "give it as the systemd credential 'twilio_auth_token'") &&
	        has_error(&e, "LoadCredentialEncrypted=twilio_auth_token"),
	    "and the credential to give it as instead (what works under the unit's DynamicUser=)");
	ok(!has_error(&e, "TOPSECRETTOKEN"), "and not the secret");
	conf_errors_clear(&e);

	p = write_file("group.conf", 0640, "[odoo]\nurl = http://odoo:8069\ndb = d\nusername = u\npassword = pw\n");
	c = conf_load(p, true, &e);
	ok(c == NULL && has_error(&e, "mode 0640"), "group-readable is refused too");
	conf_errors_clear(&e);

	p = write_file("redispw.conf", 0644, "[redis]\nurl = redis://:REDISPW@127.0.0.1:6379/0\n");
	c = conf_load(p, true, &e);
	ok(c == NULL && has_error(&e, "redispw.conf:2: key 'redis.url' is a secret") &&
	        has_error(&e, "credential 'redis_url'"),
	    "a Redis URL with a password is a secret too");
	ok(!has_error(&e, "REDISPW"), "and is not shown");
	conf_errors_clear(&e);

	p = write_file("private.conf", 0600, "[twilio]\nauth_token = TOPSECRETTOKEN\n");
	c = conf_load(p, true, &e);
	ok(c != NULL, "the same file with mode 0600 loads");
	conf_free(c);

	p = write_file("public.conf", 0644, "[server]\nlisten = 127.0.0.1:9999\n[twilio]\nauth_token =\n");
	c = conf_load(p, true, &e);
	ok(c != NULL, "a world-readable file without secrets loads");
	conf_free(c);
}

static void
test_env(void)
{
	struct conf_errors e = {0};
	const char *p =
	    write_file("env.conf", 0600, "[server]\nlisten = 127.0.0.1:9000\n[gemini]\nmodel = from-file\n");
	struct conf *c;

	setenv("CRMBRIDGE_LISTEN", "127.0.0.1:9100", 1);
	setenv("GOOGLE_API_KEY", "AIzaFAKEKEY", 1);
	setenv("GEMINI_MODEL", "", 1); /* empty means unset for keys with a default */
	setenv("REDIS_URL", "redis://:pw@127.0.0.1:6390/5", 1);
	setenv("TWILIO_AUTH_TOKEN", "tok", 1);
	setenv("CRMBRIDGE_PUBLIC_URL", "https://user:pass@bot.example.com:8443", 1);
	c = conf_load(p, true, &e);
	dump_errors(&e);
	ok(c != NULL, "file plus environment loads");
	if (c != NULL) {
		is_str(c->listen, "127.0.0.1:9100", "environment overrides the file");
		is_str(c->gemini_model, "from-file", "an empty variable leaves the file's value");
		is_str(c->gemini_api_key, "AIzaFAKEKEY", "GOOGLE_API_KEY read");
		ok(strcmp(c->origin[0], "environment CRMBRIDGE_LISTEN") == 0, "origin names the variable");
		{
			json_t *j = conf_to_json(c);
			char *s = json_dumps(j, JSON_COMPACT);
			ok(strstr(s, "AIzaFAKEKEY") == NULL && strstr(s, "\"api_key\":\"<redacted>\"") != NULL,
			    "the API key is redacted in the effective config");
			ok(strstr(s, ":pw@") == NULL && strstr(s, "redis://:<redacted>@127.0.0.1:6390/5") != NULL,
			    "the Redis password is redacted");
			ok(strstr(s, "pass@") == NULL && strstr(s, "user:<redacted>@bot.example.com") != NULL,
			    "URL credentials in the public URL are redacted");
			ok(strstr(s, "\"auth_token\":\"<redacted>\"") != NULL && strstr(s, "\"password\":null") != NULL,
			    "set secrets show as <redacted>, unset ones as null");
			free(s);
			json_decref(j);
		}
	}
	conf_free(c);
	clear_env();

	setenv("CRMBRIDGE_LISTEN", "nonsense", 1);
	setenv("REDIS_URL", "http://REDISSECRET@x", 1);
	setenv("ODOO_URL", "https://odoo.example.com", 1);
	c = conf_load(NULL, false, &e);
	ok(c == NULL, "invalid environment is refused");
	dump_errors(&e);
	ok(has_error(&e, "environment CRMBRIDGE_LISTEN: key 'server.listen': invalid"), "names the variable and key");
	ok(has_error(&e, "environment REDIS_URL: key 'redis.url': invalid: the scheme must be"), "bad Redis scheme");
	ok(!has_error(&e, "REDISSECRET") && !has_error(&e, "nonsense"), "without the values");
	ok(has_error(&e, "'odoo.db' (ODOO_DB): required when odoo.url is set"), "ODOO_URL alone is incomplete");
	conf_errors_clear(&e);
	clear_env();
}

static void
test_credentials(void)
{
	struct conf_errors e = {0};
	char cred[600];
	struct conf *c;

	snprintf(cred, sizeof(cred), "%s/creds", dir);
	mkdir(cred, 0700);
	setenv("CREDENTIALS_DIRECTORY", cred, 1);
	write_file("creds/twilio_auth_token", 0400, "cred-token\n");
	write_file("creds/admin_token", 0400, "admin-token-from-credential\n");
	c = conf_load(NULL, false, &e);
	dump_errors(&e);
	ok(c != NULL, "credentials load");
	if (c != NULL) {
		is_str(c->twilio_auth_token, "cred-token", "credential read, newline stripped");
		is_str(c->admin_token, "admin-token-from-credential", "admin token from credential");
	}
	conf_free(c);

	setenv("TWILIO_AUTH_TOKEN", "env-token", 1);
	c = conf_load(NULL, false, &e);
	is_str(c ? c->twilio_auth_token : NULL, "env-token", "the environment overrides a credential");
	conf_free(c);
	unsetenv("TWILIO_AUTH_TOKEN");

	write_file("creds/odoo_password", 0644, "pw\n");
	c = conf_load(NULL, false, &e);
	ok(c == NULL && has_error(&e, "credential odoo_password: readable by group or others"),
	    "a world-readable credential is refused");
	conf_errors_clear(&e);
	clear_env();
}

/* The effective configuration shows a URL as it was written, its password alone hidden. */
static void
test_redact_url(void)
{
	char *r;

	r = conf_redact_url("unix:///run/redis/redis.sock?db=2");
	is_str(r, "unix:///run/redis/redis.sock?db=2", "a unix:// Redis URL is shown as written (not unix://run/...)");
	free(r);
	r = conf_redact_url("unix:///run/redis/redis.sock");
	is_str(r, "unix:///run/redis/redis.sock", "without a database too");
	free(r);
	r = conf_redact_url("redis://:s3cret@127.0.0.1:6379/1");
	is_str(r, "redis://:<redacted>@127.0.0.1:6379/1", "a redis:// URL: the password redacted, the rest kept");
	free(r);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 99;
	clear_env();
	test_defaults();
	test_good_file();
	test_bad_file();
	test_secret_modes();
	test_env();
	test_credentials();
	test_redact_url();
	{
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			diag("could not remove %s", dir);
	}
	return done_testing();
}
