"""Beyond qualification (#10), end to end: the real daemon, a real redis-server and the Twilio, Odoo and Stripe
doubles. Outreach after a call (POST /api/call-completed: a template, idempotent, the call's context in the
conversation), the 24-hour window (templates outside it, Twilio's 63016), STOP/START with Odoo's phone
blacklist, the hand-off to a person (the bot pauses; admin pause/resume; the lead assigned and noted),
follow-ups of quiet conversations (capped, stopped by STOP, surviving a restart) and the booking and Stripe
Checkout links on a new lead's confirmation (a Stripe failure never blocks it)."""

import http.client
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, Redis, control, done, form, free_port, get, is_eq, ok, sign, skip_all, start_fake, wait_for, workdir, write_config  # noqa

if not os.path.exists(os.environ.get("REDIS_SERVER") or "/usr/bin/redis-server"):
    skip_all("redis-server not installed")

TOKEN = "12345"
SID = "AC" + "0" * 32
SERVICE = "service-token-0123456789"
OUTREACH_HX = "HX" + "a1" * 16
WINDOW_HX = "HX" + "b2" * 16
FOLLOW_HX = "HX" + "c3" * 16
STRIPE_KEY = "sk_test_crmbridge"
wd = workdir()
redis = Redis(wd, aof=True)
redis.start()
port = free_port()
PUBLIC = "http://127.0.0.1:%d" % port
twilio, tport = start_fake("twilio.py", "--account-sid", SID, "--auth-token", TOKEN, "--callback-target", PUBLIC)
odoo, oport = start_fake("odoo.py", "--x-fields")
stripe, sport = start_fake("stripe.py", "--key", STRIPE_KEY)
control(tport, {"contents": {OUTREACH_HX: "Hola {{1}}, gracias por la llamada. ¿Seguimos por aquí?",
                             WINDOW_HX: "Hola {{1}}, ¿podemos seguir con tu consulta?",
                             FOLLOW_HX: "Hola {{1}}, ¿sigues interesado?"}})

conf = os.path.join(wd, "crmbridge.conf")
write_config(conf, f"""[server]
listen = 127.0.0.1:{port}
public_url = {PUBLIC}
[redis]
url = {redis.url}
[engine]
coalesce_window = 300ms
turn_lease = 5s
[twilio]
account_sid = {SID}
auth_token = {TOKEN}
whatsapp_from = whatsapp:+14155238886
api_base = http://127.0.0.1:{tport}
content_api_base = http://127.0.0.1:{tport}
[odoo]
url = http://127.0.0.1:{oport}
db = crmfix
username = admin
password = admin
timeout = 10s
[outreach]
service_token = {SERVICE}
content_sid = {OUTREACH_HX}
content_variables = 1=client_name
wait = 5s
[window]
content_sid = {WINDOW_HX}
[optout]
odoo_blacklist = yes
[handoff]
pause = 1h
team_id = 7
user_id = 9
[followup]
delays = 3s,6s
content_sid = {FOLLOW_HX}
[links]
booking_url = https://cal.com/muebles/visita
stripe_secret_key = {STRIPE_KEY}
stripe_price = price_1TestDeposit
stripe_success_url = https://muebles.example.com/gracias
stripe_api_base = http://127.0.0.1:{sport}
""")
d = Daemon(wd, conf)
ok(d.wait_notify("READY=1", 15) is not None, "daemon ready")
seq = [0]
starts = [1]


def post(phone, body):
    seq[0] += 1
    msid = "SM%032x" % (0x0E7000 + seq[0])
    p = [("MessageSid", msid), ("From", "whatsapp:" + phone), ("To", "whatsapp:+14155238886"), ("Body", body),
         ("NumMedia", "0"), ("ProfileName", "Cliente WA"), ("AccountSid", SID)]
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/api/webhook/whatsapp", body=form(p).encode(),
              headers={"Content-Type": "application/x-www-form-urlencoded",
                       "X-Twilio-Signature": sign(TOKEN, PUBLIC + "/api/webhook/whatsapp", p)})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def sent_to(phone):
    return [e for e in get(tport, "/_log") if e["form"].get("To") == "whatsapp:" + phone and e["answer"] == 201]


