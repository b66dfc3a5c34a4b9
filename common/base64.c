/* base64 with padding. libgcrypt has none; this is the one copy in the tree. */
#include "config.h"

#include <stdint.h>

#include "base64.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
base64_encode(const void *in, size_t len, char *out)
{
	const unsigned char *p = in;
	size_t i, o = 0;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = b64[v >> 18];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = b64[(v >> 6) & 63];
		out[o++] = b64[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
		out[o++] = b64[v >> 18];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

static int
b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long
base64_decode(const char *in, size_t len, void *out)
{
	unsigned char *o = out;
	uint32_t acc = 0;
	size_t i, n = 0, pad = 0;
	long olen = 0;

	for (i = 0; i < len; i++) {
		char c = in[i];
		int v;

		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || (v = b64val(c)) < 0)
			return -1; /* data after padding, or not base64 */
		acc = acc << 6 | (uint32_t)v;
		if (++n % 4 == 0) {
			o[olen++] = (unsigned char)(acc >> 16);
			o[olen++] = (unsigned char)(acc >> 8);
			o[olen++] = (unsigned char)acc;
			acc = 0;
		}
	}
	switch (n % 4) {
	case 0: break;
	case 2: o[olen++] = (unsigned char)(acc >> 4); break;
	case 3:
		o[olen++] = (unsigned char)(acc >> 10);
		o[olen++] = (unsigned char)(acc >> 2);
		break;
	default: return -1;
	}
	if (pad > 2 || (pad > 0 && (n + pad) % 4 != 0))
		return -1;
	return olen;
}
