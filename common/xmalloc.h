/*
 * Allocation wrappers that abort on failure or size overflow (tmux's
 * xmalloc.c). Out of memory is not recoverable in the daemon; systemd
 * restarts it. Pure parsers use plain malloc and report failure instead.
 */
#ifndef CRMB_XMALLOC_H
#define CRMB_XMALLOC_H

#include <stddef.h>

/* Each returns memory the caller frees with free(); never NULL. */
void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* asprintf that aborts on failure; *ret is the caller's to free. */
int xasprintf(char **ret, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
