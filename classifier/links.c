/*
 * The link detector behind classifier.allow_links = no. The reply is first
 * normalised the way a reader (or a phone's linkifier, or a browser's IDNA
 * mapping) would see it: invisible characters dropped, look-alike dots,
 * slashes, colons and letters mapped to ASCII, case folded, "[.]" read as a
 * dot. Then one pass finds what would be tappable and checks each against
 * the configured URLs. Real top-level domains come from libpsl's built-in
 * Public Suffix List, so "p.ej.", "EE.UU." and "1.500.000" are not links.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libpsl.h>

#include "links.h"

/* The reply as read: lo is case-folded, cs keeps the case (for paths); both n bytes, same layout. */
struct norm {
	char *lo, *cs;
	size_t n;
	size_t clean_to; /* the path up to here was read by climbs() and found clean */
};

/* A configured URL, split for comparison; the pointers point into the caller's string. */
struct allowed {
	const char *scheme, *host, *rest;
	size_t scheme_n, host_n, rest_n;
	bool query; /* rest holds a '?' */
};

enum link_kind { LINK_SCHEME, LINK_NAME };

/*
 * Decodes one UTF-8 character of s[0..len) (len >= 1) into *adv bytes;
 * returns the code point, or -1 for a malformed, overlong, surrogate or cut-off
 * sequence (then *adv is 1).
 */
