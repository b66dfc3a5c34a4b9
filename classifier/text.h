/*
 * Text helpers for the offline rules: case and accent folding with a map
 * back to the original bytes (so a value is extracted as the user wrote it),
 * and phrase search at word boundaries.
 */
#ifndef CRMB_TEXT_H
#define CRMB_TEXT_H

#include <stdbool.h>
#include <stddef.h>

struct folded {
	char *s; /* lower case ASCII; accented Latin letters lose their accent; other characters become ' ' */
	size_t *map; /* map[i]: byte offset in the original of s[i]; map[n]: the original's length */
	size_t n;
	const char *orig;
};

/* Folds in into f (f borrows in). */
void text_fold(const char *in, struct folded *f);
/* Frees f's buffers. */
void text_folded_free(struct folded *f);
/* Folds s into a new string (caller frees). */
char *text_fold_str(const char *s);
/* True if c is a letter or digit in folded text. */
bool text_isword(char c);
/*
 * Finds phrase (already folded) in hay at word boundaries, starting at from.
 * Returns the offset, or -1.
 */
long text_find(const char *hay, size_t from, const char *phrase);
/* Like text_find, for a phrase starting at from..last only (last below hay's length): bounded work. */
long text_find_within(const char *hay, size_t from, size_t last, const char *phrase);
/* Characters the text_find functions have stepped over since the start: lets tests bound the work. */
extern unsigned long long text_find_work;
/* True if the original character behind folded offset i is a currency sign (£ € ₹), which folds to a space. */
bool text_currency_sign(const struct folded *f, size_t i);
/* True if the original character behind folded offset i is an upper-case letter (ASCII or À..Þ). */
bool text_orig_upper(const struct folded *f, size_t i);
/* Copies the original bytes behind folded [a, b) into a new trimmed string (caller frees). */
char *text_span(const struct folded *f, size_t a, size_t b);

#endif
