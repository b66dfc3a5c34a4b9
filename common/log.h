/*
 * Logging to stderr with <N> priority prefixes, so journald files each line
 * at the right level. Follows OpenBSD's log.c: the daemon logs, libraries don't.
 */
#ifndef CRMB_LOG_H
#define CRMB_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <syslog.h>

/* Sets the lowest priority written (LOG_ERR .. LOG_DEBUG). */
void log_setlevel(int level);
/* Returns the current lowest priority written. */
int log_getlevel(void);
/* Parses "error", "warning", "notice", "info" or "debug"; -1 if unknown. */
int log_level_from_name(const char *name);
/* Returns the name of a level, or "unknown". */
const char *log_level_name(int level);
/* Sends output to fd (default 2, stderr); for tests. */
void log_setfd(int fd);

/* Each writes one line; errno is preserved. log_warn appends strerror(errno). */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Logs at LOG_CRIT (with strerror(errno) for fatal) and exits with status 1. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Logs at an explicit priority. */
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(int prio, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/*
 * Writes a masked form of a phone number ("+57******2233") into buf: the
 * country-code prefix (up to 3 digits) and the last 4 digits stay, the rest
 * becomes '*'. Anything that is not a plausible phone becomes "<redacted>".
 * Returns buf.
 */
const char *log_phone(const char *phone, char *buf, size_t size);
/*
 * Copies an untrusted string into buf for logging: control characters,
 * quotes and backslashes are escaped, and the result is cut at size - 1
 * bytes with "..." when longer. Returns buf.
 */
const char *log_escape(const char *s, char *buf, size_t size);

#endif
