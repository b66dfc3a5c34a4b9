/*
 * E.164 normalisation: separators go, "00" becomes "+", a national number
 * gets the configured country code. Length is checked (8 to 15 digits);
 * numbering plans are not (Odoo's phonenumbers does that on its side).
 */
#include "config.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "phone.h"

int
phone_e164(const char *in, const char *default_cc, char out[17])
{
	char digits[32];
	size_t n = 0;
	bool plus = false;
	const char *p = in;

	if (in == NULL)
		return -1;
	if (strncmp(p, "whatsapp:", 9) == 0)
		p += 9;
	while (*p == ' ')
		p++;
	if (*p == '+') {
		plus = true;
		p++;
	}
	for (; *p != '\0'; p++) {
		if (isdigit((unsigned char)*p)) {
			if (n + 1 >= sizeof(digits))
				return -1;
			digits[n++] = *p;
		} else if (strchr(" -.()/", *p) == NULL) {
			return -1;
		}
	}
	digits[n] = '\0';
	if (!plus && n > 2 && digits[0] == '0' && digits[1] == '0') {
		memmove(digits, digits + 2, n - 1);
		n -= 2;
		plus = true;
	}
	if (!plus) {
		char tmp[40];
		if (default_cc == NULL || *default_cc == '\0')
			return -1;
		while (n > 0 && digits[0] == '0') { /* a trunk prefix */
			memmove(digits, digits + 1, n);
			n--;
		}
		snprintf(tmp, sizeof(tmp), "%s%s", default_cc, digits);
		if (strlen(tmp) >= sizeof(digits))
			return -1;
		snprintf(digits, sizeof(digits), "%s", tmp);
		n = strlen(digits);
	}
	if (n < 8 || n > 15 || digits[0] == '0')
		return -1;
	snprintf(out, 17, "+%s", digits);
	return 0;
}

size_t
phone_cc_len(const char *e164)
{
	/* Two-digit codes; 1 and 7 are the one-digit ones; every other code has three digits. */
	static const char two[] = "20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 "
	                          "60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98 ";
	char cc[4];

	if (e164 == NULL || e164[0] != '+' || !isdigit((unsigned char)e164[1]) || !isdigit((unsigned char)e164[2]))
		return 0;
	if (e164[1] == '1' || e164[1] == '7')
		return 1;
	snprintf(cc, sizeof(cc), "%c%c ", e164[1], e164[2]);
	return strstr(two, cc) != NULL ? 2 : 3;
}

bool
phone_same(const char *typed, const char *e164)
{
	char d[40];
	const char *nat, *p;
	size_t n = 0, cl = phone_cc_len(e164);

	if (typed == NULL || cl == 0)
		return false;
	for (p = typed; *p != '\0' && n + 1 < sizeof(d); p++)
		if (isdigit((unsigned char)*p))
			d[n++] = *p;
	d[n] = '\0';
	if (n < 6)
		return false;
	if (strcmp(d, e164 + 1) == 0)
		return true; /* +57 300 111 2233, 57 300 ... */
	if (n > 2 && d[0] == '0' && d[1] == '0' && strcmp(d + 2, e164 + 1) == 0)
		return true; /* 0057 300 ... */
	nat = e164 + 1 + cl;
	p = d;
	while (*p == '0' && *nat != '0')
		p++; /* a trunk prefix: 0300 ..., 07700 ... */
	return strcmp(p, nat) == 0;
}
