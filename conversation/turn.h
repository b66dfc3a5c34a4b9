/*
 * Inside the engine (conversation/): the engine's own state, a turn, and the turn's steps.
 * Not for use outside conversation/: conversation/engine.h is the engine's interface.
 *
 * A turn is one phone's work, run as a state machine: turn_run() enters a step, the step does its work and
 * says which step comes next, or TURN_WAIT when it started something asynchronous (Redis, the model, Odoo,
 * Twilio, Stripe) whose callback calls turn_run() with the next step. The steps, in the order a customer's
 * turn takes them, are listed in enum turn_step; conversation/turn.c has the table that names each one's
 * function (and the file it lives in, by concern).
 */
#ifndef CRMB_TURN_H
#define CRMB_TURN_H

#include <hiredis/async.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "common/pace.h"
#include "common/redis.h"
#include "conversation/engine.h"

/* The most messages one turn takes (the rest wait for the next turn); as text for the claim script. */
#define TURN_MAX_TAKEN 100
#define TURN_STR_(x) #x
#define TURN_STR(x) TURN_STR_(x)
#define TURN_MAX_TAKEN_S TURN_STR(TURN_MAX_TAKEN)

/* The longest the loop sleeps without being told of work: how late it sees another instance's. */
#define ENGINE_IDLE_POLL_MS 2000

struct engine {
	sd_event *event;
	struct engine_deps d;
	struct engine_options o;
	char *k_stream, *k_due, *k_lease, *k_pending, *k_dead, *k_followup, *k_in;
	char *k_leads; /* P{odoo}:leads: lead id -> phone, for the salespeople's messages on a lead (inbox.c) */
	struct rscript store, drain, claim, load, release, commit, lease_one;
	bool claiming, pending_busy, claim_again, followup_busy;
	sd_event_source *poll;
	/* The upgrade from the releases before the arrivals (upgrade.c). */
	struct {
		int stream; /* the old intake stream holds messages to move: -1 not known yet, 1 yes, 0 no */
		bool group_ready, reading, draining;
		uint64_t last_reclaim, last_drain;
		int walk; /* the old inboxes: -1 to look, 2 asking for the marker, 1 walking, 0 done */
		bool walk_started, walk_failed, moved_any;
		unsigned walk_pending;
		uint64_t last_walk;
		char cursor[32];
	} up;
	unsigned claim_asked; /* phones the claim under way asked for */
	struct engine_stats st;
	struct turn *turns;
	unsigned refs; /* callbacks in flight that point at us */
	bool dying; /* engine_free was called: destroyed when refs reach 0 */
	struct pace pace; /* the poll's: 50 ms while there is work, up to ENGINE_IDLE_POLL_MS when there is none */
	uint64_t next_chores; /* lead retries and follow-ups: every second (every poll when idle) */
	uint64_t next_depths; /* queue depths for the status: every second, every 10 s when idle */
	long long *depth; /* queue depths, sampled every second (every 10 s when idle) */
	struct inbox *inbox; /* the salespeople's chatter messages (inbox.c) */
};

/* What started the turn. */
enum turn_kind {
	TURN_KIND_CUSTOMER, /* the customer's messages, claimed from {turns}:due */
	TURN_KIND_LEAD_RETRY, /* a lead write (or phone blacklist update) Odoo refused earlier, from {odoo}:pending */
	TURN_KIND_FOLLOWUP, /* a quiet conversation's follow-up, from {followup}:due */
};

/*
 * The steps, in order. Where a turn can stop: TURN_RELEASE ends every turn (ok or failed); a failed
 * step (Redis, the sender refusing) goes to TURN_RELEASE marked failed, and the phone's turn is redone
 * from TURN_LOAD by the next claim (after turn_lease_ms if this process died). What a redone turn does
 * not repeat: the reply is queued once per turn key (the last message's MessageSid), the lead upsert
 * finds the lead a lost create made, Stripe answers the same session for the same key.
 */
