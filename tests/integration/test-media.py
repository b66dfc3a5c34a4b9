"""Voice notes and images (#11), end to end: the real daemon, a real redis-server, the Twilio double serving
media (Basic auth, then a redirect to its CDN) and the Gemini and OpenAI doubles whose toy model "hears" a
registered recording.

A spoken "soy María y busco un comedor" is fetched from Twilio's host with credentials (the CDN hop without
them), given to Gemini as inline data, qualified like text (its words kept as the message's text, the fields
grounded in them); the media is never written to Redis or disk. A URL off Twilio's host, a redirect away from
its CDN, a file over the size cap, a provider that does not take the type (OpenAI and ogg), and the offline
rules all end with the customer asked to write, and nothing is fetched from where it should not be.
"""

import base64
import hashlib
import http.client
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, Redis, control, done, form, free_port, get, is_eq, ok, sign, skip_all, start_fake, wait_for, workdir, write_config  # noqa

if not os.path.exists(os.environ.get("REDIS_SERVER") or "/usr/bin/redis-server"):
    skip_all("redis-server not installed")

TOKEN = "12345"
SID = "AC" + "0" * 32
GKEY, OKEY = "test-gemini-key", "sk-test-openai-0123456789"
wd = workdir()
redis = Redis(wd)
redis.start()
twilio, tport = start_fake("twilio.py", "--account-sid", SID, "--auth-token", TOKEN)
gem, gport = start_fake("gemini.py", "--toy", "--api-key", GKEY)
oai, oport = start_fake("openai.py", "--toy", "--api-key", OKEY, "--model", "gpt-4o-mini",
                        "--model", "gpt-4o-mini-audio-preview")
other, otherport = start_fake("stripe.py", "--key", "sk_test_x")  # some other server, not Twilio

# A "voice note": bytes the toy model knows the words of (OggS header, as WhatsApp's ogg/opus files start).
VOICE = b"OggS\x00\x02" + os.urandom(2048)
WORDS = "Hola, soy María Torres y busco un comedor de 6 puestos, presupuesto $3000, maria.torres@example.com"
PHOTO = b"\xff\xd8\xff\xe0" + os.urandom(1024)
PHOTO_SAYS = "A grey three-seat sofa in a living room"
BIG = b"OggS" + os.urandom(300 * 1024)
MP3 = b"ID3\x04\x00" + os.urandom(2048)  # a voice note sent as an mp3 (some WhatsApp clients, other channels)
MP3_WORDS = "Buenas, soy Pedro Ruiz, quiero cotizar 20 sillas de oficina"
media = {"ME" + "1" * 32: {"type": "audio/ogg", "b64": base64.b64encode(VOICE).decode()},
         "ME" + "2" * 32: {"type": "image/jpeg", "b64": base64.b64encode(PHOTO).decode()},
         "ME" + "3" * 32: {"type": "audio/ogg", "b64": base64.b64encode(BIG).decode()},
         "ME" + "4" * 32: {"type": "audio/mpeg", "b64": base64.b64encode(MP3).decode()}}
control(tport, {"media": media})
registry = {hashlib.sha256(VOICE).hexdigest(): WORDS, hashlib.sha256(PHOTO).hexdigest(): PHOTO_SAYS,
            hashlib.sha256(MP3).hexdigest(): MP3_WORDS}
control(gport, {"media": registry})
control(oport, {"media": registry})

port = free_port()
PUBLIC = "http://127.0.0.1:%d" % port
TWILIO = "http://127.0.0.1:%d" % tport


def config(model):
    conf = os.path.join(wd, "crmbridge-%s.conf" % model)
    oa = f"[classifier]\nprovider = openai\n[openai]\napi_key = {OKEY}\napi_base = http://127.0.0.1:{oport}/v1\n"
    m = {"gemini": f"[gemini]\napi_key = {GKEY}\napi_base = http://127.0.0.1:{gport}\n",
         "openai": oa, "openai-audio": oa + "audio_model = gpt-4o-mini-audio-preview\n",
         "rules": ""}[model]
    write_config(conf, f"""[server]
listen = 127.0.0.1:{port}
public_url = {PUBLIC}
state_dir = {os.path.join(wd, "state")}
[redis]
url = {redis.url}
[engine]
coalesce_window = 200ms
[twilio]
account_sid = {SID}
auth_token = {TOKEN}
whatsapp_from = whatsapp:+14155238886
api_base = {TWILIO}
media_max = 256KiB
{m}""")
    return conf


seq = [0]


def post(phone, body="", media_url=None, media_type=None):
    seq[0] += 1
    msid = "MM%032x" % (0x0ED000 + seq[0])
    p = [("MessageSid", msid), ("From", "whatsapp:" + phone), ("To", "whatsapp:+14155238886"), ("Body", body),
         ("ProfileName", "Cliente"), ("AccountSid", SID), ("NumMedia", "1" if media_url else "0")]
    if media_url:
        p += [("MediaUrl0", media_url), ("MediaContentType0", media_type), ("MessageType",
                                                                            media_type.split("/")[0])]
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/api/webhook/whatsapp", body=form(p).encode(),
              headers={"Content-Type": "application/x-www-form-urlencoded",
                       "X-Twilio-Signature": sign(TOKEN, PUBLIC + "/api/webhook/whatsapp", p)})
    r = c.getresponse()
    r.read()
    return r.status