def wait_sent(phone, n, timeout=15):
    wait_for(lambda: len(sent_to(phone)) >= n, timeout)
    return sent_to(phone)


def call_completed(payload, token=SERVICE, ctype="application/json"):
    hd = {"Content-Type": ctype}
    if token is not None:
        hd["X-Service-Token"] = token
    st, _, data = d.request("POST", "/api/call-completed", body=payload if isinstance(payload, bytes) else
                            json.dumps(payload).encode(), headers=hd, timeout=15)
    try:
        return st, json.loads(data)
    except ValueError:
        return st, None


def status(phone):
    return d.get_json("/api/conversation/%s/status" % phone)[1]


CTL = os.environ.get("CRMBRIDGECTL") or os.path.join(os.environ.get("TOP_BUILDDIR") or ".", "crmbridgectl")


def ctl(*args):
    """crmbridgectl against the running daemon, with the admin token it generated."""
    return subprocess.run([CTL, "--url", "http://127.0.0.1:%d" % port, "--token", d.generated_token() or ""]
                          + list(args), capture_output=True, text=True, timeout=30)


def call_payload(rid, phone, name="María Gómez"):
    return {"batch_id": "btcal_01", "agent_id": "agent_7", "agent_name": "Laura", "phone_number_id": "pn_1",
            "batch_name": "Campaña sofás noviembre",
            "recipient": {"id": rid, "phone_number": phone, "status": "completed", "conversation_id": "conv_9",
                          "created_at_unix": 1763800000, "updated_at_unix": 1763800300,
                          "variables": {"interes": "sofá de 3 puestos", "presupuesto": 2000}},
            "call_metadata": {"client_name": name, "client_id": "C-88", "group_id": "g1", "group_name": "Leads web"}}


# ---- 1. outreach after a call ----
P1 = "+573001110001"
st, body = call_completed(call_payload("rcp_001", P1), token=None)
is_eq(st, 401, "call-completed without X-Service-Token: 401")
st, body = call_completed(call_payload("rcp_001", P1), token="wrong-token-0123456789")
is_eq(st, 401, "call-completed with a wrong token: 401")
st, body = call_completed(b"{not json", ctype="application/json")
is_eq(st, 400, "malformed JSON: 400")
st, body = call_completed(json.dumps(call_payload("rcp_001", P1)).encode(), ctype="text/plain")
is_eq(st, 415, "not JSON: 415")
bad = call_payload("rcp_bad", "3001110001x")
st, body = call_completed(bad)
ok(st == 422 and "recipient.phone_number" in body["error"]["message"], "a bad phone number: 422 naming the field",
   body)
bad = call_payload("rcp_bad", P1)
del bad["recipient"]["id"]
st, body = call_completed(bad)
ok(st == 422 and "recipient.id" in body["error"]["message"], "no recipient.id: 422")
bad = call_payload("rcp_noname", "+573001110009")
del bad["call_metadata"]["client_name"]
st, body = call_completed(bad)
ok(st == 422 and "client_name" in body["error"]["message"], "a template variable without a value: 422", body)
is_eq(len(sent_to("+573001110009")), 0, "... and nothing was sent")
is_eq(len(sent_to(P1)), 0, "nothing sent by the refused requests")

# A call nobody answered: no "thanks for the call" message, no conversation, and the platform gets a 200.
P0 = "+573001110000"
for status_ in ("failed", "No-Answer", "voicemail"):
    pl = call_payload("rcp_000_" + status_, P0)
    pl["recipient"]["status"] = status_
    st, body = call_completed(pl)
    ok(st == 200 and body.get("skipped") is True and "skip_statuses" in body.get("reason", ""),
       "recipient.status %s: 200, skipped" % status_, body)
is_eq(len(sent_to(P0)), 0, "nothing sent for calls that did not take place")
is_eq(d.request("GET", "/api/conversation/%s/status" % P0)[0], 404, "... and no conversation started")
ok('crmbridge_outreach_total{result="skipped"} 3' in d.request("GET", "/metrics")[2].decode(),
   "metrics count the skipped calls")

