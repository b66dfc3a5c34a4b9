/*
 * The conversation engine: consumes the durable intake, coalesces each
 * phone's burst into one turn, runs one turn per phone at a time (across
 * instances sharing one Redis), and in a turn: classify, write the lead to
 * Odoo (or keep it for a background retry), reply through the sender, and
 * commit the conversation state.
 */
#ifndef CRMB_ENGINE_H
#define CRMB_ENGINE_H

#include "twilio/media.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "classifier/classifier.h"
#include "odoo/lead.h"
#include "common/redis.h"
#include "twilio/sender.h"

struct engine;
struct journal;
struct lexicon;
struct stripe;

struct engine_options {
	const char *key_prefix;
	const char *consumer; /* unique per instance */
	uint64_t coalesce_window_ms; /* a burst's messages within this become one turn */
	uint64_t coalesce_max_ms; /* ... but no later than this after the first */
	unsigned max_turns; /* turns in flight at once */
	uint64_t turn_lease_ms;
	unsigned history_cap;
	unsigned context_messages; /* history entries given to the classifier */
	uint64_t conversation_ttl_s;
	uint64_t history_retention_ms; /* history older than this is dropped at each turn (0: kept) */
	unsigned max_turn_attempts; /* then the turn goes to the dead-letter list */
	uint64_t poll_ms;
	/* Outbound rules (#10). */
	uint64_t window_margin_ms; /* free text only until 24 h minus this after the customer's last message */
	const char *window_content_sid, *window_variables; /* the template outside the window, or NULL: nothing */
	bool optout_blacklist; /* STOP also adds the number to Odoo's phone.blacklist */
	uint64_t handoff_pause_ms; /* the bot stays quiet this long after handing over to a person */
	/* After a crm.lead create that got no answer, no second create for this long (it may still commit). */
	uint64_t odoo_create_patience_ms;
	int handoff_team_id, handoff_user_id; /* the lead is assigned to these on a hand-off (0: as is) */
	uint64_t followup_delays[8]; /* after the customer's last message; 0 ends the list */
	unsigned nfollowups;
	const char *followup_content_sid, *followup_variables; /* a follow-up outside the window */
	const char *booking_url; /* added to the confirmation when a lead is created, or NULL */
	/* The inbox (#22): how often Odoo is asked for the salespeople's chatter messages (0: never). */
	uint64_t inbox_interval_ms;
	const char *inbox_resume_command; /* a Log note holding only this gives the customer back to the bot */
};

struct engine_stats {
	/* routed: messages stored for a turn (by this instance's intake, or moved by the upgrade) */
	uint64_t routed, turns, turns_failed, replies, leads_created, leads_updated, support, dead_letters;
	uint64_t odoo_deferred, odoo_retried, odoo_recovered, state_reset;
	uint64_t odoo_create_unknown; /* creates that got no answer: looked for before any new create */
	unsigned lead_jobs; /* lead writes under way after their turn (not counted in in_flight) */
	uint64_t opt_outs, opt_ins, blacklist_ok, blacklist_failed, silenced; /* silenced: messages while paused/out */
	uint64_t blocked; /* WhatsApp reported the customer blocked the business (63014) */
	uint64_t handoffs, handoff_notes_failed, followups_sent, followups_templates, window_templates, window_skipped;
	uint64_t links_booking, links_payment, links_payment_failed;
	uint64_t media_fetched, media_failed, media_unread, media_transcribed;
	/* The inbox: salespeople's messages seen on leads, stored for their turn, sent inside the window, held for
	 * it, sent once the customer answered, refused (no conversation, opted out, no template), attachments not
	 * sent, hand-backs; notes posted; polls that failed; the conversation's messages posted on leads. */
	uint64_t agent_seen, agent_stored, agent_sent, agent_held, agent_released, agent_refused, agent_files;
	uint64_t agent_resumed, agent_failed, agent_notes, agent_poll_failed, chatter_posted, chatter_failed;
	unsigned in_flight;
	long long queue_depth, odoo_pending, dead_letter_list; /* sampled every second; -1 until known */
};

