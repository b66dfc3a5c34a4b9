/*
 * Stripe Checkout: creates a hosted Checkout Session for one configured
 * price (POST /v1/checkout/sessions, form-encoded, Bearer secret key) and
 * hands back its URL. One attempt with a short timeout and an
 * Idempotency-Key, so a turn redone after a crash gets the same session; a
 * failure is reported, never retried in the customer's way.
 */
#ifndef CRMB_STRIPE_H
#define CRMB_STRIPE_H

#include <stdint.h>

#include "common/curlev.h"

struct stripe_options {
	const char *api_base; /* https://api.stripe.com */
	const char *secret_key; /* sk_… or rk_… */
	const char *price; /* price_… */
	const char *success_url;
	uint64_t timeout_ms;
};

struct stripe_stats {
	uint64_t created, failed;
	char last_error[160];
};

struct stripe;

/* url is the session's (NULL on failure, then error says why); both valid only during the call. */
typedef void (*stripe_done_fn)(const char *url, const char *error, void *arg);

/* Every string in o is copied. */
struct stripe *stripe_new(struct curlev *cv, const struct stripe_options *o);
/* Requests in flight end with an error first. NULL is fine. */
void stripe_free(struct stripe *s);
/*
 * Creates a Checkout Session; ref becomes its client_reference_id (the lead),
 * idem its Idempotency-Key. done is called once, later.
 */
void stripe_checkout(struct stripe *s, const char *ref, const char *idem, stripe_done_fn done, void *arg);
void stripe_get_stats(const struct stripe *s, struct stripe_stats *st);

#endif
