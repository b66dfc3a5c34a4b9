/*
 * The Twilio WhatsApp webhook: content type, form decoding, the signature
 * (before any field is trusted), validation, then the durable intake; Twilio
 * gets its 200 with an empty TwiML <Response/> as soon as the message is
 * stored. The work on the message happens later, off the request.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/form.h"
#include "common/log.h"
#include "common/util.h"
#include "twilio/intake.h"
#include "twilio/sender.h"
#include "twilio/signature.h"
#include "twilio/webhook.h"

static const char twiml_empty[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";

/* True for whatsapp:+ followed by 7 to 15 digits, the first not 0 (no country code starts with 0). */
bool
webhook_valid_from(const char *s)
{
	size_t n = 0;

	if (s == NULL || strncmp(s, "whatsapp:+", 10) != 0 || s[10] == '0')
		return false;
	for (s += 10; *s != '\0'; s++, n++)
		if (!isdigit((unsigned char)*s))
			return false;
	return n >= 7 && n <= 15;
}

/* True for SM or MM followed by 32 hexadecimal digits. */
bool
webhook_valid_sid(const char *s)
{
	size_t i;

	if (s == NULL || strlen(s) != 34 || (strncmp(s, "SM", 2) != 0 && strncmp(s, "MM", 2) != 0))
		return false;
	for (i = 2; i < 34; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

static bool
valid_token(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++, n++)
		if (!isalnum((unsigned char)*s) && strchr("._:-", *s) == NULL)
			return false;
	return n >= 1 && n <= 128;
}

static bool
nonempty(const struct form *f, const char *name)
{
	const char *v = form_get(f, name);

	return v != NULL && *v != '\0';
}

/* A message with no text is still a message when it carries something else. */
static bool
has_content(const struct form *f)
{
	const char *nm = form_get(f, "NumMedia"), *type = form_get(f, "MessageType");
	long long n = 0;

	if (nonempty(f, "Body"))
		return true;
	if (nm != NULL && parse_ll(nm, 0, 100, &n) == 0 && n > 0)
		return true;
	if (nonempty(f, "Latitude") && nonempty(f, "Longitude"))
		return true;
	if (nonempty(f, "ButtonText") || nonempty(f, "ButtonPayload"))
		return true;
	if (type != NULL && strcmp(type, "text") != 0 && *type != '\0')
		return true; /* contacts, interactive, reaction, ... */
	return false;
}

static bool
form_content_type(const char *ct)
{
	static const char want[] = "application/x-www-form-urlencoded";
	size_t n = sizeof(want) - 1;

	if (ct == NULL || strncasecmp(ct, want, n) != 0)
		return false;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

static void
reply_twiml(struct http_request *req)
{
	http_reply(req, 200, "text/xml", twiml_empty, sizeof(twiml_empty) - 1);
}

static void
on_stored(enum intake_result res, void *arg)
{
	struct http_request *req = arg;
	struct webhook_ctx *w = http_req_arg(req);

	switch (res) {
	case INTAKE_STORED:
		w->stats.accepted++;
		reply_twiml(req);
		break;
	case INTAKE_SPOOLED:
		w->stats.accepted++;
		w->stats.spooled++;
		reply_twiml(req);
		break;
	case INTAKE_DUPLICATE:
		w->stats.duplicates++;
		reply_twiml(req);
		break;
	default:
		w->stats.failed++;
		http_add_header(req, "Retry-After", "5");
		http_reply_error(req, 503, "the message could not be stored");
		break;
	}
}

/*
 * Builds the URL Twilio signed: the configured public URL (its trailing '/'
 * dropped) followed by the request target exactly as received.
 */
static void
signed_url(const char *public_url, const struct http_request *req, char *buf, size_t size)
{
	size_t n = strlen(public_url);

	if (n > 0 && public_url[n - 1] == '/')
		n--;
	snprintf(buf, size, "%.*s%s", (int)n, public_url, http_req_target(req));
}

/*
 * Checks the X-Twilio-Signature of a form request; answers and returns false
 * when it does not hold (or cannot be checked), counting why.
 */
static bool
verified(struct webhook_ctx *w, struct http_request *req, const struct form *f)
{
	const char *tokens[2] = {w->auth_token, w->auth_token_secondary};
	const char *sig;
	char url[8192];

	if (!w->verify_signature)
		return true;
	if (w->public_url == NULL || w->auth_token == NULL) {
		w->stats.sig_unconfigured++;
		log_error("webhook: refused: %s is not set, so the signature cannot be checked",
		    w->public_url == NULL ? "server.public_url (CRMBRIDGE_PUBLIC_URL)"
		                          : "twilio.auth_token (credential twilio_auth_token, or TWILIO_AUTH_TOKEN)");
		http_reply_error(req, 403, "signature check not configured");
		return false;
	}
	if ((sig = http_req_header(req, "X-Twilio-Signature")) == NULL) {
		w->stats.sig_missing++;
		http_reply_error(req, 400, "missing X-Twilio-Signature");
		return false;
	}
	signed_url(w->public_url, req, url, sizeof(url));
	if (!twsig_valid(tokens, 2, url, f, sig)) {
		w->stats.sig_invalid++;
		log_warnx(
		    "webhook: signature mismatch, request refused (check that server.public_url is exactly the scheme "
		    "and "
		    "host of the URL configured in Twilio, and that the auth token is the account's current one)");
		http_reply_error(req, 403, "invalid signature");
		return false;
	}
	return true;
}

/* Decodes the form body of a Twilio request; answers 415/400 and returns -1 when it cannot. */
static int
read_form(struct webhook_ctx *w, struct http_request *req, struct form *f)
{
	const char *body, *why;
	size_t len;

	if (!form_content_type(http_req_header(req, "Content-Type"))) {
		w->stats.bad_request++;
		http_reply_error(req, 415, "expected application/x-www-form-urlencoded");
		return -1;
	}
	body = http_req_body(req, &len);
	if (form_parse(body, len, f, &why) < 0) {
		w->stats.bad_request++;
		http_reply_error(req, 400, "malformed form body: %s", why);
		return -1;
	}
	return 0;
}

void
webhook_status(struct http_request *req, void *arg)
{
	struct webhook_ctx *w = arg;
	struct form f = {0};
	const char *sid, *status, *code;
	long long ec = 0;
	static const char *const known[] = {"accepted", "scheduled", "queued", "sending", "sent", "delivered", "read",
	    "undelivered", "failed", "canceled", "receiving", "received", "partially_delivered"};
	size_t i;
	bool ok = false;

	w->stats.status_callbacks++;
	if (read_form(w, req, &f) < 0)
		return;
	if (!verified(w, req, &f))
		goto out;
	sid = form_get(&f, "MessageSid");
	status = form_get(&f, "MessageStatus");
	code = form_get(&f, "ErrorCode");
	for (i = 0; status != NULL && i < sizeof(known) / sizeof(known[0]); i++)
		ok |= strcmp(status, known[i]) == 0;
	if (!webhook_valid_sid(sid) || !ok || (code != NULL && *code != '\0' && parse_ll(code, 0, 999999, &ec) < 0)) {
		w->stats.bad_request++;
		http_reply_error(req, 400, "MessageSid, MessageStatus or ErrorCode malformed");
		goto out;
	}
	if (w->sender != NULL)
		sender_record_status(w->sender, sid, status, (long)ec);
	if (ec == 63016 || ec == 63014) {
		/* Free text was refused: the window is closed until the customer writes again. Or the customer
		 * blocked the business on WhatsApp: nothing more is sent until they write again. */
		const char *to = form_get(&f, "To");
		if (to != NULL && w->refused != NULL)
			w->refused(to, (long)ec, w->arg);
	}
	if (ec != 0)
		log_info("webhook: MessageSid=%s %s with Twilio error %lld%s", sid, status, ec,
		    ec == 63016       ? " (outside the 24-hour window)"
		        : ec == 63014 ? " (the customer has blocked the business on WhatsApp)"
		                      : "");
	reply_twiml(req);
out:
	form_clear(&f);
}

void
webhook_whatsapp(struct http_request *req, void *arg)
{
	struct webhook_ctx *w = arg;
	const char *from, *sid, *idem;
	const char *body;
	struct form f = {0};
	struct intake_msg m;
	size_t len;

	w->stats.requests++;
	if (read_form(w, req, &f) < 0)
		return;
	body = http_req_body(req, &len);
	if (!verified(w, req, &f))
		goto out;
	{
		/* Twilio sends each of these once: a repeated one makes the message ambiguous. */
		static const char *const single[] = {"From", "To", "MessageSid", "AccountSid", "Body"};
		size_t i, j, n;
		for (i = 0; i < sizeof(single) / sizeof(single[0]); i++) {
			for (j = 0, n = 0; j < f.n; j++)
				n += strcmp(f.p[j].name, single[i]) == 0;
			if (n > 1) {
				w->stats.bad_request++;
				http_reply_error(req, 400, "parameter %s repeated", single[i]);
				goto out;
			}
		}
	}
	from = form_get(&f, "From");
	sid = form_get(&f, "MessageSid");
	idem = http_req_header(req, "I-Twilio-Idempotency-Token");
	if (!webhook_valid_from(from)) {
		w->stats.bad_request++;
		http_reply_error(req, 400,
		    from != NULL && strncmp(from, "whatsapp:+0", 11) == 0
		        ? "From must be whatsapp:+<E.164 number>; an E.164 number never starts with 0"
		        : "From must be whatsapp:+<E.164 number>");
		goto out;
	}
	if (!webhook_valid_sid(sid)) {
		w->stats.bad_request++;
		http_reply_error(req, 400, "MessageSid missing or malformed");
		goto out;
	}
	if (idem != NULL && !valid_token(idem)) {
		w->stats.bad_request++;
		http_reply_error(req, 400, "malformed I-Twilio-Idempotency-Token");
		goto out;
	}
	if (!has_content(&f)) {
		w->stats.bad_request++;
		http_reply_error(req, 400, "message has no body, media, location, button or contacts");
		goto out;
	}
	if (w->intake == NULL) {
		w->stats.failed++;
		http_reply_error(req, 503, "intake not ready");
		goto out;
	}
	m.sid = sid;
	m.from = from;
	m.idem = idem;
	m.body = body;
	m.len = len;
	m.received_ms = realtime_usec() / 1000;
	m.form = &f;
	intake_submit(w->intake, &m, on_stored, req);
out:
	form_clear(&f);
}
