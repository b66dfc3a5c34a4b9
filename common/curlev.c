/*
 * The socket-action flavour of libcurl's multi API, driven by sd-event:
 * CURLMOPT_SOCKETFUNCTION maps each socket to an io source and
 * CURLMOPT_TIMERFUNCTION to one time source.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "curlev.h"

struct xfer {
	curlev_done_fn done;
	void *arg;
	struct xfer *prev, *next;
	CURL *easy;
};

/*
 * Easy handles given back, reset, for the next request: making one (a large
 * zeroed struct, its buffers) and freeing it cost more than the reset. A
 * burst's handles beyond this many are freed.
 */
#define EASY_SPARE 128

struct curlev {
	sd_event *event;
	CURLM *multi;
	sd_event_source *timer;
	struct xfer *xfers;
	unsigned running;
	bool in_check; /* guards re-entry from a done callback */
	CURL *spare[EASY_SPARE];
	unsigned nspare;
};

static void
check_done(struct curlev *cv)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(cv->multi, &left)) != NULL) {
		struct xfer *x = NULL;
		CURL *easy;
		CURLcode res;

		if (msg->msg != CURLMSG_DONE)
			continue;
		easy = msg->easy_handle;
		res = msg->data.result;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
		curl_multi_remove_handle(cv->multi, easy);
		if (x == NULL)
			continue;
		if (x->prev != NULL)
			x->prev->next = x->next;
		else
			cv->xfers = x->next;
		if (x->next != NULL)
			x->next->prev = x->prev;
		cv->running--;
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		x->done(easy, res, x->arg);
		free(x);
	}
}

static int
on_io(sd_event_source *s, int fd, uint32_t revents, void *arg)
{
	struct curlev *cv = arg;
	int flags = 0, still;

	if (revents & (EPOLLIN | EPOLLHUP))
		flags |= CURL_CSELECT_IN;
	if (revents & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (revents & EPOLLERR)
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(cv->multi, fd, flags, &still);
	check_done(cv);
	return 0;
}

static int
on_timer(sd_event_source *s, uint64_t usec, void *arg)
{
	struct curlev *cv = arg;
	int still;

	curl_multi_socket_action(cv->multi, CURL_SOCKET_TIMEOUT, 0, &still);
	check_done(cv);
	return 0;
}

/* CURLMOPT_SOCKETFUNCTION: one io source per socket, kept in curl's socket pointer. */
static int
socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct curlev *cv = userp;
	sd_event_source *s = socketp;
	uint32_t events = 0;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			sd_event_source_disable_unref(s);
			curl_multi_assign(cv->multi, fd, NULL);
		}
		return 0;
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= EPOLLIN;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= EPOLLOUT;
	if (s == NULL) {
		if (sd_event_add_io(cv->event, &s, fd, events, on_io, cv) < 0)
			return -1;
		curl_multi_assign(cv->multi, fd, s);
	} else {
		sd_event_source_set_io_events(s, events);
		sd_event_source_set_enabled(s, SD_EVENT_ON);
	}
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer, 0 means "now". */
static int
timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct curlev *cv = userp;

	if (timeout_ms < 0) {
		sd_event_source_set_enabled(cv->timer, SD_EVENT_OFF);
		return 0;
	}
	sd_event_source_set_time(cv->timer, now_usec() + (uint64_t)timeout_ms * 1000);
	sd_event_source_set_enabled(cv->timer, SD_EVENT_ONESHOT);
	return 0;
}

void
curlev_defaults(CURL *easy, struct curlbuf *body, uint64_t timeout_ms)
{
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "crmbridge/" PACKAGE_VERSION);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, curlbuf_write);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms < 5000 ? timeout_ms : 5000));
}

size_t
curlbuf_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct curlbuf *b = ud;
	size_t n = size * nmemb;

	if (b->len + n > b->max)
		return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
	b->data = xreallocarray(b->data, b->len + n + 1, 1);
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

