/*
 * Splitting a long reply into WhatsApp-sized parts (sender.h: sender_split): a pure function, apart from the
 * outbox so that it can be tested and fuzzed alone.
 */
#include "config.h"

#include <string.h>

#include "sender.h"

size_t
sender_split(const char *text, size_t max, size_t *off, size_t *len, size_t maxparts)
{
	size_t total = strlen(text), pos = 0, n = 0;

	while (pos < total && n < maxparts) {
		size_t i = pos, cps = 0, last_break = 0;

		/* Walk max code points (continuation bytes do not count). */
		while (i < total && cps < max) {
			i++;
			while (i < total && ((unsigned char)text[i] & 0xc0) == 0x80)
				i++;
			cps++;
			if (text[i - 1] == '\n' || text[i - 1] == ' ')
				last_break = i;
		}
		if (i < total && last_break > pos && cps > max / 2) {
			/* Cut after the last space or newline when it is in the second half. */
			i = last_break;
		}
		off[n] = pos;
		len[n] = i - pos;
		n++;
		pos = i;
	}
	return n;
}