st, body = call_completed(call_payload("rcp_001", P1))
is_eq(st, 200, "call-completed: 200 once Twilio accepted the template")
ok(body["twilio"]["status"] == "sent" and body["twilio"]["sid"].startswith("SM"), "the answer has Twilio's SID", body)
is_eq(body["conversation"]["stage"], "contacted", "the conversation starts at stage contacted")
is_eq(body["conversation"]["fields"].get("name"), "María Gómez", "the client's name comes from the call")
is_eq(body["duplicate"], False, "first report: not a duplicate")
msgs = sent_to(P1)
is_eq(len(msgs), 1, "one template sent")
f = msgs[0]["form"]
ok(f.get("ContentSid") == OUTREACH_HX and "Body" not in f, "sent as ContentSid, without Body", f)
is_eq(json.loads(f.get("ContentVariables", "{}")), {"1": "María Gómez"}, "ContentVariables from call_metadata")
st2, body2 = call_completed(call_payload("rcp_001", P1))
ok(st2 == 200 and body2["duplicate"] is True and body2["twilio"]["sid"] == body["twilio"]["sid"],
   "the same recipient.id again: the same SID, marked duplicate", body2)
is_eq(len(sent_to(P1)), 1, "... and no second message")
s = status(P1)
ok(s["call"]["recipient_id"] == "rcp_001" and s["call"]["agent_name"] == "Laura", "status shows the call", s)
ok(s["window"]["open"] is False, "no customer message yet: the window is closed")

post(P1, "Hola! sí, me interesa el sofá")
msgs = wait_sent(P1, 2)
ok(len(msgs) >= 2 and "Body" in msgs[1]["form"], "the customer's answer continues the conversation with free text")
wait_for(lambda: status(P1)["counters"]["turns"] >= 1, 5)
h = d.get_json("/api/conversation/%s/history" % P1)[1]["history"]
ok(h[0]["dir"] == "out" and "Laura" in h[0]["text"] and h[1]["dir"] == "in", "history: the template, then the answer",
   h[:2])
is_eq(h[0]["text"], "[WhatsApp template sent after a phone call with Laura] Hola María Gómez, gracias por la llamada. "
      "¿Seguimos por aquí?", "history: the template's text as the customer read it (Twilio's Content API)")
s = status(P1)
ok(s["window"]["open"] is True and s["fields"].get("name") == "María Gómez", "window open, name kept", s)

# ---- 2. STOP / START and Odoo's blacklist ----
# A call to a customer who had written before: the turn that merges the call's template puts it before the
# customer's answer to it (appended after, a model read our template as the last word and Gemini refused it).
P12 = "+573001110012"
post(P12, "Hola, quiero información de un comedor")
wait_sent(P12, 1)
wait_for(lambda: status(P12)["counters"]["turns"] >= 1, 5)
st, body = call_completed(call_payload("rcp_012", P12, name="Rosa Díaz"))
is_eq(st, 200, "a call to a customer who wrote before: 200")
wait_sent(P12, 2)
post(P12, "Sí, gracias por llamar, sigo interesada")
wait_sent(P12, 3)
wait_for(lambda: status(P12)["counters"]["turns"] >= 2, 5)
h = [e["text"] for e in d.get_json("/api/conversation/%s/history" % P12)[1]["history"]]
tpl = [i for i, t in enumerate(h) if t.startswith("[WhatsApp template sent after a phone call")]
ans = [i for i, t in enumerate(h) if t == "Sí, gracias por llamar, sigo interesada"]
ok(len(tpl) == 1 and len(ans) == 1 and tpl[0] < ans[0] and tpl[0] > 0,
   "history: the earlier chat, the call's template, then the customer's answer to it", h)

P2 = "+573001110002"
post(P2, "Hola, busco un comedor")
wait_sent(P2, 1)
post(P2, "  Baja. ")
msgs = wait_sent(P2, 2)
ok(len(msgs) == 2 and "no te enviaremos más mensajes" in msgs[1]["form"]["Body"], "STOP: one confirmation in Spanish",
   [m["form"].get("Body") for m in msgs])
