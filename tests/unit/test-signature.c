/*
 * Every signature vector of docs/PROTOCOLS.md section 2 (Twilio's official SDK
 * vectors and the WhatsApp ones), the negative ones too, plus token
 * rotation, the port variants, and the HMAC handles kept per token.
 */
#include "config.h"

#include <errno.h>
#include <gcrypt.h>
#include <stdio.h>
#include <string.h>

#include "common/base64.h"
#include "common/form.h"
#include "common/util.h"
#include "twilio/signature.h"
#include "tests/tap.h"

#define U "https://mycompany.com/myapp.php?foo=1&bar=2"
#define P "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212"
#define WA_TEXT \
	"SmsMessageSid=SM802c0d39a503aae472cee7379abff9f6&NumMedia=0&ProfileName=Camila+Cardoso&MessageType=text&" \
	"SmsSid=SM802c0d39a503aae472cee7379abff9f6&WaId=5513997270748&SmsStatus=received&Body=Oi&To=whatsapp%3A%" \
	"2B551151963407&MessagingServiceSid=MG00000000000000000000000000000000&NumSegments=1&ReferralNumMedia=0&" \
	"MessageSid=SM802c0d39a503aae472cee7379abff9f6&AccountSid=AC00000000000000000000000000000000&From=whatsapp%" \
	"3A%" \
	"2B5513997270748&ApiVersion=2010-04-01"
#define WA_LOCATION \
	"To=whatsapp%3A%2B15555550100&Body=&From=whatsapp%3A%2B15555550101&WaId=15555550101&Latitude=25.018766403198&" \
	"Longitude=-77.395950317383&NumMedia=0&MessageSid=SMed5ffcfab3da6bbbccdd8866fe793744&MessageType=location&" \
	"ProfileName=Test+User"

static const char *tok[] = {"12345"};

static void
vector(const char *url, const char *body, const char *want)
{
	struct form f;
	const char *why;
	char sig[29];

	if (form_parse(body, strlen(body), &f, &why) < 0) {
		ok(0, "form parses for %s", url);
		return;
	}
	twsig_compute("12345", url, &f, sig);
	is_str(sig, want, "signature of %s", url);
	ok(twsig_valid(tok, 1, url, &f, want), "and it validates");
	form_clear(&f);
}

/* The signature of url + body (a form already in Twilio's order), computed with a handle of its own. */
static void
reference(const char *token, const char *url, const char *sorted_pairs, char out[29])
{
	gcry_mac_hd_t h;
	unsigned char mac[20];
	size_t maclen = sizeof(mac);

	gcry_mac_open(&h, GCRY_MAC_HMAC_SHA1, 0, NULL);
	gcry_mac_setkey(h, token, strlen(token));
	gcry_mac_write(h, url, strlen(url));
	gcry_mac_write(h, sorted_pairs, strlen(sorted_pairs));
	gcry_mac_read(h, mac, &maclen);
	gcry_mac_close(h);
	base64_encode(mac, sizeof(mac), out);
}

/* True if header is accepted when the configured URL is url. */
static bool
accepts(const char *url, const char *body, const char *header)
{
	struct form f;
	const char *why;
	bool v;

	form_parse(body, strlen(body), &f, &why);
	v = twsig_valid(tok, 1, url, &f, header);
	form_clear(&f);
	return v;
}

