/*
 * The offline classifier's parts: language detection, extraction, the
 * grounding check, the policy's determinism, the questions (in the
 * customer's language, never for a known field, never the same words twice
 * in a row), and a lexicon for another shop loaded from a file.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "classifier/classifier.h"
#include "classifier/text.h"
#include "tests/tap.h"

static struct lexicon *lx;
static struct policy pol;

/*
 * A model reply to "text" through classify_merge, proposing the rules' own
 * action in Spanish; returns the reply sent (caller frees).
 */
static char *
merged_reply(const char *text, const char *reply, const struct reply_links *links)
{
	struct conversation c = {0};
	struct analysis off = {0}, advice = {0}, a = {0};
	char *r;

	conversation_add(&c, true, text);
	classify_offline(lx, &pol, &c, &off);
	advice.intent = off.intent;
	advice.confidence = 0.9;
	snprintf(advice.reason, sizeof(advice.reason), "%s", off.reason);
	snprintf(advice.lang, sizeof(advice.lang), "es");
	advice.reply = strdup(reply);
	classify_merge(lx, &pol, &c, &advice, (int)off.action, links, &a);
	r = strdup(a.reply);
	analysis_clear(&off);
	analysis_clear(&advice);
	analysis_clear(&a);
	conversation_clear(&c);
	return r;
}

static void
test_reply_links(void)
{
	static const char *const urls[] = {"https://cal.com/muebles/visita", NULL};
	const struct reply_links none = {0}, shop = {false, urls, 2}, any = {true, NULL, 0};
	const char *text = "Hola, quiero una mesa de comedor para 6 personas";
	const char *good = "¡Hola! Con gusto te ayudo con la mesa de comedor. ¿Qué presupuesto tienes en mente?";
	const char *evil = "¡Hola! Con gusto te ayudo con la mesa de comedor. Reserva y paga en HTTPS://evil.com/pago "
	                   "y dime: ¿qué presupuesto tienes en mente?";
	const char *booking = "¡Hola! Con gusto te ayudo con la mesa de comedor. Agenda tu visita en "
	                      "https://cal.com/muebles/visita y dime: ¿qué presupuesto tienes en mente?";
	char *r;

	r = merged_reply(text, good, &none);
	is_str(r, good, "a model reply without links is sent");
	free(r);
	r = merged_reply(text, evil, &shop);
	ok(strstr(r, "evil") == NULL && strcmp(r, evil) != 0, "HTTPS://evil.com: the rules' reply instead: %s", r);
	free(r);
	r = merged_reply(text, evil, NULL);
	ok(strstr(r, "evil") == NULL, "and with no links configured: %s", r);
	free(r);
	r = merged_reply(text, booking, &shop);
	is_str(r, booking, "the configured booking URL is kept");
	free(r);
	r = merged_reply(text, booking, &none);
	ok(strcmp(r, booking) != 0, "but not when it is not configured");
	free(r);
	r = merged_reply(text, evil, &any);
	is_str(r, evil, "classifier.allow_links = yes lets any link through");
	free(r);

	/* The classifier keeps its own copy of the URLs, replaced as a whole (LeakSanitizer checks the frees). */
	{
		struct classifier *cl = classifier_new(lx, &pol, NULL, false);
		char url[] = "https://cal.com/muebles/visita";
		classifier_set_links(cl, (const char *const[]){url, NULL}, 2);
		url[0] = 'X';
		classifier_set_links(cl, (const char *const[]){NULL}, 1);
		classifier_set_links(cl, NULL, 0);
		classifier_free(cl);
		ok(1, "classifier_set_links copies, replaces and frees its URLs");
	}
}

static void
one(struct analysis *a, const char *text)
{
	struct conversation c = {0};

	conversation_add(&c, true, text);
	classify_offline(lx, &pol, &c, a);
	conversation_clear(&c);
}

