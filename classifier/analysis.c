/* Names, memory and JSON for the classifier's types. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "common/xmalloc.h"

static const char *const quality_names[] = {"cold", "warm", "hot"};
static const char *const intent_names[] = {"sales", "support", "other"};
static const char *const action_names[] = {"create_lead", "ask_clarifying_question", "request_contact_info",
    "ask_about_interest", "transfer_to_support", "gather_more_details"};
static const char *const field_names[] = {
    "name", "email", "phone", "city", "product_interest", "budget_range", "urgency", "specific_need"};

#define N(a) (int)(sizeof(a) / sizeof(a[0]))

static int
lookup(const char *const *names, int n, const char *s)
{
	int i;

	for (i = 0; s != NULL && i < n; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}

const char *
quality_name(enum quality q)
{
	return (int)q < N(quality_names) ? quality_names[q] : "cold";
}

const char *
intent_name(enum intent i)
{
	return (int)i < N(intent_names) ? intent_names[i] : "other";
}

const char *
action_name(enum action a)
{
	return (int)a < N(action_names) ? action_names[a] : "ask_clarifying_question";
}

const char *
field_name(enum field f)
{
	return (int)f < N(field_names) ? field_names[f] : "?";
}

int
quality_from_name(const char *s)
{
	return lookup(quality_names, N(quality_names), s);
}

int
intent_from_name(const char *s)
{
	return lookup(intent_names, N(intent_names), s);
}

int
action_from_name(const char *s)
{
	return lookup(action_names, N(action_names), s);
}

int
field_from_name(const char *s)
{
	return lookup(field_names, N(field_names), s);
}

void
analysis_set(struct analysis *a, enum field f, const char *v)
{
	free(a->fields[f]);
	a->fields[f] = v != NULL ? xstrdup(v) : NULL;
}

void
analysis_copy(struct analysis *dst, const struct analysis *src)
{
	int i;

	*dst = *src;
	for (i = 0; i < F_COUNT; i++)
		dst->fields[i] = src->fields[i] != NULL ? xstrdup(src->fields[i]) : NULL;
	dst->reply = src->reply != NULL ? xstrdup(src->reply) : NULL;
	dst->reasoning = src->reasoning != NULL ? xstrdup(src->reasoning) : NULL;
	dst->transcript = src->transcript != NULL ? xstrdup(src->transcript) : NULL;
	dst->fact = src->fact != NULL ? xstrdup(src->fact) : NULL;
}

void
analysis_clear(struct analysis *a)
{
	int i;

	for (i = 0; i < F_COUNT; i++)
		free(a->fields[i]);
	free(a->reply);
	free(a->reasoning);
	free(a->transcript);
	free(a->fact);
	memset(a, 0, sizeof(*a));
}

json_t *
analysis_to_json(const struct analysis *a)
{
	json_t *fields = json_object(), *missing = json_array();
	int i;

	for (i = 0; i < F_COUNT; i++) {
		if (a->fields[i] != NULL)
			json_object_set_new(fields, field_names[i], json_string(a->fields[i]));
		if (a->missing & (1u << i))
			json_array_append_new(missing, json_string(field_names[i]));
	}
	return json_pack("{s:s, s:i, s:f, s:s, s:s, s:f, s:s, s:o, s:o, s:s, s:s, s:s, s:s, s:i, s:b}", "quality",
	    quality_name(a->quality), "score", a->score, "confidence", a->confidence, "intent", intent_name(a->intent),
	    "reason", a->reason, "sentiment", a->sentiment, "action", action_name(a->action), "fields", fields,
	    "missing", missing, "reply", a->reply != NULL ? a->reply : "", "language", a->lang, "reasoning",
	    a->reasoning != NULL ? a->reasoning : "", "source", a->source != NULL ? a->source : "rules",
	    "invented_dropped", (int)a->invented, "manipulation", a->manipulation);
}

void
conversation_add(struct conversation *c, bool user, const char *text)
{
	c->msg = xreallocarray(c->msg, c->n + 1, sizeof(*c->msg));
	c->msg[c->n].user = user;
	c->msg[c->n].text = xstrdup(text);
	c->n++;
}

void
conversation_clear(struct conversation *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		free(c->msg[i].text);
	free(c->msg);
	for (i = 0; i < F_COUNT; i++)
		free(c->known[i]);
	free(c->context);
	memset(c, 0, sizeof(*c));
}

int
conversation_from_json(json_t *doc, struct conversation *c, const char **why)
{
	json_t *msgs = json_object_get(doc, "messages"), *m, *lang = json_object_get(doc, "language");
	size_t i;

	memset(c, 0, sizeof(*c));
	if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
		*why = "\"messages\" must be a non-empty array";
		return -1;
	}
	json_array_foreach(msgs, i, m)
	{
		const char *from = json_string_value(json_object_get(m, "from"));
		const char *text = json_string_value(json_object_get(m, "text"));

		if (from == NULL || text == NULL || (strcmp(from, "user") != 0 && strcmp(from, "bot") != 0)) {
			*why = "each message needs \"from\" (user or bot) and \"text\"";
			conversation_clear(c);
			return -1;
		}
		conversation_add(c, strcmp(from, "user") == 0, text);
	}
	(void)lang; /* the case's language is what detection must find, not a hint */
	return 0;
}
