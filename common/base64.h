/* Standard base64 (RFC 4648, with padding), shared by the Twilio signature and XML-RPC. */
#ifndef CRMB_BASE64_H
#define CRMB_BASE64_H

#include <stddef.h>

/* Encodes len bytes into out, which needs base64_encoded_size(len) bytes; returns the length. */
size_t base64_encode(const void *in, size_t len, char *out);
/* Bytes needed to encode len bytes, including the NUL. */
#define base64_encoded_size(len) ((((len) + 2) / 3) * 4 + 1)
/*
 * Decodes in (whitespace ignored) into out, which needs len * 3 / 4 + 3 bytes.
 * Returns the decoded length, or -1 on bad input.
 */
long base64_decode(const char *in, size_t len, void *out);

#endif