enum turn_step {
	TURN_LOAD, /* the state and the control hash, in one script; the messages came with the claim (then by kind:) */
	TURN_RETRY, /* lead retry: a pending blacklist update first, then the lead as a job after the release */
	TURN_FOLLOWUP, /* follow-up: the unanswered question again, if still warm and quiet; else nothing */
	TURN_TAKE, /* customer: the messages taken; none: released; failed too often: TURN_GIVE_UP */
	TURN_GIVE_UP, /* the messages set aside in {engine}:dead with the reason; the state kept */
	TURN_HISTORY, /* the messages into the history; STOP/START: TURN_OPT; opted out or paused: committed, silent */
	TURN_AGENT, /* a salesperson's messages from the lead's chatter delivered (or held for the window), once each */
	TURN_OPT, /* STOP or START: the stage, the confirmation queued */
	TURN_BLACKLIST, /* Odoo's phone.blacklist updated (when configured), or retried later */
	TURN_MEDIA, /* voice notes and images fetched from Twilio for the model; unreadable alone: ask to write */
	TURN_CLASSIFY, /* the classifier (model or rules): fields, quality, action, the reply; hand-off decided */
	TURN_LINKS, /* a new lead's confirmation gets the booking link and a Stripe Checkout link */
	TURN_REPLY, /* the reply recorded and queued once (the template outside the 24-hour window) */
	TURN_LEAD, /* the lead: with Odoo, marked pending for a job after the release; without, the journal now */
	TURN_WRITE_LEAD, /* the upsert (Odoo or the journal); Odoo refusing: kept pending, retried later */
	TURN_HANDOFF, /* a hand-off: the lead assigned and a note posted for the team */
	TURN_COMMIT, /* the state and the control hash, in one script; reported */
	TURN_RELEASE, /* the lease given back, the messages dealt with out of the arrivals (due kept if more came) */
	TURN_JOB, /* the lead job: P{+E164}:odoo taken (one writer per phone), then TURN_WRITE_LEAD */
	TURN_MIRROR, /* the conversation's new messages posted on the lead's chatter, each once */
	TURN_MERGE, /* what the write learnt merged into the state stored now, under the phone's lease */
	TURN_JOB_END, /* P{+E164}:odoo given back */
	TURN_DONE, /* freed */
	TURN_NSTEPS,
	TURN_WAIT = -1, /* not a step: the step started something whose callback goes on */
};

struct turn {
	struct engine *en;
	enum turn_kind kind;
	enum turn_step step; /* the step running or waited for */
	bool failed; /* released as failed: redone by the next claim */
	char phone[17];
	char due[32];
	long long attempts;
	json_t *state;
	json_t *inbox; /* the messages taken */
	size_t taken;
	char *last_member; /* the last of them as the arrivals hold it: the release takes it and those before out */
	bool full; /* the claim gave as many as a turn takes (TURN_MAX_TAKEN): more may wait */
	size_t waiting; /* a follow-up: the phone's messages waiting (the customer wrote: no follow-up) */
	int opt_word; /* the burst's last STOP (1) or START (-1) */
	char opt_lang[3];
	char *reply, *turn_key;
	char *question; /* after the lead: the customer's question(s), left to the salesperson and noted on the lead */
	struct analysis a;
	json_t *ctl; /* the phone's control hash as loaded */
	json_t *ctl_set, *ctl_del; /* changes to it, committed with the state */
	bool silenced, handoff, schedule_followup;
	/* The lead is written once the reply is queued: a slow Odoo never delays the customer's answer. */
	bool lead_after_reply;
	/*
	 * The lead write runs after the turn's commit, as a job that holds P{+E164}:odoo instead of the turn's
	 * lease, so the customer's next message is answered meanwhile; the job then merges what it learnt.
	 */
	bool lead_job, in_job;
	json_int_t job_gen; /* the state's lead_gen the job writes */
	unsigned merge_tries;
	sd_event_source *merge_timer;
	/* For the turn report. */
	bool fresh, replied, support, human, classified, after_followup;
	int opt, followup_sent;
	int lead;
	char lead_quality[8];
	uint64_t started_usec, classify_start, classify_usec;
	/* A voice note or image of this turn, in memory until the turn ends. */
	struct conv_media media[3];
	unsigned char *media_buf[3];
	char *media_mime[3];
	size_t nmedia, media_wanted, media_done;
	const char *media_sid;
	bool media_only, media_failed;
	sd_event_source *renew;
	/* The inbox (agent.c): the salespeople's messages taken, delivered one by one; notes for the lead. */
	size_t customer_in; /* the customer's messages among those taken */
	uint64_t first_in_ms; /* the first one's receive time */
	json_t *agent, *notes;
	size_t agent_i;
	enum turn_step after_agent;
	bool agent_held_done, agent_template;
	unsigned agent_sent, agent_held;
	uint64_t first_human_ms; /* the first answer from a person since the hand-off: how long it took */
	/* The job posts the conversation on the lead (mirror_keys: the Message-Ids it has now); mirror_only: only that. */
	bool mirror_only, mirrored, mirror_retry;
	json_t *mirror_keys;
	struct turn *prev, *next;
};

