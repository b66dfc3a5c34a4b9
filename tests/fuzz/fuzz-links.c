/*
 * The link detector a model's reply goes through (classifier/links.c): the
 * input up to a NUL is the reply, what follows it one more configured URL.
 * Besides crashes, reads past the end and slowness, it checks that a "why"
 * of any size is cut and terminated, that allowing URLs never adds a link,
 * and that a letter before "://" is always a link.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "classifier/links.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *shop[3] = {"https://cal.com/muebles/visita", "https://Muebles.example.com/", NULL};
	char *text = strndup((const char *)data, size), *extra = NULL, *why;
	size_t len, why_size = size > 0 ? data[size - 1] % 24 + 1 : 1, i;
	bool none, some;

	if (text == NULL)
		return 0;
	len = strlen(text);
	if (len + 1 < size && (shop[2] = extra = strndup((const char *)data + len + 1, size - len - 1)) == NULL) {
		free(text);
		return 0;
	}
	/* An exact-size why, so that ASan sees a write past its end. */
	if ((why = malloc(why_size)) == NULL)
		goto out;
	none = links_only_allowed(text, NULL, 0, why, why_size);
	if (memchr(why, '\0', why_size) == NULL || (none && why[0] != '\0'))
		__builtin_trap();
	some = links_only_allowed(text, shop, 3, why, why_size);
	if (memchr(why, '\0', why_size) == NULL || (none && !some))
		__builtin_trap();
	for (i = 1; i + 3 <= len; i++) {
		char c = text[i - 1];
		if (memcmp(text + i, "://", 3) == 0 &&
		    ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) && none)
			__builtin_trap();
	}
	free(why);
out:
	free(extra);
	free(text);
	return 0;
}
