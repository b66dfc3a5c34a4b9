/* Erasure of everything about a phone (DELETE /api/conversation/{phone}) and history retention. */
#ifndef CRMB_ERASE_H
#define CRMB_ERASE_H

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "common/http.h"

struct intake;
struct journal;
struct lead_ctx;
struct rconn;

/* Erasure and retention outcomes. */
struct privacy_stats {
	uint64_t erased, odoo_anonymised, odoo_failed, pruned_messages, pruned_conversations, sweeps;
};

/* What erasure and retention use; the handler takes it as its arg. Pointers are borrowed. */
struct erase_ctx {
	sd_event *event;
	struct rconn *redis; /* NULL: 503 */
	struct intake *intake; /* its spool is cleaned too; NULL: none */
	struct lead_ctx *leads; /* NULL without Odoo */
	struct journal *journal; /* the lead journal (leads without Odoo); NULL: none */
	/* Drops what this process holds of phone in memory before it reaches Redis (analytics counts); may be NULL. */
	void (*forget)(const char *phone, void *arg);
	void *forget_arg;
	/* Configuration (borrowed; the caller refreshes it when it changes). */
	const char *key_prefix;
	bool erase_odoo; /* privacy.erase_odoo: anonymise the phone's Odoo leads */
	uint64_t history_retention_ms; /* 0: history is kept as long as the conversation */
	struct privacy_stats stats;
};

/* DELETE /api/conversation/{phone}: erases everything about a phone; arg is a struct erase_ctx. */
void erase_delete_conversation(struct http_request *req, void *arg);
/* Forgets the erase requests waiting (before the HTTP server stops). */
void erase_cancel(void);
/* Drops history older than history_retention_ms from every conversation (a SCAN sweep). */
void erase_retention_sweep(struct erase_ctx *x);

#endif
