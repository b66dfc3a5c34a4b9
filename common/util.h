/*
 * Small helpers shared by every folder: bounded number parsing (OpenBSD's
 * strtonum), durations and sizes with units, constant-time comparison,
 * monotonic time and libgcrypt set-up.
 */
#ifndef CRMB_UTIL_H
#define CRMB_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Parses a decimal integer within [minval, maxval]. Returns 0 and sets *out,
 * or -EINVAL (not a number) / -ERANGE (out of bounds).
 */
int parse_ll(const char *s, long long minval, long long maxval, long long *out);
/*
 * Parses a duration: a number with an optional unit ms, s, m, h or d
 * (seconds when none). Returns 0 and sets *ms, or -EINVAL / -ERANGE.
 */
int parse_duration_ms(const char *s, uint64_t *ms);
/*
 * Parses a size: a number with an optional unit B, K/KiB, M/MiB, G/GiB
 * (powers of 1024; bytes when none). Returns 0 and sets *bytes, or -EINVAL / -ERANGE.
 */
int parse_size(const char *s, uint64_t *bytes);
/* Parses true/false, yes/no, on/off, 1/0. Returns 0 or -EINVAL. */
int parse_bool(const char *s, bool *out);
/* True if s is exactly n capital ASCII letters: an ISO 3166 country (2) or ISO 4217 currency (3) code. */
bool is_upper_code(const char *s, size_t n);

/* Compares two buffers in time that depends only on the length; 0 if equal. */
int timingsafe_memcmp_eq(const void *a, const void *b, size_t len);
/* Compares two strings without leaking where they differ; true if equal. */
bool timingsafe_streq(const char *a, const char *b);

/*
 * Test builds only (configure --enable-debug): the process dies as SIGKILL would where the environment's
 * CRMBRIDGE_CRASH_AT names this point, so a test can crash the daemon exactly between two steps. Release
 * builds compile it out.
 */
#ifdef WITH_CRASH_POINTS
void crash_point(const char *name);
#else
#define crash_point(name) ((void)(name))
#endif

/* Writes n bytes as 2n lower-case hex digits and a NUL into out (2n + 1 bytes). */
void hex_encode(const void *in, size_t n, char *out);
/* n bytes of libgcrypt's strong randomness as hex into out (2n + 1 bytes): tokens, session ids, codes. */
void random_hex(size_t n, char *out);
/* The SHA-256 of n bytes as 64 hex digits and a NUL. */
void sha256_hex(const void *in, size_t n, char out[65]);

/* CLOCK_MONOTONIC in microseconds. */
uint64_t now_usec(void);
/* CLOCK_REALTIME in microseconds. */
uint64_t realtime_usec(void);

/* Initialises libgcrypt once; returns 0 or -1 if its version is too old. */
int crypto_init(void);
/* A uniformly distributed random value in [0, bound) from libgcrypt's nonce generator. */
uint64_t random_below(uint64_t bound);
/*
 * Whether newer says less than older about the same thing: every word of
 * newer (case, accents and a plural s/es ignored) is among older's words, and
 * older has more ("sofás" against "sofá de 3 puestos"). A value that says
 * less never replaces one that says more.
 */
bool text_vaguer(const char *newer, const char *older);

#endif
