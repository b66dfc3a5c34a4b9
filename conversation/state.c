/*
 * Conversation state documents. Version 1:
 *   {"v":1, "phone":"+57...", "stage":"gathering_info", "created_ms":..., "updated_ms":...,
 *    "fields":{"name":{"value":"María","sid":"SM...","at_ms":...}, ...},
 *    "history":[{"dir":"in","text":"...","t_ms":...,"sid":"SM..."}, ...],
 *    "lead_id":12|null, "quality":[{"q":"warm","t_ms":...}], "counters":{"in":3,"out":3,"turns":3},
 *    "last_inbound_ms":..., "lead_pending":false, "lead_confirmed":true (the confirmation was sent)}
 * The inbox (#22) adds: a history entry's "c":true (it is on the lead's chatter), "by" and "odoo" (a
 * salesperson's message from the chatter: her name, the mail.message id); "held" (her messages kept for the
 * 24-hour window: [{"id","lead","text","t_ms"}]); "handoff_ms" (the bot handed over, no person has answered
 * yet); "context_from_ms" (handed back to the bot: the classifier reads the history from there).
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "state.h"

const char *const conv_stages[] = {
    "new", "contacted", "gathering_info", "qualified", "lead_created", "support", "human", "opted_out", NULL};

json_t *
conv_state_new(const char *phone, uint64_t now_ms)
{
	return json_pack("{s:i, s:s, s:s, s:I, s:I, s:{}, s:[], s:n, s:[], s:{s:i, s:i, s:i}, s:I, s:b}", "v", 1,
	    "phone", phone, "stage", "new", "created_ms", (json_int_t)now_ms, "updated_ms", (json_int_t)now_ms,
	    "fields", "history", "lead_id", "quality", "counters", "in", 0, "out", 0, "turns", 0, "last_inbound_ms",
	    (json_int_t)0, "lead_pending", 0);
}

json_t *
conv_state_parse(const char *text, size_t len, const char **why)
{
	json_t *st = json_loadb(text, len, 0, NULL);

	if (st == NULL || !json_is_object(st)) {
		*why = "not a JSON object";
	} else if (json_integer_value(json_object_get(st, "v")) != 1) {
		*why = "an unknown version";
	} else if (!json_is_string(json_object_get(st, "phone")) || !json_is_string(json_object_get(st, "stage")) ||
	    !json_is_object(json_object_get(st, "fields")) || !json_is_array(json_object_get(st, "history")) ||
	    !json_is_object(json_object_get(st, "counters"))) {
		*why = "missing keys";
	} else {
		return st;
	}
	json_decref(st);
	return NULL;
}

void
conv_state_add(json_t *st, const char *dir, const char *text, uint64_t t_ms, const char *sid, unsigned cap)
{
	json_t *h = json_object_get(st, "history");

	json_array_append_new(
	    h, json_pack("{s:s, s:s, s:I, s:s?}", "dir", dir, "text", text, "t_ms", (json_int_t)t_ms, "sid", sid));
	while (json_array_size(h) > cap)
		json_array_remove(h, 0);
}

void
conv_state_insert(json_t *st, const char *dir, const char *text, uint64_t t_ms, const char *sid, unsigned cap)
{
	json_t *h = json_object_get(st, "history");
	size_t at = json_array_size(h);

	while (at > 0 && (uint64_t)json_integer_value(json_object_get(json_array_get(h, at - 1), "t_ms")) > t_ms)
		at--;
	json_array_insert_new(
	    h, at, json_pack("{s:s, s:s, s:I, s:s?}", "dir", dir, "text", text, "t_ms", (json_int_t)t_ms, "sid", sid));
	while (json_array_size(h) > cap)
		json_array_remove(h, 0);
}

int
conv_state_merge(json_t *st, const struct analysis *a, const char *sid, uint64_t now_ms)
{
	json_t *fields = json_object_get(st, "fields");
	int i, changed = 0;

	for (i = 0; i < F_COUNT; i++) {
		const char *old, *v = a->fields[i];
		if (v == NULL)
			continue; /* a known field is never lost */
		old = json_string_value(json_object_get(json_object_get(fields, field_name((enum field)i)), "value"));
		if (old != NULL && (strcmp(old, v) == 0 || text_vaguer(v, old)))
			continue; /* "sofás" after "sofá de 3 puestos" says less: the more specific one stays */
		json_object_set_new(fields, field_name((enum field)i),
		    json_pack("{s:s, s:s?, s:I}", "value", v, "sid", sid, "at_ms", (json_int_t)now_ms));
		changed++;
	}
	json_array_append_new(json_object_get(st, "quality"),
	    json_pack("{s:s, s:f, s:I}", "q", quality_name(a->quality), "confidence", a->confidence, "t_ms",
	        (json_int_t)now_ms));
	while (json_array_size(json_object_get(st, "quality")) > 20)
		json_array_remove(json_object_get(st, "quality"), 0);
	return changed;
}

