/*
 * One phone's conversation, as stored in Redis under P{+E164}:conv: the
 * stage, the extracted fields (each with the message it came from), a
 * capped history of both directions, the Odoo lead id, quality over time
 * and counters. A JSON document (jansson); this module owns its shape.
 */
#ifndef CRMB_CONV_STATE_H
#define CRMB_CONV_STATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "classifier/analysis.h"

/* The stages a conversation goes through. */
extern const char *const
    conv_stages[]; /* new, contacted (a template after a call), gathering_info, qualified, lead_created, support, human,
                                        opted_out */

/* A fresh state for phone (+E164); caller owns it. */
json_t *conv_state_new(const char *phone, uint64_t now_ms);
/*
 * Parses a stored state; NULL (and a reason) if it is not one this version
 * understands, in which case the caller starts afresh and counts it.
 */
json_t *conv_state_parse(const char *text, size_t len, const char **why);
/* Appends a history entry, keeping the last cap entries. dir is "in" or "out". */
void conv_state_add(json_t *st, const char *dir, const char *text, uint64_t t_ms, const char *sid, unsigned cap);
/*
 * Like conv_state_add for an entry recorded after the fact (a call's template, merged by the turn after the
 * customer's answer to it): placed before the entries of a later time, so the history reads in the order
 * things happened (a model is given the template, then the answer).
 */
void conv_state_insert(json_t *st, const char *dir, const char *text, uint64_t t_ms, const char *sid, unsigned cap);
/*
 * Merges an analysis' fields: a known field is never lost, a value the
 * customer stated anew replaces the old one (recorded with sid). Returns
 * how many fields it set or changed.
 */
int conv_state_merge(json_t *st, const struct analysis *a, const char *sid, uint64_t now_ms);
/* Fills c with the last n history entries and the known fields (c cleared first). */
void conv_state_conversation(const json_t *st, unsigned n, struct conversation *c);
/* The stage, and setting it. */
const char *conv_state_stage(const json_t *st);
void conv_state_set_stage(json_t *st, const char *stage);
/* A field's value, or NULL. */
const char *conv_state_field(const json_t *st, enum field f);
/* Adds n to counter name. */
void conv_state_count(json_t *st, const char *name, json_int_t n);
/*
 * Normalises an admin's {phone} ("+573001112233", "whatsapp:+573001112233",
 * "573001112233") to +E164 in out[17]; -1 if it is none of those.
 */
int conv_phone_param(const char *in, char out[17]);

/* Drops history entries older than retention_ms before now_ms (0: none). Returns how many went. */
size_t conv_state_prune(json_t *st, uint64_t now_ms, uint64_t retention_ms);

#endif
