/*
 * Offline rules. Every user message is folded (case, accents) and searched
 * for lexicon phrases at word boundaries; values are cut from the original
 * text so they read as the user wrote them. Later messages override earlier
 * ones field by field, so a corrected budget wins.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "rules.h"
#include "shape.h"
#include "text.h"

/* Earliest match of any phrase in hay from `from`; the longest wins a tie. Returns offset or -1. */
static long
find_any(const char *hay, size_t from, const struct phrases *ph, size_t *len)
{
	long best = -1;
	size_t i, bl = 0;

	for (i = 0; i < ph->n; i++) {
		long at = text_find(hay, from, ph->p[i]);
		size_t l = strlen(ph->p[i]);

		if (at >= 0 && (best < 0 || at < best || (at == best && l > bl))) {
			best = at;
			bl = l;
		}
	}
	if (len != NULL)
		*len = bl;
	return best;
}

static bool
has_any(const char *hay, const struct phrases *ph)
{
	return find_any(hay, 0, ph, NULL) >= 0;
}

/* ---- language ---- */

/*
 * The language of text by its words: the one with the most of them, at least min, when no other has as many.
 * Returns false (lang untouched) otherwise.
 */
static bool
language_of(const struct lexicon *lx, const char *text, size_t min, char lang[3])
{
	char *s = text_fold_str(text);
	size_t i, best = 0, bestn = 0, second = 0;

	for (i = 0; i < lx->nlangs; i++) {
		size_t n = 0, k;
		for (k = 0; k < lx->langs[i].words.n; k++) {
			long at = 0;
			while ((at = text_find(s, (size_t)at, lx->langs[i].words.p[k])) >= 0) {
				n++;
				at++;
			}
		}
		if (n > bestn) {
			second = bestn;
			bestn = n;
			best = i;
		} else if (n > second) {
			second = n;
		}
	}
	free(s);
	if (bestn < min || bestn == second)
		return false;
	memcpy(lang, lx->langs[best].lang, 3);
	return true;
}

void
rules_language(const struct lexicon *lx, const char *text, char lang[3])
{
	if (!language_of(lx, text, 1, lang))
		memcpy(lang, lx->default_lang, 3);
}

/* ---- e-mail and phone ---- */

static char *
find_email(const char *t)
{
	const char *at = strchr(t, '@');

	while (at != NULL) {
		const char *a = at, *b = at + 1;
		bool dot = false;

		while (a > t && (isalnum((unsigned char)a[-1]) || strchr("._%+-", a[-1]) != NULL))
			a--;
		while (isalnum((unsigned char)*b) || *b == '.' || *b == '-') {
			if (*b == '.')
				dot = true;
			b++;
		}
		while (b > at + 1 && b[-1] == '.')
			b--;
		if (a < at && dot && b[-1] != '.' && strchr(at + 1, '.') != NULL &&
		    memchr(at + 1, '.', (size_t)(b - at - 1)))
			return xstrndup(a, (size_t)(b - a));
		at = strchr(at + 1, '@');
	}
	return NULL;
}

/* True if the digit groups after the first are all three long: 2.000.000 is money, not a phone. */
static bool
money_grouping(const char *a, const char *b)
{
	const char *p = a;
	int groups = 0, len = 0;
	bool sep = false;

	for (; p < b; p++) {
		if (isdigit((unsigned char)*p)) {
			len++;
		} else if (*p == '.' || *p == ',') {
			if (sep && len != 3)
				return false;
			sep = true;
			groups++;
			len = 0;
		} else {
			return false;
		}
	}
	return sep && groups >= 1 && len == 3;
}

static char *
find_phone(const struct lexicon *lx, const struct folded *f)
{
	const char *s = f->s;
	size_t i = 0;

	while (s[i] != '\0') {
		size_t a = i, b, digits = 0, j;

		if (!(isdigit((unsigned char)s[i]) || (s[i] == '+' && isdigit((unsigned char)s[i + 1]))) ||
		    (i > 0 && (isalnum((unsigned char)s[i - 1]) || s[i - 1] == '$'))) {
			i++;
			continue;
		}
		for (j = i; s[j] != '\0' && (isdigit((unsigned char)s[j]) || strchr("+-. ()", s[j]) != NULL); j++)
			if (isdigit((unsigned char)s[j]))
				digits++;
		b = j;
		while (b > a && !isdigit((unsigned char)s[b - 1]))
			b--;
		i = j > i ? j : i + 1;
		if (digits < 7 || digits > 15)
			continue;
		/* "el ciclo escolar 2027-2028", "2026/2027": two years, not a phone. */
		if (b - a == 9 && (s[a + 4] == '-' || s[a + 4] == '/') &&
		    (strncmp(s + a, "19", 2) == 0 || strncmp(s + a, "20", 2) == 0) &&
		    (strncmp(s + a + 5, "19", 2) == 0 || strncmp(s + a + 5, "20", 2) == 0))
			continue;
		{
			/* Not money: no $ before, no amount unit after, no 3-digit grouping. */
			size_t wa, wb;
			char w[32];
			long k = (long)a - 1;
			while (k >= 0 && s[k] == ' ')
				k--;
			if (k >= 0 && s[k] == '$')
				continue;
			/* "presupuesto es 3500000", "pedido 4587213": not phones. */
			if (shape_near_before(s, a, &lx->budget_words, 24) ||
			    shape_near_before(s, a, &lx->not_phone_context, 28))
				continue;
			/* "el número de mi esposo es …", "call my assistant on …": someone else's phone. */
			if (shape_near_before(s, a, &lx->other_phone_context, 40))
				continue;
			if (money_grouping(s + a, s + b) && strchr(f->orig + f->map[a], '+') != f->orig + f->map[a])
				continue;
			if (shape_next_word(s, b, &wa, &wb) && wb - wa < sizeof(w)) {
				memcpy(w, s + wa, wb - wa);
				w[wb - wa] = '\0';
				if (shape_in_list(w, &lx->amount_units))
					continue;
			}
		}
		return text_span(f, a, b);
	}
	return NULL;
}

