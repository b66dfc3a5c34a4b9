/* Tests for common/form.c and common/base64.c. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/form.h"
#include "tests/tap.h"

static int
parse(const char *s, struct form *f)
{
	const char *why;

	return form_parse(s, strlen(s), f, &why);
}

int
main(void)
{
	struct form f;
	const char *why;
	char buf[64];
	long n;

	is_int(parse("Body=Hola+mundo%21&From=whatsapp%3A%2B573001112233&Empty=&Flag", &f), 0,
	    "a Twilio-style body parses");
	is_int(f.n, 4, "four parameters in order");
	is_str(form_get(&f, "Body"), "Hola mundo!", "'+' and %%XX decoded");
	is_str(form_get(&f, "From"), "whatsapp:+573001112233", "whatsapp:+E164 decoded");
	is_str(form_get(&f, "Empty"), "", "empty value kept");
	is_str(form_get(&f, "Flag"), "", "name without '=' has an empty value");
	ok(form_get(&f, "body") == NULL, "names are case-sensitive");
	form_clear(&f);

	is_int(parse("Body=%C2%BFD%C3%B3nde+est%C3%A1n%3F+%F0%9F%9B%8B", &f), 0, "UTF-8 with an emoji parses");
	is_str(form_get(&f, "Body"),
	    "\xc2\xbf"
	    "D\xc3\xb3nde est\xc3\xa1n? \xf0\x9f\x9b\x8b",
	    "decoded exactly");
	form_clear(&f);

	is_int(parse("MediaUrl0=a&MediaUrl0=b&x=1", &f), 0, "repeated names parse");
	ok(f.n == 3 && strcmp(f.p[1].value, "b") == 0, "every value of a repeated name is kept");
	form_clear(&f);

	is_int(parse("", &f), 0, "an empty body is an empty form");
	is_int(f.n, 0, "no parameters");
	is_int(parse("a=1&&b=2&", &f), 0, "empty segments are skipped");
	is_int(f.n, 2, "two parameters");
	form_clear(&f);

	is_int(form_parse("Body=%zz", 8, &f, &why), -EINVAL, "bad hex rejected");
	ok(why != NULL && strstr(why, "%XX") != NULL, "reason names the escape");
	is_int(parse("Body=abc%4", &f), -EINVAL, "truncated escape rejected");
	is_int(parse("Body=abc%", &f), -EINVAL, "lone %% rejected");
	is_int(parse("Body=a%00b", &f), -EINVAL, "%%00 rejected");
	is_int(form_parse("Body=a\0b", 8, &f, &why), -EINVAL, "raw NUL rejected");
	is_int(parse("Body=%C3%28", &f), -EINVAL, "invalid UTF-8 rejected");
	is_int(parse("Body=%C0%AF", &f), -EINVAL, "overlong UTF-8 rejected");
	is_int(parse("Body=%ED%A0%80", &f), -EINVAL, "UTF-16 surrogate rejected");
	is_int(parse("Body=%F0%9F%9B", &f), -EINVAL, "truncated UTF-8 rejected");
	is_int(parse("=value", &f), -EINVAL, "empty name rejected");
	ok(f.n == 0 && f.p == NULL, "a failed parse leaves the form empty");
	{
		size_t len = 600 * 4, i;
		char *many = malloc(len + 1);
		for (i = 0; i < 600; i++)
			memcpy(many + i * 4, "a=1&", 4);
		many[len] = '\0';
		is_int(form_parse(many, len, &f, &why), -E2BIG, "more than 512 parameters rejected");
		free(many);
	}

	/* Cuts at a character: "mañana" is m a 0xc3 0xb1 a n a. */
	is_int((int)utf8_cut("mañana", 3), 2, "utf8_cut: a cut inside \"ñ\" keeps the bytes before it");
	is_int((int)utf8_cut("mañana", 4), 4, "utf8_cut: a cut after \"ñ\" keeps it");
	is_int((int)utf8_cut("mañana", 100), 7, "utf8_cut: a short string whole");
	is_int((int)utf8_cut("ab\xf0\x9f\x98\x80", 5), 2, "utf8_cut: a cut inside a 4-byte emoji drops it whole");
	is_int((int)utf8_cut("abc", 3), 3, "utf8_cut: exactly max bytes");
	ok(utf8_valid("mañana", utf8_cut("mañana", 3)), "utf8_cut: what is kept is valid UTF-8");
	is_int(base64_encode("hello", 5, buf), 8, "base64 length");
	is_str(buf, "aGVsbG8=", "base64 encode with padding");
	n = base64_decode("aGVs\nbG8=", 9, buf);
	ok(n == 5 && memcmp(buf, "hello", 5) == 0, "base64 decode skips whitespace");
	is_int(base64_decode("aGVsbG8", 7, buf), 5, "base64 decode without padding");
	is_int(base64_decode("aGV*bG8=", 8, buf), -1, "base64 rejects junk");
	is_int(base64_decode("aGVsbG8=x", 9, buf), -1, "base64 rejects data after padding");
	return done_testing();
}
