"""The Twilio webhook end to end: the real daemon, a real redis-server.
Signed messages are stored once and answered with empty TwiML; bad
signatures, bad input and oversize bodies are refused and store nothing;
media, location and button messages are accepted; nothing answered 200 is
lost when the daemon is SIGKILLed after a burst or when Redis goes away
during one, and per-phone order survives the spool."""

import json
import os
import shutil
import signal
import sys
import threading
import time
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Daemon, Redis, done, form, get, is_eq, ok, resp, sign, skip_all, start_fake,  # noqa: E402
                     wait_for, workdir, write_config)

if not os.path.exists(os.environ.get("REDIS_SERVER") or "/usr/bin/redis-server"):
    skip_all("redis-server not installed")

TOKEN = "12345"
OLD_TOKEN = "old-token-before-rotation"
PUBLIC = "https://bot.example.com"
TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
CLAIMS = "crmbridge:{turns}:sid:"  # a MessageSid's claim: one per message stored, kept for webhook.dedupe_ttl
ARRIVALS = "crmbridge:{turns}:in"  # the messages no turn has taken yet

wd = workdir()
redis = Redis(wd, aof=True)
redis.start()
conf = os.path.join(wd, "crmbridge.conf")
state = os.path.join(wd, "state")
write_config(conf, f"""[server]
listen = 127.0.0.1:0
public_url = {PUBLIC}
state_dir = {state}
[redis]
url = {redis.url}
connect_timeout = 500ms
ping_interval = 200ms
[webhook]
redis_timeout = 500ms
[twilio]
account_sid = AC00000000000000000000000000000000
auth_token = {TOKEN}
auth_token_secondary = {OLD_TOKEN}
whatsapp_from = whatsapp:+14155238886
api_base = http://127.0.0.1:9
""")

seq = [0]


def sid(prefix="SM"):
    seq[0] += 1
    return prefix + ("%032x" % (0xC0FFEE000 + seq[0] + int(time.time() * 1000) % 100000 * 10000))


def message(phone="+573001112233", body="Hola", msid=None, **extra):
    p = [("MessageSid", msid or sid()), ("SmsMessageSid", "x"), ("AccountSid", "AC" + "0" * 32),
         ("From", "whatsapp:" + phone), ("To", "whatsapp:+14155238886"), ("Body", body), ("NumMedia", "0"),
         ("ProfileName", "María José"), ("WaId", phone[1:]), ("MessageType", "text")]
    for k, v in extra.items():
        p = [(a, b) for a, b in p if a != k] + [(k, v)]
    return p