/* ---- budget ---- */

/* A currency sign right before folded offset i ("£1,200", "€ 500", "₹5 lakh", "S/ 800", "Rs. 50,000"): its offset. */
static long
currency_before(const struct folded *f, size_t i)
{
	const char *s = f->s;
	size_t k = i;

	while (k > 0 && s[k - 1] == ' ') {
		if (text_currency_sign(f, k - 1))
			return (long)(k - 1);
		k--;
	}
	if (k >= 2 && s[k - 1] == '/' && s[k - 2] == 's' && (k == 2 || !text_isword(s[k - 3])))
		return (long)(k - 2);
	if (k > 0 && s[k - 1] == '.')
		k--;
	if (k >= 2 && s[k - 1] == 's' && s[k - 2] == 'r' && (k == 2 || !text_isword(s[k - 3])))
		return (long)(k - 2);
	return -1;
}

/* A currency sign right after folded offset j ("500€", "1.200 £"): the end past it, else j. */
static size_t
currency_after(const struct folded *f, size_t j)
{
	for (size_t k = j; k < f->n && f->s[k] == ' '; k++)
		if (text_currency_sign(f, k))
			return k + 1;
	return j;
}

/* "dois mil e quinhentos", "two thousand and five hundred": the amount goes on after "e", "y", "and". */
static size_t
word_amount_end(const struct lexicon *lx, const char *s, size_t end)
{
	static const char *const joins[] = {" e ", " y ", " and "};

	for (size_t j = 0; j < sizeof(joins) / sizeof(joins[0]); j++) {
		size_t jl = strlen(joins[j]), a, b;
		char w[24];
		if (strncmp(s + end, joins[j], jl) != 0 || !shape_next_word(s, end + jl - 1, &a, &b) ||
		    b - a >= sizeof(w))
			continue;
		memcpy(w, s + a, b - a);
		w[b - a] = '\0';
		if (shape_in_list(w, &lx->number_words) && strcmp(w, "a") != 0 && strcmp(w, "el") != 0) {
			bool unit;
			/* And its currency: "… e quinhentos reais". */
			return shape_unit_end(lx, s, b, &unit);
		}
	}
	return end;
}

/*
 * An amount in words after a budget word: "ronda el millón y medio", "unos
 * dos millones", "about a thousand". Returns the span or NULL.
 */
static char *
find_word_budget(const struct lexicon *lx, const struct folded *f, bool asked)
{
	size_t i, k, best_a = 0, best_b = 0;
	bool found = false;

	for (i = 0; i < lx->word_amount_units.n; i++) {
		long at = 0;
		const char *u = lx->word_amount_units.p[i];

		while ((at = text_find(f->s, (size_t)at, u)) >= 0) {
			size_t start = (size_t)at, w = (size_t)at;
			bool num = false;

			at++;
			/* The word before must be a number word: "dos millones", "el millón". */
			while (w > 0 && f->s[w - 1] == ' ')
				w--;
			for (k = 0; k < lx->number_words.n && !num; k++) {
				size_t nl = strlen(lx->number_words.p[k]);
				if (w >= nl && strncmp(f->s + w - nl, lx->number_words.p[k], nl) == 0 &&
				    (w == nl || !text_isword(f->s[w - nl - 1]))) {
					num = true;
					if (strcmp(lx->number_words.p[k], "el") != 0 &&
					    strcmp(lx->number_words.p[k], "a") != 0)
						start = w - nl;
				}
			}
			/* A money word of its own ("pesos", "lucas", "dollars"), a budget word before, or an answer to
			   "what is your budget?". */
			if (!num ||
			    !(asked || !shape_magnitude(u) || shape_near_before(f->s, w, &lx->budget_words, 40)))
				continue;
			/* The earliest amount, whatever its unit: "dois mil e quinhentos reais" from "dois". */
			if (!found || start < best_a) {
				best_a = start;
				best_b = word_amount_end(lx, f->s, (size_t)at - 1 + strlen(u));
				found = true;
			}
			break;
		}
	}
	return found ? text_span(f, best_a, best_b) : NULL;
}

