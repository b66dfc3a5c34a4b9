/* The Twilio webhook endpoints. */
#ifndef CRMB_WEBHOOK_H
#define CRMB_WEBHOOK_H

#include <stdbool.h>
#include <stdint.h>

#include "common/http.h"

struct intake;
struct sender;

/* Webhook outcomes, for the status endpoint and the metrics. */
struct webhook_stats {
	uint64_t requests, accepted, duplicates, spooled, failed;
	uint64_t bad_request, sig_missing, sig_invalid, sig_unconfigured;
	uint64_t status_callbacks;
};

/* What the webhook endpoints use; the handlers take it as their arg. Pointers are borrowed. */
struct webhook_ctx {
	struct intake *intake; /* where messages are stored; NULL: 503 */
	struct sender *sender; /* told the delivery reports; NULL without Twilio credentials */
	/* A delivery report's error that says something about the recipient `to` (the report's To as received): 63016,
	 * free text refused, the 24-hour window is closed; 63014, the customer blocked the business on WhatsApp. */
	void (*refused)(const char *to, long code, void *arg);
	void *arg; /* for refused */
	/* Configuration (borrowed; the caller refreshes it when it changes). */
	bool verify_signature;
	const char *public_url; /* the URL Twilio signs is this plus the request target; NULL: cannot check */
	const char *auth_token, *auth_token_secondary; /* NULL: none */
	struct webhook_stats stats;
};

/* POST /api/webhook/whatsapp and /webhook/twilio/incoming; arg is a struct webhook_ctx. */
void webhook_whatsapp(struct http_request *req, void *arg);
/* POST /api/webhook/status: Twilio's delivery reports for the replies we sent; arg is a struct webhook_ctx. */
void webhook_status(struct http_request *req, void *arg);
/* True for whatsapp:+ followed by 7 to 15 digits, the first not 0. */
bool webhook_valid_from(const char *s);
/* True for SM or MM followed by 32 hexadecimal digits. */
bool webhook_valid_sid(const char *s);

#endif
