/* Phone numbers to E.164, for matching leads however the number was written. */
#ifndef CRMB_PHONE_H
#define CRMB_PHONE_H

#include <stddef.h>

/*
 * Writes the E.164 form of in ("whatsapp:+57 300-111 2233", "0057 3001112233",
 * "(300) 111 2233" with default_cc "57") into out[17]. Returns 0, or -1 if
 * it is not a plausible international number.
 */
int phone_e164(const char *in, const char *default_cc, char out[17]);

#endif