static char *
find_budget(const struct lexicon *lx, const struct folded *f, bool asked)
{
	const char *s = f->s;
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		size_t start = i, ne, end;
		bool cur = false, unit = false, ctx = false;

		if (s[i] == '$' || (s[i] == 'r' && s[i + 1] == '$' && (i == 0 || !text_isword(s[i - 1])))) {
			size_t k = s[i] == 'r' ? i + 2 : i + 1;
			while (s[k] == ' ')
				k++;
			if ((ne = shape_number_end(s, k)) == 0)
				continue;
			cur = true;
		} else if (isdigit((unsigned char)s[i]) && (i == 0 || !text_isword(s[i - 1])) &&
		    s[i - (i > 0)] != '$') {
			long sign = currency_before(f, i);
			if ((ne = shape_number_end(s, i)) == 0)
				continue;
			if (sign >= 0) {
				start = (size_t)sign;
				cur = true;
			}
		} else {
			continue;
		}
		end = shape_unit_end(lx, s, ne, &unit);
		if (!cur && shape_quantity_end(lx, s, i) > 0) {
			/* "2 mil caixas de papelão": how many, not how much. */
			i = end - 1;
			continue;
		}
		if (currency_after(f, end) > end) {
			end = currency_after(f, end);
			cur = true;
		}
		/* A currency code before the number: "USD 500", "COP 2.000.000". */
		if (!cur && start >= 4) {
			size_t k = start;
			while (k > 0 && s[k - 1] == ' ')
				k--;
			for (size_t u = 0; u < lx->amount_units.n; u++) {
				size_t ul = strlen(lx->amount_units.p[u]);
				if (k >= ul && strncmp(s + k - ul, lx->amount_units.p[u], ul) == 0 &&
				    (k == ul || !text_isword(s[k - ul - 1])) && ul >= 3) {
					start = k - ul;
					unit = true;
					break;
				}
			}
		}
		/* A budget word shortly before: "presupuesto es de 3000", "hasta 5 millones". */
		/* The word must start at most its length + 16 before the number: only that window is searched, so
		   a text of many numbers costs linear time (searching from the text's start for each was quadratic). */
		for (size_t b = 0; b < lx->budget_words.n && !ctx; b++) {
			size_t reach = strlen(lx->budget_words.p[b]) + 16;
			size_t lo = start > reach ? start - reach : 0;
			if (start > 0 && text_find_within(s, lo, start - 1, lx->budget_words.p[b]) >= 0)
				ctx = true;
		}
		/* A range: "entre 2 y 3 millones", "$1500 - $2000". */
		{
			size_t k = end;
			while (s[k] == ' ')
				k++;
			if ((s[k] == '-' || strncmp(s + k, "a ", 2) == 0 || strncmp(s + k, "y ", 2) == 0 ||
			        strncmp(s + k, "to ", 3) == 0 || strncmp(s + k, "e ", 2) == 0 ||
			        strncmp(s + k, "and ", 4) == 0) &&
			    end == ne) {
				size_t m = k + (s[k] == '-' ? 1 : s[k + 1] == ' ' ? 2 : 3), me;
				bool u2;
				while (s[m] == ' ' || s[m] == '$')
					m++;
				if ((me = shape_number_end(s, m)) != 0) {
					end = shape_unit_end(lx, s, me, &u2);
					unit |= u2;
				}
			}
		}
		{
			size_t digits = 0, k;
			for (k = start; k < ne; k++)
				digits += isdigit((unsigned char)s[k]) != 0;
			size_t wa, wb;
			char w[24];
			/* "Tengo 2 hijos" is not a budget: a bare number needs three digits. The answer to "what is your
			   budget?" is one: "1500". "About 300 guests" counts guests, not money. */
			if (!cur && !unit && digits < 3 && !(s[ne - 1] == 'm' && ctx))
				ctx = false;
			else if (asked && digits >= 3)
				ctx = true;
			/* "mi gol 2015", "modelo 2024": a bare year is a model or a date, unless a budget word says so. */
			if (!cur && !unit && ne - start == 4 &&
			    (strncmp(s + start, "19", 2) == 0 || strncmp(s + start, "20", 2) == 0) &&
			    !shape_near_before(s, start, &lx->budget_words, 14))
				ctx = false;
			if (!cur && !unit && shape_next_word(s, end, &wa, &wb) && wb - wa < sizeof(w)) {
				memcpy(w, s + wa, wb - wa);
				w[wb - wa] = '\0';
				if (shape_in_list(w, &lx->count_nouns))
					ctx = false;
			}
		}
		/* "Mi recibo de luz llega de 4 mil", "paid $186": a bill or a price paid, not what they will spend. */
		if (shape_near_before(s, start, &lx->not_budget_context, 32) &&
		    !shape_near_before(s, start, &lx->budget_words, 14)) {
			i = ne - 1;
			continue;
		}
		if (!(cur || unit || ctx) || (!ctx && shape_near_before(s, start, &lx->price_words, 40))) {
			/* "¿Cuesta más de $3.000.000?" asks a price; it states no budget. */
			i = ne - 1;
			continue;
		}
		return text_span(f, start, end);
	}
	return find_word_budget(lx, f, asked);
}

/* ---- name ---- */

/*
 * An introduction that a writer who never capitalises still uses only for a name: "this is marcus" (but "soy
 * estudiante", "i'm moving": a lower-case word after "soy" or "i'm" is rarely a name).
 */
