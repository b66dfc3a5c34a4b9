/* The urlencoded form decoder and the UTF-8 check (every webhook body goes through them). */
#include "config.h"

#include <string.h>

#include "common/form.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct form f;
	const char *why;
	size_t i;

	utf8_valid((const char *)data, size);
	if (form_parse((const char *)data, size, &f, &why) == 0) {
		for (i = 0; i < f.n; i++)
			if (strlen(f.p[i].name) > FORM_MAX_FIELD || !utf8_valid(f.p[i].value, strlen(f.p[i].value)))
				__builtin_trap(); /* accepted values are valid UTF-8 within the limits */
		form_get(&f, "Body");
		form_clear(&f);
	}
	return 0;
}
