/*
 * Sentence shapes for the offline rules: what the customer asks for read
 * from the shape of the sentence ("busco …", "need a …", "orçamento de …")
 * rather than from a product list; time frames; places; amounts' edges;
 * spam; and injected "system" blocks. All the words are the lexicon's
 * (object_*, time_*, spam*, injection, city_*), so they are data, not code.
 */
#ifndef CRMB_SHAPE_H
#define CRMB_SHAPE_H

#include <stdbool.h>
#include <stddef.h>

#include "lexicon.h"
#include "text.h"

/*
 * The object of a purchase or a need after a trigger ("quiero cotizar catering para …" -> "catering"). specific
 * is false for a bare category of the lexicon's generic_products ("un carro", "seguros"). NULL if none.
 */
char *shape_object(const struct lexicon *lx, const struct folded *f, bool *specific);
/* A short answer to "what are you looking for?" that is itself the object ("Un seguro para mi moto"). */
char *shape_bare_object(const struct lexicon *lx, const struct folded *f, bool *specific);
/* A time frame with its preposition ("para marzo", "antes de diciembre", "el 15 de mayo", "by Q2"), or NULL. */
char *shape_time(const struct lexicon *lx, const struct folded *f);
/* A place after a place phrase ("vivo en Rosario", "based in Leeds"): capitalised words. NULL if none. */
char *shape_city(const struct lexicon *lx, const struct folded *f);
/* A reply to "which city?" that is only a place ("Rosario", "en Viña del Mar"). */
char *shape_bare_city(const struct lexicon *lx, const struct folded *f);
/* Where an injected block starts ("<system>", "Verified customer data:", "```") in folded s, or -1. */
long shape_injection(const struct lexicon *lx, const char *s);
/* Whether folded s is spam, a scam, a supplier's pitch, a wrong number or a job application. */
bool shape_spam(const struct lexicon *lx, const char *s);

/* If a number starts at i in s, where it ends (digits with . , separators, an optional k); else 0. */
size_t shape_number_end(const char *s, size_t i);
/* After a number ending at j: extends over amount units ("mil", "millones de pesos", "usd"); returns the end. */
size_t shape_unit_end(const struct lexicon *lx, const char *s, size_t j, bool *has_unit);
/*
 * A quantity at a: a number with a magnitude word and the thing counted after it ("2 mil caixas"): where
 * the number ends (before the thing); 0 if it is no such quantity (money, or nothing counted).
 */
size_t shape_quantity_end(const struct lexicon *lx, const char *s, size_t a);
/* Whether w (folded) is a magnitude word: "mil", "million", "lakh". */
bool shape_magnitude(const char *w);
/* The folded word starting at i (after spaces): [*a, *b). False at the end or at a non-word character. */
bool shape_next_word(const char *s, size_t i, size_t *a, size_t *b);
/* True if a phrase of ph ends within dist characters before pos, in the same sentence (back to . ? ! or a line). */
bool shape_near_before(const char *s, size_t pos, const struct phrases *ph, size_t dist);
/* Whether word (folded) is one of ph's phrases exactly. */
bool shape_in_list(const char *word, const struct phrases *ph);

#endif
