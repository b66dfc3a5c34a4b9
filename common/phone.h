/* Phone numbers to E.164, for matching leads however the number was written. */
#ifndef CRMB_PHONE_H
#define CRMB_PHONE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Writes the E.164 form of in ("whatsapp:+57 300-111 2233", "0057 3001112233",
 * "(300) 111 2233" with default_cc "57") into out[17]. Returns 0, or -1 if
 * it is not a plausible international number.
 */
int phone_e164(const char *in, const char *default_cc, char out[17]);
/*
 * The number of digits of the country calling code that begins e164
 * ("+573001112233" -> 2, "+14155238886" -> 1), from ITU-T E.164's list:
 * codes are prefix-free, so the first digits decide. 0 if not E.164.
 */
size_t phone_cc_len(const char *e164);
/*
 * Whether a number as someone typed it ("300 111 2233", "(300) 111-2233",
 * "+57 300 111 2233", "0057 300...", "0300 ...") is the E.164 number e164:
 * its digits are the whole number, or the national significant number with
 * or without trunk zeros in front. default_cc, when the number has no "+",
 * is not needed: the national digits are compared.
 */
bool phone_same(const char *typed, const char *e164);

#endif