wait_for(lambda: status(P2)["opted_out"], 5)
s = status(P2)
ok(s["opted_out"] is True and s["stage"] == "opted_out", "status: opted out", s)
wait_for(lambda: any(b["number"] == P2 and b["active"] for b in get(oport, "/_blacklist")), 5)
ok(any(b["number"] == P2 and b["active"] for b in get(oport, "/_blacklist")), "the number is in Odoo's blacklist")
post(P2, "Hola? cuánto cuesta el comedor")
time.sleep(2)
is_eq(len(sent_to(P2)), 2, "opted out: no answer to the next message")
wait_for(lambda: status(P2)["counters"]["in"] >= 3, 5)
is_eq(status(P2)["counters"]["in"], 3, "... but the message is kept in the conversation")
st, body = call_completed(call_payload("rcp_002", P2))
ok(st == 409 and body["error"]["status"] == "opted_out", "outreach to an opted-out phone: 409", body)
is_eq(len(sent_to(P2)), 2, "... and nothing sent")
post(P2, "ALTA")
msgs = wait_sent(P2, 3)
ok(len(msgs) == 3 and "Bienvenido de nuevo" in msgs[2]["form"]["Body"], "START: a welcome back")
wait_for(lambda: not status(P2)["opted_out"], 5)
wait_for(lambda: any(b["number"] == P2 and not b["active"] for b in get(oport, "/_blacklist")), 5)
ok(any(b["number"] == P2 and not b["active"] for b in get(oport, "/_blacklist")),
   "opting back in archives the blacklist entry")
post(P2, "busco un comedor de 6 puestos")
ok(len(wait_sent(P2, 4)) == 4, "answered again after START")

# ---- 3. hand-off to a person ----
P3 = "+573001110003"
post(P3, "Hola, soy Pedro y busco un sofá cama")
wait_sent(P3, 1)
post(P3, "quiero hablar con una persona por favor")
msgs = wait_sent(P3, 2)
ok(len(msgs) == 2, "the hand-off message is sent", [m["form"].get("Body") for m in msgs])
wait_for(lambda: status(P3).get("paused") is not None, 5)
s = status(P3)
ok(s["paused"] is not None and s["paused"]["by"] == "bot" and s["paused"]["reason"] == "human",
   "the bot paused itself for a person", s)
def m2o(v):
    return v[0] if isinstance(v, list) else v  # a many2one reads as [id, name], as in Odoo


wait_for(lambda: any(m2o(ld.get("user_id")) == 9 for ld in get(oport, "/_leads") if ld.get("phone") == P3), 5)
lead = [ld for ld in get(oport, "/_leads") if ld.get("phone") == P3]
ok(lead and m2o(lead[0].get("team_id")) == 7 and m2o(lead[0].get("user_id")) == 9,
   "the lead is assigned to the hand-off team",
   lead)
wait_for(lambda: any("Handed over to a person" in m.get("body", "") for m in get(oport, "/_messages")), 5)
ok(any("Handed over to a person" in m.get("body", "") and m.get("res_id") == lead[0]["id"]
       for m in get(oport, "/_messages")), "the lead got a hand-off note")
post(P3, "hola? sigo esperando")
time.sleep(2)
is_eq(len(sent_to(P3)), 2, "paused: the bot does not answer")
st, _, data = d.request("POST", "/api/conversation/%s/resume" % P3)
ok(st == 200 and json.loads(data)["paused"] is False, "admin resume: 200", data)
post(P3, "mi presupuesto es 1500 dólares")
ok(len(wait_sent(P3, 3)) == 3, "resumed: the bot answers again")
st, _, data = d.request("POST", "/api/conversation/%s/pause?for=2h" % P3)
ans = json.loads(data)
ok(st == 200 and ans["paused"] is True and ans["until_ms"] > time.time() * 1000 + 7100e3, "admin pause for 2h",
   ans)
