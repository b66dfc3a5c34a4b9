/*
 * The embedded lead journal: where leads go when no Odoo is configured.
 * An append-only file of JSON lines (state_dir/leads.jsonl, mode 0600),
 * one "create" or "update" record per change, each written and fsynced
 * before the turn goes on. Like the Odoo writer, one lead per phone: a
 * phone's later turns update its lead. One daemon per state directory.
 */
#ifndef CRMB_JOURNAL_H
#define CRMB_JOURNAL_H

#include <jansson.h>

#include "odoo/lead.h"

struct journal;

struct journal_options {
	const char *path;
	const char *name_template; /* "{contact} - {interest}" */
	const char *source_name; /* "WhatsApp" */
	const char *priority[3]; /* cold, warm, hot */
};

/* Opens (creating if needed) and reads the journal; NULL with errno on failure. */
struct journal *journal_open(const struct journal_options *o);
void journal_free(struct journal *j);
/* Creates or updates the phone's lead; done is called before this returns. */
void journal_upsert(struct journal *j, const struct lead_input *in, bool support, lead_done_fn done, void *arg);
/* The leads, newest change first, folded from the records: a new JSON array. */
json_t *journal_leads(const struct journal *j, size_t limit);
/* How many leads. */
size_t journal_count(const struct journal *j);
/* Figures shaped like lead_stats(): {"by_quality", "by_day", "total"}. */
json_t *journal_stats(const struct journal *j, unsigned days);
/* Erasure: rewrites the file without phone's records (atomically). Returns how many went, or -errno. */
int journal_erase(struct journal *j, const char *phone);
/* Folds a journal file's records into leads (for crmbridgectl); NULL with errno. */
json_t *journal_read_file(const char *path);

#endif
