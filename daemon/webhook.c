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
#include "daemon.h"
#include "signature.h"
#include "webhook.h"

static const char twiml_empty[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";

/* True for whatsapp:+ followed by 7 to 15 digits. */
bool
webhook_valid_from(const char *s)
{
	size_t n = 0;

	if (s == NULL || strncmp(s, "whatsapp:+", 10) != 0)
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
	struct daemon *d = http_req_arg(req);

	switch (res) {
	case INTAKE_STORED:
		d->wh.accepted++;
		reply_twiml(req);
		break;
	case INTAKE_SPOOLED:
		d->wh.accepted++;
		d->wh.spooled++;
		reply_twiml(req);
		break;
	case INTAKE_DUPLICATE:
		d->wh.duplicates++;
		reply_twiml(req);
		break;
	default:
		d->wh.failed++;
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
signed_url(const struct conf *c, const struct http_request *req, char *buf, size_t size)
{
	size_t n = strlen(c->public_url);

	if (n > 0 && c->public_url[n - 1] == '/')
		n--;
	snprintf(buf, size, "%.*s%s", (int)n, c->public_url, http_req_target(req));
}

void
webhook_whatsapp(struct http_request *req, void *arg)
{
	struct daemon *d = arg;
	const struct conf *c = d->conf;
	const char *why, *sig, *from, *sid, *idem;
	const char *body;
	struct form f = {0};
	struct intake_msg m;
	size_t len;
	int r;

	d->wh.requests++;
	if (!form_content_type(http_req_header(req, "Content-Type"))) {
		d->wh.bad_request++;
		http_reply_error(req, 415, "expected application/x-www-form-urlencoded");
		return;
	}
	body = http_req_body(req, &len);
	if ((r = form_parse(body, len, &f, &why)) < 0) {
		d->wh.bad_request++;
		http_reply_error(req, 400, "malformed form body: %s", why);
		return;
	}
	if (c->webhook_verify_signature) {
		const char *tokens[2] = {c->twilio_auth_token, c->twilio_auth_token_secondary};
		char url[8192];

		if (c->public_url == NULL || c->twilio_auth_token == NULL) {
			d->wh.sig_unconfigured++;
			log_error("webhook: refused: %s is not set, so the signature cannot be checked",
			    c->public_url == NULL ? "CRMBRIDGE_PUBLIC_URL" : "TWILIO_AUTH_TOKEN");
			http_reply_error(req, 403, "signature check not configured");
			goto out;
		}
		if ((sig = http_req_header(req, "X-Twilio-Signature")) == NULL) {
			d->wh.sig_missing++;
			http_reply_error(req, 400, "missing X-Twilio-Signature");
			goto out;
		}
		signed_url(c, req, url, sizeof(url));
		if (!twsig_valid(tokens, 2, url, &f, sig)) {
			d->wh.sig_invalid++;
			log_warnx(
			    "webhook: signature mismatch, request refused (check CRMBRIDGE_PUBLIC_URL matches the "
			    "URL configured in Twilio)");
			http_reply_error(req, 403, "invalid signature");
			goto out;
		}
	}
	from = form_get(&f, "From");
	sid = form_get(&f, "MessageSid");
	idem = http_req_header(req, "I-Twilio-Idempotency-Token");
	if (!webhook_valid_from(from)) {
		d->wh.bad_request++;
		http_reply_error(req, 400, "From must be whatsapp:+<E.164 number>");
		goto out;
	}
	if (!webhook_valid_sid(sid)) {
		d->wh.bad_request++;
		http_reply_error(req, 400, "MessageSid missing or malformed");
		goto out;
	}
	if (idem != NULL && !valid_token(idem)) {
		d->wh.bad_request++;
		http_reply_error(req, 400, "malformed I-Twilio-Idempotency-Token");
		goto out;
	}
	if (!has_content(&f)) {
		d->wh.bad_request++;
		http_reply_error(req, 400, "message has no body, media, location, button or contacts");
		goto out;
	}
	if (d->intake == NULL) {
		d->wh.failed++;
		http_reply_error(req, 503, "intake not ready");
		goto out;
	}
	m.sid = sid;
	m.from = from;
	m.idem = idem;
	m.body = body;
	m.len = len;
	m.received_ms = realtime_usec() / 1000;
	intake_submit(d->intake, &m, on_stored, req);
out:
	form_clear(&f);
}
