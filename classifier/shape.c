/*
 * Sentence shapes. Each reader walks the folded text word by word and
 * matches the lexicon's phrases at word starts, so its cost is linear in the
 * text for a given lexicon (no search from every match to the end).
 */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "shape.h"

#define MAX_OBJECT_WORDS 6
#define MAX_PLACE_WORDS 4

bool
shape_next_word(const char *s, size_t i, size_t *a, size_t *b)
{
	while (s[i] == ' ')
		i++;
	if (!text_isword(s[i]))
		return false;
	*a = i;
	/* Digits keep their separators ("2.000.000"), words their hyphens ("guarda-roupa", "sofá-cama"). */
	while (text_isword(s[i]) ||
	    ((s[i] == '.' || s[i] == ',') && isdigit((unsigned char)s[i + 1]) && i > *a &&
	        isdigit((unsigned char)s[i - 1])) ||
	    (s[i] == '-' && i > *a && isalpha((unsigned char)s[i - 1]) && isalpha((unsigned char)s[i + 1])))
		i++;
	*b = i;
	return true;
}

bool
shape_in_list(const char *word, const struct phrases *ph)
{
	for (size_t i = 0; i < ph->n; i++)
		if (strcmp(word, ph->p[i]) == 0)
			return true;
	return false;
}

size_t
shape_number_end(const char *s, size_t i)
{
	size_t j = i;

	if (!isdigit((unsigned char)s[j]))
		return 0;
	while (isdigit((unsigned char)s[j]) || ((s[j] == '.' || s[j] == ',') && isdigit((unsigned char)s[j + 1])))
		j++;
	/* "6k", "1.5m" (m: a million where an amount is expected; the unit check decides). */
	if ((s[j] == 'k' || s[j] == 'm') && !text_isword(s[j + 1]))
		j++;
	return j;
}

size_t
shape_unit_end(const struct lexicon *lx, const char *s, size_t j, bool *has_unit)
{
	size_t i, best = j, round;

	*has_unit = j > 0 && s[j - 1] == 'k';
	/* Up to two units in a row: "5 mil reais", "2 millones de pesos". */
	for (round = 0; round < 2; round++) {
		size_t from = best;
		for (i = 0; i < lx->amount_units.n; i++) {
			const char *u = lx->amount_units.p[i];
			size_t k = best, ul = strlen(u);
			while (s[k] == ' ')
				k++;
			if (strncmp(s + k, u, ul) == 0 && !text_isword(s[k + ul]) && k + ul > best) {
				best = k + ul;
				*has_unit = true;
			}
		}
		if (best == from)
			break;
	}
	return best;
}

bool
shape_magnitude(const char *w)
{
	static const char *const m[] = {"mil", "millon", "millones", "million", "millions", "thousand", "hundred",
	    "milhao", "milhoes", "millon y medio", "millones y medio", "lakh", "lakhs", "crore", "crores"};

	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		if (strcmp(w, m[i]) == 0)
			return true;
	return false;
}

/* The length of ph's longest phrase at i (a word start), ending at a word boundary; 0 if none. */
static size_t
phrase_at(const char *s, size_t i, const struct phrases *ph)
{
	if (i > 0 && text_isword(s[i - 1]))
		return 0;
	text_find_work += ph->n; /* the work the linearity tests count */
	/* Phrases are sorted longest first: the first that matches is the longest. */
	for (size_t k = 0; k < ph->n; k++) {
		size_t l = strlen(ph->p[k]);
		if (l > 0 && strncmp(s + i, ph->p[k], l) == 0 &&
		    (!text_isword(s[i + l]) || !text_isword(ph->p[k][l - 1])))
			return l;
	}
	return 0;
}

/* The start of ph's longest phrase ending at end (spaces before end skipped), at a word boundary; -1 if none. */
static long
phrase_before(const char *s, size_t end, const struct phrases *ph)
{
	while (end > 0 && s[end - 1] == ' ')
		end--;
	text_find_work += ph->n;
	for (size_t k = 0; k < ph->n; k++) {
		size_t l = strlen(ph->p[k]);
		if (l > 0 && end >= l && strncmp(s + end - l, ph->p[k], l) == 0 &&
		    (end == l || !text_isword(s[end - l - 1]) || !text_isword(ph->p[k][0])))
			return (long)(end - l);
	}
	return -1;
}

