/*
 * The lead's chatter as the WhatsApp inbox (issue #22): the conversation's
 * messages posted on the lead, each once (a Message-Id of crmbridge's own,
 * looked up before anything is posted), without Odoo e-mailing anyone; the
 * messages a salesperson posted since a watermark (one query whatever the
 * number of leads); the HTML of the chatter turned into WhatsApp text and
 * back. docs/ODOO.md, "The inbox", is the sales team's side.
 */
#ifndef CRMB_ODOO_CHATTER_H
#define CRMB_ODOO_CHATTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lead.h"

/* One message to post on a lead (strings borrowed). */
struct chatter_entry {
	const char *key; /* its Message-Id (chatter_key): posted once per key */
	const char *text; /* plain text: escaped, line breaks kept */
	/* Who wrote it as the chatter shows it ("Ana Pérez (WhatsApp)"), or NULL: crmbridge's user (the bot). */
	const char *author;
	bool notify; /* the salesperson given to chatter_post is notified (her Odoo inbox or e-mail, her choice) */
	uint64_t t_ms; /* when it was said (ms since the epoch), shown as its date; 0: when posted */
};

/*
 * Posts entries on lead_id in their order, as notes (subtype Note: no
 * follower is notified), skipping those whose key a message of the lead
 * already has. An entry marked notify is posted with notify_partner as its
 * recipient, which Odoo notifies as that user chose (Discuss inbox or
 * e-mail). done gets how many were posted now; on an error those posted
 * before it stay, and posting again posts only the rest.
 */
typedef void (*chatter_done_fn)(const struct odoo_error *e, unsigned posted, void *arg);
void chatter_post(struct lead_ctx *x, int lead_id, const struct chatter_entry *entries, size_t n, int notify_partner,
    chatter_done_fn done, void *arg);

/*
 * The messages people other than crmbridge's user posted on leads after
 * message id after_id (and, again, those of the last two minutes up to 200
 * ids back: ids are taken before commit), oldest first, at most limit: "Send message"
 * (subtype Discussions) and "Log note" (subtype Note). messages (borrowed)
 * is an array of {id, res_id, body, subtype, author_id, author, attachment_ids, date}
 * with subtype "comment" or "note".
 */
typedef void (*chatter_list_fn)(const struct odoo_error *e, json_t *messages, void *arg);
void chatter_since(struct lead_ctx *x, long long after_id, unsigned limit, chatter_list_fn done, void *arg);
/* crmbridge's own Odoo user id, once chatter_since has run (0 before). */
int chatter_self_uid(const struct lead_ctx *x);
/* The highest mail.message id crmbridge's user can see (where a new watermark starts); 0 for none. */
typedef void (*chatter_id_fn)(const struct odoo_error *e, long long id, void *arg);
void chatter_last_id(struct lead_ctx *x, chatter_id_fn done, void *arg);
/*
 * The lead's number as Odoo has it (phone_sanitized, else phone, else mobile) in E.164, or "" when none;
 * whatsapp: its source is crmbridge's (odoo.source_name: a lead that came from WhatsApp).
 */
typedef void (*chatter_phone_fn)(const struct odoo_error *e, const char *e164, bool whatsapp, void *arg);
void chatter_lead_phone(struct lead_ctx *x, int lead_id, chatter_phone_fn done, void *arg);
/* The names of attachments (ir.attachment ids, a JSON array): "a.pdf, b.jpg"; caller frees. */
typedef void (*chatter_names_fn)(const struct odoo_error *e, char *names, void *arg);
void chatter_attachment_names(struct lead_ctx *x, const json_t *ids, chatter_names_fn done, void *arg);

/*
 * Chatter HTML to WhatsApp text: paragraphs and block elements separated by
 * a blank line, <br> a line break, bold *…*, italic _…_, strike ~…~, code
 * ```…```, list items "• " or "1. ", a link's address kept ("text (url)",
 * unless the text is the address), entities decoded, runs of blanks
 * collapsed. Caller frees; "" for an empty or unreadable body.
 */
char *chatter_html_text(const char *html);
/* Plain text to chatter HTML: escaped, each line break a <br>, in one <p>. Caller frees. */
char *chatter_text_html(const char *text);
/*
 * The Message-Id crmbridge gives a WhatsApp message on the lead: the same
 * for the same (phone, direction, time, text) every time, so a post redone
 * after a crash or an unanswered call finds the first one. key holds 64.
 */
void chatter_key(const char *phone, const char *dir, uint64_t t_ms, const char *text, char key[64]);

#endif
