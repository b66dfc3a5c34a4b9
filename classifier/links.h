/*
 * Finds links in a model-written reply, so that with classifier.allow_links
 * off only the shop's configured URLs reach a customer. A link is what a
 * phone would make tappable, in whatever case and behind whatever invisible
 * or look-alike characters: a scheme ("xxx://"), "www.", an IPv4 address,
 * or a name whose label is a real top-level domain (libpsl's list).
 */
#ifndef CRMB_LINKS_H
#define CRMB_LINKS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * True when every link in text (UTF-8, may be NULL) is one of allowed[0..n-1]
 * (borrowed; NULL entries are skipped): same scheme and host in any case, the
 * configured path as a prefix that ends where the link does or at '/', '?'
 * or '#'. A link without a scheme matches on host and path. A bare host
 * matches only a configured site root. Otherwise false, and why (may be NULL)
 * names the first offending host, truncated to why_size; also false when
 * memory runs out.
 */
bool links_only_allowed(const char *text, const char *const *allowed, size_t n, char *why, size_t why_size);

#endif
