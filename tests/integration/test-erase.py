"""Erasure and retention (#11), end to end with the real daemon, a real redis-server and the doubles.

DELETE /api/conversation/{phone} (and crmbridgectl erase PHONE) removes everything kept about the phone: after
it, no Redis key or value and no file in the state directory holds the number or the customer's words, while
other customers' data is untouched; with privacy.erase_odoo the Odoo lead loses its WhatsApp fields and gets a
note. Without Odoo the lead journal loses the phone's records. History older than privacy.history_retention
goes from conversations that are still alive (the sweep, and each turn).
"""

import http.client
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, Redis, control, done, form, free_port, get, is_eq, ok, sign, skip_all, start_fake, wait_for, workdir, write_config  # noqa

if not os.path.exists(os.environ.get("REDIS_SERVER") or "/usr/bin/redis-server"):
    skip_all("redis-server not installed")

CTL = os.environ.get("CRMBRIDGECTL") or os.path.join(os.environ.get("TOP_BUILDDIR") or ".", "crmbridgectl")
TOKEN = "12345"
SID = "AC" + "0" * 32
wd = workdir()
redis = Redis(wd)
redis.start()
port = free_port()
PUBLIC = "http://127.0.0.1:%d" % port
twilio, tport = start_fake("twilio.py", "--account-sid", SID, "--auth-token", TOKEN)
odoo, oport = start_fake("odoo.py", "--x-fields")
state_dir = os.path.join(wd, "state")


# A salesperson the hand-off assigns leads to: Odoo then sends her "You have been assigned to the Lead <name>",
# recorded as written by crmbridge's user, which Odoo does not let it delete (real 17 and 19, /srv/rec26).
LAURA = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/_control" % oport, json.dumps(
    {"user": {"login": "laura", "password": "laurapw", "name": "Laura Ventas"}}).encode(), timeout=10).read())["uid"]


def config(with_odoo, retention="0"):
    conf = os.path.join(wd, "crmbridge-%s.conf" % ("odoo" if with_odoo else "journal"))
    odoo_sec = f"""[odoo]
url = http://127.0.0.1:{oport}
db = crmfix
username = admin
password = admin
""" if with_odoo else ""
    write_config(conf, f"""[server]
listen = 127.0.0.1:{port}
public_url = {PUBLIC}
state_dir = {state_dir}
[redis]
url = {redis.url}
[engine]
coalesce_window = 200ms
[twilio]
account_sid = {SID}
auth_token = {TOKEN}
whatsapp_from = whatsapp:+14155238886
api_base = http://127.0.0.1:{tport}
{odoo_sec}[handoff]
user_id = {LAURA}
[privacy]
erase_odoo = yes
history_retention = {retention}
sweep_interval = 1s
""")
    return conf


seq = [0]
captured = []  # every signed request sent, as an attacker on the path would have captured it


def send(body, headers):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/api/webhook/whatsapp", body=body, headers=headers)
    r = c.getresponse()
    r.read()
    return r.status


def post(phone, body):
    seq[0] += 1
    msid = "SM%032x" % (0x0E5000 + seq[0])
    p = [("MessageSid", msid), ("From", "whatsapp:" + phone), ("To", "whatsapp:+14155238886"), ("Body", body),
         ("NumMedia", "0"), ("ProfileName", "Cliente"), ("AccountSid", SID)]
    req = (form(p).encode(), {"Content-Type": "application/x-www-form-urlencoded", "I-Twilio-Idempotency-Token":
                              "idem-%d" % seq[0], "X-Twilio-Signature": sign(TOKEN, PUBLIC + "/api/webhook/whatsapp", p)})
    captured.append((phone, body, req))
    return send(*req)


def sent_to(phone):
    return [e for e in get(tport, "/_log") if e["form"].get("To") == "whatsapp:" + phone and e["answer"] == 201]


def redis_dump():
    """Every key with its value, as text: what a search for a number would find."""
    out = []
    for k in redis.cli("--scan").split():
        t = redis.cli("TYPE", k).strip()
        cmd = {"string": ["GET", k], "hash": ["HGETALL", k], "list": ["LRANGE", k, "0", "-1"],
               "set": ["SMEMBERS", k], "zset": ["ZRANGE", k, "0", "-1"], "stream": ["XRANGE", k, "-", "+"]}.get(t)
        out.append(k + " " + (redis.cli(*cmd) if cmd else ""))
    return "\n".join(out)


