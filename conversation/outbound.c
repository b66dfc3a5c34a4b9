/*
 * Outbound rules over the conversation state (see outbound.h).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/template.h"
#include "common/xmalloc.h"
#include "outbound.h"
#include "state.h"

uint64_t
outbound_window_closes(const json_t *st, uint64_t margin_ms)
{
	json_int_t last = json_integer_value(json_object_get(st, "last_inbound_ms"));

	if (last <= 0)
		return 0;
	return (uint64_t)last + OUTBOUND_WINDOW_MS - (margin_ms < OUTBOUND_WINDOW_MS ? margin_ms : OUTBOUND_WINDOW_MS);
}

bool
outbound_window_open(const json_t *st, uint64_t now_ms, uint64_t margin_ms, uint64_t closed_ms)
{
	json_int_t last = json_integer_value(json_object_get(st, "last_inbound_ms"));

	if (last <= 0)
		return false; /* the customer never wrote: only a template may open the conversation */
	if (closed_ms > 0 && closed_ms >= (uint64_t)last)
		return false; /* Twilio said so (63016), whatever our clock thinks */
	return now_ms < outbound_window_closes(st, margin_ms);
}

static const char *
lookup(const json_t *st, const json_t *src, const char *name)
{
	const char *v;
	int f;

	if (src != NULL && (v = json_string_value(json_object_get(src, name))) != NULL && *v != '\0')
		return v;
	if ((f = field_from_name(name)) >= 0 && (v = conv_state_field(st, (enum field)f)) != NULL)
		return v;
	if (strcmp(name, "contact_name") == 0 && (v = conv_state_field(st, F_NAME)) != NULL)
		return v;
	if (strcmp(name, "profile") == 0 || strcmp(name, "name") == 0 || strcmp(name, "client_name") == 0) {
		if ((v = json_string_value(json_object_get(json_object_get(st, "call"), "client_name"))) != NULL && *v)
			return v;
		if ((v = json_string_value(json_object_get(st, "profile"))) != NULL && *v != '\0')
			return v;
	}
	if (strcmp(name, "phone") == 0)
		return json_string_value(json_object_get(st, "phone"));
	return NULL;
}

char *
outbound_template_vars(const json_t *st, const json_t *src, const char *mapping, char missing[32])
{
	char *buf = xstrdup(mapping), *save = NULL, *tok, *out;
	json_t *vars = json_object();

	missing[0] = '\0';
	for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		const char *v;
		while (*tok == ' ')
			tok++;
		if (eq == NULL)
			continue;
		*eq = '\0';
		if ((v = lookup(st, src, eq + 1)) == NULL) {
			snprintf(missing, 32, "%.15s=%.14s", tok, eq + 1);
			json_decref(vars);
			free(buf);
			return NULL;
		}
		json_object_set_new(vars, tok, json_string(v));
	}
	out = json_dumps(vars, JSON_COMPACT);
	json_decref(vars);
	free(buf);
	return out;
}

char *
outbound_template_text(char *rendered, const char *sid, const char *vars)
{
	char *text;

	if (rendered != NULL)
		xasprintf(&text, "[WhatsApp template] %s", rendered);
	else
		xasprintf(&text, "[WhatsApp template %s %s]", sid, vars != NULL ? vars : "{}");
	free(rendered);
	return text;
}

