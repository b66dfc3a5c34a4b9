/*
 * WhatsApp templates' text (twilio/content.c): which text of a Content API
 * resource is the message, {{placeholders}} filled from ContentVariables
 * and the template's defaults, and the history's line for a template.
 */
#include "config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "conversation/outbound.h"
#include "twilio/content.h"
#include "tests/tap.h"

static void
test_body(void)
{
	json_t *r;

	r = json_loads("{\"sid\":\"HX1\",\"types\":{\"twilio/text\":{\"body\":\"Hola {{1}}\"}}}", 0, NULL);
	is_str(content_body(r), "Hola {{1}}", "twilio/text: its body");
	json_decref(r);
	r = json_loads("{\"types\":{\"twilio/quick-reply\":{\"body\":\"¿Seguimos, {{1}}?\",\"actions\":[{\"title\":"
	               "\"Sí\",\"id\":\"yes\"}]},\"twilio/text\":{\"body\":\"¿Seguimos?\"}}}",
	    0, NULL);
	is_str(content_body(r), "¿Seguimos?", "several types: twilio/text first (the fallback a channel shows)");
	json_decref(r);
	r = json_loads(
	    "{\"types\":{\"twilio/call-to-action\":{\"body\":\"Reserve su visita\",\"actions\":[]}}}", 0, NULL);
	is_str(content_body(r), "Reserve su visita", "a call-to-action: its body");
	json_decref(r);
	r = json_loads("{\"types\":{\"twilio/card\":{\"title\":\"Nuevo catálogo\",\"subtitle\":null}}}", 0, NULL);
	is_str(content_body(r), "Nuevo catálogo", "a card: its title");
	json_decref(r);
	r = json_loads("{\"types\":{\"whatsapp/authentication\":{\"add_security_recommendation\":true}}}", 0, NULL);
	ok(content_body(r) == NULL, "a type without text: nothing");
	json_decref(r);
	ok(content_body(NULL) == NULL, "no resource: nothing");
}

static void
test_render(void)
{
	json_t *vars = json_pack("{s:s, s:s, s:s}", "1", "María", "2", "sofá", "name", "Ana"), *defs;
	char *s;

	defs = json_pack("{s:s, s:s}", "1", "Cliente", "3", "mañana");
	s = content_render_text("Hola {{1}}, ¿sigues buscando un {{2}}?", vars, defs);
	is_str(s, "Hola María, ¿sigues buscando un sofá?", "numbered variables from ContentVariables");
	free(s);
	s = content_render_text("Hola {{1}}, te llamamos {{3}}", NULL, defs);
	is_str(s, "Hola Cliente, te llamamos mañana", "no variables sent: the template's defaults");
	free(s);
	s = content_render_text("Hola {{ 1 }} y {{name}}", vars, NULL);
	is_str(s, "Hola María y Ana", "spaces inside the braces, named variables");
	free(s);
	s = content_render_text("Hola {{9}}, {{}} y {{1", vars, defs);
	is_str(s, "Hola {{9}}, {{}} y {{1", "unknown, empty and unclosed placeholders stay as written");
	free(s);
	s = content_render_text("", vars, defs);
	is_str(s, "", "an empty body");
	free(s);
	{
		json_t *big = json_pack("{s:s}", "1", "x");
		char body[4096];
		size_t i;
		for (i = 0; i + 5 < sizeof(body); i += 5)
			memcpy(body + i, "{{1}}", 5);
		body[i] = '\0';
		s = content_render_text(body, big, NULL);
		ok(strlen(s) == i / 5 && strspn(s, "x") == i / 5, "many placeholders: each replaced (%zu)", strlen(s));
		free(s);
		json_decref(big);
	}
	json_decref(vars);
	json_decref(defs);
	ok(content_render(NULL, "HX1", "{}") == NULL, "no cache: not known");
}

static void
test_history_line(void)
{
	char *s = outbound_template_text(strdup("Hola María, ¿seguimos?"), "HX1", "{\"1\":\"María\"}");

	is_str(s, "[WhatsApp template] Hola María, ¿seguimos?", "known text: the history shows what was sent");
	free(s);
	s = outbound_template_text(NULL, "HX1", "{\"1\":\"María\"}");
	is_str(s, "[WhatsApp template HX1 {\"1\":\"María\"}]", "unknown text: the SID and the variables");
	free(s);
}

static void
test_call_line(void)
{
	json_t *st =
	    json_loads("{\"phone\":\"+573001112233\",\"stage\":\"new\",\"history\":[],\"fields\":{}}", 0, NULL);
	json_t *call = json_pack("{s:s, s:s, s:s, s:i, s:s}", "recipient_id", "rcp_9", "agent_name", "Laura",
	    "client_name", "María", "at_ms", 1000, "message", "Hola María, gracias por la llamada.");
	const char *text;

	outbound_merge_call(st, call, 50);
	text = json_string_value(json_object_get(json_array_get(json_object_get(st, "history"), 0), "text"));
	is_str(text, "[WhatsApp template sent after a phone call with Laura] Hola María, gracias por la llamada.",
	    "after a call: the agent and the text the customer received");
	json_decref(call);
	json_decref(st);
}

int
main(void)
{
	test_body();
	test_render();
	test_history_line();
	test_call_line();
	return done_testing();
}
