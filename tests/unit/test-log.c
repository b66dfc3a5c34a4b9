/* Tests for common/log.c: priority prefixes, levels, phone masking, escaping. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "tests/tap.h"

/* Runs fn with the log going to a pipe and returns what was written. */
static char out[8192];

static const char *
capture(void (*fn)(void))
{
	int p[2];
	ssize_t n;

	if (pipe(p) < 0)
		abort();
	log_setfd(p[1]);
	fn();
	log_setfd(2);
	close(p[1]);
	n = read(p[0], out, sizeof(out) - 1);
	out[n > 0 ? n : 0] = '\0';
	close(p[0]);
	return out;
}

static void
emit_levels(void)
{
	log_setlevel(LOG_INFO);
	log_warnx("w %d", 1);
	log_info("i");
	log_debug("d");
}
static void
emit_newline(void)
{
	log_info("a\nb");
}

int
main(void)
{
	char buf[64];

	is_str(capture(emit_levels), "<4>w 1\n<6>i\n", "priority prefixes; debug suppressed at info");
	is_str(capture(emit_newline), "<6>a b\n", "a newline in a value cannot split a record");
	is_int(log_level_from_name("debug"), LOG_DEBUG, "level names parse");
	is_int(log_level_from_name("loud"), -1, "unknown level name");

	is_str(log_phone("+573001112233", buf, sizeof(buf)), "+57******2233", "Colombian mobile masked");
	is_str(log_phone("whatsapp:+14155550123", buf, sizeof(buf)), "+1******0123", "whatsapp: prefix handled");
	is_str(log_phone("5513997270748", buf, sizeof(buf)), "<redacted>", "no + is redacted entirely");
	is_str(log_phone("+12ab", buf, sizeof(buf)), "<redacted>", "junk is redacted");
	is_str(log_phone(NULL, buf, sizeof(buf)), "<redacted>", "NULL is redacted");

	is_str(log_escape("a\"b\\c\n", buf, sizeof(buf)), "a\\\"b\\\\c\\x0a", "quotes, backslash, control escaped");
	is_str(log_escape("abcdefghijklmnop", buf, 10), "abcdef...", "long text truncated with ...");
	return done_testing();
}