void
outbound_merge_call(json_t *st, const json_t *call, unsigned history_cap)
{
	const char *rid = json_string_value(json_object_get(call, "recipient_id"));
	const char *agent = json_string_value(json_object_get(call, "agent_name"));
	const char *client = json_string_value(json_object_get(call, "client_name"));
	const char *msg = json_string_value(json_object_get(call, "message")); /* the template's text, if known */
	json_t *h = json_object_get(st, "history"), *e;
	char sid[96], *text;
	size_t i;
	bool seen = false;

	if (!json_is_object(call) || rid == NULL)
		return;
	json_object_set(st, "call", (json_t *)(uintptr_t)call);
	snprintf(sid, sizeof(sid), "call:%.80s", rid);
	json_array_foreach(h, i, e)
	{
		const char *s = json_string_value(json_object_get(e, "sid"));
		seen |= s != NULL && strcmp(s, sid) == 0;
	}
	if (!seen) {
		xasprintf(&text, "[WhatsApp template sent after a phone call%s%s]%s%s", agent ? " with " : "",
		    agent ? agent : "", msg != NULL ? " " : "", msg != NULL ? msg : "");
		conv_state_insert(
		    st, "out", text, (uint64_t)json_integer_value(json_object_get(call, "at_ms")), sid, history_cap);
		free(text);
	}
	if (client != NULL && *client != '\0' && conv_state_field(st, F_NAME) == NULL)
		json_object_set_new(json_object_get(st, "fields"), field_name(F_NAME),
		    json_pack("{s:s, s:s, s:O}", "value", client, "sid", sid, "at_ms", json_object_get(call, "at_ms")));
	if (strcmp(conv_state_stage(st), "new") == 0)
		conv_state_set_stage(st, "contacted");
}

char *
outbound_call_context(const json_t *st)
{
	const json_t *call = json_object_get(st, "call"), *v;
	const char *k;
	char *out, *n;

	if (!json_is_object(call))
		return NULL;
	xasprintf(&out, "this chat follows a phone call from our side (agent: %s; campaign: %s; call status: %s)",
	    json_string_value(json_object_get(call, "agent_name")) ?: "?",
	    json_string_value(json_object_get(call, "batch_name")) ?: "?",
	    json_string_value(json_object_get(call, "status")) ?: "?");
	if (json_string_value(json_object_get(call, "client_name")) != NULL) {
		xasprintf(&n, "%s; client: %s", out, json_string_value(json_object_get(call, "client_name")));
		free(out);
		out = n;
	}
	json_object_foreach((json_t *)(uintptr_t)json_object_get(call, "variables"), k, v)
	{
		char val[128];
		if (json_is_string(v))
			snprintf(val, sizeof(val), "%.120s", json_string_value(v));
		else if (json_is_number(v))
			snprintf(val, sizeof(val), "%g", json_number_value(v));
		else if (json_is_boolean(v))
			snprintf(val, sizeof(val), "%s", json_is_true(v) ? "yes" : "no");
		else
			continue;
		xasprintf(&n, "%s; %.60s: %s", out, k, val);
		free(out);
		out = n;
	}
	return out;
}

bool
outbound_followup_eligible(const json_t *st)
{
	const char *stage = conv_state_stage(st);
	json_t *q = json_object_get(st, "quality"), *h = json_object_get(st, "history");
	const char *last_q = json_string_value(json_object_get(json_array_get(q, json_array_size(q) - 1), "q"));
	const char *last_dir = json_string_value(json_object_get(json_array_get(h, json_array_size(h) - 1), "dir"));

	if (json_is_true(json_object_get(st, "opted_out")))
		return false;
	if (strcmp(stage, "new") != 0 && strcmp(stage, "gathering_info") != 0 && strcmp(stage, "contacted") != 0)
		return false;
	return last_q != NULL && strcmp(last_q, "warm") == 0 && last_dir != NULL && strcmp(last_dir, "out") == 0;
}

const char *
outbound_lang(const struct lexicon *lx, const json_t *st)
{
	const char *l = json_string_value(json_object_get(st, "lang"));

	return l != NULL && strlen(l) == 2 ? l : lx->default_lang;
}

char *
outbound_followup_text(const struct lexicon *lx, const json_t *st, unsigned n)
{
	const char *t = lexicon_question(lx, outbound_lang(lx, st), QK_FOLLOWUP, (int)(n % 2));
	const char *q = json_string_value(json_object_get(st, "last_question"));
	const char *keys[] = {"question"}, *vals[1];
	char *out;
	size_t len;

	if (t == NULL)
		return NULL;
	vals[0] = q != NULL ? q : "";
	out = template_expand(t, keys, vals, 1);
	/* Without a question to repeat, no dangling space. */
	len = strlen(out);
	while (len > 0 && out[len - 1] == ' ')
		out[--len] = '\0';
	return out;
}