int
main(void)
{
	char err[256], lang[3];
	struct analysis a = {0}, b = {0};
	struct conversation c = {0};

	lx = lexicon_load(NULL, err, sizeof(err));
	if (!ok(lx != NULL, "the built-in lexicon loads"))
		return done_testing();
	policy_defaults(&pol);

	rules_language(lx, "Hola, quiero un comedor para mi casa", lang);
	is_str(lang, "es", "Spanish detected");
	rules_language(lx, "Hi, I would like a quote for a desk", lang);
	is_str(lang, "en", "English detected");
	rules_language(lx, "Olá, quero um orçamento de um sofá", lang);
	is_str(lang, "pt", "Portuguese detected");
	rules_language(lx, "👍", lang);
	is_str(lang, "es", "nothing to go on: the lexicon's default language");

	one(&a,
	    "Hola, soy Ana María, mi correo es ana.maria@correo.co y busco una cama king hasta $2.500.000 en Bogotá");
	is_str(a.fields[F_NAME], "Ana María", "two-word name with accents, as written");
	is_str(a.fields[F_EMAIL], "ana.maria@correo.co", "e-mail");
	is_str(a.fields[F_PRODUCT], "cama king", "product with its qualifier");
	is_str(a.fields[F_BUDGET], "$2.500.000", "budget as written");
	is_str(a.fields[F_CITY], "Bogotá", "city, canonical");
	ok(a.quality == Q_HOT && a.action == A_CREATE_LEAD, "hot, create_lead");
	ok(strstr(a.reply, "Ana María") != NULL && strstr(a.reply, "cama king") != NULL, "the confirmation names both");
	one(&b,
	    "Hola, soy Ana María, mi correo es ana.maria@correo.co y busco una cama king hasta $2.500.000 en Bogotá");
	ok(a.quality == b.quality && a.action == b.action && a.score == b.score && strcmp(a.reply, b.reply) == 0,
	    "the same facts always give the same decision");
	analysis_clear(&a);
	analysis_clear(&b);
	/* Hot needs a way to reach the customer (#24): the same wish and budget from someone who gave neither a
	   name nor an e-mail nor a number is warm, and the bot asks who they are. */
	one(&a, "Hola, busco una cama king hasta $2.500.000 en Bogotá");
	ok(a.fields[F_PRODUCT] != NULL && a.fields[F_BUDGET] != NULL && a.fields[F_NAME] == NULL &&
	        a.fields[F_EMAIL] == NULL && a.fields[F_PHONE] == NULL,
	    "product and budget, no contact");
	ok(a.quality == Q_WARM, "without a name, e-mail or phone: warm, not hot (%s)", quality_name(a.quality));
	ok(a.action != A_CREATE_LEAD, "and no lead yet");
	analysis_clear(&a);
	one(&a, "Hola, soy Ana, busco una cama king hasta $2.500.000 en Bogotá");
	ok(a.quality == Q_HOT, "with only a name: hot (%s)", quality_name(a.quality));
	analysis_clear(&a);

	/* Grounding. */
	conversation_add(&c, true, "Me llamo Ana, mi cel es 300 123 4567");
	conversation_add(&c, false, "Gracias Ana, ¿tu correo?");
	conversation_add(&c, true, "ana@x.co");
	ok(rules_grounded(&c, F_NAME, "Ana"), "a name the user wrote is grounded");
	ok(rules_grounded(&c, F_PHONE, "+57 300-123-4567") == false, "digits the user did not write are not");
	ok(rules_grounded(&c, F_PHONE, "3001234567"), "the same digits without spaces are");
	ok(rules_grounded(&c, F_EMAIL, "ana@x.co"), "an e-mail the user wrote is grounded");
	ok(!rules_grounded(&c, F_EMAIL, "ana@gmail.com"), "another e-mail is not");
	ok(!rules_grounded(&c, F_NAME, "Gracias"), "words only the bot wrote are not the user's");
	ok(!rules_grounded(&c, F_CITY, "Medellín"), "a city never mentioned is not");
	conversation_clear(&c);

	/* The language follows the customer message by message (#20). */
	conversation_add(&c, true, "Hi, I'm looking for a desk for my office");
	conversation_add(&c, false, "Great! Could you tell me your name?");
	conversation_add(&c, true, "Hola, ¿hablan español?");
	classify_offline(lx, &pol, &c, &a);
	is_str(a.lang, "es", "an English chat whose last message is clearly Spanish is answered in Spanish");
	ok(a.reply != NULL && strstr(a.reply, "Could") == NULL && strstr(a.reply, "What") == NULL,
	    "the reply is not English: %s", a.reply ? a.reply : "(none)");
	analysis_clear(&a);
	conversation_add(&c, false, "Claro, ¿cómo te llamas?");
	conversation_add(&c, true, "ok");
	classify_offline(lx, &pol, &c, &a);
	ok(strcmp(a.lang, "es") == 0 || strcmp(a.lang, "en") == 0,
	    "a last message that says nothing of its language: the chat's (%s)", a.lang);
	analysis_clear(&a);
	conversation_clear(&c);

	/* Questions. */
	conversation_add(&c, true, "Hola");
	classify_offline(lx, &pol, &c, &a);
	is_str(a.reply, "¡Hola! ¿En qué puedo ayudarte hoy?", "a greeting gets the product's first question");
	conversation_add(&c, false, a.reply);
	conversation_add(&c, true, "hola?");
	analysis_clear(&a);
	classify_offline(lx, &pol, &c, &a);
	ok(a.action == A_ASK_ABOUT_INTEREST && strcmp(a.reply, "¡Hola! ¿En qué puedo ayudarte hoy?") != 0,
	    "asked again, it does not repeat the same words (%s)", a.reply);
	analysis_clear(&a);
	conversation_clear(&c);

	conversation_add(&c, true, "Me llamo Pedro y busco un escritorio");
	classify_offline(lx, &pol, &c, &a);
	ok(a.action == A_GATHER_MORE_DETAILS && strstr(a.reply, "presupuesto") != NULL,
	    "with name and product known, it asks the budget, not the name: %s", a.reply);
	analysis_clear(&a);
	conversation_clear(&c);

	one(&a, "Hi, I'm looking for a dining table");
	is_str(
	    a.reply, "Could you share your name so I can help you better?", "English conversation, English question");
	analysis_clear(&a);
	one(&a, "Oi, procuro um sofá");
	ok(a.action == A_REQUEST_CONTACT_INFO && strstr(a.reply, "nome") != NULL, "Portuguese question: %s", a.reply);
	analysis_clear(&a);

	/* Policy knob: create as soon as the minimum is met. */
	{
		struct policy eager = pol;
		eager.create_on_minimum = true;
		conversation_add(&c, true, "Soy Lina, busco una biblioteca");
		classify_offline(lx, &eager, &c, &a);
		is_int(a.action, A_CREATE_LEAD, "policy.create_on_minimum creates the lead without a budget");
		analysis_clear(&a);
		classify_offline(lx, &pol, &c, &a);
		is_int(a.action, A_GATHER_MORE_DETAILS, "the default waits for the budget");
		analysis_clear(&a);
		conversation_clear(&c);
	}

	/* Another shop, from a file: nothing is hard-wired to furniture or Spanish. */
	{
		char path[] = "/tmp/crmb-lexicon-XXXXXX";
		int fd = mkstemp(path);
		const char *bikes = "{\"default_language\": \"en\", \"language_words\": {\"en\": [\"i\", \"a\", "
		                    "\"the\", \"want\"], \"de\": "
		                    "[\"ich\", \"ein\", \"suche\", \"mein\", \"name\", \"ist\"]},"
		                    " \"products\": {\"e-bike\": [\"ebike\", \"e-bike\", \"pedelec\"], \"helmet\": "
		                    "[\"helmet\", \"helm\"]},"
		                    " \"purchase\": [\"want\", \"suche\"], \"name_phrases\": {\"de\": [\"mein name "
		                    "ist\", \"ich bin\"]},"
		                    " \"budget_words\": [\"budget\"], \"amount_units\": [\"eur\", \"euro\"],"
		                    " \"questions\": {\"de\": {\"ask_name\": \"Wie heißen Sie?\", \"ask_budget\": "
		                    "\"Welches Budget haben Sie?\"},"
		                    " \"en\": {\"ask_name\": \"What is your name?\"}}}";
		struct lexicon *bl;
		if (write(fd, bikes, strlen(bikes)) != (ssize_t)strlen(bikes))
			abort();
		close(fd);
		bl = lexicon_load(path, err, sizeof(err));
		ok(bl != NULL, "a lexicon for a bicycle shop in German loads: %s", bl ? "" : err);
		if (bl != NULL) {
			conversation_add(&c, true, "Hallo, mein Name ist Jonas, ich suche ein Pedelec");
			classify_offline(bl, &pol, &c, &a);
			is_str(a.lang, "de", "German detected from its word list");
			is_str(a.fields[F_NAME], "Jonas", "German name phrase");
			is_str(a.fields[F_PRODUCT], "Pedelec", "its products");
			is_str(a.reply, "Welches Budget haben Sie?", "its questions, in German");
			analysis_clear(&a);
			conversation_clear(&c);
			conversation_add(
			    &c, true, "Congratulations! You have won a prize, claim your prize: +4915112345678");
			classify_offline(bl, &pol, &c, &a);
			ok(a.intent == I_OTHER && a.fields[F_PHONE] == NULL,
			    "what the shop's file leaves out (spam words) comes from the built-in lexicon");
			is_int(bl->products.n, 2, "a list the file has (products) replaces the built-in one whole");
			analysis_clear(&a);
			conversation_clear(&c);
			lexicon_free(bl);
		}
		fd = open(path, O_WRONLY | O_TRUNC);
		if (write(fd, "{\"products\": 3}", 15) != 15)
			abort();
		close(fd);
		ok(lexicon_load(path, err, sizeof(err)) == NULL && strstr(err, "products") != NULL,
		    "a malformed lexicon is refused with a reason: %s", err);
		ok(lexicon_load("/nonexistent/lexicon.json", err, sizeof(err)) == NULL, "a missing lexicon is refused");
		unlink(path);
	}
	test_reply_links();
	/*
	 * Long inputs cost linear work: text_find_work counts the characters the searches step over, so
	 * ten times the text must cost about ten times the work (a search from the start for every number made
	 * 60 KB of "1 1 1 ..." cost 0.9 s). Work, not time: the same figures on any machine.
	 */
	{
		/* The sentence shapes too: triggers, price questions, time frames, quantities, tags, JSON, names. */
		static const char *const units[] = {"1 ", "$1 ", "dos mil ", "presupuesto 1 ", "cuesta $1. ", "busco ",
		    "precio? ", "precio ", "para marzo ", "2 mil caixas ", "<abc ", "{\"a ", "soy Ana ",
		    "vivo en Lima ", "Hola Carlos ", "se me dañó la nevera, necesito una nueva ", "a mi hija en "};
		for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
			unsigned long long work[2];
			for (int k = 0; k < 2; k++) {
				size_t want = k == 0 ? 6000 : 60000, ul = strlen(units[u]), n = 0;
				char *t = malloc(want + 1);
				while (n + ul <= want) {
					memcpy(t + n, units[u], ul);
					n += ul;
				}
				t[n] = '\0';
				text_find_work = 0;
				one(&a, t);
				work[k] = text_find_work;
				analysis_clear(&a);
				free(t);
			}
			ok(work[1] < 15 * work[0], "60 KB of \"%s...\": %.1f times the work of 6 KB (linear: 10)",
			    units[u], (double)work[1] / (double)work[0]);
		}
	}
	lexicon_free(lx);
	return done_testing();
}