void
curlbuf_reset(struct curlbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

struct curlev *
curlev_new(sd_event *e)
{
	struct curlev *cv = xcalloc(1, sizeof(*cv));

	cv->event = sd_event_ref(e);
	if ((cv->multi = curl_multi_init()) == NULL)
		goto fail;
	if (sd_event_add_time(e, &cv->timer, CLOCK_MONOTONIC, 0, 1, on_timer, cv) < 0)
		goto fail;
	sd_event_source_set_enabled(cv->timer, SD_EVENT_OFF);
	curl_multi_setopt(cv->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(cv->multi, CURLMOPT_SOCKETDATA, cv);
	curl_multi_setopt(cv->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(cv->multi, CURLMOPT_TIMERDATA, cv);
	/* Connections to the same few APIs are reused. */
	curl_multi_setopt(cv->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 2048L); /* the engine's max_turns bounds it */
	return cv;
fail:
	curlev_free(cv);
	return NULL;
}

int
curlev_add(struct curlev *cv, CURL *easy, curlev_done_fn done, void *arg)
{
	struct xfer *x = xcalloc(1, sizeof(*x));

	x->done = done;
	x->arg = arg;
	x->easy = easy;
	curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)x);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	if (curl_multi_add_handle(cv->multi, easy) != CURLM_OK) {
		free(x);
		return -EIO;
	}
	x->next = cv->xfers;
	if (cv->xfers != NULL)
		cv->xfers->prev = x;
	cv->xfers = x;
	cv->running++;
	return 0;
}

CURL *
curlev_easy(struct curlev *cv)
{
	CURL *easy;

	if (cv->nspare > 0)
		return cv->spare[--cv->nspare];
	if ((easy = curl_easy_init()) == NULL)
		fatalx("curl_easy_init failed");
	return easy;
}

void
curlev_easy_release(struct curlev *cv, CURL *easy)
{
	if (easy == NULL)
		return;
	if (cv == NULL || cv->nspare == EASY_SPARE) {
		curl_easy_cleanup(easy);
		return;
	}
	curl_easy_reset(easy);
	cv->spare[cv->nspare++] = easy;
}

unsigned
curlev_running(const struct curlev *cv)
{
	return cv->running;
}

void
curlev_free(struct curlev *cv)
{
	if (cv == NULL)
		return;
	while (cv->xfers != NULL) {
		struct xfer *x = cv->xfers;
		cv->xfers = x->next;
		curl_multi_remove_handle(cv->multi, x->easy);
		curl_easy_setopt(x->easy, CURLOPT_PRIVATE, NULL);
		x->done(x->easy, CURLE_ABORTED_BY_CALLBACK, x->arg);
		free(x);
	}
	while (cv->nspare > 0)
		curl_easy_cleanup(cv->spare[--cv->nspare]);
	if (cv->multi != NULL)
		curl_multi_cleanup(cv->multi);
	sd_event_source_disable_unref(cv->timer);
	sd_event_unref(cv->event);
	free(cv);
}

void
curlev_network_error(CURL *easy, CURLcode res, char *out, size_t size)
{
	char *url = NULL, host[256] = "";
	CURLU *h;

	curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &url);
	if (url != NULL && (h = curl_url()) != NULL) {
		char *scheme = NULL, *name = NULL, *port = NULL;
		if (curl_url_set(h, CURLUPART_URL, url, 0) == CURLUE_OK) {
			curl_url_get(h, CURLUPART_SCHEME, &scheme, 0);
			curl_url_get(h, CURLUPART_HOST, &name, 0);
			curl_url_get(h, CURLUPART_PORT, &port, 0);
			if (scheme != NULL && name != NULL)
				snprintf(host, sizeof(host), " (%s://%s%s%s)", scheme, name, port != NULL ? ":" : "",
				    port != NULL ? port : "");
		}
		curl_free(scheme);
		curl_free(name);
		curl_free(port);
		curl_url_cleanup(h);
	}
	snprintf(out, size, "network: %s%s", curl_easy_strerror(res), host);
}