is_eq(ans.get("odoo"), "lead assigned and noted", "... noted on the lead")
st, _, data = d.request("POST", "/api/conversation/%s/pause?for=2x" % P3)
is_eq(st, 400, "a bad duration: 400")
st, _, data = d.request("POST", "/api/conversation/%s/pause" % P3, headers={})
is_eq(st, 401, "pause needs the admin token")
post(P3, "hola?")
time.sleep(2)
is_eq(len(sent_to(P3)), 3, "admin pause: no answer")
is_eq(status(P3)["paused"]["by"], "admin", "status: paused by admin")
# The same from crmbridgectl.
r = ctl("conversation", "resume", P3)
ok(r.returncode == 0 and "resumed" in r.stdout and status(P3).get("paused") in (None, False),
   "crmbridgectl conversation resume: the pause is lifted", (r.stdout, r.stderr, status(P3).get("paused")))
r = ctl("conversation", "pause", "--for", "3h", P3)
p = status(P3).get("paused") or {}
ok(r.returncode == 0 and "paused" in r.stdout and p.get("by") == "admin" and
   p.get("until_ms", 0) > time.time() * 1000 + 3 * 3600e3 - 120e3, "crmbridgectl conversation pause --for 3h",
   (r.stdout, r.stderr, p))
r = ctl("conversation", "pause", "--for", "2h&x=1", P3)
ok(r.returncode == 2 and "--for: a duration from 1m to 30d" in r.stderr,
   "crmbridgectl: a --for that is not a duration is refused before any request", r.stderr)

# ---- 4. follow-ups ----
P4 = "+573001110004"
post(P4, "Hola, busco un sofá")
msgs = wait_sent(P4, 1)
question = msgs[0]["form"]["Body"]
ok(status(P4)["quality"]["q"] == "warm", "a warm conversation", status(P4)["quality"])
msgs = wait_sent(P4, 2, timeout=12)
ok(len(msgs) >= 2 and question in msgs[1]["form"]["Body"], "first follow-up repeats the question",
   [m["form"].get("Body") for m in msgs])
# A restart between follow-ups: the schedule is in Redis.
d.signal(signal.SIGTERM)
is_eq(d.wait(20), 0, "stopped cleanly")
d = Daemon(wd, conf)
ok(d.wait_notify("READY=1", 15) is not None, "restarted")
msgs = wait_sent(P4, 3, timeout=12)
ok(len(msgs) == 3, "second follow-up after the restart")
time.sleep(5)
is_eq(len(sent_to(P4)), 3, "no more than the two configured")
is_eq(status(P4)["followups"]["sent"], 2, "status counts the follow-ups")

P5 = "+573001110005"
post(P5, "Hola, busco una mesa")
wait_sent(P5, 1)
post(P5, "STOP")
wait_sent(P5, 2)
time.sleep(8)
is_eq(len(sent_to(P5)), 2, "STOP stops the follow-ups")

# WhatsApp's 63014 (the customer blocked the business): no follow-up until they write again.
P13 = "+573001110013"
control(tport, {"blocked": [P13]})
post(P13, "Hola, busco una silla")
wait_sent(P13, 1)
ok(wait_for(lambda: status(P13).get("blocked_since_ms"), 5), "63014 marks the conversation blocked", status(P13))
time.sleep(8)
is_eq(len(sent_to(P13)), 1, "blocked: no follow-up is sent")
ok('crmbridge_opt_changes_total{direction="blocked"} 1' in d.request("GET", "/metrics")[2].decode(),
   "metrics count the block")
control(tport, {"blocked": []})
post(P13, "perdón, ya te desbloqueé")
wait_sent(P13, 2)
ok(wait_for(lambda: status(P13).get("blocked_since_ms") is None, 5),
   "the customer's message lifts the block and is answered", status(P13))

# ---- 5. the 24-hour window ----
P6 = "+573001110006"
control(tport, {"window_closed": [P6]})
post(P6, "Hola, busco un sofá")
wait_sent(P6, 1)
wait_for(lambda: status(P6)["window"]["closed_by_twilio_ms"] is not None, 5)
s = status(P6)
ok(s["window"]["closed_by_twilio_ms"] is not None and s["window"]["open"] is False,
   "Twilio's 63016 marks the conversation's window closed", s["window"])
msgs = wait_sent(P6, 2, timeout=12)
ok(len(msgs) == 2 and msgs[1]["form"].get("ContentSid") == FOLLOW_HX and "Body" not in msgs[1]["form"],
   "a follow-up outside the window goes as the follow-up template", [m["form"] for m in msgs])
