/*
 * Folding for matching: "¿Dónde ESTÁ?" becomes "  donde esta ", with every
 * byte of the folded text mapped back to the original, so matching happens
 * on folded text and values are cut from the original.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "text.h"

/* Latin-1 supplement letters U+00C0..U+00FF, folded (index: code point - 0xC0). */
static const char latin1[] = "aaaaaaaceeeeiiiidnooooo*ouuuuyts"
                             "aaaaaaaceeeeiiiidnooooo/ouuuuyty";

void
text_fold(const char *in, struct folded *f)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t len = strlen(in), i = 0, o = 0;

	f->orig = in;
	f->s = xmalloc(len + 1);
	f->map = xcalloc(len + 1, sizeof(size_t));
	while (i < len) {
		unsigned c = p[i];
		size_t n = 1;

		f->map[o] = i;
		if (c < 0x80) {
			f->s[o++] = (char)tolower((int)c);
		} else if ((c == 0xc3) && i + 1 < len && (p[i + 1] & 0xc0) == 0x80) {
			/* C3 80..BF encode U+00C0..U+00FF. */
			char m = latin1[p[i + 1] & 0x3f];
			f->s[o++] = (m == '*' || m == '/') ? ' ' : m;
			n = 2;
		} else {
			/* Other characters (emoji, punctuation like ¿ ¡) separate words. */
			if ((c & 0xe0) == 0xc0)
				n = 2;
			else if ((c & 0xf0) == 0xe0)
				n = 3;
			else if ((c & 0xf8) == 0xf0)
				n = 4;
			if (i + n > len)
				n = len - i;
			f->s[o++] = ' ';
		}
		i += n;
	}
	f->s[o] = '\0';
	f->map[o] = len;
	f->n = o;
}

void
text_folded_free(struct folded *f)
{
	free(f->s);
	free(f->map);
	f->s = NULL;
	f->map = NULL;
}

char *
text_fold_str(const char *s)
{
	struct folded f;

	text_fold(s, &f);
	free(f.map);
	return f.s;
}

bool
text_isword(char c)
{
	return isalnum((unsigned char)c) != 0;
}

unsigned long long text_find_work;

/* A whole-word match: the phrase's edges that are word characters do not continue a word of hay. */
static bool
whole_word(const char *hay, size_t at, const char *phrase, size_t pl)
{
	bool left = at == 0 || !text_isword(hay[at - 1]) || !text_isword(phrase[0]);
	bool right = !text_isword(hay[at + pl]) || !text_isword(phrase[pl - 1]);

	return left && right;
}

long
text_find(const char *hay, size_t from, const char *phrase)
{
	size_t pl = strlen(phrase);
	const char *p = hay + from, *q;

	if (pl == 0)
		return -1;
	while ((q = strstr(p, phrase)) != NULL) {
		size_t at = (size_t)(q - hay);

		text_find_work += (size_t)(q - p) + 1;
		if (whole_word(hay, at, phrase, pl))
			return (long)at;
		p = q + 1;
	}
	text_find_work += strlen(p);
	return -1;
}

long
text_find_within(const char *hay, size_t from, size_t last, const char *phrase)
{
	size_t pl = strlen(phrase), at;

	if (pl == 0)
		return -1;
	for (at = from; at <= last && hay[at] != '\0'; at++) {
		text_find_work++;
		if (hay[at] == phrase[0] && strncmp(hay + at, phrase, pl) == 0 && whole_word(hay, at, phrase, pl))
			return (long)at;
	}
	return -1;
}

bool
text_currency_sign(const struct folded *f, size_t i)
{
	const char *o = f->orig + f->map[i];

	return strncmp(o, "\xc2\xa3", 2) == 0 || strncmp(o, "\xe2\x82\xac", 3) == 0 ||
	    strncmp(o, "\xe2\x82\xb9", 3) == 0;
}

char *
text_span(const struct folded *f, size_t a, size_t b)
{
	size_t oa, ob;

	if (b > f->n)
		b = f->n;
	while (a < b && f->s[a] == ' ' && !text_currency_sign(f, a))
		a++;
	while (b > a &&
	    ((f->s[b - 1] == ' ' && !text_currency_sign(f, b - 1)) || f->s[b - 1] == ',' || f->s[b - 1] == '.'))
		b--;
	oa = f->map[a];
	ob = f->map[b];
	return xstrndup(f->orig + oa, ob - oa);
}

bool
text_orig_upper(const struct folded *f, size_t i)
{
	const unsigned char *o = (const unsigned char *)f->orig + f->map[i];

	if (o[0] < 0x80)
		return isupper(o[0]) != 0;
	return o[0] == 0xc3 && o[1] >= 0x80 && o[1] <= 0x9e; /* À..Þ */
}
