/* Tests for common/util.c: bounded parsers, constant-time compare, randomness. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/redis_url.h"
#include "common/template.h"
#include "common/pace.h"
#include "common/util.h"
#include "tests/tap.h"

static void
test_parse_ll(void)
{
	long long v = 0;

	is_int(parse_ll("42", 0, 100, &v), 0, "parse_ll accepts 42");
	is_int(v, 42, "parse_ll value");
	is_int(parse_ll("-5", -10, 10, &v), 0, "parse_ll accepts negatives in range");
	is_int(parse_ll("101", 0, 100, &v), -ERANGE, "parse_ll rejects above max");
	is_int(parse_ll("12x", 0, 100, &v), -EINVAL, "parse_ll rejects trailing junk");
	is_int(parse_ll("", 0, 100, &v), -EINVAL, "parse_ll rejects empty");
	is_int(parse_ll(" 1", 0, 100, &v), -EINVAL, "parse_ll rejects leading space");
	is_int(parse_ll("99999999999999999999", 0, 100, &v), -ERANGE, "parse_ll rejects overflow");
}

static void
test_durations_sizes(void)
{
	uint64_t v = 0;

	ok(parse_duration_ms("30", &v) == 0 && v == 30000, "bare duration is seconds");
	ok(parse_duration_ms("500ms", &v) == 0 && v == 500, "500ms");
	ok(parse_duration_ms("5m", &v) == 0 && v == 300000, "5m");
	ok(parse_duration_ms("48h", &v) == 0 && v == 172800000, "48h");
	ok(parse_duration_ms("2d", &v) == 0 && v == 172800000, "2d");
	is_int(parse_duration_ms("5 weeks", &v), -EINVAL, "unknown unit rejected");
	is_int(parse_duration_ms("-1s", &v), -EINVAL, "negative rejected");
	is_int(parse_duration_ms("999999999999999999d", &v), -ERANGE, "overflow rejected");
	ok(parse_size("64KiB", &v) == 0 && v == 65536, "64KiB");
	ok(parse_size("16M", &v) == 0 && v == 16777216, "16M");
	ok(parse_size("4096", &v) == 0 && v == 4096, "bare size is bytes");
	is_int(parse_size("1kb", &v), -EINVAL, "unknown size unit rejected");
}

static void
test_bool_and_compare(void)
{
	bool b = false;

	ok(parse_bool("yes", &b) == 0 && b, "yes is true");
	ok(parse_bool("OFF", &b) == 0 && !b, "OFF is false");
	is_int(parse_bool("maybe", &b), -EINVAL, "maybe rejected");
	ok(is_upper_code("COP", 3) && is_upper_code("CO", 2), "COP and CO are ISO codes");
	ok(!is_upper_code("cop", 3) && !is_upper_code("CO", 3) && !is_upper_code("", 2) && !is_upper_code("CÓ", 2),
	    "lower case, the wrong length, empty and accented are not");
	ok(timingsafe_streq("secret-token", "secret-token"), "equal strings compare equal");
	ok(!timingsafe_streq("secret-token", "secret-tokem"), "last byte differs");
	ok(!timingsafe_streq("secret", "secret-token"), "prefix is not equal");
	ok(!timingsafe_streq("", "x"), "empty is not equal");
}

static void
test_random(void)
{
	int seen[10] = {0}, i, all = 1;

	ok(crypto_init() == 0, "libgcrypt initialises");
	for (i = 0; i < 2000; i++) {
		uint64_t v = random_below(10);
		if (v >= 10) {
			all = 0;
			break;
		}
		seen[v]++;
	}
	for (i = 0; i < 10; i++)
		if (seen[i] == 0)
			all = 0;
	ok(all, "random_below(10) stays in range and reaches every value in 2000 draws");
	is_int(random_below(1), 0, "random_below(1) is 0");
}

static void
test_redis_url(void)
{
	struct redis_url u;
	const char *why;

	ok(redis_url_parse("redis://127.0.0.1:6380/2", &u, &why) == 0, "redis://host:port/db parses");
	is_str(u.host, "127.0.0.1", "host");
	is_int(u.port, 6380, "port");
	is_int(u.db, 2, "db");
	ok(u.password == NULL && u.username == NULL, "no credentials");
	redis_url_clear(&u);

	ok(redis_url_parse("redis://:p%40ss@redis.example:6379", &u, &why) == 0, "redis://:password@host parses");
	is_str(u.password, "p@ss", "password is percent-decoded");
	ok(u.username == NULL, "empty user is no user");
	is_int(u.db, 0, "db defaults to 0");
	redis_url_clear(&u);

	ok(redis_url_parse("redis://app:pw@[::1]/3", &u, &why) == 0, "IPv6 host with user parses");
	is_str(u.host, "::1", "IPv6 brackets removed");
	is_str(u.username, "app", "username");
	is_int(u.port, 6379, "default port");
	is_int(u.db, 3, "db from path");
	redis_url_clear(&u);

	ok(redis_url_parse("unix:///run/redis/redis.sock", &u, &why) == 0, "unix:///path parses");
	is_str(u.path, "/run/redis/redis.sock", "socket path");
	ok(u.host == NULL, "no host for a socket");
	redis_url_clear(&u);
	ok(redis_url_parse("unix:///run/redis.sock?db=4", &u, &why) == 0 && u.db == 4, "unix socket with ?db=4");
	redis_url_clear(&u);

	ok(redis_url_parse("http://localhost", &u, &why) < 0 && why != NULL, "other schemes rejected");
	ok(redis_url_parse("rediss://localhost", &u, &why) < 0 && strstr(why, "TLS") != NULL, "rediss explained");
	ok(redis_url_parse("redis://localhost/abc", &u, &why) < 0, "non-numeric db rejected");
	ok(redis_url_parse("redis://localhost:99999", &u, &why) < 0, "bad port rejected");
	ok(redis_url_parse("", &u, &why) < 0, "empty rejected");
	ok(redis_url_parse("unix://", &u, &why) < 0, "unix without path rejected");
}

static void
test_template(void)
{
	static const char *const keys[] = {"name", "interest"};
	const char *vals[] = {"María", NULL};
	char *r, big[3000];

	r = template_expand("¡Gracias, {name}! Registré {interest}; {other} y {name", keys, vals, 2);
	is_str(
	    r, "¡Gracias, María! Registré ; {other} y {name", "placeholders expanded, NULL empty, others left alone");
	free(r);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	vals[1] = big;
	r = template_expand("{interest}{interest}", keys, vals, 2);
	is_int(strlen(r), 2 * (sizeof(big) - 1), "long values are not cut");
	free(r);
}

static void
test_vaguer(void)
{
	ok(text_vaguer("sofás", "sofá de 3 puestos"), "\"sofás\" says less than \"sofá de 3 puestos\"");
	ok(text_vaguer("Sofa", "sofá de 3 puestos"), "  case and accents ignored");
	ok(!text_vaguer("sofá de 3 puestos", "sofás"), "the specific one is not vaguer");
	ok(!text_vaguer("mesa", "sofá de 3 puestos"), "another thing is not vaguer");
	ok(!text_vaguer("sofás", "sofás"), "the same is not vaguer");
	ok(text_vaguer("2 millones", "entre 2 y 3 millones"), "\"2 millones\" within \"entre 2 y 3 millones\"");
	ok(!text_vaguer("3 millones", "$2000"), "a new amount is not vaguer");
	ok(!text_vaguer(NULL, "x") && !text_vaguer("x", NULL), "NULL is never vaguer");
}

/* The poll's pace: quick while there is work, slower and slower without, never past a known due time. */
static void
test_pace(void)
{
	struct pace p = {0};
	uint64_t w[8];
	int i;

	for (i = 0; i < 8; i++)
		w[i] = pace_next(&p, 50, 2000, false, 1000000);
	ok(w[0] == 50 && w[1] == 100 && w[2] == 200 && w[5] == 1600 && w[6] == 2000 && w[7] == 2000,
	    "quiet polls: 50, 100, 200 … up to the 2000 ms ceiling (%llu %llu %llu %llu)", (unsigned long long)w[0],
	    (unsigned long long)w[1], (unsigned long long)w[5], (unsigned long long)w[7]);
	p.found = true;
	is_int((int)pace_next(&p, 50, 2000, false, 1000000), 50, "a poll that found work: back to the base");
	is_int((int)pace_next(&p, 50, 2000, true, 1000000), 50, "busy: the base");
	for (i = 0; i < 8; i++)
		pace_next(&p, 50, 2000, false, 1000000);
	pace_due(&p, 1000700);
	pace_due(&p, 1000300);
	pace_due(&p, 1005000);
	is_int((int)pace_next(&p, 50, 2000, false, 1000000), 300, "quiet, but a turn falls due in 300 ms: poll then");
	is_int((int)pace_next(&p, 50, 2000, false, 1000300), 400, "then at the next one");
	is_int((int)pace_next(&p, 50, 2000, false, 1000700), 2000, "one beyond the ceiling waits for the ceiling");
	is_int((int)pace_next(&p, 50, 2000, false, 1004000), 1000, "and is met on time");
	for (i = 0; i < 5000; i++)
		pace_due(&p, 2000000 + (uint64_t)(i * 7919 % 5000));
	is_int((int)pace_next(&p, 50, 2000, false, 1999000), 1000, "the earliest of thousands of due times");
	pace_free(&p);
}

static void
test_hex(void)
{
	char out[65], a[65], b[65];

	hex_encode("\x00\x9f\xff", 3, out);
	is_str(out, "009fff", "hex_encode: lower case, two digits a byte");
	sha256_hex("abc", 3, out);
	is_str(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256_hex: FIPS 180-2's abc");
	random_hex(32, a);
	random_hex(32, b);
	ok(strlen(a) == 64 && strspn(a, "0123456789abcdef") == 64 && strcmp(a, b) != 0, "random_hex: 64 hex, each new");
	random_hex(0, a);
	is_str(a, "", "random_hex(0): empty");
}

int
main(void)
{
	test_template();
	test_vaguer();
	test_parse_ll();
	test_durations_sizes();
	test_bool_and_compare();
	test_random(); /* initialises libgcrypt */
	test_hex();
	test_redis_url();
	test_pace();
	return done_testing();
}
