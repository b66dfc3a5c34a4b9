/*
 * Logging for crmbridged: one write(2) per line to stderr, prefixed with the
 * syslog priority in angle brackets ("<4>") as sd-daemon(3) describes, so that
 * journald assigns each line its level. Privacy helpers for phones and
 * untrusted text live here because every log call site needs them.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int log_level = LOG_INFO;
static int log_fd = 2;
static int log_tty = -1; /* stderr is a terminal: found at the first line */

static const struct {
	const char *name;
	int level;
} log_levels[] = {
    {"error", LOG_ERR},
    {"warning", LOG_WARNING},
    {"notice", LOG_NOTICE},
    {"info", LOG_INFO},
    {"debug", LOG_DEBUG},
};

void
log_setlevel(int level)
{
	if (level < LOG_ERR)
		level = LOG_ERR;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;
	log_level = level;
}

int
log_getlevel(void)
{
	return log_level;
}

void
log_setfd(int fd)
{
	log_fd = fd;
}

int
log_level_from_name(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
		if (strcasecmp(name, log_levels[i].name) == 0)
			return log_levels[i].level;
	return -1;
}

const char *
log_level_name(int level)
{
	size_t i;

	for (i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
		if (log_levels[i].level == level)
			return log_levels[i].name;
	return "unknown";
}

static void
log_write(int prio, const char *suffix, const char *fmt, va_list ap)
{
	char line[2048];
	int n, m;
	size_t len;

	/* The journal reads the priority from the prefix; a person at a terminal does not need it. */
	if (log_tty < 0)
		log_tty = isatty(log_fd);
	n = log_tty ? 0 : snprintf(line, sizeof(line), "<%d>", prio);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	len = (size_t)n + (size_t)m;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	if (suffix != NULL) {
		m = snprintf(line + len, sizeof(line) - len - 1, ": %s", suffix);
		if (m > 0)
			len += (size_t)m;
		if (len > sizeof(line) - 2)
			len = sizeof(line) - 2;
	}
	/* A formatted untrusted value must never split one record into two. */
	for (size_t i = (size_t)n; i < len; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[len++] = '\n';
	while (len > 0) {
		ssize_t w = write(log_fd, line, len);
		if (w < 0 && errno == EINTR)
			continue;
		break;
	}
}

void
log_vmsg(int prio, const char *fmt, va_list ap)
{
	int saved = errno;

	if (prio <= log_level)
		log_write(prio, NULL, fmt, ap);
	errno = saved;
}

void
log_msg(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(prio, fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if (LOG_WARNING <= log_level) {
		va_start(ap, fmt);
		log_write(LOG_WARNING, strerror(saved), fmt, ap);
		va_end(ap);
	}
	errno = saved;
}

#define LOG_FN(fn, prio) \
	void fn(const char *fmt, ...) \
	{ \
		va_list ap; \
		va_start(ap, fmt); \
		log_vmsg(prio, fmt, ap); \
		va_end(ap); \
	}
LOG_FN(log_warnx, LOG_WARNING)
LOG_FN(log_error, LOG_ERR)
LOG_FN(log_notice, LOG_NOTICE)
LOG_FN(log_info, LOG_INFO)
LOG_FN(log_debug, LOG_DEBUG)

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_write(LOG_CRIT, strerror(saved), fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_write(LOG_CRIT, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}

const char *
log_phone(const char *phone, char *buf, size_t size)
{
	const char *p = phone;
	size_t digits = 0, keep_head, i, o = 0;

	if (size == 0)
		return buf;
	if (p != NULL && strncmp(p, "whatsapp:", 9) == 0)
		p += 9;
	if (p == NULL || *p != '+') {
		snprintf(buf, size, "<redacted>");
		return buf;
	}
	for (i = 1; p[i] != '\0'; i++) {
		if (!isdigit((unsigned char)p[i])) {
			snprintf(buf, size, "<redacted>");
			return buf;
		}
		digits++;
	}
	if (digits < 7 || digits > 15) {
		snprintf(buf, size, "<redacted>");
		return buf;
	}
	/* Country code (1-3 digits) stays, as do the last four. */
	keep_head = digits >= 12 ? 2 : 1;
	if (o + 1 < size)
		buf[o++] = '+';
	for (i = 0; i < digits && o + 1 < size; i++) {
		if (i < keep_head || i >= digits - 4)
			buf[o++] = p[1 + i];
		else
			buf[o++] = '*';
	}
	buf[o] = '\0';
	return buf;
}

const char *
log_escape(const char *s, char *buf, size_t size)
{
	size_t o = 0;
	const unsigned char *p = (const unsigned char *)s;

	if (size == 0)
		return buf;
	if (s == NULL) {
		snprintf(buf, size, "(null)");
		return buf;
	}
	for (; *p != '\0'; p++) {
		char tmp[5];
		size_t n;

		if (*p == '\\' || *p == '"') {
			tmp[0] = '\\';
			tmp[1] = (char)*p;
			n = 2;
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(tmp, sizeof(tmp), "\\x%02x", *p);
			n = 4;
		} else {
			tmp[0] = (char)*p;
			n = 1;
		}
		if (o + n + 1 > size) {
			/* Truncated: mark it, keeping room for the NUL. */
			if (size >= 4) {
				o = o > size - 4 ? size - 4 : o;
				memcpy(buf + o, "...", 3);
				o += 3;
			}
			break;
		}
		memcpy(buf + o, tmp, n);
		o += n;
	}
	buf[o] = '\0';
	return buf;
}