is_eq(json.loads(msgs[1]["form"]["ContentVariables"]), {"1": "Cliente WA"},
      "template variable from the WhatsApp profile name")
h = d.get_json("/api/conversation/%s/history" % P6)[1]["history"]
ok(any(e["dir"] == "out" and e["text"] == "[WhatsApp template] Hola Cliente WA, ¿sigues interesado?" for e in h),
   "history: the follow-up template's text", [e["text"] for e in h])
control(tport, {"window_closed": []})
post(P6, "sí, sigo interesado")
wait_for(lambda: status(P6)["window"]["open"], 5)
ok(status(P6)["window"]["open"] and status(P6)["window"]["closed_by_twilio_ms"] is None,
   "the customer's message opens the window again")
metrics = d.request("GET", "/metrics")[2].decode()
ok('crmbridge_twilio_outside_window_total 1' in metrics, "metrics count the 63016")
ok('crmbridge_followups_total{kind="template"} 1' in metrics, "metrics count the template follow-up")

# A stored conversation whose customer wrote 23.5 h ago (margin 1 h): a follow-up is a template.
P7 = "+573001110007"
post(P7, "Hola, busco un sofá")
wait_sent(P7, 1)
wait_for(lambda: status(P7)["counters"]["turns"] >= 1, 5)
key = "crmbridge:{%s}:conv" % P7
control(tport, {})
d.signal(signal.SIGTERM)
d.wait(20)
from harness import resp  # noqa
stv = json.loads(resp(redis.port, "GET", key))
stv["last_inbound_ms"] = int(time.time() * 1000) - int(23.5 * 3600 * 1000)
resp(redis.port, "SET", key, json.dumps(stv))
resp(redis.port, "ZADD", "crmbridge:{followup}:due", int(time.time() * 1000), P7)
d = Daemon(wd, conf)
ok(d.wait_notify("READY=1", 15) is not None, "restarted")
msgs = wait_sent(P7, 2, timeout=10)
ok(len(msgs) == 2 and msgs[1]["form"].get("ContentSid") == FOLLOW_HX,
   "23.5 h after the customer's message (1 h margin): a template, not free text", [m["form"] for m in msgs])

# ---- 6. booking and payment links ----
P8 = "+573001110008"
for line in ["Hola, buenos días", "Busco un sofá de 3 puestos en cuero", "Soy Ana Ruiz", "Mi presupuesto es de $2000"]:
    post(P8, line)
    time.sleep(1.2)
wait_for(lambda: any("checkout.stripe.com" in m["form"].get("Body", "") for m in sent_to(P8)), 15)
conf_msg = [m["form"]["Body"] for m in sent_to(P8) if "cal.com" in m["form"].get("Body", "")]
ok(conf_msg and "https://cal.com/muebles/visita" in conf_msg[0] and "https://checkout.stripe.com/c/pay/cs_test_" in
   conf_msg[0], "the lead's confirmation carries the booking and the Checkout links", conf_msg)
slog = get(sport, "/_log")
ok(slog and slog[0]["params"].get("line_items[0][price]") == "price_1TestDeposit" and
   slog[0]["params"].get("mode") == "payment" and slog[0]["idempotency_key"], "Stripe got the price and a key", slog)
s = status(P8)
ok(s["links"].get("booking") and s["links"].get("payment"), "status keeps the links", s.get("links"))

P9 = "+573001110009"
control(sport, {"fail": 5})
for line in ["Hola", "Busco un comedor de 6 puestos", "Soy Luis Pérez", "Tengo un presupuesto de $1500"]:
    post(P9, line)
    time.sleep(1.2)
wait_for(lambda: any("cal.com" in m["form"].get("Body", "") for m in sent_to(P9)), 15)
conf_msg = [m["form"]["Body"] for m in sent_to(P9) if "cal.com" in m["form"].get("Body", "")]
ok(conf_msg and "checkout.stripe.com" not in conf_msg[0], "Stripe failing: the confirmation goes without it",
   conf_msg)
metrics = d.request("GET", "/metrics")[2].decode()
ok('crmbridge_links_total{link="payment",result="failed"} 1' in metrics, "metrics count the failed link")