/* What a committed turn did, for analytics and metrics. */
struct turn_report {
	const char *phone;
	bool customer; /* the turn took the customer's messages (false: a lead retry, a follow-up) */
	bool classified; /* the classifier analysed them: a is set */
	bool new_conversation; /* the conversation started with this turn */
	unsigned messages_in;
	bool replied; /* answered the customer's messages */
	const struct analysis *a; /* when classified */
	int opt; /* 1 opted out, -1 opted back in, 0 neither */
	bool silenced; /* kept, not answered: the phone opted out or a person has it */
	bool after_followup; /* the customer wrote after one or more follow-ups */
	int followup; /* a follow-up went out: 1 as text, 2 as a template */
	int lead; /* 0 no write, 1 created, 2 updated or unchanged, -1 deferred */
	const char *quality; /* of the lead written: "hot", "warm", "cold" */
	bool support, human; /* handed to support, or to a person */
	uint64_t created_ms, now_ms; /* the conversation's start, and now */
	uint64_t turn_usec, classify_usec; /* how long the turn and its classification took */
	/* Salespeople's messages from the chatter: sent inside the window, held for it; the first answer's wait. */
	unsigned agent_sent, agent_held;
	uint64_t first_human_ms;
};
typedef void (*engine_report_fn)(const struct turn_report *r, void *arg);

/* Collaborators are borrowed and may change (reload): the engine reads them through the pointers each time. */
struct engine_deps {
	struct rconn **redis;
	struct classifier **classifier;
	struct sender **sender; /* *sender may be NULL: replies are recorded, not sent */
	struct lead_ctx **leads; /* *leads may be NULL: no Odoo */
	struct journal **journal; /* where leads go without Odoo; may be NULL */
	struct lexicon **lexicon; /* the texts of confirmations and follow-ups */
	struct stripe **stripe; /* *stripe may be NULL: no payment links */
	struct curlev **curl; /* for media (voice notes, images); may be NULL */
	const struct media_options *media; /* where media may come from, with which credentials; NULL: no media */
	engine_report_fn report; /* told each committed turn; may be NULL */
	void *report_arg;
	struct content **content; /* the templates' text; may be NULL */
};

struct engine *engine_new(sd_event *e, const struct engine_deps *deps, const struct engine_options *o);
void engine_free(struct engine *en);
/* Redis is (back) up: look for the old intake stream again and start polling. */
void engine_redis_up(struct engine *en);
/* A message was stored and its phone's turn is due at due_ms (realtime): claim now, or poll then. */
void engine_due(struct engine *en, uint64_t due_ms);
void engine_get_stats(const struct engine *en, struct engine_stats *st);
/* Key of a phone's conversation state; caller frees. */
char *engine_conv_key(const struct engine *en, const char *phone);
/* Keys of the engine's queues, for the status endpoint and resets. */
const char *engine_key(const struct engine *en, const char *what); /* "due", "pending", "dead", "lease" */
/* Forgets a phone: state, messages waiting, schedules. done(0/-1, arg) when finished. */
/*
 * Puts a dead-lettered turn's messages (a JSON array, borrowed) back among the phone's arrivals, in the order they
 * first came (before anything since), and makes its turn due.
 */
int engine_requeue(struct engine *en, const char *phone, json_t *messages);
void engine_reset_phone(struct engine *en, const char *phone, void (*done)(int r, void *arg), void *arg);
/* Takes the outbound rules (window, opt-out, hand-off, follow-ups, links) of o, after a reload. */
void engine_set_outbound(struct engine *en, const struct engine_options *o);
/* Key of a phone's control hash (pause, call context, window report); caller frees. */
char *engine_ctl_key(const struct engine *en, const char *phone);
/* Twilio reported 63016 for a message to phone: the window is closed until the customer writes. */
void engine_window_closed(struct engine *en, const char *phone);
/* WhatsApp reported that the customer blocked the business (Twilio's 63014): no follow-ups, none of the bot's
 * own messages, until the customer writes again (which clears it). */
void engine_blocked(struct engine *en, const char *phone);
/*
 * A tagged message's outcome (the sender's on_result): a salesperson's message from the lead's chatter
 * (tag "odoo:<lead>:<message>") that Twilio refused or could not deliver is said on the lead. Other tags: nothing.
 */
void engine_agent_result(struct engine *en, const char *tag, json_t *res);
/* Stops a phone's follow-ups (an admin paused it, or the conversation was reset). */
void engine_cancel_followups(struct engine *en, const char *phone);

#endif
