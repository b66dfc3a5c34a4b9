/*
 * The model's answers: input = a status byte, then the HTTP body. The body
 * is parsed as generateContent's answer and as chat/completions' (the
 * OpenAI-compatible provider), and the text (or the body itself) is
 * validated as the model's structured output against a fixed conversation,
 * its last message a voice note (so a transcript is read and grounded).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "classifier/gemini.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = {200, 200, 200, 400, 403, 404, 429, 500, 503, 504};
	struct gemini_response r;
	struct conversation c = {0};
	struct analysis a = {0};
	char *text;
	int action;
	const char *why;

	if (size < 1)
		return 0;
	gemini_parse_response(
	    statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))], (const char *)data + 1, size - 1, &r);
	conversation_add(&c, true, "Hola, soy María y busco un sofá de 3 puestos, presupuesto $2000");
	conversation_add(&c, false, "¿En qué ciudad estás?");
	conversation_add(&c, true, "Bogotá, maria@example.com");
	conversation_add(&c, true, "[audio/ogg]");
	c.media_at = 3;
	c.nmedia = data[0] & 1; /* half the time the last message carries media */
	{
		struct gemini_response o;
		openai_parse_response(statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))],
		    (const char *)data + 1, size - 1, data[0], &o);
		if (o.outcome == GEM_OK && o.text == NULL)
			__builtin_trap(); /* an ok answer always has its text */
		gemini_response_clear(&o);
	}
	text = r.text != NULL ? strdup(r.text) : strndup((const char *)data + 1, size - 1);
	if (text != NULL && gemini_validate(text, &c, &a, &action, &why) == 0) {
		if (a.confidence < 0 || a.confidence > 1 || a.score < 0 || a.score > 100)
			__builtin_trap(); /* validated advice stays within its ranges */
		if (a.transcript != NULL && c.nmedia == 0)
			__builtin_trap(); /* a transcript counts only for a message with media */
		analysis_clear(&a);
	}
	free(text);
	gemini_response_clear(&r);
	conversation_clear(&c);
	{
		char d[64];
		size_t n = size - 1 < sizeof(d) - 1 ? size - 1 : sizeof(d) - 1;
		memcpy(d, data + 1, n);
		d[n] = '\0';
		gemini_parse_delay(d);
	}
	return 0;
}
