/*
 * Conversations started from our side (POST /api/call-completed) and a person taking one over
 * (POST /api/conversation/{phone}/pause and /resume).
 */
#ifndef CRMB_OUTREACH_H
#define CRMB_OUTREACH_H

#include <jansson.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "common/http.h"

struct content;
struct engine;
struct lead_ctx;
struct rconn;
struct sender;

/* POST /api/call-completed outcomes. */
struct outreach_stats {
	uint64_t requests, accepted, duplicates, rejected, unauthorized, opted_out, sent, failed, skipped;
};

/* What the endpoints use; the handlers take it as their arg. Pointers are borrowed. */
struct outreach_ctx {
	sd_event *event;
	struct rconn *redis; /* NULL: 503 */
	struct engine *engine; /* the conversation's keys, follow-ups */
	struct sender *sender; /* NULL without Twilio credentials */
	struct lead_ctx *leads; /* NULL without Odoo */
	struct content *content; /* the templates' text; NULL without templates */
	/* A conversation was started by a call report (for the analytics). */
	void (*started)(void *arg);
	void *started_arg;
	/* Configuration (borrowed; the caller refreshes it when it changes). */
	const char *service_token; /* outreach.service_token; NULL: the endpoint answers 503 */
	const char *content_sid, *content_variables, *skip_statuses; /* outreach.* */
	uint64_t wait_ms; /* outreach.wait: how long a call report waits for Twilio's answer */
	unsigned history_cap; /* engine.history */
	uint64_t conversation_ttl_ms; /* engine.conversation_ttl */
	uint64_t pause_ms; /* handoff.pause: a pause without ?for= */
	int handoff_team_id, handoff_user_id; /* given the Odoo lead when paused; 0: unchanged */
	struct outreach_stats stats;
};

/* POST /api/call-completed; arg is a struct outreach_ctx. */
void outreach_call_completed(struct http_request *req, void *arg);
/* POST /api/conversation/{phone}/pause; arg is a struct outreach_ctx. */
void outreach_pause(struct http_request *req, void *arg);
/* POST /api/conversation/{phone}/resume; arg is a struct outreach_ctx. */
void outreach_resume(struct http_request *req, void *arg);
/* The sender's report of a tagged message (res borrowed): answers the call-completed request waiting for it. */
void outreach_on_result(const char *tag, json_t *res, void *arg);
/* Forgets the call reports waiting (before the HTTP server stops). */
void outreach_cancel(void);
/* Forgets the pause and resume requests waiting (before the HTTP server stops). */
void outreach_cancel_pauses(void);

#endif
