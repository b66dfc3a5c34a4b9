/* The phone normalisers: E.164 for Odoo and the journal, {phone} in admin paths. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common/phone.h"
#include "conversation/state.h"
#include "fuzz.h"

static void
check(const char *out)
{
	size_t i, n = strlen(out);

	/* Whatever is accepted is + and 7 to 15 digits: safe in a Redis key or a URL. */
	if (out[0] != '+' || n < 8 || n > 16)
		__builtin_trap();
	for (i = 1; i < n; i++)
		if (out[i] < '0' || out[i] > '9')
			__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = strndup((const char *)data, size), out[17];

	if (s == NULL)
		return 0;
	if (phone_e164(s, NULL, out) == 0)
		check(out);
	if (phone_e164(s, "57", out) == 0)
		check(out);
	if (conv_phone_param(s, out) == 0)
		check(out);
	free(s);
	return 0;
}