int
main(void)
{
	char v[256];

	crypto_init();
	/* The official vectors. */
	vector(U, P, "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
	vector("https://mycompany.com:443/myapp.php?foo=1&bar=2", P, "kvajT1Ptam85bY51eRf/AJRuM3w=");
	vector("http://mycompany.com:80/myapp.php?foo=1&bar=2", P, "0ZXoZLH/DfblKGATFgpif+LLRf4=");
	vector("http://mycompany.com:1234/myapp.php?foo=1&bar=2", P, "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=");
	vector("https://mycompany.com:1234/myapp.php?foo=1&bar=2", P, "CYn1h0gLBdNxDGkKJg6hYohgeD8=");
	vector(U, "Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234", "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
	vector("https://MyCompany.com/myapp.php?foo=1&bar=2", P, "g9IN/x4Cft2g517EjYvEvM/W7LU=");
	vector("https://user:pass@mycompany.com/myapp.php?foo=1&bar=2", P, "CukzLTc1tT5dXEDIHm/tKBanW10=");
	{
		const char *body = "{\"property\": \"value\", \"boolean\": true}";
		const char *url = U "&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
		ok(twsig_valid_json(tok, 1, url, body, strlen(body), "a9nBmqA0ju/hNViExpshrM61xv4="),
		    "JSON body: bodySHA256 matches and the URL signature holds");
		ok(!twsig_valid_json(tok, 1, url, "{}", 2, "a9nBmqA0ju/hNViExpshrM61xv4="),
		    "JSON body: a different body fails the hash");
		ok(!twsig_valid_json(tok, 1, U, body, strlen(body), "a9nBmqA0ju/hNViExpshrM61xv4="),
		    "JSON body: a URL without bodySHA256 fails");
	}

	/* Negative vectors. */
	ok(!accepts(U, P, "NOTRSOYDt4T1cUTdK1PDd93/VVr8B8="), "a wrong signature fails");
	ok(!accepts("https://MyCompany.com/myapp.php?foo=1&bar=2", P, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
	    "host case is not normalised");
	ok(!accepts(U, P, ""), "an empty header fails");
	ok(!accepts(U, P "&Extra=1", "RSOYDt4T1cUTdK1PDd93/VVr8B8="), "an added parameter fails");
	ok(!accepts(U,
	       "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1235&From=%2B14158675309&To=%2B18005551212",
	       "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
	    "a changed value fails");

	/* Port variants: Twilio may have signed with or without the default port. */
	ok(accepts(U, P, "kvajT1Ptam85bY51eRf/AJRuM3w="), "configured without :443, signed with it: accepted");
	ok(accepts("https://mycompany.com:443/myapp.php?foo=1&bar=2", P, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
	    "configured with :443, signed without it: accepted");
	ok(!accepts("http://mycompany.com:80/myapp.php?foo=1&bar=2", P, "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
	    "another port's signature is not accepted");

	/* WhatsApp vectors. */
	vector("https://example.com/twilio/whatsapp", WA_TEXT, "TYil5SeBDfPKgLS3ZNVmQdEnMLg=");
	vector("https://example.com:443/twilio/whatsapp", WA_TEXT, "UmDy8noGCllPKKrVPKxbpt9sRDY=");
	vector("https://example.com/twilio/whatsapp/", WA_TEXT, "m0iBPnnSqW2Eyco+85R1DstgPRs=");
	vector("https://example.com/twilio/whatsapp?tenant=acme", WA_TEXT, "rEqsbkcydnIyW+3wsiHE8nXR81k=");
	vector("https://example.com/twilio/whatsapp", WA_LOCATION, "eEix7URLgii6NrFqMwf1DCCUabI=");
	ok(!accepts("https://example.com/twilio/whatsapp", WA_TEXT, "m0iBPnnSqW2Eyco+85R1DstgPRs="),
	    "a trailing slash is not normalised away");
	ok(accepts("https://example.com/twilio/whatsapp", WA_TEXT, "UmDy8noGCllPKKrVPKxbpt9sRDY="),
	    "WhatsApp: :443 variant accepted");

	/* Token rotation. */
	{
		const char *both[] = {"new-token", "12345"}, *newonly[] = {"new-token", NULL};
		struct form f;
		const char *why;
		form_parse(P, strlen(P), &f, &why);
		ok(twsig_valid(both, 2, U, &f, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
		    "the secondary (old) token is accepted");
		ok(!twsig_valid(newonly, 2, U, &f, "RSOYDt4T1cUTdK1PDd93/VVr8B8="), "and refused once removed");
		form_clear(&f);
	}

	/*
	 * The HMAC handles kept per token: found by the token's text, not its address, so a token changed in place
	 * (a reload) is never signed with the old key; more tokens than handles take turns; each signature is
	 * the same as a fresh handle's, whatever was signed before with the same handle.
	 */
	{
		char token[32], sig[29], want[29], name[64];
		const char *one[1] = {token};
		struct form f;
		const char *why;
		bool same = true, valid = true;
		int round, i;

		form_parse("B=2&A=1", 7, &f, &why);
		snprintf(token, sizeof(token), "%s", "token-before-reload");
		twsig_compute(token, U, &f, sig);
		reference("token-before-reload", U, "A1B2", want);
		is_str(sig, want, "signed with a token");
		snprintf(token, sizeof(token), "%s", "token-after-reload!");
		twsig_compute(token, U, &f, sig);
		reference("token-after-reload!", U, "A1B2", want);
		is_str(sig, want, "the same buffer holding a new token (a reload): signed with the new one");
		reference("token-before-reload", U, "A1B2", want);
		ok(!twsig_valid(one, 1, U, &f, want), "and the old token's signature is refused");
		for (round = 0; round < 3; round++)
			for (i = 0; i < 7; i++) {
				snprintf(token, sizeof(token), "rotating-token-%d", i);
				snprintf(name, sizeof(name), "%s/%d", U, round);
				twsig_compute(token, name, &f, sig);
				reference(token, name, "A1B2", want);
				same = same && strcmp(sig, want) == 0;
				valid = valid && twsig_valid(one, 1, name, &f, want);
			}
		ok(same, "seven tokens in turn over four handles: every signature as a fresh handle's");
		ok(valid, "and every one validates with its token");
		twsig_forget();
		twsig_compute(token, U, &f, sig);
		reference(token, U, "A1B2", want);
		is_str(sig, want, "after twsig_forget, a new handle is keyed");
		twsig_forget();
		form_clear(&f);
	}

	/* URL variants. */
	ok(twsig_url_variant("https://user:pass@h.com/x", 1, v, sizeof(v)) == 0 &&
	        strcmp(v, "https://user:pass@h.com:443/x") == 0,
	    "default port added after user info");
	ok(twsig_url_variant("https://h.com:8443?q=1", 0, v, sizeof(v)) == 0 && strcmp(v, "https://h.com?q=1") == 0,
	    "port removed before a query");
	ok(twsig_url_variant("http://[::1]/p", 1, v, sizeof(v)) == 0 && strcmp(v, "http://[::1]:80/p") == 0,
	    "IPv6 literal gets the port after the bracket");
	ok(twsig_url_variant("no-scheme", 1, v, sizeof(v)) < 0, "not a URL");
	return done_testing();
}
