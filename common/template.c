/* Placeholder expansion: one pass, output grown as needed, unknown placeholders left alone. */
#include "config.h"

#include <string.h>

#include "template.h"
#include "xmalloc.h"

char *
template_expand(const char *t, const char *const *keys, const char *const *vals, size_t n)
{
	size_t cap = strlen(t) + 64, o = 0, i;
	char *out = xmalloc(cap);

	while (*t != '\0') {
		const char *v = NULL;
		size_t skip = 0, vl;

		if (*t == '{')
			for (i = 0; i < n; i++) {
				size_t kl = strlen(keys[i]);
				if (strncmp(t + 1, keys[i], kl) == 0 && t[kl + 1] == '}') {
					v = vals[i] != NULL ? vals[i] : "";
					skip = kl + 2;
					break;
				}
			}
		if (skip == 0) {
			v = t;
			vl = 1;
			skip = 1;
		} else {
			vl = strlen(v);
		}
		if (o + vl + 1 > cap) {
			cap = (o + vl + 1) * 2;
			out = xreallocarray(out, cap, 1);
		}
		memcpy(out + o, v, vl);
		o += vl;
		t += skip;
	}
	out[o] = '\0';
	return out;
}