/* ---- the inbox: the lead's chatter and WhatsApp (inbox.c, agent.c) ---- */

struct inbox *inbox_new(struct engine *en);
void inbox_free(struct inbox *ib);
/* With each poll: asks Odoo for the salespeople's new messages every engine.inbox_interval. */
void inbox_poll(struct inbox *ib);
/*
 * Leaves a note for a lead about Odoo message id, for the poll to post once (what names the note: one per
 * message and what); nothing of the customer goes in it.
 */
void inbox_note(struct inbox *ib, int lead, json_int_t id, const char *what, const char *text);
/* An arrival from the chatter (m has "agent"): recorded, the bot paused, kept for TURN_AGENT. False: the customer's. */
bool agent_take(struct turn *t, json_t *m, uint64_t now);
/* TURN_AGENT when there is something to deliver (then next), else next. */
enum turn_step agent_first(struct turn *t, enum turn_step next);
/* Whether the lead's chatter lacks some of the history (the job posts it). */
bool agent_mirror_due(const struct turn *t);
/* Marks in cur (the state stored now) the history entries the job put on the lead's chatter. */
void agent_mirror_apply(const struct turn *t, json_t *cur);
/* After the commit: the turn's notes for the leads, queued for the inbox's poll. */
void agent_notes_push(struct turn *t);

/* ---- the engine's plumbing (engine.c) ---- */

/* The upgrade (upgrade.c): the old intake stream and inboxes moved into the arrivals; with each poll. */
void upgrade_poll(struct engine *en);
/* Redis is (back) up: look again. */
void upgrade_redis_up(struct engine *en);

/* The collaborators as they are now (a reload may swap them); NULL when not configured. */
static inline struct sender *
engine_sender(const struct engine *en)
{
	return en->d.sender != NULL ? *en->d.sender : NULL;
}
static inline struct lexicon *
engine_lexicon(const struct engine *en)
{
	return en->d.lexicon != NULL ? *en->d.lexicon : NULL;
}
static inline struct lead_ctx *
engine_leads(const struct engine *en)
{
	return en->d.leads != NULL ? *en->d.leads : NULL;
}
static inline struct journal *
engine_journal(const struct engine *en)
{
	return en->d.journal != NULL ? *en->d.journal : NULL;
}
static inline struct stripe *
engine_stripe(const struct engine *en)
{
	return en->d.stripe != NULL ? *en->d.stripe : NULL;
}