def murl(me, mm="MM" + "a" * 32):
    return "%s/2010-04-01/Accounts/%s/Messages/%s/Media/%s" % (TWILIO, SID, mm, me)


def input_audio(body):
    """The input_audio parts of a chat/completions request."""
    return [p["input_audio"] for m_ in body["messages"] if isinstance(m_["content"], list) for p in m_["content"]
            if p.get("type") == "input_audio"]


def stop(d):
    d.signal(15)
    is_eq(d.wait(20), 0, "clean exit")
    d.kill()


def sent_to(phone):
    return [e["form"].get("Body") for e in get(tport, "/_log") if e["form"].get("To") == "whatsapp:" + phone
            and e["answer"] == 201]


def history(d, phone):
    return d.get_json("/api/conversation/%s/history" % urllib.parse.quote(phone, safe=""))[1]["history"]


def stored_anywhere(blob):
    """Whether the bytes (or their base64) are in any Redis value or any file of the state directory."""
    b64 = base64.b64encode(blob[:48]).decode()[:40]
    for k in redis.cli("--scan").split():
        t = redis.cli("TYPE", k).strip()
        cmd = {"string": ["GET", k], "hash": ["HGETALL", k], "list": ["LRANGE", k, "0", "-1"],
               "stream": ["XRANGE", k, "-", "+"]}.get(t)
        if cmd and b64 in redis.cli(*cmd):
            return True
    for root, _, files in os.walk(os.path.join(wd, "state")):
        for f in files:
            data = open(os.path.join(root, f), "rb").read()
            if blob[:48] in data or b64.encode() in data:
                return True
    return False


ASK_ES = "Por ahora no puedo escuchar audios ni ver imágenes. ¿Me lo escribes en un mensaje, por favor?"

# ---- 1. Gemini hears the voice note ----
d = Daemon(wd, config("gemini"))
ok(d.wait_notify("READY=1", 15) is not None, "daemon ready (Gemini)")
P1 = "+573004440001"
is_eq(post(P1, "", murl("ME" + "1" * 32), "audio/ogg"), 200, "a voice note (no Body) is accepted")
ok(wait_for(lambda: len(sent_to(P1)) >= 1, 20), "answered")
mlog = get(tport, "/_media_log")
api = [e for e in mlog if "/Media/ME1" in e["path"]]
cdn = [e for e in mlog if e["path"].startswith("/_cdn/ME1")]
ok(api and api[0]["auth"], "fetched from Twilio's API with Basic auth")
ok(cdn, "then from the CDN address it redirected to (the double's CDN shares its host, so the rule that credentials "
   "go only to Twilio's API host is checked by test-media-url in the unit tests)")
g = [e for e in get(gport, "/_log") if ":generateContent" in e["path"]]
parts = [p for c in g[-1]["body"]["contents"] for p in c["parts"]] if g else []
inline = [p["inlineData"] for p in parts if "inlineData" in p]
ok(inline and inline[0]["mimeType"] == "audio/ogg" and base64.b64decode(inline[0]["data"]) == VOICE,
   "Gemini got the voice note as inline data (audio/ogg)")
st = d.get_json("/api/conversation/%s/status" % urllib.parse.quote(P1, safe=""))[1]
f = st.get("fields", {})
ok(f.get("name") == "María Torres" and f.get("product_interest") == "comedor" and
   f.get("email") == "maria.torres@example.com", "qualified like text: the spoken name, product and e-mail", f)
h = history(d, P1)
ok(h and h[0]["text"] == "[voice note] " + WORDS, "the history keeps the words, not the audio", h[:1])
ok(not stored_anywhere(VOICE), "the audio itself is in no Redis value and no file")

# An image with a caption: the caption and what the picture shows.
P2 = "+573004440002"
post(P2, "¿Tienen este?", murl("ME" + "2" * 32), "image/jpeg")
ok(wait_for(lambda: len(sent_to(P2)) >= 1, 20), "an image with a caption is answered")
h = history(d, P2)
ok(h and h[0]["text"] == "[image] " + PHOTO_SAYS, "the image's description is kept as its text", h[:1])