static size_t
skip_spaces(const char *s, size_t i)
{
	while (s[i] == ' ')
		i++;
	return i;
}

bool
shape_near_before(const char *s, size_t pos, const struct phrases *ph, size_t dist)
{
	size_t i, from = pos > dist ? pos - dist : 0;

	for (i = pos; i > from; i--)
		if (s[i - 1] == '.' || s[i - 1] == '?' || s[i - 1] == '!' || s[i - 1] == '\n') {
			from = i;
			break;
		}
	/* Only the window is searched (text_find would go on to the end of s: quadratic over many numbers). */
	for (i = 0; i < ph->n; i++) {
		size_t len = strlen(ph->p[i]);
		if (pos >= from + len && text_find_within(s, from, pos - len, ph->p[i]) >= 0)
			return true;
	}
	return false;
}

size_t
shape_quantity_end(const struct lexicon *lx, const char *s, size_t a)
{
	static const char *const fn[] = {"de", "del", "para", "pra", "y", "e", "o", "ou", "and", "or", "en", "em", "al",
	    "por", "mas", "pero", "que", "of", "for", "to", "a", "no", "na", "com", "con", "with", "in", "at", "ate",
	    "hasta", "up", "me", "mi", "my", "meu", "minha", "es", "is", "son", "sao"};
	size_t ne = shape_number_end(s, a), end, wa, wb, la;
	bool unit;
	char w[24];

	if (ne == 0)
		return 0;
	end = shape_unit_end(lx, s, ne, &unit);
	/* Only a magnitude word ("2 mil") counts things; "500 dólares" is money whatever follows, and so is "28k". */
	for (la = end; la > ne && s[la - 1] != ' '; la--)
		;
	if (!unit || end == ne || end - la >= sizeof(w))
		return 0;
	memcpy(w, s + la, end - la);
	w[end - la] = '\0';
	if (!shape_magnitude(w))
		return 0;
	if (!shape_next_word(s, end, &wa, &wb) || wa != skip_spaces(s, end) || !isalpha((unsigned char)s[wa]) ||
	    wb - wa >= sizeof(w))
		return 0;
	memcpy(w, s + wa, wb - wa);
	w[wb - wa] = '\0';
	for (size_t i = 0; i < sizeof(fn) / sizeof(fn[0]); i++)
		if (strcmp(w, fn[i]) == 0)
			return 0;
	if (phrase_at(s, wa, &lx->amount_units) > 0 || phrase_at(s, wa, &lx->budget_words) > 0 ||
	    phrase_at(s, wa, &lx->time_words) > 0 || phrase_at(s, wa, &lx->urgency) > 0)
		return 0;
	return end;
}

/* True if the word [a, b) of s is ph's phrase exactly. */
static bool
word_is(const char *s, size_t a, size_t b, const struct phrases *ph)
{
	return phrase_at(s, a, ph) == b - a;
}

/* Skips verbs of buying and determiners: "cotizar un", "to book a", "fazer um". */
static size_t
skip_lead_in(const struct lexicon *lx, const struct folded *f, size_t i)
{
	static const char *const to[] = {
	    "en ", "in ", "em ", "no ", "na ", "al ", "ao ", "para ", "pra ", "for ", "to "};
	const char *s = f->s;

	for (int guard = 0; guard < 6; guard++) {
		size_t n, j, a, b;
		i = skip_spaces(s, i);
		/* "inscribir a mi hija Sofía en primaria", "enroll my son in swimming": who it is for, then what. */
		if ((n = phrase_at(s, i, &lx->object_beneficiaries)) > 0) {
			j = i + n;
			if (shape_next_word(s, j, &a, &b) && text_orig_upper(f, a))
				j = b; /* the person's name */
			j = skip_spaces(s, j);
			for (size_t k = 0; k < sizeof(to) / sizeof(to[0]) && i < j; k++)
				if (strncmp(s + j, to[k], strlen(to[k])) == 0)
					i = j + strlen(to[k]);
			if (i > j)
				continue;
			break;
		}
		if ((n = phrase_at(s, i, &lx->object_verbs)) > 0 ||
		    (n = phrase_at(s, i, &lx->object_determiners)) > 0) {
			i += n;
			continue;
		}
		/* "need to buy", "gostaria de comprar": a particle before a verb of buying. */
		if ((strncmp(s + i, "to ", 3) == 0 || strncmp(s + i, "de ", 3) == 0) &&
		    phrase_at(s, j = skip_spaces(s, i + 3), &lx->object_verbs) > 0) {
			i = j;
			continue;
		}
		break;
	}
	return i;
}

