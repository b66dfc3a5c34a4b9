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