static int32_t
utf8_next(const unsigned char *s, size_t len, size_t *adv)
{
	int32_t cp, min;
	size_t k, need;

	*adv = 1;
	if (s[0] < 0x80)
		return s[0];
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 1, cp = s[0] & 0x1f, min = 0x80;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		need = 2, cp = s[0] & 0x0f, min = 0x800;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		need = 3, cp = s[0] & 0x07, min = 0x10000;
	else
		return -1;
	if (len < need + 1)
		return -1;
	for (k = 1; k <= need; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*adv = need + 1;
	return cp;
}

/* Characters that show nothing (format characters, joiners, variation selectors, fillers, tags). */
static bool
invisible(int32_t c)
{
	return c == 0x00ad || c == 0x034f || c == 0x061c || c == 0x115f || c == 0x1160 || c == 0x17b4 || c == 0x17b5 ||
	    (c >= 0x180b && c <= 0x180f) || (c >= 0x200b && c <= 0x200f) || (c >= 0x202a && c <= 0x202e) ||
	    (c >= 0x2060 && c <= 0x206f) || c == 0x3164 || (c >= 0xfe00 && c <= 0xfe0f) || c == 0xfeff || c == 0xffa0 ||
	    (c >= 0xfff0 && c <= 0xfff8) || (c >= 0x1bca0 && c <= 0x1bca3) || (c >= 0x1d173 && c <= 0x1d17a) ||
	    (c >= 0xe0000 && c <= 0xe0fff) || (c >= 0x80 && c <= 0x9f);
}

/*
 * What c reads as in a link: an ASCII byte, ' ' for anything that ends a
 * word (spaces, punctuation, symbols, emoji), 0 to drop it, or -1 to keep the
 * character as a letter.
 */
static int
ascii_of(int32_t c)
{
	if (c < 0)
		return ' ';
	if (c < 0x80) {
		if (c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v')
			return ' ';
		return c < 0x20 || c == 0x7f ? 0 : (int)c;
	}
	if (invisible(c))
		return 0;
	switch (c) {
	case 0x3002:
	case 0xff61:
	case 0x2024:
	case 0xfe52:
	case 0x0701:
	case 0x0702:
	case 0x2e3c:
	case 0xa4f8:
	case 0xa60e: return '.';
	case 0x2044:
	case 0x2215:
	case 0x29f8:
	case 0x2571: return '/';
	case 0x2236:
	case 0xa789:
	case 0xfe13:
	case 0xfe55:
	case 0x0589: return ':';
	}
	if (c >= 0xff01 && c <= 0xff5e)
		return ascii_of(c - 0xfee0);
	if (c >= 0x24b6 && c <= 0x24cf)
		return 'a' + (c - 0x24b6);
	if (c >= 0x24d0 && c <= 0x24e9)
		return 'a' + (c - 0x24d0);
	if (c >= 0x1d400 && c <= 0x1d6a3)
		return 'a' + (c - 0x1d400) % 52 % 26;
	if (c >= 0x1d7ce && c <= 0x1d7ff)
		return '0' + (c - 0x1d7ce) % 10;
	if ((c >= 0xa1 && c <= 0xbf) || c == 0xd7 || c == 0xf7 || c == 0x1680 || (c >= 0x2000 && c <= 0x2bff) ||
	    (c >= 0x3000 && c <= 0x303f) || (c >= 0xfe10 && c <= 0xfe6f) || (c >= 0xff00 && c <= 0xff65) ||
	    (c >= 0xe000 && c <= 0xf8ff) || (c >= 0xfff9 && c <= 0xffff) || (c >= 0x1f000 && c <= 0x1faff))
		return ' ';
	return -1;
}

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* "[.]", "(dot)", "{punto}", "(ponto)" at s (lo, n bytes left): the length to skip, or 0. */
static size_t
written_dot(const char *s, size_t n)
{
	static const char *const words[] = {".", "dot", "punto", "ponto"};
	size_t k, w;

	if (n < 3 || (s[0] != '[' && s[0] != '(' && s[0] != '{'))
		return 0;
	for (k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
		w = strlen(words[k]);
		if (n >= w + 2 && memcmp(s + 1, words[k], w) == 0 &&
		    (s[w + 1] == ']' || s[w + 1] == ')' || s[w + 1] == '}'))
			return w + 2;
	}
	return 0;
}

/* Normalises text into nm (two buffers no longer than text). Returns -1 when out of memory. */
static int
normalise(const char *text, struct norm *nm)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t len = strlen(text), i, o = 0, adv, k;

	if ((nm->lo = malloc(len + 1)) == NULL || (nm->cs = malloc(len + 1)) == NULL) {
		free(nm->lo);
		nm->lo = NULL;
		return -1;
	}
	for (i = 0; i < len; i += adv) {
		int32_t c = utf8_next(s + i, len - i, &adv);
		int a = ascii_of(c);

		if (a == 0)
			continue;
		if (a > 0) {
			nm->cs[o] = (char)a;
			nm->lo[o++] = lower((char)a);
			continue;
		}
		/* A letter: Latin-1's capitals fold (two bytes stay two), the rest is kept as written. */
		memcpy(nm->cs + o, s + i, adv);
		memcpy(nm->lo + o, s + i, adv);
		if (c >= 0xc0 && c <= 0xde)
			nm->lo[o + 1] = (char)(nm->lo[o + 1] + 0x20);
		o += adv;
	}
	/* Written-out dots, with the spaces around them: "evil [.] com" is evil.com. */
	nm->n = o;
	for (i = 0, o = 0; i < nm->n;) {
		if ((k = written_dot(nm->lo + i, nm->n - i)) > 0) {
			while (o > 0 && nm->lo[o - 1] == ' ')
				o--;
			nm->lo[o] = nm->cs[o] = '.';
			o++;
			for (i += k; i < nm->n && nm->lo[i] == ' '; i++)
				;
			continue;
		}
		nm->lo[o] = nm->lo[i];
		nm->cs[o++] = nm->cs[i++];
	}
	nm->lo[o] = nm->cs[o] = '\0';
	nm->n = o;
	return 0;
}

/* A byte of a host name: ASCII letter, digit, '-', '_', or part of a non-ASCII letter. */
static bool
hostc(char c)
{
	unsigned char u = (unsigned char)c;

	return (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || u == '-' || u == '_' || u >= 0x80;
}

/* A byte that ends a link. */
static bool
endc(char c)
{
	return c == '\0' || strchr(" <>\"'`()[]{}|^", c) != NULL;
}

/* True when s[i..] is the end of a link, behind any sentence punctuation. */
static bool
link_ends(const char *s, size_t n, size_t i)
{
	while (i < n && strchr(".,;:!?", s[i]) != NULL)
		i++;
	return i >= n || endc(s[i]);
}

static const psl_ctx_t *
psl(void)
{
	static const psl_ctx_t *ctx;

	/* Debian's libpsl has the list built in; without it, the newest list on disk (loaded once, kept). */
	if (ctx == NULL && (ctx = psl_builtin()) == NULL)
		ctx = psl_latest(NULL);
	return ctx;
}

/* True when the label s[0..n) is a top-level domain; -1 when that cannot be told. */
static int
is_tld(const char *s, size_t n)
{
	const psl_ctx_t *ctx = psl();
	char buf[64], *low = NULL;
	bool ascii = true, digits = true;
	int r;
	size_t k;

	for (k = 0; k < n; k++) {
		ascii = ascii && (unsigned char)s[k] < 0x80;
		digits = digits && s[k] >= '0' && s[k] <= '9';
	}
	/* No top-level domain is one letter, all digits or longer than a label may be. */
	if (n < 2 || n >= sizeof(buf) || digits)
		return 0;
	if (ctx == NULL)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (!ascii) {
		/* libpsl wants Unicode labels in lower case; it maps them to Punycode itself. */
		if (psl_str_to_utf8lower(buf, "utf-8", NULL, &low) != PSL_SUCCESS)
			return 0;
		r = psl_is_public_suffix2(ctx, low, PSL_TYPE_ANY | PSL_TYPE_NO_STAR_RULE);
		psl_free_string(low);
		return r;
	}
	return psl_is_public_suffix2(ctx, buf, PSL_TYPE_ANY | PSL_TYPE_NO_STAR_RULE);
}

/* The value of the digits s[0..n) (n <= 3), or 1000 when one is not a digit. */
static unsigned
num(const char *s, size_t n)
{
	unsigned v = 0;
	size_t k;

	for (k = 0; k < n; k++) {
		if (s[k] < '0' || s[k] > '9')
			return 1000;
		v = v * 10 + (unsigned)(s[k] - '0');
	}
	return v;
}

/*
 * True when the run s[0..n) of letters, digits and dots is a name a phone
 * would link: a label after another that is a real top-level domain (any of
 * them: "evil.com.x" links evil.com), an "xn--" label among others, or an
 * IPv4 address. Without a usable list any two labels count.
 */
static bool
is_name(const char *s, size_t n)
{
	size_t a = 0, b, prev = 0, labels = 0, quad = 0;
	bool ipv4 = true, xn = false;

	while (n > 0 && s[n - 1] == '.')
		n--;
	for (; a <= n; a = b + 1) {
		size_t len;
		for (b = a; b < n && s[b] != '.'; b++)
			;
		len = b - a;
		if (len > 0 && prev > 0) {
			int t = is_tld(s + a, len);
			if (t != 0)
				return true;
		}
		xn = xn || (len >= 4 && memcmp(s + a, "xn--", 4) == 0);
		labels += len > 0;
		if (len == 0 || len > 3 || num(s + a, len) > 255)
			ipv4 = false;
		quad++;
		prev = len;
	}
	return (xn && labels >= 2) || (ipv4 && quad == 4);
}

/* Splits a configured URL; false when it has no scheme (then it allows nothing). */
static bool
allowed_parse(const char *url, struct allowed *al)
{
	const char *p = strstr(url, "://");

	if (p == NULL || p == url)
		return false;
	al->scheme = url;
	al->scheme_n = (size_t)(p - url);
	al->host = p + 3;
	al->host_n = strcspn(al->host, "/?#");
	al->rest = al->host + al->host_n;
	al->rest_n = strlen(al->rest);
	al->query = memchr(al->rest, '?', al->rest_n) != NULL;
	return al->host_n > 0;
}

/* True when s[0..n) starts with p[0..pn) in any ASCII case (s is folded already). */
static bool
prefix_ci(const char *s, size_t n, const char *p, size_t pn)
{
	size_t k;

	if (pn > n)
		return false;
	for (k = 0; k < pn; k++)
		if (s[k] != lower(p[k]))
			return false;
	return true;
}

/*
 * Whether the path that goes on at nm[pos] (after a configured prefix)
 * climbs out of it: a segment that starts with '.' or "%2e", or a backslash.
 * A path already read clean is not read again, so configured URLs run
 * together ("https://a.example/https://a.example/...") stay linear.
 */
static bool
climbs(struct norm *nm, size_t pos, bool at_segment)
{
	size_t k;

	if (pos < nm->clean_to)
		return false;
	for (k = pos; k < nm->n && !endc(nm->lo[k]) && nm->lo[k] != '?' && nm->lo[k] != '#'; k++) {
		if (nm->lo[k] == '\\')
			return true;
		if ((k == pos && at_segment) || (k > pos && nm->lo[k - 1] == '/'))
			if (nm->lo[k] == '.' || strncmp(nm->lo + k, "%2e", 3) == 0)
				return true;
	}
	nm->clean_to = k;
	return false;
}

/* Where the configured URL al ends in the link at nm[i], or 0 when the link is not al. */
static size_t
allowed_match(struct norm *nm, size_t i, enum link_kind kind, const struct allowed *al)
{
	const char *lo = nm->lo;
	size_t m = nm->n, pos = i;
	char last, c;

	if (kind == LINK_SCHEME) {
		if (!prefix_ci(lo + pos, m - pos, al->scheme, al->scheme_n) ||
		    strncmp(lo + pos + al->scheme_n, "://", 3) != 0)
			return 0;
		pos += al->scheme_n + 3;
	} else if (!(al->scheme_n == 5 && prefix_ci("https", 5, al->scheme, 5)) &&
	    !(al->scheme_n == 4 && prefix_ci("http", 4, al->scheme, 4))) {
		return 0; /* a phone opens a name without a scheme over http(s) */
	}
	if (!prefix_ci(lo + pos, m - pos, al->host, al->host_n))
		return 0;
	pos += al->host_n;
	if (al->rest_n > m - pos || memcmp(nm->cs + pos, al->rest, al->rest_n) != 0)
		return 0;
	pos += al->rest_n;
	last = al->rest_n > 0 ? al->rest[al->rest_n - 1] : '\0';
	c = lo[pos];
	if (last == '/' || last == '?' || last == '&' || last == '=')
		return last == '/' && climbs(nm, pos, true) ? 0 : pos;
	if (link_ends(lo, m, pos))
		return pos;
	if (al->query ? (c == '&' || c == '#') : (c == '/' || c == '?' || c == '#'))
		return c == '/' && climbs(nm, pos, false) ? 0 : pos;
	return 0;
}

/* Appends s[0..n) to why, cut at a character boundary, with bytes a log line should not hold replaced. */
static void
why_add(char *why, size_t size, size_t *o, const char *s, size_t n)
{
	size_t k;

	if (why == NULL || size == 0)
		return;
	if (n > size - 1 - *o)
		for (n = size - 1 - *o; n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80; n--)
			;
	for (k = 0; k < n; k++) {
		unsigned char u = (unsigned char)s[k];
		why[*o + k] = u < 0x20 || u == '"' || u == '\\' ? '?' : (char)u;
	}
	*o += n;
	why[*o] = '\0';
}

/* Names the link at nm[i..j) in why: "scheme://host" (no credentials, port or path), or the name. */
static void
why_set(const struct norm *nm, size_t i, size_t j, enum link_kind kind, char *why, size_t size)
{
	size_t o = 0, h, e, k;

	if (kind == LINK_NAME) {
		while (j > i && nm->lo[j - 1] == '.')
			j--;
		why_add(why, size, &o, nm->lo + i, j - i);
		return;
	}
	why_add(why, size, &o, nm->lo + i, j + 3 - i);
	for (h = e = j + 3; e < nm->n && !endc(nm->lo[e]) && strchr("/?#\\", nm->lo[e]) == NULL; e++)
		;
	for (k = h; k < e; k++)
		if (nm->lo[k] == '@')
			h = k + 1;
	for (k = h; k < e && nm->lo[k] != ':'; k++)
		;
	why_add(why, size, &o, nm->lo + h, k - h);
}

bool
links_only_allowed(const char *text, const char *const *allowed, size_t n, char *why, size_t why_size)
{
	struct norm nm = {0};
	struct allowed *al = NULL;
	size_t nal = 0, i, j, k, end;
	bool good = true;

	if (why != NULL && why_size > 0)
		why[0] = '\0';
	if (text == NULL)
		return true;
	if ((n > 0 && (al = calloc(n, sizeof(*al))) == NULL) || normalise(text, &nm) < 0) {
		k = 0;
		why_add(why, why_size, &k, "out of memory", 13);
		free(al);
		return false;
	}
	for (k = 0; k < n; k++)
		if (allowed != NULL && allowed[k] != NULL && allowed_parse(allowed[k], &al[nal]))
			nal++;
	for (i = 0; i < nm.n && good;) {
		enum link_kind kind = LINK_NAME;
		const char *lo = nm.lo;
		if (!hostc(lo[i])) {
			i++;
			continue;
		}
		for (j = i; j < nm.n && (hostc(lo[j]) || lo[j] == '.'); j++)
			;
		if (strncmp(lo + j, "://", 3) == 0) {
			kind = LINK_SCHEME;
		} else if (strncmp(lo + i, "www.", 4) == 0) {
			/* "www." is a link whatever follows. */
		} else if (lo[j] == '@' ||
		    (i >= 2 && lo[i - 1] == '@' && (hostc(lo[i - 2]) || lo[i - 2] == '.' || lo[i - 2] == '+') &&
		        (lo[j] == '\0' || strchr("/:?#", lo[j]) == NULL))) {
			/* An e-mail address (its local part, then its domain): a way to write, not a page to open. */
			i = j;
			continue;
		} else if (!is_name(lo + i, j - i)) {
			i = j;
			continue;
		}
		for (end = 0, k = 0; k < nal && end == 0; k++)
			end = allowed_match(&nm, i, kind, &al[k]);
		if (end == 0) {
			why_set(&nm, i, j, kind, why, why_size);
			good = false;
		}
		/* What follows a configured URL (a path, a query) is read for links of its own. */
		i = end;
	}
	free(nm.lo);
	free(nm.cs);
	free(al);
	return good;
}