static bool
lower_case_phrase(const char *p)
{
	static const char *const ok[] = {"this is", "its", "it's"};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(p, ok[i]) == 0)
			return true;
	return false;
}

static bool
strict_phrase(const char *p)
{
	return strcmp(p, "me llamo") == 0 || strcmp(p, "mi nombre es") == 0 || strcmp(p, "my name is") == 0 ||
	    strcmp(p, "meu nome e") == 0 || strcmp(p, "me chamo") == 0 || strcmp(p, "call me") == 0;
}

static bool
acceptable_name_word(const struct lexicon *lx, const char *w)
{
	size_t i;

	if (strlen(w) < 2 || strlen(w) > 24 || shape_in_list(w, &lx->not_names) || shape_in_list(w, &lx->greetings) ||
	    shape_in_list(w, &lx->qualifier_stops) || shape_in_list(w, &lx->time_words) ||
	    shape_in_list(w, &lx->urgency) || shape_in_list(w, &lx->generic_products))
		return false;
	for (i = 0; w[i] != '\0'; i++)
		if (!isalpha((unsigned char)w[i]))
			return false;
	for (i = 0; i < lx->products.n; i++)
		if (shape_in_list(w, &lx->products.c[i].syn))
			return false;
	return true;
}

/* A word of ordinary speech ("urgent", "interested", "here"): never a name written in lower case. */
static bool
common_word(const struct lexicon *lx, const char *w)
{
	for (size_t i = 0; i < lx->nlangs; i++)
		if (shape_in_list(w, &lx->langs[i].words))
			return true;
	return shape_in_list(w, &lx->object_stops) || shape_in_list(w, &lx->object_not) ||
	    shape_in_list(w, &lx->positive) || shape_in_list(w, &lx->negative) || shape_in_list(w, &lx->purchase) ||
	    shape_in_list(w, &lx->count_nouns) || shape_in_list(w, &lx->object_verbs);
}

/* True if the message has no capital letter at all: its writer does not capitalise names either. */
static bool
all_lower(const char *orig)
{
	for (const unsigned char *p = (const unsigned char *)orig; *p != '\0'; p++)
		if (isupper(*p) || (p[0] == 0xc3 && p[1] >= 0x80 && p[1] <= 0x9e))
			return false;
	return true;
}

/* The folded word [a, b) as a string in w (size n); false if it does not fit. */
static bool
word_copy(const struct folded *f, size_t a, size_t b, char *w, size_t n)
{
	if (b - a >= n)
		return false;
	memcpy(w, f->s + a, b - a);
	w[b - a] = '\0';
	return true;
}

/* Whether the word [a, b) may be a name here: capitalised, or a lower-case writer's uncommon word. */
static bool
name_word_at(const struct lexicon *lx, const struct folded *f, size_t a, size_t b, bool any_case)
{
	char w[32];
	const char *after = f->orig + f->map[b];

	if (!word_copy(f, a, b, w, sizeof(w)) || !acceptable_name_word(lx, w))
		return false;
	/* "Bella's owner": a possessive names someone else. */
	if (strncmp(after, "'s", 2) == 0 || strncmp(after, "\xe2\x80\x99s", 4) == 0)
		return false;
	return text_orig_upper(f, a) || (any_case && !common_word(lx, w));
}

static char *
find_name(const struct lexicon *lx, const struct folded *f, size_t *span_a, size_t *span_b)
{
	size_t li, k;
	bool lower = all_lower(f->orig);

	for (li = 0; li < lx->nnames; li++) {
		for (k = 0; k < lx->names[li].words.n; k++) {
			const char *ph = lx->names[li].words.p[k];
			long at = 0;

			while ((at = text_find(f->s, (size_t)at, ph)) >= 0) {
				size_t i = (size_t)at + strlen(ph), a, b, a2, b2;
				char w[32];
				bool strict = strict_phrase(ph);

				at++;
				while (f->s[i] == ' ' || f->s[i] == ',' || f->s[i] == ':')
					i++;
				if (!shape_next_word(f->s, i, &a, &b) || !word_copy(f, a, b, w, sizeof(w)))
					continue;
				/* "Eu sou a Beatriz", "soy la Sra. ..." stop at the article unless a name follows it. */
				if ((strcmp(w, "a") == 0 || strcmp(w, "o") == 0) &&
				    shape_next_word(f->s, b, &a2, &b2) && text_orig_upper(f, a2) &&
				    b2 - a2 < sizeof(w)) {
					a = a2;
					b = b2;
				}
				if (!name_word_at(lx, f, a, b, strict || (lower && lower_case_phrase(ph))))
					continue;
				/* A second capitalised word belongs to the name: "María José", "Juan Pérez". */
				if (shape_next_word(f->s, b, &a2, &b2) && f->s[b] == ' ' &&
				    name_word_at(lx, f, a2, b2, false))
					b = b2;
				*span_a = a;
				*span_b = b;
				return text_span(f, a, b);
			}
		}
	}
	return NULL;
}

/*
 * A reply to "what is your name?" that starts with the name: one to three words that may be a name, then the
 * end, punctuation or a number ("Jack Mitchell, 0412555019", "Thiago, thiago@…", "Martín").
 */