# ---- 7. the analytics count what happened (in Redis: across the restarts above) ----
st, an = d.get_json("/api/analytics/conversations?days=2")
ob = an["outbound"]
is_eq(ob["outreach_started"], 1, "analytics: one conversation started after a call (the repeat and the 409 not counted)")
is_eq(ob["opt_outs"], {"out": 2, "back_in": 1}, "analytics: two opt-outs (BAJA, STOP), one back in (ALTA)")
is_eq(ob["messages_not_answered"], 3, "analytics: 3 messages kept unanswered (1 opted out, 2 with a person)")
f = ob["followups"]
ok(f["sent"] >= 4 and f["as_template"] >= 2 and f["answered"] >= 1 and f["answer_rate"] == round(
   f["answered"] / f["sent"], 3), "analytics: follow-ups sent, as templates, answered", f)
c, cl = an["conversations"], an["classifier"]
is_eq(c["turns"] - cl["classified"], 6,
      "analytics: STOP, ALTA and the 3 unanswered messages were not classified (and not counted as rules' answers)")
ok(cl["classified"] == cl["by_rules"] + cl["by_gemini"] and cl["mean_confidence"] >= 0.3,
   "analytics: the mean confidence is over classified turns only", cl)
ok(c["started"] == 11 and c["started"] == sum(x["conversations"] for x in an["daily"]),
   "analytics: 11 conversations started (10 by the customer, 1 by the call), each counted once", c)
today = an["daily"][-1]
ok(today["opt_outs"] == 2 and today["outreach_started"] == 1 and today["followups"] == f["sent"] - sum(
   x["followups"] for x in an["daily"][:-1]), "analytics: today's outreach, opt-outs and follow-ups", today)
rc_ = ctl("analytics")
ok(rc_.returncode == 0 and "1 started after a call" in rc_.stdout and "2 out, 1 back in" in rc_.stdout and
   "3 messages kept unanswered" in rc_.stdout, "crmbridgectl analytics: outbound and opt-out lines", rc_.stdout)

# ---- 8. the templates' text comes from Twilio's Content API, fetched once per template, not per message ----
tm = d.get_json("/system/status")[1]["templates"]
ok(set(tm) == {OUTREACH_HX, WINDOW_HX, FOLLOW_HX} and all(v["known"] and v["types"] == ["twilio/text"] and
                                                          v["error"] is None for v in tm.values()),
   "status: the three configured templates, known", tm)
clog = get(tport, "/_content_log")
ok(len(clog) == 9 and all(e["auth_ok"] for e in clog), "the Content API asked 3 times per start (3 starts), with "
   "Basic auth, whatever the number of messages (%d)" % len(clog), clog)
# A template SID the account does not have: said in the status, and the history falls back to a placeholder.
BAD_HX = "HX" + "d4" * 16
with open(conf) as fh:
    text = fh.read()
write_config(conf, text.replace("[window]\ncontent_sid = %s" % WINDOW_HX, "[window]\ncontent_sid = %s" % BAD_HX))
d.signal(signal.SIGHUP)
ok(wait_for(lambda: (d.get_json("/system/status")[1]["templates"].get(BAD_HX) or {}).get("error"), 10),
   "reloaded with an unknown template SID")
bad = d.get_json("/system/status")[1]["templates"][BAD_HX]
ok(bad["known"] is False and "404" in bad["error"] and "20404" in bad["error"], "status: the Content API's 404", bad)
ok(wait_for(lambda: "template %s: HTTP 404" % BAD_HX in d.logtext(), 5), "the log says so")
rc_ = ctl("status")
tl = [ln.split() for ln in rc_.stdout.splitlines() if ln.startswith("template")]
ok(rc_.returncode == 0 and ["template", "unknown", BAD_HX + ":", "HTTP", "404"] in [x[:5] for x in tl]
   and ["template", "known", OUTREACH_HX] in tl, "crmbridgectl status: a line per template, the unknown one says why",
   rc_.stdout)

d.signal(signal.SIGTERM)
is_eq(d.wait(20), 0, "clean exit")
d.kill()
for p in (twilio, odoo, stripe):
    p.kill()
redis.stop()
done()