# Refusals: nothing fetched off Twilio's host; a redirect away from the CDN; over the size cap.
n_other = len(get(otherport, "/_log")) if True else 0
P3 = "+573004440003"
post(P3, "", "http://127.0.0.1:%d/2010-04-01/Accounts/%s/Messages/MMx/Media/MEx" % (otherport, SID), "audio/ogg")
ok(wait_for(lambda: len(sent_to(P3)) >= 1, 20), "a media URL off Twilio's host: answered")
is_eq(sent_to(P3)[0], ASK_ES, "by asking the customer to write")
is_eq(len(get(otherport, "/_log")), n_other, "and nothing was requested from that host")
control(tport, {"media_redirect": "http://127.0.0.1:%d/_cdn/ME%s" % (otherport, "1" * 32)})
P4 = "+573004440004"
post(P4, "", murl("ME" + "1" * 32), "audio/ogg")
ok(wait_for(lambda: len(sent_to(P4)) >= 1, 20), "a redirect away from Twilio's CDN: answered")
is_eq(sent_to(P4)[0], ASK_ES, "by asking the customer to write")
is_eq(len(get(otherport, "/_log")), n_other, "and the redirect was not followed")
control(tport, {"media_redirect": None})
P5 = "+573004440005"
post(P5, "", murl("ME" + "3" * 32), "audio/ogg")
ok(wait_for(lambda: len(sent_to(P5)) >= 1, 20), "a voice note over twilio.media_max: answered")
is_eq(sent_to(P5)[0], ASK_ES, "by asking the customer to write")
m = d.request("GET", "/metrics")[2].decode()
ok('crmbridge_media_total{result="transcribed"} 2' in m and 'crmbridge_media_total{result="asked_to_write"} 3' in m,
   "metrics count media read and refused")
stop(d)

# ---- 2. OpenAI: images yes, WhatsApp's ogg voice notes no (input_audio takes wav or mp3) ----
d = Daemon(wd, config("openai"))
ok(d.wait_notify("READY=1", 15) is not None, "daemon ready (OpenAI-compatible)")
P6, P7 = "+573004440006", "+573004440007"
post(P6, "", murl("ME" + "2" * 32), "image/jpeg")
ok(wait_for(lambda: len(sent_to(P6)) >= 1, 20), "an image through chat/completions")
lo = get(oport, "/_log")
urls = [p["image_url"]["url"] for e in lo for m_ in e["body"]["messages"] if isinstance(m_["content"], list)
        for p in m_["content"] if p.get("type") == "image_url"]
ok(urls and urls[-1].startswith("data:image/jpeg;base64,"), "as an image_url data URL")
is_eq(history(d, P6)[0]["text"], "[image] " + PHOTO_SAYS, "read like text")
before = len(get(tport, "/_media_log"))
post(P7, "", murl("ME" + "1" * 32), "audio/ogg")
ok(wait_for(lambda: len(sent_to(P7)) >= 1, 20), "an ogg voice note with the openai provider: answered")
is_eq(sent_to(P7)[0], ASK_ES, "by asking the customer to write")
is_eq(len(get(tport, "/_media_log")), before, "without fetching what the model cannot take")
P9 = "+573004440009"
post(P9, "", murl("ME" + "4" * 32), "audio/mpeg")
ok(wait_for(lambda: len(sent_to(P9)) >= 1, 20), "an mp3 voice note, no openai.audio_model: answered")
is_eq(sent_to(P9)[0], ASK_ES, "by asking to write: gpt-4o-mini takes no input_audio (the double refuses it, as OpenAI)")
ok(not any(input_audio(e["body"]) for e in get(oport, "/_log")), "and no input_audio was sent")
stop(d)

# ---- 2b. OpenAI with an audio model: a voice note goes to it as input_audio ----
d = Daemon(wd, config("openai-audio"))
ok(d.wait_notify("READY=1", 15) is not None, "daemon ready (OpenAI-compatible, openai.audio_model set)")
P10 = "+573004440010"
post(P10, "", murl("ME" + "4" * 32), "audio/mpeg")
ok(wait_for(lambda: len(sent_to(P10)) >= 1, 20), "an mp3 voice note with openai.audio_model: answered")
calls = [e["body"] for e in get(oport, "/_log") if input_audio(e["body"])]
ok(calls and calls[-1]["model"] == "gpt-4o-mini-audio-preview", "the turn went to the audio model",
   [c["model"] for c in calls])
ok(calls and [a["format"] for a in input_audio(calls[-1])] == ["mp3"], "as input_audio, format mp3")
is_eq(history(d, P10)[0]["text"], "[voice note] " + MP3_WORDS, "its words kept as the customer's text")
stop(d)

# ---- 3. The offline rules: the customer is asked to write ----
d = Daemon(wd, config("rules"))
ok(d.wait_notify("READY=1", 15) is not None, "daemon ready (offline rules)")
P8 = "+573004440008"
post(P8, "Hola", None, None)
ok(wait_for(lambda: len(sent_to(P8)) >= 1, 20), "text first (Spanish)")
post(P8, "", murl("ME" + "1" * 32), "audio/ogg")
ok(wait_for(lambda: len(sent_to(P8)) >= 2, 20), "then a voice note")
is_eq(sent_to(P8)[1], ASK_ES, "without a model the bot asks the customer to write, in their language")
stop(d)
for p in (twilio, gem, oai, other):
    p.terminate()
redis.stop()
done()