void
conv_state_conversation(const json_t *st, unsigned n, struct conversation *c)
{
	json_t *h = json_object_get(st, "history"), *e;
	size_t i, from;
	int f;

	json_int_t since = json_integer_value(json_object_get(st, "context_from_ms"));

	conversation_clear(c);
	from = json_array_size(h) > n ? json_array_size(h) - n : 0;
	for (i = from; i < json_array_size(h); i++) {
		e = json_array_get(h, i);
		/* Handed back to the bot after a person: what was said before is the person's business. */
		if (json_integer_value(json_object_get(e, "t_ms")) < since)
			continue;
		conversation_add(c, strcmp(json_string_value(json_object_get(e, "dir")) ?: "in", "in") == 0,
		    json_string_value(json_object_get(e, "text")) ?: "");
	}
	for (f = 0; f < F_COUNT; f++) {
		const char *v = conv_state_field(st, (enum field)f);
		if (v != NULL)
			c->known[f] = strdup(v);
	}
}

const char *
conv_state_stage(const json_t *st)
{
	return json_string_value(json_object_get(st, "stage")) ?: "new";
}

void
conv_state_set_stage(json_t *st, const char *stage)
{
	json_object_set_new(st, "stage", json_string(stage));
}

const char *
conv_state_field(const json_t *st, enum field f)
{
	return json_string_value(
	    json_object_get(json_object_get(json_object_get(st, "fields"), field_name(f)), "value"));
}

void
conv_state_count(json_t *st, const char *name, json_int_t n)
{
	json_t *c = json_object_get(st, "counters");

	json_object_set_new(c, name, json_integer(json_integer_value(json_object_get(c, name)) + n));
}

int
conv_phone_param(const char *in, char out[17])
{
	const char *p = in;
	size_t n = 0;

	if (strncmp(p, "whatsapp:", 9) == 0)
		p += 9;
	if (*p == '+')
		p++;
	for (const char *q = p; *q != '\0'; q++, n++)
		if (!isdigit((unsigned char)*q))
			return -1;
	if (n < 7 || n > 15 || *p == '0')
		return -1;
	snprintf(out, 17, "+%s", p);
	return 0;
}

size_t
conv_state_prune(json_t *st, uint64_t now_ms, uint64_t retention_ms)
{
	json_t *h = json_object_get(st, "history");
	size_t i = 0, dropped = 0;

	if (retention_ms == 0 || !json_is_array(h) || now_ms < retention_ms)
		return 0;
	while (i < json_array_size(h)) {
		json_int_t t = json_integer_value(json_object_get(json_array_get(h, i), "t_ms"));
		if (t > 0 && (uint64_t)t < now_ms - retention_ms) {
			json_array_remove(h, i);
			dropped++;
		} else {
			i++;
		}
	}
	return dropped;
}