def disk_dump():
    out = []
    for root, _, files in os.walk(state_dir):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                out.append(f + " " + fh.read().decode("utf-8", "replace"))
    return "\n".join(out)


def erase(d, phone):
    st, _, data = d.request("DELETE", "/api/conversation/%s" % urllib.parse.quote(phone, safe=""), timeout=20)
    try:
        return st, json.loads(data)
    except ValueError:
        return st, data


# ---- 1. with Odoo: erase, the lead anonymised ----
d = Daemon(wd, config(True))
ok(d.wait_notify("READY=1", 15) is not None, "daemon ready")
P1, P2 = "+573003330001", "+573003330002"
post(P1, "Hola, buenas tardes")
ok(wait_for(lambda: len(sent_to(P1)) >= 1, 15), "P1 answered")
post(P1, "Soy Ana Ruiz, quiero un sofá de 3 puestos, presupuesto $2000, ana.ruiz@example.com, en Medellín")
ok(wait_for(lambda: len(get(oport, "/_leads")) >= 1, 15), "P1's lead in Odoo")
ok(wait_for(lambda: len(sent_to(P1)) >= 2, 15), "P1's confirmation")
post(P1, "STOP")
ok(wait_for(lambda: len(sent_to(P1)) >= 3, 15), "P1 opted out (the confirmation)")
post(P2, "Hola, soy Beto, busco una mesa de comedor")
ok(wait_for(lambda: len(sent_to(P2)) >= 1, 15), "P2 answered (another customer, kept)")
# A number that begins with P1's digits (another country's longer number): not P1, kept whole.
P1X = P1 + "4"
post(P1X, "Hola, soy Xavi, busco una lámpara")
ok(wait_for(lambda: len(sent_to(P1X)) >= 1, 15), "P1X answered (a longer number starting with P1's digits)")
# A person takes P1 over: the lead goes to Laura, and Odoo tells her, naming the lead (and so Ana).
st, _, _ = d.request("POST", "/api/conversation/%s/pause" % urllib.parse.quote(P1, safe=""))
is_eq(st, 200, "P1 handed to Laura")
ok(wait_for(lambda: any(m.get("message_type") == "user_notification" and "Ana Ruiz" in str(m.get("body"))
                        for m in get(oport, "/_messages")), 10), "Odoo's 'You have been assigned' names Ana")
time.sleep(0.5)
before = redis_dump()
ok("573003330001" in before and "Ana Ruiz" in before, "before: Redis holds P1's number and words")

st, ans = erase(d, P1[1:])  # digits, as an admin may type them
is_eq(st, 200, "DELETE /api/conversation/{phone}: 200")
ok(isinstance(ans, dict) and ans.get("erased") is True and ans["redis"]["conversation_keys"] >= 1
   and ans["redis"]["intake_messages"] == 0 and ans["redis"]["opt_out"] == 1 and ans["redis"]["dedupe_keys"] == 3,
   "the answer says what was removed (dedupe keys: the history's MessageSids marked erased, counted once; no "
   "intake stream any more)", ans)
ok(ans.get("odoo", {}).get("anonymised") is True, "the Odoo lead was anonymised", ans.get("odoo"))
after = redis_dump()
ok(not re.search(r"573003330001(?!\d)", after), "after: no Redis key or value holds P1's number",
   [l[:200] for l in after.splitlines() if re.search(r"573003330001(?!\d)", l)][:5])
ok("5730033300014" in after and "Xavi" in after and d.get_json(
   "/api/conversation/%s/status" % urllib.parse.quote(P1X, safe=""))[0] == 200,
   "the longer number that starts with P1's digits is untouched")
ok("Ana Ruiz" not in after and "ana.ruiz" not in after, "nor P1's words")
ok("573003330002" in after and "Beto" in after, "P2's conversation is untouched")
ok(not re.search(r"573003330001(?!\d)", disk_dump()), "nothing on disk holds P1's number")
lead = get(oport, "/_leads")[0]
ok(lead.get("phone") in (False, None, "") and lead.get("email_from") in (False, None, "")
   and lead.get("contact_name") in (False, None, "") and lead.get("x_product_interest") in (False, None, ""),
   "the lead's WhatsApp fields are cleared", lead)
is_eq(lead.get("name"), "WhatsApp lead (erased)", "and it is named so")
notes = [m for m in get(oport, "/_messages") if m.get("res_id") == lead["id"] and "erased at their request"
         in str(m.get("body"))]
