"""Privacy audit: the furniture-shop flow (and an English one) through the real daemon at debug level,
with Gemini failing in every way it can (its error paths are where text leaks), Odoo refusing a write
once, Twilio refusing a send, and wrong admin tokens. Then everything an operator or an attacker can
read is searched: the daemon's log, /system/status, /system/config, /metrics, the analytics, and every
error body. None may contain a customer's words, a full phone number, a token, a password or an API key."""

import http.client
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, Redis, control, done, form, get, ok, sign, skip_all, start_fake, wait_for, workdir, write_config  # noqa

if not os.path.exists(os.environ.get("REDIS_SERVER") or "/usr/bin/redis-server"):
    skip_all("redis-server not installed")

TOP = os.environ.get("TOP_SRCDIR", ".")
SID = "AC" + "7" * 32
TWILIO_TOKEN = "twilio-secret-9f8e7d6c"
ADMIN = "admin-secret-5a4b3c2d1e0f9a8b"
GOOGLE_KEY = "AIzaSy-google-secret-key-42"
ODOO_PW = "odoo-secret-password-13"
REDIS_PW = "redis-secret-password-21"
PUBLIC = "https://bot.example.com"
wd = workdir()
redis = Redis(wd, password=REDIS_PW)
redis.start()




twilio, tport = start_fake("twilio.py", "--account-sid", SID, "--auth-token", TWILIO_TOKEN)
odoo, oport = start_fake("odoo.py", "--x-fields", "--password", ODOO_PW)
gemini, gport = start_fake("gemini.py", "--api-key", GOOGLE_KEY)






conf = os.path.join(wd, "crmbridge.conf")
write_config(conf, f"""[server]
listen = 127.0.0.1:0
public_url = {PUBLIC}
admin_token = {ADMIN}
log_level = debug
[redis]
url = {redis.url}
[engine]
coalesce_window = 300ms
[gemini]
api_key = {GOOGLE_KEY}
api_base = http://127.0.0.1:{gport}
timeout = 2s
max_attempts = 2
breaker_failures = 50
[twilio]
account_sid = {SID}
auth_token = {TWILIO_TOKEN}
whatsapp_from = whatsapp:+14155238886
api_base = http://127.0.0.1:{tport}
[odoo]
url = http://127.0.0.1:{oport}
db = crmfix
username = admin
password = {ODOO_PW}
timeout = 5s
""")
# Every way Gemini fails, in turn; then its default answer (the rules fill in what it does not know).
control(gport, {"script": ["malformed", "503", "503", "blocked", "max_tokens", "hallucinated_email", "429", "429",
                           "400", "404", "thought_first"]})

d = Daemon(wd, conf)
ok(d.wait_notify("READY=1", 20), "daemon ready at debug level", d.logtext())
seq = [0]


def post(phone, body):
    seq[0] += 1
    p = [("MessageSid", "SM%032x" % (0xABC000 + seq[0])), ("AccountSid", SID), ("From", "whatsapp:" + phone),
         ("To", "whatsapp:+14155238886"), ("Body", body), ("NumMedia", "0"), ("ProfileName", "Cliente Privado")]
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    c.request("POST", "/api/webhook/whatsapp", body=form(p).encode(),
              headers={"Content-Type": "application/x-www-form-urlencoded",
                       "X-Twilio-Signature": sign(TWILIO_TOKEN, PUBLIC + "/api/webhook/whatsapp", p)})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def replies(phone):
    return [e["form"]["Body"] for e in get(tport, "/_log")
            if e.get("answer") == 201 and e["form"]["To"] == "whatsapp:" + phone]


flows = {
    "+573001119901": ["Hola, buenos días", "Busco sofás", "Soy María Fernanda, necesito un sofá de 3 puestos",
                      "Mi presupuesto es $2000", "mi correo es mafe.privada@example.com, vivo en Medellín"],
    "+14155550142": ["Hi there", "I'm Jonathan Privateperson, looking for an oak dining table",
                     "Budget around 1500 dollars, email jonny.secret@example.org"],
}
for phone, lines in flows.items():
    for i, line in enumerate(lines):
        ok(post(phone, line) == 200, "message accepted")
        wait_for(lambda: len(replies(phone)) >= i + 1, 15)
ok(all(len(replies(p)) >= len(l) for p, l in flows.items()), "every message answered",
   {p: replies(p) for p in flows})
