/*
 * Form decoding for the Twilio webhook. Twilio percent-encodes UTF-8 and
 * writes spaces as '+'; anything that does not decode cleanly (a stray '%',
 * bad hex, a NUL, invalid UTF-8) makes the whole body invalid, so a 400 is
 * answered instead of guessing.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "form.h"

int
utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		unsigned c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (len - i <= n) /* the n continuation bytes must follow */
			return 0;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000))
			return 0; /* overlong */
		if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

size_t
utf8_cut(const char *str, size_t max)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strnlen(str, max), k;

	/* s[n] is the first byte left out: while it continues a character (at most 3 bytes), that character is
	   cut. */
	if (n < max || s[n] == '\0')
		return n;
	for (k = 0; k < 3 && n > 0 && (s[n] & 0xc0) == 0x80; k++)
		n--;
	return (s[n] & 0xc0) == 0x80 ? strnlen(str, max) : n;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes s[0..len) into a new string; NULL with *why set on error. */
static char *
decode(const char *s, size_t len, const char **why, int *err)
{
	char *out = malloc(len + 1);
	size_t i, o = 0;

	if (out == NULL) {
		*err = -ENOMEM;
		*why = "out of memory";
		return NULL;
	}
	for (i = 0; i < len; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%') {
			int hi, lo;
			if (i + 2 >= len) {
				*why = "truncated %XX escape";
				goto bad;
			}
			if ((hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0) {
				*why = "bad %XX escape";
				goto bad;
			}
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (s[i] == '\0') {
			*why = "NUL byte";
			goto bad;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	if (memchr(out, '\0', o) != NULL) {
		*why = "NUL byte (%00)";
		goto bad;
	}
	if (!utf8_valid(out, o)) {
		*why = "invalid UTF-8";
		goto bad;
	}
	return out;
bad:
	*err = -EINVAL;
	free(out);
	return NULL;
}

void
form_clear(struct form *f)
{
	size_t i;

	for (i = 0; i < f->n; i++) {
		free(f->p[i].name);
		free(f->p[i].value);
	}
	free(f->p);
	f->p = NULL;
	f->n = 0;
}

int
form_parse(const char *body, size_t len, struct form *f, const char **why)
{
	size_t pos = 0, cap = 0;
	int err = 0;

	f->p = NULL;
	f->n = 0;
	*why = NULL;
	while (pos < len) {
		const char *amp = memchr(body + pos, '&', len - pos);
		size_t end = amp != NULL ? (size_t)(amp - body) : len;
		const char *eq = memchr(body + pos, '=', end - pos);
		size_t nend = eq != NULL ? (size_t)(eq - body) : end;
		char *name, *value;

		if (end == pos) { /* "a=1&&b=2" or a trailing '&': tolerated, as browsers do */
			pos = end + 1;
			continue;
		}
		if (nend == pos) {
			*why = "parameter without a name";
			err = -EINVAL;
			goto fail;
		}
		if (end - pos > FORM_MAX_FIELD) {
			*why = "parameter too long";
			err = -E2BIG;
			goto fail;
		}
		if (f->n >= FORM_MAX_PARAMS) {
			*why = "too many parameters";
			err = -E2BIG;
			goto fail;
		}
		if ((name = decode(body + pos, nend - pos, why, &err)) == NULL)
			goto fail;
		value = eq != NULL ? decode(eq + 1, end - nend - 1, why, &err) : strdup("");
		if (value == NULL) {
			free(name);
			if (err == 0) {
				err = -ENOMEM;
				*why = "out of memory";
			}
			goto fail;
		}
		if (f->n == cap) {
			size_t ncap = cap == 0 ? 32 : cap * 2;
			struct form_param *np = realloc(f->p, ncap * sizeof(*np));
			if (np == NULL) {
				free(name);
				free(value);
				err = -ENOMEM;
				*why = "out of memory";
				goto fail;
			}
			f->p = np;
			cap = ncap;
		}
		f->p[f->n].name = name;
		f->p[f->n].value = value;
		f->n++;
		pos = end + 1;
	}
	return 0;
fail:
	form_clear(f);
	return err;
}

const char *
form_get(const struct form *f, const char *name)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->p[i].name, name) == 0)
			return f->p[i].value;
	return NULL;
}
