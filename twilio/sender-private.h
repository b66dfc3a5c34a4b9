/* What twilio/sender.c shares with sender-status.c: the sender itself. */
#ifndef CRMB_SENDER_PRIVATE_H
#define CRMB_SENDER_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "common/alive.h"
#include "common/curlev.h"
#include "common/pace.h"
#include "common/redis.h"
#include "twilio/sender.h"

struct job;
struct sender_upgrade;

/* How long a sent message's record (P{outbox}:msg:<sid>) and a tag's result are kept: 7 days. */
#define SENDER_MSG_TTL_S (7 * 86400)

struct sender {
	sd_event *event;
	struct curlev *cv;
	struct rconn *rc;
	struct sender_options o;
	char *url;
	char *userpwd;
	char *k_due, *k_qprefix, *k_optout, *k_dead, *k_msgprefix, *k_deadbody, *k_result;
	struct rscript enqueue, claim, done, optout, retry;
	struct sender_upgrade *upgrade; /* the walk converting the previous release's jobs */
	struct alive *alive;
	uint64_t id_nonce, id_count; /* job ids: this sender's random part, the replies it queued */
	bool claiming, tick_again;
	unsigned claims; /* per-recipient claims not answered yet */
	bool claimed; /* one of them handed out a job */
	bool backlog; /* a job may be due that no hand-off takes (it waited for room): tick when a send ends */
	bool starved; /* a hand-off was refused for room since the last tick was sent */
	unsigned limit; /* how many recipients the last tick asked for */
	unsigned reserved; /* slots held for claims, enqueues and dones that may hand out a job */
	sd_event_source *poll;
	struct pace pace; /* poll_ms while replies wait for room, up to SENDER_IDLE_POLL_MS; at each retry's time */
	unsigned in_flight;
	struct job *jobs; /* in flight */
	struct sender_stats st;
};

#endif