/* The object starting at i (after a trigger), ending by limit: its folded span [*from, *to). False if none. */
static bool
object_range(
    const struct lexicon *lx, const struct folded *f, size_t i, size_t limit, size_t *from, size_t *to, bool *specific)
{
	const char *s = f->s;
	size_t start, end, words = 0, a, b, n;

	i = skip_lead_in(lx, f, i);
	/* "una cita para limpieza dental", "info sobre el plan anual": the object is after the container. */
	if ((n = phrase_at(s, i, &lx->object_containers)) > 0) {
		size_t j = skip_spaces(s, i + n), m;
		if ((m = phrase_at(s, j, &lx->object_connectors)) == 0 && strncmp(s + j, "para ", 5) != 0 &&
		    strncmp(s + j, "pra ", 4) != 0 && strncmp(s + j, "for ", 4) != 0 &&
		    strncmp(s + j, "sobre ", 6) != 0 && strncmp(s + j, "about ", 6) != 0 &&
		    strncmp(s + j, "on ", 3) != 0)
			return false;
		if (m == 0)
			m = (size_t)(strchr(s + j, ' ') - (s + j));
		i = skip_lead_in(lx, f, j + m);
	}
	if (!shape_next_word(s, i, &a, &b) || a != skip_spaces(s, i) || phrase_at(s, a, &lx->object_not) > 0 ||
	    phrase_at(s, a, &lx->object_stops) > 0 || phrase_at(s, a, &lx->time_words) > 0 ||
	    phrase_at(s, a, &lx->greetings) > 0)
		return false;
	{
		/* "tenerlo", "comprarla", "hacerme": a verb with its pronoun, not a thing. */
		static const char *const clitic[] = {
		    "rlo", "rla", "rlos", "rlas", "rle", "rles", "rme", "rte", "rse", "rnos"};
		for (size_t k = 0; k < sizeof(clitic) / sizeof(clitic[0]); k++) {
			size_t cl = strlen(clitic[k]);
			if (b - a > cl + 2 && strncmp(s + b - cl, clitic[k], cl) == 0)
				return false;
		}
	}
	start = a;
	end = a;
	while (words < MAX_OBJECT_WORDS && shape_next_word(s, end, &a, &b) && a < limit) {
		size_t ne;
		bool unit = false;
		if (a != skip_spaces(s, end))
			break; /* punctuation between: the phrase has ended */
		if ((ne = shape_quantity_end(lx, s, a)) > 0) {
			/* "2 mil caixas": a quantity belongs to the object. */
			end = ne;
			words++;
			continue;
		}
		if ((ne = shape_number_end(s, a)) > 0 && (shape_unit_end(lx, s, ne, &unit), unit))
			break; /* an amount: the budget, not the object */
		if (a > start && word_is(s, a, b, &lx->object_connectors)) {
			size_t a2, b2;
			/* A connector belongs to the object only if a word of it follows: "pasajes a Cusco". */
			if (!shape_next_word(s, b, &a2, &b2) || a2 != skip_spaces(s, b) ||
			    phrase_at(s, a2, &lx->object_stops) > 0 || phrase_at(s, a2, &lx->time_words) > 0 ||
			    phrase_at(s, a2, &lx->budget_words) > 0 ||
			    (isdigit((unsigned char)s[a2]) && s[a2 + 1] != ' '))
				break;
			end = b;
			continue;
		}
		if (a > start &&
		    (phrase_at(s, a, &lx->object_stops) > 0 || phrase_at(s, a, &lx->time_words) > 0 ||
		        phrase_at(s, a, &lx->budget_words) > 0 || phrase_at(s, a, &lx->greetings) > 0 ||
		        phrase_at(s, a, &lx->urgency) > 0))
			break;
		end = b;
		words++;
	}
	if (words == 0)
		return false;
	{
		/* A bare category of the lexicon's ("un carro", "seguros") is an interest, not a specific one. */
		char *o = xstrndup(s + start, end - start);
		*specific = !shape_in_list(o, &lx->generic_products);
		free(o);
	}
	*from = start;
	*to = end;
	return true;
}