is_eq(len(notes), 1, "a note on the lead says the data was erased")
ok("assignment notifications" in str(notes[0].get("body")), "and that Odoo's assignment notification was rewritten")
# Issue #17: nothing crmbridge wrote in the chatter still holds the customer (its notes quoted her words), no
# tracking value keeps the old phone or name (the erase wrote without tracking), and the note holds nothing.
held = [m for m in get(oport, "/_messages") if m.get("res_id") == lead["id"] and
        any(w in str(m.get("body")) for w in ("Ana Ruiz", "3003330001", "ana.ruiz", "sofá"))]
ok(not held, "no chatter message on the lead holds her name, number, e-mail or words", held)
trk = [t for t in get(oport, "/_tracking") if any(w in json.dumps(t, ensure_ascii=False)
                                                  for w in ("Ana Ruiz", "3003330001", "ana.ruiz"))]
ok(not trk, "no tracking value holds them", trk)
ok(ans["odoo"].get("leads") == [lead["id"]] and ans["odoo"].get("messages_deleted", 0) >= 1
   and "messages_refused" not in ans["odoo"], "the answer lists the lead and the messages deleted", ans["odoo"])
is_eq(ans["odoo"].get("notifications_rewritten"), 1,
      "Odoo's assignment notification, which crmbridge may not delete, is rewritten")
st, _ = d.get_json("/api/conversation/%s/status" % urllib.parse.quote(P1, safe=""))
is_eq(st, 404, "the conversation is gone")
# A captured signed webhook replayed after the erasure must not bring the customer's message back.
stream_before = redis.cli("ZCARD", "crmbridge:{turns}:in").strip()
replies_before = len(sent_to(P1))
for ph, text, req in captured:
    if ph == P1:
        is_eq(send(*req), 200, "a replayed webhook of the erased customer (%s...): 200, as for any duplicate" % text[:12])
time.sleep(1.5)
is_eq(redis.cli("ZCARD", "crmbridge:{turns}:in").strip(), stream_before, "the replays store nothing")
is_eq(d.get_json("/api/conversation/%s/status" % urllib.parse.quote(P1, safe=""))[0], 404,
      "no conversation comes back from the replays")
is_eq(len(sent_to(P1)), replies_before, "and nothing is sent to the erased customer")
ok(not re.search(r"573003330001(?!\d)", redis_dump()), "what refuses the replays holds no trace of the number")
is_eq(erase(d, P1)[0], 200, "erasing again is harmless (200, nothing left)")
st, _ = erase(d, "not-a-phone")
is_eq(st, 400, "a bad phone: 400")
st, _, _ = d.request("DELETE", "/api/conversation/%2B573003330002", headers={"Authorization": "Bearer wrong"})
is_eq(st, 401, "a wrong admin token: 401")
# The customer writes again after the erase: a new conversation, no memory of the old one.
post(P1, "Hola otra vez")
ok(wait_for(lambda: len(sent_to(P1)) >= 4, 15), "after the erase the customer is answered afresh (no opt-out kept)")
h = d.get_json("/api/conversation/%s/history" % urllib.parse.quote(P1, safe=""))[1]["history"]
is_eq([e["text"] for e in h if e["dir"] == "in"], ["Hola otra vez"], "with none of the old history")
m = d.request("GET", "/metrics")[2].decode()
ok('crmbridge_privacy_total{event="erased"} 2' in m and 'crmbridge_privacy_total{event="odoo_anonymised"} 1' in m,
   "metrics count erasures and anonymisations")
# A turn's analytics counts wait in memory up to a second before they are written: an erasure right after
# the turn must drop them, or the number comes back in {stats}:active a moment later.
P7 = "+573003330007"
post(P7, "Hola, busco una silla")
ok(wait_for(lambda: len(sent_to(P7)) >= 1, 15), "P7 answered")
is_eq(erase(d, P7)[0], 200, "P7 erased right after its turn")
time.sleep(1.5)
ok(not re.search(r"573003330007(?!\d)", redis_dump()), "a second later still no trace of P7 (its waiting counts dropped)",
   [l[:200] for l in redis_dump().splitlines() if "573003330007" in l][:3])
d.signal(15)
is_eq(d.wait(20), 0, "clean exit")
d.kill()

# ---- 1b. a typed e-mail is not proof of identity (security item 2) ----
# The victim's lead has phone P5 and v@example.com; P6 types that address (exactly, in capitals, and with LIKE
# wildcards): P6 gets a lead of its own, the victim's lead keeps its fields and chatter, and erasing P6 leaves it.
d = Daemon(wd, config(True))
ok(d.wait_notify("READY=1", 15) is not None, "daemon ready (e-mail takeover)")
P5, P6 = "+573003330005", "+573003330006"