static char *
bare_name(const struct lexicon *lx, const struct folded *f)
{
	size_t i = 0, a, b, words = 0, first = 0, end = 0;
	bool lower = all_lower(f->orig);

	while (f->s[i] != '\0' && !text_isword(f->s[i]))
		i++;
	while (shape_next_word(f->s, i, &a, &b) && a == i) {
		if (words == 3 || !name_word_at(lx, f, a, b, words == 0 || lower))
			break;
		if (words++ == 0)
			first = a;
		end = b;
		i = b;
		while (f->s[i] == ' ')
			i++;
	}
	if (words == 0)
		return NULL;
	/* What follows the name: nothing, punctuation, a number, or an e-mail. A word means a sentence. */
	i = end;
	while (f->s[i] == ' ')
		i++;
	if (text_isword(f->s[i]) && !isdigit((unsigned char)f->s[i]))
		return NULL;
	return text_span(f, first, end);
}

/*
 * "Hola Carlos, ya te hice el pago": a message that opens by naming the person it is for. The name is the
 * addressee's, not the customer's; with nothing to buy in it, the message was not meant for the business.
 */
static bool
addressed_to_someone(const struct lexicon *lx, const struct folded *f)
{
	size_t i = 0, n = 0, a, b, k;

	while (f->s[i] == ' ')
		i++;
	for (k = 0; k < lx->greetings.n && n == 0; k++) {
		size_t l = strlen(lx->greetings.p[k]);
		if (strncmp(f->s + i, lx->greetings.p[k], l) == 0 && !text_isword(f->s[i + l]))
			n = l;
	}
	return n > 0 && shape_next_word(f->s, i + n, &a, &b) && f->s[i + n] == ' ' && name_word_at(lx, f, a, b, false);
}

/* ---- product, city, need, urgency ---- */

static char *
find_product(const struct lexicon *lx, const struct folded *f, bool *specific)
{
	long best = -1;
	size_t bl = 0, i, k, bi = 0, end, words = 0, a, b;

	for (i = 0; i < lx->products.n; i++) {
		for (k = 0; k < lx->products.c[i].syn.n; k++) {
			long at = text_find(f->s, 0, lx->products.c[i].syn.p[k]);
			size_t l = strlen(lx->products.c[i].syn.p[k]);
			if (at >= 0 && (best < 0 || at < best || (at == best && l > bl))) {
				best = at;
				bl = l;
				bi = i;
			}
		}
	}
	if (best < 0)
		return NULL;
	{
		char *n = text_fold_str(lx->products.c[bi].name);
		*specific = !shape_in_list(n, &lx->generic_products);
		free(n);
	}
	end = (size_t)best + bl;
	/* Qualifiers: "de 3 puestos", "en L", "king", "de cuero" (up to five words). */
	while (words < 5 && f->s[end] == ' ' && shape_next_word(f->s, end, &a, &b)) {
		char w[32];
		size_t ne;
		bool u;
		if (b - a >= sizeof(w))
			break;
		memcpy(w, f->s + a, b - a);
		w[b - a] = '\0';
		if (shape_in_list(w, &lx->qualifier_stops) || shape_in_list(w, &lx->budget_words))
			break;
		if ((ne = shape_number_end(f->s, a)) != 0 && shape_unit_end(lx, f->s, ne, &u) && u)
			break;
		end = b;
		words++;
	}
	/* Drop a dangling connector: "sofá de" -> "sofá". */
	while (end > (size_t)best + bl) {
		size_t s0 = end;
		while (s0 > 0 && f->s[s0 - 1] != ' ')
			s0--;
		if (end - s0 <= 3 &&
		    (strncmp(f->s + s0, "de", end - s0) == 0 || strncmp(f->s + s0, "en", end - s0) == 0 ||
		        strncmp(f->s + s0, "a", end - s0) == 0 || strncmp(f->s + s0, "con", end - s0) == 0 ||
		        strncmp(f->s + s0, "of", end - s0) == 0 || strncmp(f->s + s0, "in", end - s0) == 0 ||
		        strncmp(f->s + s0, "do", end - s0) == 0 || strncmp(f->s + s0, "da", end - s0) == 0))
			end = s0 > 0 ? s0 - 1 : 0;
		else
			break;
	}
	return text_span(f, (size_t)best, end);
}

/*
 * "pasajes a Cusco", "a trip to Lisbon": where the customer wants to go, not where they are. A delivery ("envío a
 * Cali", "deliver to Leeds") is where they are: the lexicon's city_preps say so.
 */
static bool
destination(const struct lexicon *lx, const char *s, size_t at)
{
	static const char *const to[] = {" a", " to", " pra", " pro", " para", " hacia", " al"};
	size_t k = at;

	while (k > 0 && s[k - 1] == ' ')
		k--;
	for (size_t i = 0; i < sizeof(to) / sizeof(to[0]); i++) {
		size_t l = strlen(to[i]);
		if (k >= l && strncmp(s + k - l, to[i], l) == 0) {
			for (size_t p = 0; p < lx->city_preps.n; p++) {
				size_t pl = strlen(lx->city_preps.p[p]);
				if (k >= pl && strncmp(s + k - pl, lx->city_preps.p[p], pl) == 0)
					return false;
			}
			return true;
		}
	}
	return false;
}

