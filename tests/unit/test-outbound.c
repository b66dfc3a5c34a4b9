/* Tests for conversation/outbound.c and the lexicon's opt words: the rules of what may go out, and when. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "classifier/lexicon.h"
#include "conversation/outbound.h"
#include "conversation/state.h"
#include "tests/tap.h"

#define H (3600ULL * 1000)

static void
test_window(void)
{
	json_t *st = conv_state_new("+573001112233", 1000);
	uint64_t t0 = 1763800000000ULL;

	ok(!outbound_window_open(st, t0, H, 0), "no customer message: closed (only a template may start)");
	json_object_set_new(st, "last_inbound_ms", json_integer((json_int_t)t0));
	ok(outbound_window_open(st, t0 + 1000, H, 0), "right after the customer wrote: open");
	ok(outbound_window_open(st, t0 + 23 * H - 1, H, 0), "23 h minus 1 ms later, 1 h margin: open");
	ok(!outbound_window_open(st, t0 + 23 * H, H, 0), "23 h later with a 1 h margin: closed");
	ok(outbound_window_open(st, t0 + 23 * H + 30 * 60000, 0, 0), "23.5 h without a margin: open");
	ok(!outbound_window_open(st, t0 + 24 * H, 0, 0), "24 h: closed");
	is_int((long long)outbound_window_closes(st, H), (long long)(t0 + 23 * H), "closes at 24 h minus the margin");
	ok(!outbound_window_open(st, t0 + 1000, H, t0 + 500), "Twilio's 63016 after the last message closes it");
	ok(outbound_window_open(st, t0 + 1000, H, t0 - 500), "a 63016 before the last message does not");
	json_decref(st);
}

static void
test_vars(void)
{
	json_t *st = conv_state_new("+573001112233", 1000), *src = json_pack("{s:s}", "client_name", "Ana");
	char missing[32], *v;

	v = outbound_template_vars(st, src, "1=client_name,2=phone", missing);
	is_str(v, "{\"1\":\"Ana\",\"2\":\"+573001112233\"}", "variables from the payload and the conversation");
	free(v);
	v = outbound_template_vars(st, NULL, "1=name", missing);
	ok(v == NULL && strcmp(missing, "1=name") == 0, "an unknown value is an error naming the slot (%s)", missing);
	free(v);
	json_object_set_new(st, "profile", json_string("Cliente WA"));
	v = outbound_template_vars(st, NULL, "1=name", missing);
	is_str(v, "{\"1\":\"Cliente WA\"}", "name falls back to the WhatsApp profile name");
	free(v);
	json_object_set_new(json_object_get(st, "fields"), "name", json_pack("{s:s}", "value", "María"));
	v = outbound_template_vars(st, NULL, "1=name", missing);
	is_str(v, "{\"1\":\"María\"}", "a name the customer gave wins");
	free(v);
	json_decref(src);
	json_decref(st);
}

static void
test_call(void)
{
	json_t *st = conv_state_new("+573001112233", 1000);
	json_t *call = json_pack("{s:s, s:s, s:s, s:s, s:I, s:{s:s, s:i}}", "recipient_id", "r1", "agent_name", "Laura",
	    "client_name", "María", "status", "completed", "at_ms", (json_int_t)5000, "variables", "interes", "sofá",
	    "presupuesto", 2000);
	char *ctx;

	outbound_merge_call(st, call, 50);
	outbound_merge_call(st, call, 50);
	is_int((long long)json_array_size(json_object_get(st, "history")), 1, "merged twice: one history entry");
	is_str(conv_state_field(st, F_NAME), "María", "the client's name becomes the name");
	is_str(conv_state_stage(st), "contacted", "stage contacted");
	ctx = outbound_call_context(st);
	ok(ctx != NULL && strstr(ctx, "Laura") && strstr(ctx, "interes: sofá") && strstr(ctx, "presupuesto: 2000"),
	    "the classifier's context names the agent and the call's variables: %s", ctx ? ctx : "(null)");
	free(ctx);
	json_decref(call);
	json_decref(st);
}

static void
test_followups(void)
{
	char err[256], *t;
	struct lexicon *lx = lexicon_load(NULL, err, sizeof(err));
	json_t *st = conv_state_new("+573001112233", 1000);

	conv_state_add(st, "in", "busco un sofá", 1, "SM1", 50);
	conv_state_add(st, "out", "¿Con quién tengo el gusto?", 2, NULL, 50);
	json_array_append_new(json_object_get(st, "quality"), json_pack("{s:s}", "q", "warm"));
	json_object_set_new(st, "last_question", json_string("¿Con quién tengo el gusto?"));
	ok(outbound_followup_eligible(st), "warm, waiting for an answer: eligible");
	t = outbound_followup_text(lx, st, 0);
	ok(t != NULL && strstr(t, "¿Con quién tengo el gusto?") != NULL, "the follow-up repeats the question: %s", t);
	free(t);
	json_object_set_new(st, "lang", json_string("en"));
	t = outbound_followup_text(lx, st, 1);
	ok(t != NULL && strncmp(t, "Are you still interested?", 25) == 0, "in the conversation's language: %s", t);
	free(t);
	conv_state_add(st, "in", "María", 3, "SM2", 50);
	ok(!outbound_followup_eligible(st), "the customer answered: not eligible");
	conv_state_add(st, "out", "¿Presupuesto?", 4, NULL, 50);
	json_object_set_new(st, "opted_out", json_true());
	ok(!outbound_followup_eligible(st), "opted out: not eligible");
	json_object_set_new(st, "opted_out", json_false());
	conv_state_set_stage(st, "lead_created");
	ok(!outbound_followup_eligible(st), "lead created: not eligible");
	conv_state_set_stage(st, "gathering_info");
	json_array_append_new(json_object_get(st, "quality"), json_pack("{s:s}", "q", "cold"));
	ok(!outbound_followup_eligible(st), "cold: not eligible");
	json_decref(st);
	lexicon_free(lx);
}

static void
test_opt_words(void)
{
	char err[256], lang[3];
	struct lexicon *lx = lexicon_load(NULL, err, sizeof(err));

	is_int(lexicon_opt_word(lx, "STOP", lang), 1, "STOP opts out");
	is_str(lang, "en", "... an English word");
	is_int(lexicon_opt_word(lx, "  Baja. ", lang), 1, "' Baja. ' opts out (case, spaces, punctuation)");
	is_str(lang, "es", "... a Spanish word");
	is_int(lexicon_opt_word(lx, "cancelar!!", lang), 1, "cancelar!! opts out");
	is_int(lexicon_opt_word(lx, "START", lang), -1, "START opts back in");
	is_int(lexicon_opt_word(lx, "Alta", lang), -1, "Alta opts back in");
	is_int(lexicon_opt_word(lx, "quiero dar de baja mi pedido", lang), 0, "a sentence with baja is not an opt-out");
	is_int(lexicon_opt_word(lx, "stop the delivery please", lang), 0, "a sentence with stop is not either");
	is_int(lexicon_opt_word(lx, "", lang), 0, "an empty message is nothing");
	lexicon_free(lx);
}

int
main(void)
{
	test_window();
	test_vars();
	test_call();
	test_followups();
	test_opt_words();
	return done_testing();
}
