/*
 * The conversation-state decoder: whatever Redis holds (an old version, a
 * hand edit, corruption) is read or refused, and what is read can be used
 * by a turn.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "conversation/state.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why;
	json_t *st = conv_state_parse((const char *)data, size, &why);
	struct conversation c = {0};
	struct analysis a = {0};
	int f;

	if (st == NULL)
		return 0;
	conv_state_stage(st);
	for (f = 0; f < F_COUNT; f++)
		conv_state_field(st, (enum field)f);
	conv_state_conversation(st, 20, &c);
	conversation_clear(&c);
	conv_state_add(st, "in", "hola", 1, "SM1", 50);
	conv_state_count(st, "in", 1);
	a.quality = Q_WARM;
	a.source = "rules";
	analysis_set(&a, F_NAME, "Ana");
	conv_state_merge(st, &a, "SM1", 2);
	conv_state_set_stage(st, "gathering_info");
	{
		char *s = json_dumps(st, JSON_COMPACT);
		json_t *again = s != NULL ? conv_state_parse(s, strlen(s), &why) : NULL;
		if (again == NULL)
			__builtin_trap(); /* what a turn writes must read back */
		json_decref(again);
		free(s);
	}
	analysis_clear(&a);
	json_decref(st);
	return 0;
}
