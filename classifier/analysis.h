/*
 * What a conversation means: the analysis the classifier produces, the
 * conversation it reads, and their names on the wire. Shared by the offline
 * rules, the Gemini client, the policy and the tools.
 */
#ifndef CRMB_ANALYSIS_H
#define CRMB_ANALYSIS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum quality { Q_COLD, Q_WARM, Q_HOT };
enum intent { I_SALES, I_SUPPORT, I_OTHER };
enum action {
	A_CREATE_LEAD,
	A_ASK_CLARIFYING_QUESTION,
	A_REQUEST_CONTACT_INFO,
	A_ASK_ABOUT_INTEREST,
	A_TRANSFER_TO_SUPPORT,
	A_GATHER_MORE_DETAILS,
	A_COUNT
};
enum field { F_NAME, F_EMAIL, F_PHONE, F_CITY, F_PRODUCT, F_BUDGET, F_URGENCY, F_NEED, F_COUNT };

struct conv_msg {
	bool user; /* false: the bot */
	char *text;
};

/* A voice note or image of the customer's, for the length of one turn (never stored). */
struct conv_media {
	const char *mime; /* "audio/ogg", "image/jpeg", ... */
	const unsigned char *data;
	size_t len;
};

/* A conversation as the classifier sees it: the last messages and what is already known. */
struct conversation {
	struct conv_msg *msg;
	size_t n;
	char *known[F_COUNT]; /* fields extracted in earlier turns, or NULL */
	char lang[3]; /* a hint ("es"), or "" to detect */
	char *context; /* what our side knows beyond the chat (a phone call before it), or NULL */
	const char *business; /* the business profile for a model's instruction, borrowed for one call, or NULL */
	/* Media of one user message (msg[media_at]), borrowed from the caller for this call only; media_at -1
	   (or nmedia 0): none. Copies of a conversation keep media_at, not the media. */
	const struct conv_media *media;
	size_t nmedia;
	int media_at;
};

struct analysis {
	enum quality quality;
	int score; /* 0-100 */
	double confidence; /* 0-1 */
	enum intent intent;
	char reason[24]; /* purchase, pricing, complaint, warranty, delivery, refund, human, greeting, ... */
	double sentiment; /* -1..1 */
	char *fields[F_COUNT];
	unsigned missing; /* bit per field */
	enum action action;
	char *reply;
	char lang[3];
	char *reasoning; /* short, for the sales team */
	const char *source; /* "gemini" or "rules" */
	unsigned invented; /* model values dropped for not being in the user's words */
	bool manipulation; /* the user tried to instruct the bot */
	bool fallback; /* the model was asked and failed: the rules answered */
	unsigned tokens; /* model tokens spent on this answer */
	char *transcript; /* the words of the customer's voice note (or what their image shows), from the model */
	char *fact; /* the business profile's answer to the customer's question, or NULL */
	bool fact_all; /* and it answers every question of the message */
};

/* Names on the wire. */
const char *quality_name(enum quality q);
const char *intent_name(enum intent i);
const char *action_name(enum action a);
const char *field_name(enum field f);
/* Parses a name; -1 if unknown. */
int quality_from_name(const char *s);
int intent_from_name(const char *s);
int action_from_name(const char *s);
int field_from_name(const char *s);

/* Frees what a holds and zeroes it. */
void analysis_clear(struct analysis *a);
/* Makes dst (empty, or cleared) a deep copy of src, to keep an analysis beyond a callback. */
void analysis_copy(struct analysis *dst, const struct analysis *src);
/* Sets field f to a copy of v (NULL clears it). */
void analysis_set(struct analysis *a, enum field f, const char *v);
/* The analysis as the JSON object crmbridgectl prints; caller owns the reference. */
json_t *analysis_to_json(const struct analysis *a);

/* Frees what c holds and zeroes it. */
void conversation_clear(struct conversation *c);
/* Appends a message (copied). */
void conversation_add(struct conversation *c, bool user, const char *text);
/*
 * Reads a case file's "messages" (and "language") into c. Returns 0, or -1
 * with a reason in why.
 */
int conversation_from_json(json_t *doc, struct conversation *c, const char **why);

#endif