def post(d, params, path="/api/webhook/whatsapp", token=TOKEN, sig=None, headers=None, raw=None, conn=None):
    body = raw if raw is not None else form(params).encode()
    h = {"Content-Type": "application/x-www-form-urlencoded"}
    if sig is not False:
        h["X-Twilio-Signature"] = sig or sign(token, PUBLIC + path, params)
    h.update(headers or {})
    c = conn or http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    c.request("POST", path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    if conn is None:
        c.close()
    return r.status, r.getheader("Content-Type"), data


def xlen():
    """How many messages were stored: each has its MessageSid claimed."""
    return len(resp(redis.port, "KEYS", CLAIMS + "*"))


def stored():
    """Every message stored, per phone in the order it came: (sid, whatsapp:phone, entry). A message is in its
    conversation's history once a turn took it, among the arrivals until then (and in both while a turn killed
    between its commit and its release waits to be redone: counted once)."""
    out, seen = [], set()
    for key in resp(redis.port, "KEYS", "crmbridge:{+*}:conv"):
        key = key.decode()
        phone = key[key.index("{") + 1:key.index("}")]
        for h in json.loads(resp(redis.port, "GET", key)).get("history", []):
            if h.get("dir") == "in":
                out.append((h["sid"], "whatsapp:" + phone, h))
                seen.add((phone, h["sid"]))
    for m in resp(redis.port, "ZRANGE", ARRIVALS, 0, -1):
        phone, _order, entry = m.decode().split("|", 2)
        e = json.loads(entry)
        if (phone, e["sid"]) not in seen:
            out.append((e["sid"], "whatsapp:" + phone, e))
    return out


def stream_sids():
    return [(s, f) for s, f, _ in stored()]


d = Daemon(wd, conf)
try:
    ok(d.wait_notify("READY=1", 10) is not None, "daemon ready")

    # ---- the happy path ----
    m = message(body="Hola, busco un sofá de 3 puestos")
    st, ct, data = post(d, m)
    is_eq(st, 200, "a signed message: 200")
    is_eq(ct, "text/xml", "Content-Type text/xml")
    is_eq(data, TWIML, "empty TwiML <Response/>")
    entries = stored()
    ok(len(entries) == 1, "stored (among the arrivals, or already in its conversation)")
    is_eq(entries[0][0], dict(m)["MessageSid"], "with its MessageSid")
    is_eq(entries[0][1], "whatsapp:+573001112233", "its sender")
    is_eq(entries[0][2]["text"], "Hola, busco un sofá de 3 puestos", "its text")
    ok(abs(int(entries[0][2]["t_ms"]) / 1000 - time.time()) < 60, "and the receive time")

    # ---- duplicates ----
    n0 = xlen()
    is_eq(post(d, m)[0], 200, "the same MessageSid again: 200")
    is_eq(xlen(), n0, "and nothing new stored")
    m2 = message(body="otro")
    st1 = post(d, m2, headers={"I-Twilio-Idempotency-Token": "tok-123"})[0]
    st2 = post(d, message(body="retry with a new sid"), headers={"I-Twilio-Idempotency-Token": "tok-123"})[0]
    ok(st1 == 200 and st2 == 200 and xlen() == n0 + 1, "a repeated I-Twilio-Idempotency-Token stores once")

    # ---- the alias, a query string, the rotated token ----
    n0 = xlen()
    is_eq(post(d, message(), path="/webhook/twilio/incoming")[0], 200, "the alias path works")
    is_eq(post(d, message(), path="/api/webhook/whatsapp?tenant=acme")[0], 200, "the query string is signed as received")
    is_eq(post(d, message(), token=OLD_TOKEN)[0], 200, "the secondary (rotated) token is accepted")
    is_eq(xlen(), n0 + 3, "all three stored")

    # ---- refusals store nothing ----
    n0 = xlen()
    is_eq(post(d, message(), sig="NOTRSOYDt4T1cUTdK1PDd93/VVr8B8=")[0], 403, "a bad signature: 403")
    is_eq(post(d, message(), token="wrong-token")[0], 403, "a signature with another token: 403")
    p = message()
    good = sign(TOKEN, PUBLIC + "/api/webhook/whatsapp", p)
    tampered = [(k, "Quiero todo gratis" if k == "Body" else v) for k, v in p]
    is_eq(post(d, tampered, sig=good)[0], 403, "a tampered body: 403")
    is_eq(post(d, message(), sig=False)[0], 400, "no signature header: 400")
    # An empty or cut signature is a prefix of every good one: refused end to end, not only in the unit test (#24).
    p = message()
    good = sign(TOKEN, PUBLIC + "/api/webhook/whatsapp", p)
    for label, cut in (("empty", ""), ("one character", good[:1]), ("cut to 20 characters", good[:20]),
                       ("without its last character", good[:-1])):
        st = post(d, p, headers={"X-Twilio-Signature": cut})[0]
        ok(st in (400, 403), "an X-Twilio-Signature %s: refused (%d)" % (label, st))
    is_eq(xlen(), n0, "no refused message stored")
    is_eq(post(d, message(), path="/api/webhook/whatsapp?x=1", sig=sign(TOKEN, PUBLIC + "/api/webhook/whatsapp",
                                                                          message()))[0], 403,
          "a signature without the query string: 403")
    is_eq(post(d, message(phone="573001112233"))[0], 403 if False else 400, "From without whatsapp:+: 400")
    is_eq(post(d, [(k, "whatsapp:+57abc") if k == "From" else (k, v) for k, v in message()])[0], 400,
          "From that is not E.164: 400")
    st, ct, data = post(d, message(phone="+0573001112233"))
    ok(st == 400 and b"E.164" in data, "From with a leading 0 (E.164 never starts with 0): 400, saying why", (st, data))
    is_eq(post(d, message(msid="SMshort"))[0], 400, "malformed MessageSid: 400")
    is_eq(post(d, [(k, v) for k, v in message() if k != "MessageSid"])[0], 400, "no MessageSid: 400")
    is_eq(post(d, message(body=""))[0], 400, "an empty text with nothing else: 400")
    raw = b"Body=%zz&From=whatsapp%3A%2B573001112233"
    is_eq(post(d, [], raw=raw, sig="x")[0], 400, "malformed %XX: 400")
    is_eq(post(d, [], raw=b"Body=%C3%28", sig="x")[0], 400, "invalid UTF-8: 400")
    st, ct, data = post(d, message(), headers={"Content-Type": "application/json"})
    is_eq(st, 415, "JSON content type: 415")
    ok(b'"code":415' in data, "with a JSON error body")
    big = message(body="x" * (65 * 1024))
    is_eq(post(d, big)[0], 413, "a 65 KiB body: 413")
    is_eq(xlen(), n0, "none of the refused requests stored anything")
    st, body = d.get_json("/system/status")
    ok(body["webhook"]["signature_invalid"] >= 4 and body["webhook"]["signature_missing"] >= 1,
       "signature rejects are counted", body.get("webhook"))

    # ---- messages without text ----
    n0 = xlen()
    media = message(body="", msid=sid("MM"), NumMedia="1", MessageType="image",
                    MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM0/Media/ME0",
                    MediaContentType0="image/jpeg")
    is_eq(post(d, media)[0], 200, "a media-only message is accepted")
    loc = [("To", "whatsapp:+15555550100"), ("Body", ""), ("From", "whatsapp:+15555550101"), ("WaId", "15555550101"),
           ("Latitude", "25.018766403198"), ("Longitude", "-77.395950317383"), ("NumMedia", "0"),
           ("MessageSid", "SMed5ffcfab3da6bbbccdd8866fe793744"), ("MessageType", "location"),
           ("ProfileName", "Test User")]
    is_eq(post(d, loc)[0], 200, "the docs/PROTOCOLS.md location message is accepted")
    button = message(body="", MessageType="button", ButtonText="Sí, quiero", ButtonPayload="yes")
    is_eq(post(d, button)[0], 200, "a button reply is accepted")
    is_eq(xlen(), n0 + 3, "all three stored")
    e = [e for s_, _, e in stored() if s_ == dict(media)["MessageSid"]]
    ok(e and (e[0].get("text") == "[image/jpeg]"), "a media-only message stands for what it carries", e)

    # ---- the intake's own Redis connection ----
    def clients():
        """The daemon's Redis connections by name (CLIENT SETNAME): name -> [client id]."""
        out = {}
        for line in resp(redis.port, "CLIENT", "LIST").decode().splitlines():
            f = dict(kv.split("=", 1) for kv in line.split(" ") if "=" in kv)
            if f.get("name", "").startswith("crmbridged"):
                out.setdefault(f["name"], []).append(f["id"])
        return out

    c = clients()
    is_eq(sorted((k, len(v)) for k, v in c.items()), [("crmbridged", 1), ("crmbridged-intake", 1)],
          "two Redis connections, named: the intake's own, so that a webhook does not queue behind turns")
    resp(redis.port, "CLIENT", "KILL", "ID", c["crmbridged-intake"][0])
    n0 = xlen()
    sts = [post(d, message(phone="+573001119%03d" % i, body="tras perder la conexión %d" % i))[0] for i in range(5)]
    is_eq(sts, [200] * 5, "webhooks just after the intake's connection was cut: 200")
    ok(wait_for(lambda: xlen() == n0 + 5, 10), "and all five stored once (spooled, then moved when it was back)",
       xlen() - n0)
    ok(wait_for(lambda: clients().get("crmbridged-intake", [c["crmbridged-intake"][0]]) != c["crmbridged-intake"],
                10), "the intake connected again on its own")
    is_eq(clients().get("crmbridged"), c["crmbridged"], "the turns' connection was not touched")

    # ---- SIGKILL right after a burst of 200 ----
    burst = [message(phone="+5730000%05d" % (i % 20), body="burst %d" % i) for i in range(200)]
    answered = [None] * 200

    def sender(lo, hi):
        c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
        for i in range(lo, hi):
            try:
                answered[i] = post(d, burst[i], conn=c)[0]
            except Exception:
                c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
        c.close()

    ts = [threading.Thread(target=sender, args=(k * 50, k * 50 + 50)) for k in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    d.signal(signal.SIGKILL)
    d.wait(5)
    is_eq(answered.count(200), 200, "all 200 burst messages answered 200")
    d.kill()
    d = Daemon(wd, conf)
    ok(d.wait_notify("READY=1", 10) is not None, "restarted after SIGKILL")
    bsids = {dict(m)["MessageSid"] for m in burst}
    sids = [s for s, _ in stream_sids() if s in bsids]
    is_eq(len(sids), 200, "all 200 stored")
    is_eq(len(set(sids)), 200, "each exactly once")
    ok(set(sids) == {dict(m)["MessageSid"] for m in burst}, "and they are the burst's messages")

    # ---- Redis stopped during a burst ----
    phones = ["+5731100%05d" % i for i in range(10)]
    n0 = xlen()
    order = {p: [] for p in phones}
    results = []
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    for i in range(150):
        if i == 50:
            redis.stop()
        if i == 120:
            redis.start()
        p = phones[i % 10]
        mm = message(phone=p, body="msg %d" % i)
        try:
            st = post(d, mm, conn=c)[0]
        except Exception:
            c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
            st = None
        results.append(st)
        if st == 200:
            order[p].append(dict(mm)["MessageSid"])
    c.close()
    is_eq(results.count(200), 150, "every message answered 200 while Redis was away (spooled)")
    ok(wait_for(lambda: xlen() == n0 + 150, 20), "after Redis returns, all 150 reach it (%s)" % (xlen() - n0))
    got = {p: [] for p in phones}
    for s, f in stream_sids():
        if f[len("whatsapp:"):] in got:
            got[f[len("whatsapp:"):]].append(s)
    ok(all(got[p] == order[p] for p in phones), "in the order they arrived, per phone")
    st, body = d.get_json("/system/status")
    ok(body["intake"]["spooled"] > 0 and body["intake"]["spool_depth"] == 0,
       "the status shows messages went through the spool, now empty", body.get("intake"))
    ok(not [f for f in os.listdir(os.path.join(state, "spool")) if f.endswith(".msg")], "the spool directory is empty")

    # ---- neither Redis nor the spool: 503 ----
    # The daemon holds the spool directory open; once it is removed, no file can be created in it,
    # whatever the privileges (CI runs as root, which ignores permission bits).
    redis.stop()
    os.rmdir(os.path.join(state, "spool"))
    n_failed = d.get_json("/system/status")[1]["webhook"]["failed"]
    st, ct, data = post(d, message())
    is_eq(st, 503, "Redis down and the spool unusable: 503, so the message is not acknowledged")
    is_eq(d.get_json("/system/status")[1]["webhook"]["failed"], n_failed + 1, "and counted")
    ok("neither Redis nor the spool can take it" in d.logtext(), "and logged as an error")
    redis.start()
    # The intake has a Redis connection of its own, which reconnects on its own schedule.
    ok(wait_for(lambda: d.get_json("/system/status")[1]["redis"]["state"] == "up" and
                d.get_json("/system/status")[1]["intake"]["redis_up"], 10), "Redis back, for the intake too")
    is_eq(post(d, message())[0], 200, "with Redis back, messages are stored again")

    # ---- delivery reports (status callbacks) ----
    out_sid = "SM" + "ab" * 16
    cb = [("MessageSid", out_sid), ("SmsSid", out_sid), ("MessageStatus", "undelivered"), ("ErrorCode", "63016"),
          ("To", "whatsapp:+573001112233"), ("From", "whatsapp:+14155238886"), ("AccountSid", "AC" + "0" * 32)]
    st, ct, data = post(d, cb, path="/api/webhook/status")
    is_eq(st, 200, "a signed status callback: 200")
    def report():
        r = resp(redis.port, "HGETALL", "crmbridge:{outbox}:msg:" + out_sid)
        return dict(zip(r[::2], r[1::2]))
    wait_for(lambda: report().get(b"status") == b"undelivered", 5)
    rec = report()
    ok(rec.get(b"status") == b"undelivered" and rec.get(b"error_code") == b"63016", "recorded with its error code",
       rec)
    body = d.get_json("/system/status")[1]["sender"]
    ok(body["delivery"]["undelivered"] == 1 and body["delivery"]["outside_24h_window"] == 1,
       "counted, 63016 as outside the 24-hour window", body)
    is_eq(post(d, cb, path="/api/webhook/status", sig="bad")[0], 403, "an unsigned status callback: 403")
    bad = [(k, "exploded" if k == "MessageStatus" else v) for k, v in cb]
    is_eq(post(d, bad, path="/api/webhook/status")[0], 400, "an unknown MessageStatus: 400")

    # ---- privacy ----
    log = d.logtext()
    ok("Hola" not in log and "burst" not in log and "msg 1" not in log, "no message body in the log")
    ok("+573001112233" not in log and "573001112233" not in log, "no full phone number in the log")
    ok(TOKEN not in log.replace("12345678", ""), "no token in the log")

    # ---- the spool with a fresh state directory: a planted symlink, a short Redis stall ----
    twilio, tport = start_fake("twilio.py", "--account-sid", "AC" + "0" * 32, "--auth-token", TOKEN)
    state2 = os.path.join(wd, "state2")
    conf2 = os.path.join(wd, "crmbridge2.conf")
    # Default Redis timeouts: a webhook waits 1 s for Redis, a PING 2 s, so a 1.5 s stall spools the
    # message without the connection ever being declared down.
    write_config(conf2, f"""[server]
listen = 127.0.0.1:0
public_url = {PUBLIC}
state_dir = {state2}
[redis]
url = {redis.url}
[engine]
coalesce_window = 100ms
[twilio]
account_sid = AC00000000000000000000000000000000
auth_token = {TOKEN}
whatsapp_from = whatsapp:+14155238886
api_base = http://127.0.0.1:{tport}
status_callback = no
""")
    d.kill()
    d = Daemon(wd, conf2, env={"CRMBRIDGE_STATE_DIR": state2})
    ok(d.wait_notify("READY=1", 10) is not None, "a daemon with a fresh state directory and the Twilio double")

    def replies_to(phone):
        return [e for e in get(tport, "/_log") if e["form"].get("To") == "whatsapp:" + phone]

    # Someone who can write to the spool directory plants symlinks where the temporary files will go.
    victim = os.path.join(wd, "victim.txt")
    with open(victim, "w") as f:
        f.write("not the daemon's\n")
    spool2 = os.path.join(state2, "spool")
    for i in range(4):
        os.symlink(victim, os.path.join(spool2, ".tmp-%020d.msg" % i))
    redis.stop()
    sym = message(phone="+573005550001", body="Hola, ¿tienen sillas?")
    st = post(d, sym)[0]
    is_eq(open(victim).read(), "not the daemon's\n", "a symlink at the spool's temporary name is not followed")
    is_eq(st, 200, "and the message is still spooled (200)")
    redis.start()
    ok(wait_for(lambda: dict(sym)["MessageSid"] in [s for s, _ in stream_sids()], 15),
       "and reaches Redis once it is back")
    ok(wait_for(lambda: replies_to("+573005550001"), 10), "and is answered")

    # Redis up but refusing writes for a while (out of memory; MISCONF and READONLY are alike): the message
    # is spooled and must go on its own once Redis takes writes again. The refusal outlasts the spool's first
    # replay (a second after): a replay Redis refuses keeps the message (#24: letting go of it lost it).
    refused = message(phone="+573005550003", body="Hola, busco una cama doble")
    resp(redis.port, "CONFIG", "SET", "maxmemory-policy", "noeviction")
    resp(redis.port, "CONFIG", "SET", "maxmemory", "1")
    try:
        st = post(d, refused)[0]
        time.sleep(2.5)
    finally:
        resp(redis.port, "CONFIG", "SET", "maxmemory", "0")
    is_eq(st, 200, "a webhook while Redis refuses writes: 200 (spooled)")
    ok(wait_for(lambda: replies_to("+573005550003"), 5),
       "with no further webhook, it is stored and answered within 5 s of Redis taking writes again",
       (d.get_json("/system/status")[1]["intake"], d.logtext()[-1500:]))
    ok(wait_for(lambda: d.get_json("/system/status")[1]["intake"]["spool_depth"] == 0, 5), "the spool is empty")
    # A stall shorter than the PING timeout: the connection never drops, so no reconnection says "Redis is up".
    stall = message(phone="+573005550002", body="Hola, busco un escritorio")
    os.kill(redis.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        st = post(d, stall)[0]
        waited = time.monotonic() - t0
        time.sleep(max(0, 1.4 - waited))
    finally:
        os.kill(redis.proc.pid, signal.SIGCONT)
    is_eq(st, 200, "a webhook during a short Redis stall: 200 (%.1f s)" % waited)
    ok(d.get_json("/system/status")[1]["intake"]["spooled"] >= 2, "it went to the spool")
    ok(wait_for(lambda: replies_to("+573005550002"), 5), "it is answered (Redis ran the late command)")
    ok(wait_for(lambda: d.get_json("/system/status")[1]["intake"]["spool_depth"] == 0, 5),
       "with no further webhook, the spool is replayed as soon as Redis answers again",
       d.get_json("/system/status")[1]["intake"])

    twilio.terminate()
finally:
    d.kill()
    redis.stop()

shutil.rmtree(wd, ignore_errors=True)
done()