static const char *
find_city(const struct lexicon *lx, const struct folded *f, size_t skip_a, size_t skip_b)
{
	size_t i, k;

	for (i = 0; i < lx->cities.n; i++)
		for (k = 0; k < lx->cities.c[i].syn.n; k++) {
			long at = 0;
			while ((at = text_find(f->s, (size_t)at, lx->cities.c[i].syn.p[k])) >= 0) {
				if (!((size_t)at >= skip_a && (size_t)at < skip_b) &&
				    !destination(lx, f->s, (size_t)at))
					return lx->cities.c[i].name;
				at++;
			}
		}
	return NULL;
}

static char *
find_span_after(const struct lexicon *lx, const struct folded *f, const struct phrases *markers, size_t maxwords)
{
	size_t len, end, a, b, words = 0;
	long at = find_any(f->s, 0, markers, &len);

	if (at < 0)
		return NULL;
	end = (size_t)at + len;
	while (words < maxwords && f->s[end] == ' ' && shape_next_word(f->s, end, &a, &b)) {
		char w[32];
		if (b - a >= sizeof(w))
			break;
		memcpy(w, f->s + a, b - a);
		w[b - a] = '\0';
		if (shape_in_list(w, &lx->qualifier_stops) && strcmp(w, "mi") != 0 && strcmp(w, "my") != 0)
			break;
		end = b;
		words++;
	}
	return text_span(f, (size_t)at, end);
}

/* ---- grounding ---- */

bool
rules_grounded(const struct conversation *c, enum field f, const char *value)
{
	char *v = text_fold_str(value);
	size_t i;
	bool found = false;

	for (i = 0; i < c->n && !found; i++) {
		char *u, *x, *y;
		if (!c->msg[i].user)
			continue;
		u = text_fold_str(c->msg[i].text);
		if (f == F_EMAIL || f == F_PHONE) {
			/* Digits or the address must appear as such. */
			char dv[64] = "", du[4096] = "";
			size_t n = 0, m = 0;
			for (x = v; *x && n + 1 < sizeof(dv); x++)
				if (f == F_EMAIL ? (*x != ' ') : isdigit((unsigned char)*x) != 0)
					dv[n++] = *x;
			dv[n] = '\0';
			for (y = u; *y && m + 1 < sizeof(du); y++)
				if (f == F_EMAIL ? (*y != ' ') : isdigit((unsigned char)*y) != 0)
					du[m++] = *y;
			du[m] = '\0';
			found = n >= (f == F_EMAIL ? 5 : 7) && strstr(du, dv) != NULL;
		} else {
			/* Every word of the value must be among the user's words. */
			char *save = NULL, *vv = xstrdup(v), *w;
			found = true;
			for (w = strtok_r(vv, " ,.;:!?()\"'", &save); w != NULL;
			     w = strtok_r(NULL, " ,.;:!?()\"'", &save))
				if (strlen(w) >= 2 && text_find(u, 0, w) < 0 && strstr(u, w) == NULL)
					found = false;
			free(vv);
		}
		free(u);
	}
	free(v);
	return found;
}

/* ---- the whole conversation ---- */

static bool
greeting_only(const struct lexicon *lx, const char *folded)
{
	char *s = xstrdup(folded), *p;
	size_t i, len;
	bool only = true;

	for (i = 0; i < lx->greetings.n; i++) {
		long at;
		while ((at = text_find(s, 0, lx->greetings.p[i])) >= 0)
			memset(s + at, ' ', strlen(lx->greetings.p[i]));
	}
	static const char *filler[] = {"que tal", "como estas", "como esta", "how are you", "tudo bem", "como vai",
	    "senor", "senora", "amigo", "amiga", "there", "all", "a todos", "gracias", "thanks", "obrigado"};
	for (i = 0; i < sizeof(filler) / sizeof(filler[0]); i++) {
		long at;
		while ((at = text_find(s, 0, filler[i])) >= 0)
			memset(s + at, ' ', strlen(filler[i]));
	}
	len = strlen(s);
	for (p = s; p < s + len; p++)
		if (text_isword(*p))
			only = false;
	free(s);
	return only;
}

/* What the user's messages add up to besides the fields. */
struct reading {
	bool support; /* in the last two user messages */
	char reason[24]; /* its kind */
	bool spam; /* a message was spam, a scam, a pitch, a wrong number or a job application */
	bool greet; /* greetings only so far */
	int pos, neg; /* sentiment words */
};

/* Whether the bot's message before user message i asks about one of ph's subjects (a question with its word). */
static bool
asked_about(const struct conversation *c, size_t i, const struct phrases *ph)
{
	char *pb;
	bool r;

	if (i == 0 || c->msg[i - 1].user || strchr(c->msg[i - 1].text, '?') == NULL)
		return false;
	pb = text_fold_str(c->msg[i - 1].text);
	r = has_any(pb, ph);
	free(pb);
	return r;
}

/* Keeps v as field fl (v freed); NULL is nothing. */
static void
take(struct analysis *a, enum field fl, char *v)
{
	if (v != NULL)
		analysis_set(a, fl, v);
	free(v);
}