static char *
object_at(const struct lexicon *lx, const struct folded *f, size_t i, bool *specific)
{
	size_t a, b;

	return object_range(lx, f, i, SIZE_MAX, &a, &b, specific) ? text_span(f, a, b) : NULL;
}

/*
 * "La Pulsar NS 200 en cuánto está?", "¿qué seguros manejan?", "sofá cama tienen?": the object is the whole
 * sentence before a price or stock question that ends it.
 */
static char *
object_before(const struct lexicon *lx, const struct folded *f, bool *specific)
{
	static const char *const ask[] = {"que ", "qual ", "quais ", "what ", "which ", "cuales ", "cual "};
	const char *s = f->s;

	for (size_t i = 0; s[i] != '\0'; i++) {
		size_t n, k, e, start, a, b;
		if ((i > 0 && text_isword(s[i - 1])) || (n = phrase_at(s, i, &lx->object_suffixes)) == 0)
			continue;
		e = skip_spaces(s, i + n);
		if (s[e] != '\0' && s[e] != '?' && s[e] != '.' && s[e] != '!' && s[e] != '\n')
			continue;
		for (k = i; k > 0 && strchr(".?!\n,", s[k - 1]) == NULL; k--)
			text_find_work++;
		start = skip_spaces(s, k);
		while ((n = phrase_at(s, start, &lx->greetings)) > 0)
			start = skip_spaces(s, start + n);
		for (size_t q = 0; q < sizeof(ask) / sizeof(ask[0]); q++)
			if (strncmp(s + start, ask[q], strlen(ask[q])) == 0)
				start = skip_spaces(s, start + strlen(ask[q]));
		if (start < i && object_range(lx, f, start, i, &a, &b, specific) && skip_spaces(s, b) == i)
			return text_span(f, a, b);
	}
	return NULL;
}

char *
shape_object(const struct lexicon *lx, const struct folded *f, bool *specific)
{
	const char *s = f->s;

	for (size_t i = 0; s[i] != '\0'; i++) {
		size_t n;
		char *o;
		if ((i > 0 && text_isword(s[i - 1])) || (n = phrase_at(s, i, &lx->object_triggers)) == 0)
			continue;
		if ((o = object_at(lx, f, i + n, specific)) != NULL)
			return o;
	}
	return object_before(lx, f, specific);
}

char *
shape_bare_object(const struct lexicon *lx, const struct folded *f, bool *specific)
{
	const char *s = f->s;
	size_t i = 0, words = 0, a, b, n;

	for (size_t k = 0; shape_next_word(s, k, &a, &b); k = b)
		if (++words > 8)
			return NULL; /* a sentence, not an answer */
	/* "Hola, un seguro para mi moto": greetings and punctuation before the answer. */
	for (;;) {
		while (s[i] != '\0' && !text_isword(s[i]))
			i++;
		if ((n = phrase_at(s, i, &lx->greetings)) == 0)
			break;
		i += n;
	}
	return s[i] != '\0' ? object_at(lx, f, i, specific) : NULL;
}

