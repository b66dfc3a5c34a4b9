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