/* The product: the lexicon's, else the object of the sentence, else a short answer to "what are you looking for?". */
static void
read_product(const struct lexicon *lx, const struct conversation *c, size_t i, const struct folded *f,
    struct analysis *a, struct signals *sg)
{
	bool spec = false, from_shape = false;
	char *v = find_product(lx, f, &spec);

	/* The lexicon's product wins; a sentence's object never replaces a specific product said before it
	   ("mesa de comedor", then "quiero ver opciones"). */
	if (v == NULL || !spec) {
		bool spec2 = false;
		char *w = shape_object(lx, f, &spec2);
		if (w == NULL && asked_about(c, i, &lx->interest_question_words))
			w = shape_bare_object(lx, f, &spec2);
		if (w != NULL && (v == NULL || spec2)) {
			free(v);
			v = w;
			spec = spec2;
			from_shape = true;
		} else {
			free(w);
		}
	}
	/* A vague mention never replaces a specific one. */
	if (v != NULL && (spec || a->fields[F_PRODUCT] == NULL) && !(from_shape && sg->product_specific)) {
		analysis_set(a, F_PRODUCT, v);
		sg->product_specific = spec;
	}
	free(v);
}

/*
 * Support in a message, with its reason; "" if none. Something broken is the business's to fix only when it
 * was bought here ("mi pedido", "la garantía"): "se me dañó la nevera, necesito una nueva ya" is a purchase.
 */
static const char *
support_reason(const struct lexicon *lx, const struct folded *f, struct signals *sg)
{
	for (size_t r = 0; r < lx->support.n; r++) {
		if (!has_any(f->s, &lx->support.c[r].syn))
			continue;
		if (strcmp(lx->support.c[r].name, "warranty") == 0 && !has_any(f->s, &lx->own_order) &&
		    (has_any(f->s, &lx->new_need) || has_any(f->s, &lx->urgency))) {
			sg->purchase = true;
			return "";
		}
		return lx->support.c[r].name;
	}
	return "";
}

/* Whether a message names something to buy: a product of the lexicon's or the object of a purchase. */
static bool
buys(const struct lexicon *lx, const struct folded *f)
{
	bool spec;
	char *v = find_product(lx, f, &spec);

	if (v == NULL)
		v = shape_object(lx, f, &spec);
	free(v);
	return v != NULL;
}

/* What user message i adds: fields (a later message overrides an earlier one) and signals. */
static void
read_message(const struct lexicon *lx, const struct conversation *c, size_t i, bool recent, bool last,
    struct analysis *a, struct signals *sg, struct reading *rd)
{
	const char *text = c->msg[i].text, *city, *why;
	char *cut = NULL;
	struct folded f;
	size_t na = 0, nb = 0;
	long inj;
	char *v;

	text_fold(text, &f);
	if ((inj = shape_injection(lx, f.s)) >= 0) {
		/* Nothing in a block dressed as the system's or as verified data is the customer's: only what
		   comes before it is read. */
		a->manipulation = true;
		cut = xstrndup(text, f.map[inj]);
		text_folded_free(&f);
		text_fold(cut, &f);
		text = cut;
	}
	if (shape_spam(lx, f.s) ||
	    ((addressed_to_someone(lx, &f) || has_any(f.s, &lx->personal_markers)) && !buys(lx, &f))) {
		/* A promotion's phone, amount and names are not a customer's, nor are those of a message meant for
		   someone else ("Hola Carlos, ya te hice el pago", "it's me, did u grab the kids?") unless it names
		   something to buy ("soy yo, Ana: quiero el sofá cama"). */
		rd->spam = true;
		rd->greet = false;
		goto out;
	}
	take(a, F_EMAIL, find_email(text));
	/* An answer to "what is your budget?" is a budget, unless it says it does not know ("ainda não sei, depende
	   do meu gol 2015"). */
	take(a, F_BUDGET, find_budget(lx, &f, asked_about(c, i, &lx->budget_words) && !has_any(f.s, &lx->refusals)));
	take(a, F_PHONE, find_phone(lx, &f));
	if ((v = find_name(lx, &f, &na, &nb)) != NULL ||
	    (asked_about(c, i, &lx->name_question_words) && (v = bare_name(lx, &f)) != NULL))
		take(a, F_NAME, v);
	read_product(lx, c, i, &f, a, sg);
	if ((city = find_city(lx, &f, na, nb)) != NULL)
		analysis_set(a, F_CITY, city);
	else if ((v = shape_city(lx, &f)) != NULL ||
	    (asked_about(c, i, &lx->city_question_words) && (v = shape_bare_city(lx, &f)) != NULL))
		take(a, F_CITY, v);
	/* A time frame says more than an urgency word: "lo antes posible, ojalá la otra semana". */
	if ((v = shape_time(lx, &f)) != NULL || (v = find_span_after(lx, &f, &lx->urgency, 0)) != NULL)
		take(a, F_URGENCY, v);
	take(a, F_NEED, find_span_after(lx, &f, &lx->need_markers, 4));
	if (has_any(f.s, &lx->manipulation))
		a->manipulation = true;
	if (has_any(f.s, &lx->human))
		sg->human = true;
	if (has_any(f.s, &lx->purchase))
		sg->purchase = true;
	/* Support counts in the last two user messages: an old complaint that was solved is history. */
	if (recent && *(why = support_reason(lx, &f, sg)) != '\0') {
		rd->support = true;
		snprintf(rd->reason, sizeof(rd->reason), "%s", why);
	}
	if (last && sg->budget_asked && has_any(f.s, &lx->refusals))
		sg->budget_refused = true;
	for (size_t k = 0; k < lx->positive.n; k++)
		if (text_find(f.s, 0, lx->positive.p[k]) >= 0)
			rd->pos++;
	for (size_t k = 0; k < lx->negative.n; k++)
		if (text_find(f.s, 0, lx->negative.p[k]) >= 0)
			rd->neg++;
	if (!greeting_only(lx, f.s))
		rd->greet = false;
out:
	text_folded_free(&f);
	free(cut);
}

