/*
 * Shared helpers: bounded parsers for numbers, durations, sizes and booleans
 * (used by the configuration and by request parsing), a constant-time
 * comparison for secrets, clocks, and libgcrypt's one-time initialisation.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <gcrypt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util.h"

int
parse_ll(const char *s, long long minval, long long maxval, long long *out)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0')
		return -EINVAL;
	if (errno == ERANGE || v < minval || v > maxval)
		return -ERANGE;
	*out = v;
	return 0;
}

/* Splits "12unit" into the number and the unit; the number must be present. */
static int
split_unit(const char *s, unsigned long long *num, const char **unit)
{
	char *end;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	*num = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	while (*end == ' ')
		end++;
	*unit = end;
	return 0;
}

int
parse_duration_ms(const char *s, uint64_t *ms)
{
	static const struct {
		const char *unit;
		uint64_t mult;
	} units[] = {
	    {"", 1000},
	    {"ms", 1},
	    {"s", 1000},
	    {"m", 60000},
	    {"h", 3600000},
	    {"d", 86400000},
	};
	unsigned long long n;
	const char *unit;
	size_t i;
	int r;

	if ((r = split_unit(s, &n, &unit)) < 0)
		return r;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(unit, units[i].unit) != 0)
			continue;
		if (n > UINT64_MAX / units[i].mult)
			return -ERANGE;
		*ms = n * units[i].mult;
		return 0;
	}
	return -EINVAL;
}

int
parse_size(const char *s, uint64_t *bytes)
{
	static const struct {
		const char *unit;
		uint64_t mult;
	} units[] = {
	    {"", 1},
	    {"B", 1},
	    {"K", 1024},
	    {"KiB", 1024},
	    {"M", 1048576},
	    {"MiB", 1048576},
	    {"G", 1073741824},
	    {"GiB", 1073741824},
	};
	unsigned long long n;
	const char *unit;
	size_t i;
	int r;

	if ((r = split_unit(s, &n, &unit)) < 0)
		return r;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(unit, units[i].unit) != 0)
			continue;
		if (n > UINT64_MAX / units[i].mult)
			return -ERANGE;
		*bytes = n * units[i].mult;
		return 0;
	}
	return -EINVAL;
}

int
parse_bool(const char *s, bool *out)
{
	static const char *yes[] = {"1", "yes", "true", "on"};
	static const char *no[] = {"0", "no", "false", "off"};
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

int
timingsafe_memcmp_eq(const void *a, const void *b, size_t len)
{
	const volatile unsigned char *p = a, *q = b;
	unsigned char d = 0;
	size_t i;

	for (i = 0; i < len; i++)
		d |= p[i] ^ q[i];
	return d != 0;
}

bool
timingsafe_streq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	/* Compare over b's length whatever a is, so timing reveals only lb. */
	if (la != lb) {
		(void)timingsafe_memcmp_eq(b, b, lb);
		return false;
	}
	return timingsafe_memcmp_eq(a, b, lb) == 0;
}

uint64_t
now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t
realtime_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int
crypto_init(void)
{
	if (gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P))
		return 0;
	if (gcry_check_version("1.8.0") == NULL)
		return -1;
	/* No secure memory: secrets live in ordinary memory anyway (config). */
	gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
	gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
	return 0;
}

void
hex_encode(const void *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = in;
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void
random_hex(size_t n, char *out)
{
	unsigned char raw[64];

	*out = '\0';
	while (n > 0) {
		size_t k = n < sizeof(raw) ? n : sizeof(raw);
		gcry_randomize(raw, k, GCRY_STRONG_RANDOM);
		hex_encode(raw, k, out);
		out += 2 * k;
		n -= k;
	}
	explicit_bzero(raw, sizeof(raw));
}

void
sha256_hex(const void *in, size_t n, char out[65])
{
	unsigned char h[32];

	gcry_md_hash_buffer(GCRY_MD_SHA256, h, in, n);
	hex_encode(h, sizeof(h), out);
}

uint64_t
random_below(uint64_t bound)
{
	uint64_t v, limit;

	if (bound <= 1)
		return 0;
	/* Reject the biased top of the range. */
	limit = UINT64_MAX - (UINT64_MAX % bound);
	do
		gcry_create_nonce(&v, sizeof(v));
	while (v >= limit);
	return v % bound;
}

/* Folds the Latin letters with accents that UTF-8 writes in two bytes (U+00C0..U+00FF) to ASCII. */
static char
fold_latin1(unsigned char b2)
{
	static const char map[] = "aaaaaaaceeeeiiiidnooooo/ouuuuyty"; /* U+00E0..U+00FF, and U+00C0.. the same */
	return map[(b2 - 0x80) & 31];
}

/* Splits s into normalised words, each ending in a space: "Sofás de 3" -> "sofa de 3 ". */
static void
text_words(const char *s, char *out, size_t size)
{
	size_t n = 0, start = 0;
	const unsigned char *p = (const unsigned char *)s;

	for (;; p++) {
		char c = 0;
		if (*p == 0xc3 && p[1] >= 0x80 && p[1] <= 0xbf) {
			c = fold_latin1(p[1]);
			p++;
		} else if (isalnum(*p)) {
			c = (char)tolower(*p);
		}
		if (c != 0 && c != '/' && n + 2 < size) {
			out[n++] = c;
			continue;
		}
		if (n > start) {
			/* The word ends: a plural s or es goes ("sofas" -> "sofa", "colores" -> "color"). */
			size_t len = n - start;
			if (len > 4 && out[n - 1] == 's' && out[n - 2] == 'e' && strchr("aeiou", out[n - 3]) == NULL)
				n -= 2;
			else if (len > 3 && out[n - 1] == 's' && !isdigit((unsigned char)out[n - 2]))
				n--;
			out[n++] = ' ';
			start = n;
		}
		if (*p == '\0' || n + 2 >= size)
			break;
	}
	out[n] = '\0';
}

bool
text_vaguer(const char *newer, const char *older)
{
	char a[512], b[512], w[128];
	const char *p, *sp;
	size_t na = 0, nb = 0;

	if (newer == NULL || older == NULL)
		return false;
	text_words(newer, a, sizeof(a));
	text_words(older, b + 1, sizeof(b) - 1);
	b[0] = ' ';
	for (p = a; *p != '\0'; p = sp + 1) {
		sp = strchr(p, ' ');
		if ((size_t)(sp - p) + 3 > sizeof(w))
			return false;
		w[0] = ' ';
		memcpy(w + 1, p, (size_t)(sp - p) + 1);
		w[(sp - p) + 2] = '\0';
		if (strstr(b, w) == NULL)
			return false;
		na++;
	}
	for (p = b + 1; *p != '\0'; p++)
		nb += *p == ' ';
	return na > 0 && na < nb;
}

bool
is_upper_code(const char *s, size_t n)
{
	if (strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			return false;
	return true;
}

#ifdef WITH_CRASH_POINTS
void
crash_point(const char *name)
{
	const char *want = getenv("CRMBRIDGE_CRASH_AT");

	if (want == NULL || strcmp(want, name) != 0)
		return;
	/* stderr, as log.c writes: journald and the tests read it. */
	fprintf(stderr, "<4>crash point %s: killed as CRMBRIDGE_CRASH_AT asks (a test build's hook)\n", name);
	fflush(stderr);
	raise(SIGKILL);
}
#endif
