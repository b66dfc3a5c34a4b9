/*
 * Google Gemini's generateContent with structured JSON output: the request
 * (system instruction, the conversation as contents, a JSON schema), the
 * reading of the answer (every fault docs/PROTOCOLS.md lists), the validation of
 * the model's JSON against the schema and the user's own words, and an
 * asynchronous client with retries and a circuit breaker.
 */
#ifndef CRMB_GEMINI_H
#define CRMB_GEMINI_H

#include <jansson.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "analysis.h"
#include "common/curlev.h"

enum gemini_outcome {
	GEM_OK,
	GEM_RETRY_LATER, /* 429: retry after retry_after_ms */
	GEM_SERVER, /* 5xx or a network error: retry with backoff */
	GEM_CONFIG, /* 400/401/403/404: a configuration error, not retried */
	GEM_BLOCKED, /* 200 without candidates (promptFeedback.blockReason) */
	GEM_TRUNCATED, /* finishReason MAX_TOKENS */
	GEM_UNUSABLE, /* another finishReason (SAFETY, RECITATION, ...) */
	GEM_MALFORMED, /* not the JSON we asked for */
	GEM_TIMEOUT,
};

struct gemini_usage {
	uint64_t prompt, candidates, thoughts, total;
};

struct gemini_response {
	enum gemini_outcome outcome;
	char *text; /* the model's JSON text when GEM_OK (caller frees via gemini_response_clear) */
	uint64_t retry_after_ms; /* GEM_RETRY_LATER; 0 if the quota is per day (do not retry soon) */
	char error[160]; /* a short description: status and message */
	struct gemini_usage usage;
};

/* Which API the client speaks. */
enum model_provider {
	PROVIDER_GEMINI, /* generateContent (docs/PROTOCOLS.md section 4) */
	PROVIDER_OPENAI, /* OpenAI-compatible chat/completions: OpenAI, Gemini's compatible endpoint, local servers */
};
const char *model_provider_name(enum model_provider p);
/* Whether the provider's API takes this media type inline (Gemini: images and audio incl. WhatsApp's ogg/opus;
   OpenAI's chat/completions: images, and audio as wav or mp3 only). */
bool model_accepts_media(enum model_provider p, const char *mime);
/*
 * The name Gemini lists for a media type ("audio/x-wav" -> "audio/wav", "audio/mpeg" -> "audio/mp3",
 * "audio/opus" -> "audio/ogg", parameters dropped); a static buffer, valid until the next call.
 */
const char *gemini_mime_type(const char *mime);
/* "gemini" or "openai"; -1 if neither. */
int model_provider_from_name(const char *s);

/*
 * Builds the generateContent body for c, for model (its thinkingConfig depends on the family); the contents
 * begin and end with the customer's turns. Caller frees.
 */
char *gemini_request_body(const struct conversation *c, const char *model, unsigned max_output_tokens);
/* The generationConfig.thinkingConfig model takes, or NULL for none; caller owns it. */
json_t *gemini_thinking_config(const char *model);
/* Reads an HTTP answer (status, body) into r. */
void gemini_parse_response(long status, const char *body, size_t len, struct gemini_response *r);
/*
 * The chat/completions body for c: a system message (the instruction, and
 * our context), one message per conversation message, response_format
 * json_schema with strict: true. max_tokens_param names the limit's member
 * ("max_completion_tokens", or "max_tokens" for older servers). Caller frees.
 */
char *openai_request_body(
    const struct conversation *c, const char *model, unsigned max_output_tokens, const char *max_tokens_param);
/*
 * Reads a chat/completions answer into r: choices[0].message.content and
 * finish_reason, a refusal, usage; errors as {"error": {...}} or wrapped in
 * an array. retry_after_ms: retry-after-ms, else Retry-After (seconds) in ms; 0 if neither.
 */
void
openai_parse_response(long status, const char *body, size_t len, uint64_t retry_after_ms, struct gemini_response *r);
/* Frees r's text. */
void gemini_response_clear(struct gemini_response *r);
/* Parses "42s", "1.5s", "500ms" into milliseconds; 0 if not a duration. */
uint64_t gemini_parse_delay(const char *s);
/*
 * Validates the model's JSON text against the schema and fills the advice:
 * fields (only those grounded in c's user messages; the others are dropped
 * and counted in advice->invented), intent, reason, sentiment, language,
 * confidence, the model's proposed action (into *model_action) and reply.
 * Returns 0, or -1 with a reason in why when the JSON is not usable.
 */
int gemini_validate(
    const char *text, const struct conversation *c, struct analysis *advice, int *model_action, const char **why);

/* ---- circuit breaker ---- */

enum breaker_state { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN };

struct breaker {
	unsigned threshold; /* consecutive failures that open it */
	uint64_t open_usec; /* how long it stays open */
	unsigned failures;
	enum breaker_state state;
	uint64_t opened_at;
	bool probing;
	uint64_t opened_count;
};

/* True if a call may go now; in half-open state only one probe at a time. */
bool breaker_allow(struct breaker *b, uint64_t now);
void breaker_success(struct breaker *b);
void breaker_failure(struct breaker *b, uint64_t now);
const char *breaker_state_name(enum breaker_state s);

/* ---- the asynchronous client ---- */

struct gemini;

struct gemini_options {
	enum model_provider provider;
	const char
	    *api_base; /* https://generativelanguage.googleapis.com, or for openai e.g. https://api.openai.com/v1 */
	const char *model;
	const char *api_key; /* may be NULL for openai (a local server without a key) */
	const char *max_tokens_param; /* openai: "max_completion_tokens" (default) or "max_tokens" */
	const char *audio_model; /* openai: the model a turn with a voice note goes to (input_audio); NULL: none */
	uint64_t timeout_ms; /* one attempt */
	unsigned max_attempts;
	uint64_t max_retry_delay_ms; /* a longer retryDelay is not waited for */
	unsigned max_output_tokens;
	unsigned breaker_threshold;
	uint64_t breaker_open_ms;
	uint64_t backoff_ms;
};

struct gemini_stats {
	uint64_t calls, ok, retries, failures, config_errors, blocked, truncated, malformed, timeouts, short_circuited;
	uint64_t invented_dropped;
	struct gemini_usage tokens;
	uint64_t latency_usec_sum, latency_usec_max;
	char last_error[200];
	enum breaker_state breaker;
};

/* Told the outcome; advice is valid only during the call (NULL unless GEM_OK). */
typedef void (*gemini_done_fn)(enum gemini_outcome outcome, const struct analysis *advice, int model_action, void *arg);

struct gemini *gemini_new(sd_event *e, struct curlev *cv, const struct gemini_options *o);
/* Frees the client; pending classifications first get GEM_SERVER (so the rules answer them). NULL is fine. */
void gemini_free(struct gemini *g);
/* Classifies c (copied) and calls done once, from the loop. */
void gemini_classify(struct gemini *g, const struct conversation *c, gemini_done_fn done, void *arg);
void gemini_get_stats(const struct gemini *g, struct gemini_stats *st);
enum model_provider gemini_provider(const struct gemini *g);
/* Whether the client sends this media type to its model (OpenAI: audio only with an audio_model). */
bool gemini_accepts_media(const struct gemini *g, const char *mime);
const char *gemini_outcome_name(enum gemini_outcome o);

#endif