def lead_of(phone):
    ls = [l for l in get(oport, "/_leads") if l.get("phone") == phone]
    return ls[0] if ls else None


def snapshot(lead_id):
    l = [l for l in get(oport, "/_leads") if l["id"] == lead_id][0]
    l.pop("write_date", None)
    return l, len([m for m in get(oport, "/_messages") if m.get("res_id") == lead_id])


post(P5, "Soy Vera Díaz, quiero un sofá de 3 puestos, presupuesto $2000, v@example.com, en Cali")
ok(wait_for(lambda: lead_of(P5) is not None and lead_of(P5).get("email_from") == "v@example.com", 15),
   "the victim's lead (P5, v@example.com)", lead_of(P5))
ok(wait_for(lambda: len(sent_to(P5)) >= 1, 15), "P5 answered")
victim = lead_of(P5)["id"]
time.sleep(1)
before = snapshot(victim)
n = 0
for typed in ("v@example.com", "V@EXAMPLE.COM", "%@example.com", "_@example.com"):
    n += 1
    post(P6, "Soy Mallory, busco una mesa de comedor, presupuesto $50, mi correo es " + typed)
    ok(wait_for(lambda: len(sent_to(P6)) >= n, 15), "P6 answered (typed %s)" % typed)
ok(wait_for(lambda: lead_of(P6) is not None, 15), "P6 has a lead of its own", lead_of(P6))
time.sleep(1.5)  # the lead jobs of P6's later messages
after = snapshot(victim)
ok(after == before, "the victim's lead is unchanged: fields and chatter", (before, after))
mine = lead_of(P6)
ok(mine is not None and mine["id"] != victim, "P6's lead is not the victim's", mine)
st, ans = erase(d, P6)
is_eq(st, 200, "erase P6: 200")
ok(ans.get("odoo", {}).get("leads") == [mine["id"]], "erasing P6 touches P6's lead only", ans.get("odoo"))
after = snapshot(victim)
ok(after == before, "the victim's lead is unchanged after P6's erasure", (before, after))
d.signal(15)
is_eq(d.wait(20), 0, "clean exit")
d.kill()

# ---- 2. without Odoo: the lead journal, crmbridgectl erase, retention ----
conf = config(False, retention="6s")
d = Daemon(wd, conf)
ok(d.wait_notify("READY=1", 15) is not None, "daemon ready (no Odoo: the lead journal; retention 6 s)")
P3, P4 = "+573003330003", "+573003330004"
post(P3, "Soy Carla Gómez, busco un comedor de 6 puestos, presupuesto $3000, carla@example.com, urgente")
jpath = os.path.join(state_dir, "leads.jsonl")
ok(wait_for(lambda: os.path.exists(jpath) and "573003330003" in open(jpath).read(), 15), "P3's lead in the journal")
p = subprocess.run([CTL, "-c", conf, "erase", P3], capture_output=True, text=True, timeout=30)
is_eq(p.returncode, 0, "crmbridgectl erase PHONE")
ok("erased everything kept about +573003330003" in p.stdout and "lead journal records      1" in p.stdout,
   "prints what was removed", p.stdout + p.stderr)
ok("573003330003" not in open(jpath).read(), "the journal no longer has P3")
ok("573003330003" not in redis_dump() and "573003330003" not in disk_dump(), "nor Redis, nor any file")

post(P4, "Hola, busco una cama")
ok(wait_for(lambda: len(sent_to(P4)) >= 1, 15), "P4 answered")
t0 = time.time()
ok(wait_for(lambda: not d.get_json("/api/conversation/%s/history" % urllib.parse.quote(P4, safe=""))[1]["history"],
            20, step=0.5), "history older than the retention is swept from a live conversation (%.0f s)"
   % (time.time() - t0))
st = d.get_json("/api/conversation/%s/status" % urllib.parse.quote(P4, safe=""))[1]
ok(st and st.get("fields", {}).get("product_interest"), "the conversation itself (fields, stage) stays", st)
ok('crmbridge_privacy_total{event="history_pruned_messages"}' in d.request("GET", "/metrics")[2].decode(),
   "metrics count the pruned messages")
d.signal(15)
is_eq(d.wait(20), 0, "clean exit")
d.kill()
for pr in (twilio, odoo):
    pr.terminate()
redis.stop()
done()
