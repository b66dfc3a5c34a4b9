/*
 * The Twilio signature canonicaliser: input = URL line, header line, then a
 * form body. Computing, checking and the port variants must never misbehave,
 * and a signature we computed must verify.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common/form.h"
#include "twilio/signature.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *url, *hdr, *body, sig[29], variant[2048];
	const char *tokens[2] = {"12345", "secondary-token"};
	struct form f;
	const char *why;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	url = buf;
	if ((hdr = strchr(url, '\n')) == NULL) {
		free(buf);
		return 0;
	}
	*hdr++ = '\0';
	if ((body = strchr(hdr, '\n')) == NULL) {
		free(buf);
		return 0;
	}
	*body++ = '\0';
	twsig_url_variant(url, 0, variant, sizeof(variant));
	twsig_url_variant(url, 1, variant, sizeof(variant));
	twsig_valid_json(tokens, 2, url, body, strlen(body), hdr);
	if (form_parse(body, strlen(body), &f, &why) == 0) {
		twsig_valid(tokens, 2, url, &f, hdr);
		if (twsig_compute(tokens[1], url, &f, sig) == 0 && !twsig_valid(tokens, 2, url, &f, sig))
			__builtin_trap(); /* our own signature must verify */
		form_clear(&f);
	}
	free(buf);
	return 0;
}