char *
shape_time(const struct lexicon *lx, const struct folded *f)
{
	const char *s = f->s;

	for (size_t i = 0; s[i] != '\0'; i++) {
		size_t n, end, k;
		long start = -1, p;

		if ((i > 0 && text_isword(s[i - 1])) || (n = phrase_at(s, i, &lx->time_words)) == 0)
			continue;
		end = i + n;
		/* A day before the month: "15 de mayo", "el 15 de mayo", "dia 3 de março". */
		k = i;
		while (k > 0 && s[k - 1] == ' ')
			k--;
		if (k >= 3 && (strncmp(s + k - 3, " de", 3) == 0 || strncmp(s + k - 3, " of", 3) == 0))
			k -= 3;
		{
			/* "14th September", "the 3rd of May", "15 de mayo". */
			size_t e = k, d;
			if (e >= 2 &&
			    (strncmp(s + e - 2, "st", 2) == 0 || strncmp(s + e - 2, "nd", 2) == 0 ||
			        strncmp(s + e - 2, "rd", 2) == 0 || strncmp(s + e - 2, "th", 2) == 0))
				e -= 2;
			d = e;
			while (d > 0 && isdigit((unsigned char)s[d - 1]))
				d--;
			if (d < e && e - d <= 2 && (d == 0 || !text_isword(s[d - 1])))
				start = (long)d;
		}
		if (start < 0 && (p = phrase_before(s, i, &lx->time_preps)) >= 0)
			start = p;
		else if (start >= 0 && (p = phrase_before(s, (size_t)start, &lx->time_preps)) >= 0)
			start = p;
		/* "May 15", "June 3rd": the day after the month. */
		if (s[end] == ' ' && isdigit((unsigned char)s[end + 1])) {
			size_t d = end + 1;
			while (isdigit((unsigned char)s[d]))
				d++;
			if (d - end - 1 <= 2) {
				if (start < 0)
					start = (long)i;
				end = d;
				if (strncmp(s + end, "st", 2) == 0 || strncmp(s + end, "nd", 2) == 0 ||
				    strncmp(s + end, "rd", 2) == 0 || strncmp(s + end, "th", 2) == 0)
					end += 2;
			}
		}
		/* "la próxima semana", "semana que vem" stand alone; one word needs a preposition or a day. */
		if (start < 0 && memchr(s + i, ' ', n) != NULL)
			start = (long)i;
		if (start < 0)
			continue;
		/* "Compré el sábado", "¿abren el domingo?": a past purchase or opening hours, not a deadline. */
		if (shape_near_before(s, (size_t)start, &lx->time_not_context, 48))
			continue;
		/* A year after it: "marzo de 2027", "March 2027". */
		k = end;
		if (strncmp(s + k, " de ", 4) == 0 || strncmp(s + k, " do ", 4) == 0)
			k += 4;
		else if (s[k] == ' ')
			k++;
		if (isdigit((unsigned char)s[k]) && shape_number_end(s, k) == k + 4)
			end = k + 4;
		return text_span(f, (size_t)start, end);
	}
	return NULL;
}

/* Capitalised words of a place from i (lower case too when the place ends the clause), or NULL. */
static char *
place_at(const struct lexicon *lx, const struct folded *f, size_t i, bool any_case)
{
	const char *s = f->s;
	size_t a, b, start, end, words = 0;
	bool upper = true;

	if (!shape_next_word(s, i, &a, &b) || a != skip_spaces(s, i) || isdigit((unsigned char)s[a]))
		return NULL;
	if (phrase_at(s, a, &lx->not_cities) > 0 || phrase_at(s, a, &lx->object_stops) > 0 ||
	    phrase_at(s, a, &lx->time_words) > 0 || phrase_at(s, a, &lx->object_determiners) > 0 ||
	    phrase_at(s, a, &lx->greetings) > 0 || phrase_at(s, a, &lx->object_not) > 0)
		return NULL;
	start = end = a;
	while (words < MAX_PLACE_WORDS && shape_next_word(s, end, &a, &b) && a == skip_spaces(s, end)) {
		bool cap = text_orig_upper(f, a);
		if (!cap && words > 0 && word_is(s, a, b, &lx->object_connectors) && (b - a) <= 3) {
			size_t a2, b2;
			/* "Viña del Mar", "Rio de Janeiro": a short connector between capitalised words. */
			if (!shape_next_word(s, b, &a2, &b2) || !text_orig_upper(f, a2))
				break;
			end = b;
			continue;
		}
		for (size_t k = a; k < b; k++)
			if (isdigit((unsigned char)s[k]))
				return NULL;
		if (!cap && (words > 0 || !any_case))
			break;
		if (words > 0 && (phrase_at(s, a, &lx->object_stops) > 0 || phrase_at(s, a, &lx->time_words) > 0))
			break;
		upper = upper && cap;
		end = b;
		words++;
	}
	if (words == 0)
		return NULL;
	/* A lower-case place must end its clause: "vivo en rosario" but not "estoy en camino a casa". */
	if (!upper && text_isword(s[skip_spaces(s, end)]))
		return NULL;
	return text_span(f, start, end);
}

