/* {placeholder} expansion for the configurable texts: questions, lead names. */
#ifndef CRMB_TEMPLATE_H
#define CRMB_TEMPLATE_H

#include <stddef.h>

/*
 * Returns t with each {keys[i]} replaced by vals[i] (NULL: nothing); other
 * braces stay as written. Caller frees.
 */
char *template_expand(const char *t, const char *const *keys, const char *const *vals, size_t n);

#endif