ok(wait_for(lambda: len(get(oport, "/_leads")) >= 1, 15), "a lead reached Odoo")
# The model answers with an e-mail nobody wrote (#24: the grounding check was tested only in the unit test): a
# customer who gave a name and a wish but no e-mail must not get one, in the conversation or on a lead.
AUTH = {"Authorization": "Bearer " + ADMIN}
inv = "+573001119903"
control(gport, {"script": ["hallucinated_email"]})
post(inv, "Hola, soy Rosa Díaz y busco un sofá cama de 2 puestos, presupuesto $900")
ok(wait_for(lambda: len(replies(inv)) >= 1, 15), "a turn whose model answer invents an e-mail: answered")
ok(any("Rosa" in json.dumps(e, ensure_ascii=False) for e in get(gport, "/_log")), "(the model was asked)")
st = d.get_json("/api/conversation/%s/status" % inv, AUTH)[1]
ok("invented.person" not in json.dumps(st), "the invented e-mail is not kept", st.get("fields"))
ok(wait_for(lambda: d.get_json("/api/conversation/%s/status" % inv, AUTH)[1].get("lead_pending") is not True, 15),
   "(its lead, if any, written)")
ok(not [ld for ld in get(oport, "/_leads") if "invented.person" in json.dumps(ld)],
   "and reaches no lead", get(oport, "/_leads"))

# Error bodies an outsider can provoke.
bodies = []
for method, path, hdrs, body in [
        ("GET", "/system/status", {"Authorization": "Bearer " + ADMIN[:-1] + "0"}, None),
        ("GET", "/system/config", {}, None),
        ("GET", "/api/conversation/+573001119901/status", {"Authorization": "Basic " + ADMIN}, None),
        ("GET", "/api/conversation/+573009999999/history", {"Authorization": "Bearer " + ADMIN}, None),
        ("POST", "/api/webhook/whatsapp", {"Content-Type": "application/x-www-form-urlencoded",
                                           "X-Twilio-Signature": "bad"},
         "MessageSid=SM%s&From=whatsapp%%3A%%2B573001119901&Body=Soy+Mar%%C3%%ADa+Fernanda" % ("1" * 32)),
        ("POST", "/api/webhook/whatsapp", {"Content-Type": "application/x-www-form-urlencoded"},
         "From=whatsapp%3A%2B573001119901&Body=Mi+presupuesto+es+%242000"),
        ("GET", "/nope/+573001119901", {}, None)]:
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    c.request(method, path, body=body, headers=hdrs)
    r = c.getresponse()
    bodies.append(("%s %s -> %d" % (method, path, r.status), r.read().decode(errors="replace")))
    c.close()

A = {"Authorization": "Bearer " + ADMIN}
readable = {
    "the log": d.logtext(),
    "/system/status": json.dumps(d.get_json("/system/status", A)[1], ensure_ascii=False),
    "/system/config": json.dumps(d.get_json("/system/config", A)[1], ensure_ascii=False),
    "/metrics": d.request("GET", "/metrics", headers=A)[2].decode(),
    "/api/analytics/conversations": json.dumps(d.get_json("/api/analytics/conversations", A)[1],
                                                ensure_ascii=False),
    "/api/dead-letters": json.dumps(d.get_json("/api/dead-letters", A)[1], ensure_ascii=False),
    "the error bodies": "\n".join(b for _, b in bodies),
}
ok(len(readable["the log"].splitlines()) > 20 and "<7>" in readable["the log"], "the log is at debug level",
   readable["the log"][:500])

secrets = {"Twilio auth token": TWILIO_TOKEN, "admin token": ADMIN, "Google API key": GOOGLE_KEY,
           "Odoo password": ODOO_PW, "Redis password": REDIS_PW}
words = [w for lines in flows.values() for w in lines if len(w) > 8] + [
    "María Fernanda", "mafe.privada", "Jonathan Privateperson", "jonny.secret", "Medellín", "oak dining table",
    "Cliente Privado"]
phones = [p for p in flows] + [p[1:] for p in flows] + ["3001119901", "4155550142"]
for where, text in readable.items():
    for name, secret in secrets.items():
        ok(secret not in text, "%s: no %s" % (where, name))
    leaked = [w for w in words if w in text]
    ok(not leaked, "%s: no customer words" % where, leaked)
    leaked = [p for p in phones if p in text]
    ok(not leaked, "%s: no full phone number" % where, leaked)
# And the masked form is what identifies a conversation in the log.
ok("+57******9901" in readable["the log"], "the log names phones masked (+57******9901)")
# The Gemini double did receive the conversation: the words were there to leak.
ok(any("María Fernanda" in json.dumps(e, ensure_ascii=False) for e in get(gport, "/_log")),
   "the model was given the customer's words (so their absence above means something)")

d.signal(15)
ok(d.wait(20) == 0, "clean exit")
d.kill()
for p in (twilio, odoo, gemini):
    p.terminate()
redis.stop()
shutil.rmtree(wd, ignore_errors=True)
done()