char *
shape_city(const struct lexicon *lx, const struct folded *f)
{
	const char *s = f->s;

	for (size_t i = 0; s[i] != '\0'; i++) {
		size_t n;
		char *p;
		if ((i > 0 && text_isword(s[i - 1])) || (n = phrase_at(s, i, &lx->city_preps)) == 0)
			continue;
		if ((p = place_at(lx, f, i + n, true)) != NULL)
			return p;
	}
	return NULL;
}

char *
shape_bare_city(const struct lexicon *lx, const struct folded *f)
{
	const char *s = f->s;
	size_t i = 0, a, b, words = 0, n;

	for (size_t k = 0; shape_next_word(s, k, &a, &b); k = b)
		if (++words > 5)
			return NULL;
	while (s[i] != '\0' && !text_isword(s[i]))
		i++;
	/* "En Rosario", "in Leeds", "de Quito". */
	if ((n = phrase_at(s, i, &lx->city_preps)) > 0 || strncmp(s + i, "en ", 3) == 0 ||
	    strncmp(s + i, "in ", 3) == 0 || strncmp(s + i, "em ", 3) == 0 || strncmp(s + i, "de ", 3) == 0)
		i += n > 0 ? n : 3;
	return place_at(lx, f, i, true);
}

/* True if only punctuation and spaces come before at on its line ("SYSTEM: …", "[admin] …", "> Note to AI: …"). */
static bool
line_start(const char *s, size_t at)
{
	while (at > 0 && s[at - 1] != '\n') {
		if (text_isword(s[at - 1]))
			return false;
		at--;
	}
	return true;
}

/* A markup tag at p ("<verified_customer_data>", "</system>", "<data source=crm>"): true; "<dos metros": false. */
static bool
markup_tag(const char *p)
{
	const char *q = p + 1 + (p[1] == '/');
	size_t n = 0;

	while (isalpha((unsigned char)q[n]) || q[n] == '_' || q[n] == '-')
		n++;
	if (n < 3)
		return false;
	for (size_t k = n; k < n + 200 && q[k] != '\0' && q[k] != '\n' && q[k] != '<'; k++)
		if (q[k] == '>')
			return k == n || q[n] == ' ';
	return false;
}

long
shape_injection(const struct lexicon *lx, const char *s)
{
	long best = -1;

	/* A JSON object ('{"role": "system", …') or a markup tag is no customer's way of writing. */
	for (const char *p = s; *p != '\0' && best < 0; p++) {
		if (*p == '{') {
			const char *q = p + 1;
			while (*q == ' ' || *q == '\n')
				q++;
			if (*q == '"' || *q == '\'')
				best = (long)(p - s);
		} else if (*p == '<' && markup_tag(p)) {
			best = (long)(p - s);
		}
	}
	for (size_t k = 0; k < lx->injection.n; k++) {
		const char *m = lx->injection.p[k];
		size_t ml = strlen(m);
		long at = 0;
		/* "instructions:", "system:" only where a line starts: "are assembly instructions: included?" is a
		   customer's question. */
		while (
		    (at = text_find(s, (size_t)at, m)) >= 0 && ml > 0 && m[ml - 1] == ':' && !line_start(s, (size_t)at))
			at++;
		if (at >= 0 && (best < 0 || at < best))
			best = at;
	}
	return best;
}

bool
shape_spam(const struct lexicon *lx, const char *s)
{
	size_t hits = 0;

	for (size_t k = 0; k < lx->spam_strong.n; k++)
		if (text_find(s, 0, lx->spam_strong.p[k]) >= 0)
			return true;
	for (size_t k = 0; k < lx->spam.n && hits < 2; k++)
		if (text_find(s, 0, lx->spam.p[k]) >= 0)
			hits++;
	return hits >= 2;
}