void
rules_analyze(const struct lexicon *lx, const struct conversation *c, struct analysis *a, struct signals *sg)
{
	char all[8192] = "";
	size_t i, last_user = 0, prev_user = 0, users = 0;
	struct reading rd = {.greet = true};
	bool buying;

	memset(sg, 0, sizeof(*sg));
	for (i = 0; i < F_COUNT; i++)
		if (c->known[i] != NULL)
			analysis_set(a, (enum field)i, c->known[i]);
	if (a->fields[F_PRODUCT] != NULL) {
		char *n = text_fold_str(a->fields[F_PRODUCT]);
		sg->product_specific = !shape_in_list(n, &lx->generic_products);
		free(n);
	}
	for (i = 0; i < c->n; i++)
		if (c->msg[i].user) {
			prev_user = users > 0 ? last_user : i;
			last_user = i;
			users++;
		}
	sg->user_turns = (unsigned)users;

	for (i = 0; i < c->n; i++) {
		if (!c->msg[i].user) {
			char *fb = text_fold_str(c->msg[i].text);
			if (has_any(fb, &lx->budget_words) && strchr(c->msg[i].text, '?') != NULL)
				sg->budget_asked = true;
			free(fb);
			continue;
		}
		{
			/* All user text, for language detection; cut when it fills the buffer. */
			size_t used = strlen(all);
			snprintf(all + used, sizeof(all) - used, "%s\n", c->msg[i].text);
		}
		read_message(lx, c, i, i >= prev_user, i == last_user, a, sg, &rd);
	}
	/*
	 * The customer's language message by message: their last message's when it says it clearly (at least two
	 * words of one language, more than of any other: "Hola, ¿hablan español?" in an English chat), else the
	 * whole chat's.
	 */
	if (users == 0 || !language_of(lx, c->msg[last_user].text, 2, a->lang))
		rules_language(lx, all, a->lang);
	if (c->lang[0] != '\0' && strcmp(a->lang, lx->default_lang) == 0)
		memcpy(a->lang, c->lang, 3);
	a->sentiment = rd.neg > rd.pos ? (rd.neg >= 2 ? -0.8 : -0.5)
	    : rd.pos > rd.neg          ? (rd.pos >= 2 ? 0.7 : 0.4)
	                               : 0.0;

	for (i = 0; i < F_COUNT; i++)
		if (a->fields[i] != NULL)
			sg->any_signal = true;
	sg->any_signal |= sg->purchase || rd.support || sg->human || a->manipulation || rd.spam;
	sg->greeting_only = rd.greet && !sg->any_signal;

	buying = a->fields[F_PRODUCT] != NULL || sg->purchase || a->fields[F_BUDGET] != NULL;
	/* An amount in a complaint is a price paid or a refund, not a budget. */
	if (rd.support && c->known[F_BUDGET] == NULL)
		analysis_set(a, F_BUDGET, NULL);
	if (sg->human) {
		/* A buyer who wants a person stays a buyer (the quality is what they said); the policy hands over. */
		a->intent = buying && !rd.support ? I_SALES : I_SUPPORT;
		snprintf(a->reason, sizeof(a->reason), "human");
	} else if (rd.support) {
		a->intent = I_SUPPORT;
		snprintf(a->reason, sizeof(a->reason), "%s", rd.reason);
	} else if (rd.spam && !buying) {
		a->intent = I_OTHER;
		snprintf(a->reason, sizeof(a->reason), "spam");
	} else if (a->manipulation && a->fields[F_PRODUCT] == NULL) {
		a->intent = I_OTHER;
		snprintf(a->reason, sizeof(a->reason), "manipulation");
	} else if (a->fields[F_PRODUCT] != NULL || sg->purchase || a->fields[F_BUDGET] != NULL) {
		char *s = text_fold_str(all);
		a->intent = I_SALES;
		snprintf(a->reason, sizeof(a->reason), "%s",
		    (strstr(s, "precio") || strstr(s, "cuanto") || strstr(s, "price") || strstr(s, "how much") ||
		        strstr(s, "quanto") || strstr(s, "preco") || strstr(s, "cotiza"))
		        ? "pricing"
		        : "purchase");
		free(s);
	} else {
		a->intent = I_OTHER;
		snprintf(a->reason, sizeof(a->reason), "%s", sg->greeting_only ? "greeting" : "unclear");
	}
	a->source = "rules";
}
