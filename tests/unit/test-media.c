/*
 * Where inbound media may come from (twilio/media.c), the media types each
 * provider takes (classifier/gemini.c), history retention
 * (conversation/state.c), and a voice note's transcript in grounding.
 */
#include "config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "classifier/gemini.h"
#include "conversation/state.h"
#include "twilio/media.h"
#include "tests/tap.h"

#define API "https://api.twilio.com"
#define MEDIA API "/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages/MM1/Media/ME1"

static void
test_urls(void)
{
	const char *why;

	ok(media_url_allowed(MEDIA, API, false, &why) == 0, "a message's media on Twilio's API");
	ok(media_url_allowed(
	       "https://api.twilio.com:443/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1", API, false, &why) == 0,
	    "with the default port spelt out");
	ok(media_url_allowed(
	       "https://API.TWILIO.COM/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1", API, false, &why) == 0,
	    "host case does not matter");
	ok(media_url_allowed("http://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1", API, false, &why) <
	        0,
	    "plain http to Twilio's host: refused (%s)", why);
	ok(media_url_allowed("https://api.twilio.com/2010-04-01/Accounts/AC0/Calls.json", API, false, &why) < 0 &&
	        media_url_allowed("https://api.twilio.com/admin", API, false, &why) < 0,
	    "another path on Twilio's host: refused");
	ok(media_url_allowed("https://api.twilio.com.evil.example/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1", API,
	       false, &why) < 0,
	    "a look-alike host: refused (%s)", why);
	ok(media_url_allowed("https://user@evil.example/2010-04-01/Accounts/", API, false, &why) < 0,
	    "another host: refused");
	ok(media_url_allowed("https://mms.twiliocdn.com/AC0/abc", API, false, &why) < 0,
	    "the CDN is not a starting point, only a redirect");
	ok(media_url_allowed("https://mms.twiliocdn.com/AC0/abc?sig=1", API, true, &why) == 0 &&
	        media_url_allowed("https://media.twiliocdn.com/x", API, true, &why) == 0,
	    "a redirect to Twilio's CDN (https, *.twiliocdn.com)");
	ok(media_url_allowed("http://mms.twiliocdn.com/x", API, true, &why) < 0,
	    "a redirect to the CDN over http: refused");
	ok(media_url_allowed("https://twiliocdn.com.evil.example/x", API, true, &why) < 0 &&
	        media_url_allowed("https://eviltwiliocdn.com/x", API, true, &why) < 0,
	    "a redirect to a look-alike of the CDN: refused");
	ok(media_url_allowed("file:///etc/passwd", API, false, &why) < 0 &&
	        media_url_allowed("not a url", API, false, &why) < 0,
	    "other schemes and garbage: refused");
	ok(media_url_allowed("http://127.0.0.1:8099/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1",
	       "http://127.0.0.1:8099", false, &why) == 0 &&
	        media_url_allowed("http://127.0.0.1:8098/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1",
	            "http://127.0.0.1:8099", false, &why) < 0,
	    "a configured api_base (a test double): its port counts");
}

static void
test_types(void)
{
	ok(model_accepts_media(PROVIDER_GEMINI, "audio/ogg") &&
	        model_accepts_media(PROVIDER_GEMINI, "audio/ogg; codecs=opus"),
	    "Gemini takes WhatsApp's ogg/opus voice notes");
	ok(model_accepts_media(PROVIDER_GEMINI, "image/jpeg") && !model_accepts_media(PROVIDER_GEMINI, "video/mp4") &&
	        !model_accepts_media(PROVIDER_GEMINI, "application/pdf"),
	    "Gemini: images yes; video and documents no");
	ok(!model_accepts_media(PROVIDER_GEMINI, "audio/amr") && !model_accepts_media(PROVIDER_GEMINI, "audio/mp4"),
	    "Gemini: AMR and MP4 audio no (its list: wav, mp3, aiff, aac, ogg, flac)");
	is_str(gemini_mime_type("audio/x-wav"), "audio/wav", "audio/x-wav is sent as audio/wav");
	is_str(gemini_mime_type("audio/mpeg"), "audio/mp3", "audio/mpeg is sent as audio/mp3");
	is_str(
	    gemini_mime_type("audio/opus"), "audio/ogg", "audio/opus (WhatsApp's Ogg voice note) is sent as audio/ogg");
	is_str(gemini_mime_type("audio/ogg; codecs=opus"), "audio/ogg", "parameters are dropped");
	is_str(gemini_mime_type("image/JPEG"), "image/jpeg", "in lower case");
	ok(!model_accepts_media(PROVIDER_OPENAI, "audio/ogg") && model_accepts_media(PROVIDER_OPENAI, "audio/mpeg") &&
	        model_accepts_media(PROVIDER_OPENAI, "image/png"),
	    "OpenAI's chat/completions: images, and audio only as wav or mp3");
}

static void
test_retention(void)
{
	json_t *st = conv_state_new("+573001112233", 1000);

	conv_state_add(st, "in", "old", 1000, "SM1", 50);
	conv_state_add(st, "out", "old reply", 2000, NULL, 50);
	conv_state_add(st, "in", "new", 90000, "SM2", 50);
	is_int(conv_state_prune(st, 100000, 0), 0, "retention 0: nothing pruned");
	is_int(conv_state_prune(st, 100000, 50000), 2, "entries older than the retention go");
	is_int(json_array_size(json_object_get(st, "history")), 1, "the newer one stays");
	json_decref(st);
}

static void
test_transcript(void)
{
	struct conversation c = {0};
	struct analysis a = {0};
	int act;
	const char *why;
	const char *answer =
	    "{\"quality\":\"warm\",\"confidence\":0.7,\"intent\":\"sales\",\"fields\":{\"name\":\"María\",\"email\":"
	    "null,"
	    "\"phone\":null,\"city\":null,\"product_interest\":\"comedor\",\"budget_range\":null,\"urgency\":null,"
	    "\"specific_need\":null},\"action\":\"request_contact_info\",\"reply\":\"¡Hola "
	    "María!\",\"language\":\"es\","
	    "\"reasoning\":\"x\",\"transcript\":\"soy María y busco un comedor\"}";

	conversation_add(&c, true, "[audio/ogg]");
	c.media_at = 0;
	c.nmedia = 1;
	ok(gemini_validate(answer, &c, &a, &act, &why) == 0, "an answer with a transcript is valid");
	ok(a.fields[F_NAME] != NULL && a.fields[F_PRODUCT] != NULL && a.invented == 0,
	    "fields found in the voice note's words are grounded in them");
	is_str(a.transcript, "soy María y busco un comedor", "the transcript is kept");
	analysis_clear(&a);
	c.nmedia = 0;
	gemini_validate(answer, &c, &a, &act, &why);
	ok(a.fields[F_NAME] == NULL && a.invented == 2 && a.transcript == NULL,
	    "without media in the message a transcript is ignored: the fields are not grounded");
	analysis_clear(&a);
	conversation_clear(&c);
}

int
main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	test_urls();
	test_types();
	test_retention();
	test_transcript();
	curl_global_cleanup();
	return done_testing();
}