/* Every callback that holds a reference starts here: drops it; true when the engine is being freed. */
bool engine_gone(struct engine *en);
/* After a dying callback has cleaned up its own object: the last one frees the engine. */
void engine_settle(struct engine *en);
/* The Redis connection when it is up, else NULL. */
struct rconn *engine_rc(struct engine *en);
/* P{phone}:what; caller frees. */
char *engine_pkey(struct engine *en, const char *phone, const char *what);
int engine_eval(
    struct engine *en, const struct rscript *sc, redisCallbackFn *fn, void *pd, int nkeys, const char **argv, int argc);
/* Read the intake and claim turns now, and poll quickly again. */
void engine_poll_now(struct engine *en);
/* The phone's lead write is retried in the background delay_ms from now. */
void engine_retry_lead_in(struct engine *en, const char *phone, uint64_t delay_ms);

/* ---- the turn (turn.c) ---- */

/*
 * Starts a turn for phone under the lease the claim (or engine-lease-one) took: due is the due score the claim
 * wrote ("0" for none), msgs the n messages it took from the arrivals (a customer's turn), waiting how many the
 * phone has waiting (a follow-up's).
 */
void turn_start(struct engine *en, const char *phone, const char *due, long long attempts, enum turn_kind kind,
    redisReply **msgs, size_t n, size_t waiting);
/* Enters step s and goes on until a step waits or the turn is done. */
void turn_run(struct turn *t, enum turn_step s);
/* The step that ends a failed turn (logged, counted, released as failed). */
enum turn_step turn_fail(struct turn *t, const char *why);
/* In a turn's callback: true, with the turn freed, when the engine is going away. */
bool turn_dropped(struct turn *t);
void turn_free(struct turn *t);
/* Where a step that changed the state goes: the commit, or a lead job's merge. */
enum turn_step turn_save(struct turn *t);
void turn_ctl_set(struct turn *t, const char *field, const char *value);
void turn_ctl_del(struct turn *t, const char *field);
uint64_t turn_ctl_ms(const struct turn *t, const char *field);
/* Tells the observer what a committed turn (or a lead job) did. */
void turn_report(struct turn *t);

/* ---- the steps, by concern: turn.c (load, take, give up, history, commit, release, done) ---- */
enum turn_step turn_load(struct turn *t);
enum turn_step turn_take(struct turn *t);
enum turn_step turn_give_up(struct turn *t);
enum turn_step turn_history(struct turn *t);
enum turn_step turn_commit(struct turn *t);
enum turn_step turn_release(struct turn *t);
enum turn_step turn_done(struct turn *t);
/* optout.c */
enum turn_step turn_opt(struct turn *t);
enum turn_step turn_blacklist(struct turn *t);
/* classify.c */
enum turn_step turn_media(struct turn *t);
enum turn_step turn_classify(struct turn *t);
/* reply.c */
enum turn_step turn_links(struct turn *t);
enum turn_step turn_reply(struct turn *t);
/* The template outside the 24-hour window; TURN_WAIT when it was queued, else `otherwise`. */
enum turn_step turn_send_template(
    struct turn *t, const char *content_sid, const char *mapping, const char *why, enum turn_step otherwise);
/* The customer's voice note or image cannot be read: the reply asks them to write. */
enum turn_step turn_ask_to_write(struct turn *t, const char *why);
/* followup.c */
enum turn_step turn_followup(struct turn *t);
/* Schedules the phone's next follow-up (or cancels it) as the turn commits. */
void turn_schedule_followups(struct turn *t);
/* leadjob.c */
enum turn_step turn_retry(struct turn *t);
enum turn_step turn_lead(struct turn *t);
enum turn_step turn_write_lead(struct turn *t);
enum turn_step turn_handoff(struct turn *t);
enum turn_step turn_job(struct turn *t);
enum turn_step turn_merge(struct turn *t);
enum turn_step turn_job_end(struct turn *t);
/* agent.c */
enum turn_step turn_agent(struct turn *t);
enum turn_step turn_mirror(struct turn *t);

#endif
