/*
 * libcurl's multi interface on an sd-event loop: every outbound HTTP
 * request of the daemon (Twilio, and later Gemini and Odoo) runs as an
 * event, so hundreds can be in flight on one thread.
 */
#ifndef CRMB_CURLEV_H
#define CRMB_CURLEV_H

#include <curl/curl.h>
#include <stdint.h>
#include <systemd/sd-event.h>

struct curlev;

/* Called once when a transfer ends; the easy handle is the caller's again (to free or reuse). */
typedef void (*curlev_done_fn)(CURL *easy, CURLcode result, void *arg);

/* A response body collected in memory, NUL-terminated, refused past max bytes. */
struct curlbuf {
	char *data; /* NULL until something arrives; the owner frees it (curlbuf_reset) */
	size_t len;
	size_t max;
};

/* CURLOPT_WRITEFUNCTION for a struct curlbuf passed as CURLOPT_WRITEDATA. */
size_t curlbuf_write(char *ptr, size_t size, size_t nmemb, void *ud);
/* Frees the data and empties the buffer (max is kept). */
void curlbuf_reset(struct curlbuf *b);

/*
 * What every request of ours sets on its easy handle: http and https only,
 * crmbridge's User-Agent, the answer collected into body, a total timeout and
 * a connect timeout of at most 5 s.
 */
void curlev_defaults(CURL *easy, struct curlbuf *body, uint64_t timeout_ms);
/*
 * "network: Couldn't connect to server (https://api.twilio.com)": a failed transfer's error with the scheme, host
 * and port it tried (never the path or query, which may carry identifiers), into out.
 */
void curlev_network_error(CURL *easy, CURLcode res, char *out, size_t size);

/* A new multi handle on e. NULL on failure. */
struct curlev *curlev_new(sd_event *e);
/* Aborts transfers in progress (their callbacks get CURLE_ABORTED_BY_CALLBACK) and frees. NULL is fine. */
void curlev_free(struct curlev *cv);
/* Starts easy; done is called later, never before this returns. Returns 0 or -EIO. */
int curlev_add(struct curlev *cv, CURL *easy, curlev_done_fn done, void *arg);
/* An easy handle as curl_easy_init() makes it, reused when one was given back. Aborts when out of memory. */
CURL *curlev_easy(struct curlev *cv);
/*
 * Gives back an easy handle that is in no transfer (its done callback was
 * called, or curlev_add refused it): reset and kept for curlev_easy, or freed.
 * cv NULL frees it; easy NULL is fine.
 */
void curlev_easy_release(struct curlev *cv, CURL *easy);
/* Transfers in progress. */
unsigned curlev_running(const struct curlev *cv);

#endif
