"""The whole path, end to end: the real daemon (two of them at the end), a real redis-server, the
Twilio REST double receiving the replies and the Odoo double receiving the leads. The product's own
flows in Spanish and English, a complaint, a burst, a redelivery, Odoo down for a whole conversation,
SIGKILL in the middle of a turn, and 200 customers across two instances."""

import json
import os
import shutil
import signal
import sys
import threading
import time
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, Redis, control, done, form, get, is_eq, ok, resp, sign, skip_all, start_fake, wait_for, workdir, write_config  # noqa

if not os.path.exists(os.environ.get("REDIS_SERVER") or "/usr/bin/redis-server"):
    skip_all("redis-server not installed")

TOP = os.environ.get("TOP_SRCDIR", ".")
TOKEN = "12345"
SID = "AC" + "0" * 32
PUBLIC = "https://bot.example.com"
wd = workdir()
redis = Redis(wd, aof=True)
redis.start()




twilio, tport = start_fake("twilio.py", "--account-sid", SID, "--auth-token", TOKEN)
odoo, oport = start_fake("odoo.py", "--x-fields")






conf = os.path.join(wd, "crmbridge.conf")
write_config(conf, f"""[server]
listen = 127.0.0.1:0
public_url = {PUBLIC}
[redis]
url = {redis.url}
[engine]
coalesce_window = 400ms
turn_lease = 5s
[twilio]
account_sid = {SID}
auth_token = {TOKEN}
whatsapp_from = whatsapp:+14155238886
api_base = http://127.0.0.1:{tport}
[odoo]
url = http://127.0.0.1:{oport}
db = crmfix
username = admin
password = admin
timeout = 10s
""")
seq = [0]


def post(d, phone, body, msid=None):
    seq[0] += 1
    msid = msid or "SM%032x" % (0xE2E0000 + seq[0])
    p = [("MessageSid", msid), ("From", "whatsapp:" + phone), ("To", "whatsapp:+14155238886"), ("Body", body),
         ("NumMedia", "0"), ("ProfileName", "Cliente")]
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    c.request("POST", "/api/webhook/whatsapp", body=form(p).encode(),
              headers={"Content-Type": "application/x-www-form-urlencoded",
                       "X-Twilio-Signature": sign(TOKEN, PUBLIC + "/api/webhook/whatsapp", p)})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status, msid


def all_replies():
    out = {}
    for e in get(tport, "/_log"):
        if e.get("answer") == 201:
            out.setdefault(e["form"]["To"][len("whatsapp:"):], []).append(e["form"]["Body"])
    return out


def replies(phone):
    return all_replies().get(phone, [])


def leads(phone=None):
    return [l for l in get(oport, "/_leads") if phone is None or l.get("phone") == phone]


def converse(d, phone, lines):
    """Sends each line after the reply to the previous one, as a person would; returns the replies."""
    for i, line in enumerate(lines):
        post(d, phone, line)
        wait_for(lambda: len(replies(phone)) >= i + 1, 15)
    return replies(phone)


d = Daemon(wd, conf)
try:
    ok(d.wait_notify("READY=1", 10) is not None, "daemon ready")

    # ---- the product's own flow, in Spanish ----
    es = "+573001110001"
    r = converse(d, es, ["Hola, buenos días", "Busco sofás", "Soy María, necesito un sofá de 3 puestos",
                         "Mi presupuesto es $2000"])
    is_eq(len(r), 4, "four messages, four replies")
    ok(r and r[0] == "¡Hola! ¿En qué puedo ayudarte hoy?", "asks how it can help", r)
    ok(len(r) > 1 and "nombre" in r[1], "asks the name", r)
    ok(len(r) > 2 and "presupuesto" in r[2], "asks the budget", r)
    ok(len(r) > 3 and "María" in r[3] and "sofá de 3 puestos" in r[3], "confirms with the name and the interest", r)
    ok(wait_for(lambda: len(leads(es)) == 1, 10), "one lead in Odoo")
    lead = (leads(es) or [{}])[0]
    is_eq(lead.get("contact_name"), "María", "contact_name María")
    ok("sofá de 3 puestos" in (lead.get("x_product_interest") or ""), "x_product_interest names the 3-seat sofa")
    is_eq(lead.get("x_budget_range"), "$2000", "x_budget_range $2000")
    is_eq(lead.get("x_quality_score"), "hot", "x_quality_score hot")
    is_eq(lead.get("x_source"), "WhatsApp", "x_source WhatsApp")
    def ai_notes():
        return [m for m in get(oport, "/_messages") if m.get("res_id") == lead.get("id") and "AI analysis" in m["body"]]
    wait_for(lambda: ai_notes(), 10)  # the note is posted after the lead's create answered
    notes = ai_notes()
    ok(len(notes) == 1 and notes[0]["subtype_id"][0] == 2, "a chatter note (a Note) on that lead", notes)
    # The lead job merges the lead's id into the conversation after Odoo answered: wait for it, not just the lead.
    ok(wait_for(lambda: (d.get_json("/api/conversation/%s/status" % es)[1] or {}).get("lead_id") == lead.get("id"), 10),
       "the conversation's status: lead_created, with the lead id")
    st, body = d.get_json("/api/conversation/%s/status" % es)
    ok(st == 200 and body["stage"] == "lead_created", "stage lead_created", body)
    st, body = d.get_json("/api/conversation/whatsapp:%s/history" % es)
    ok(st == 200 and len(body["history"]) == 8 and body["history"][0]["dir"] == "in", "history: both directions")

    # ---- the same in English ----
    en = "+14155550101"
    r = converse(d, en, ["Hi, good morning", "I'm looking for sofas", "I'm John, I need a leather sofa",
                         "My budget is $2000"])
    ok(len(r) == 4 and r[0] == "Hi! How can I help you today?" and "name" in r[1] and "budget" in r[2] and
       "John" in r[3], "English: the same questions in English, then the confirmation", r)
    ok(len(r) == 4 and ("your interest: sofa" in r[3] or "your request (sofa" in r[3]) and "interest in" not in r[3],
       "the confirmation names the interest without a missing article (not 'your interest in sofa')", r[3:])
    ok(wait_for(lambda: len(leads(en)) == 1, 10) and leads(en)[0]["x_quality_score"] == "hot", "one hot lead for John")

    # ---- after the lead the conversation goes on (#20): never the same confirmation again ----
    ok(wait_for(lambda: (d.get_json("/api/conversation/%s/status" % en)[1] or {}).get("lead_id"), 10),
       "John's conversation knows its lead")
    after = []
    for line in ["Do you deliver on weekends?", "My email is john.smith@example.com", "Thanks!"]:
        n0 = len(replies(en))
        post(d, en, line)
        wait_for(lambda: len(replies(en)) > n0, 15)
        after.append(replies(en)[-1] if len(replies(en)) > n0 else None)
    is_eq(after[0], "Good question. I'll pass it to your advisor, who will answer you here.",
          "a question after the lead: passed to the advisor, not answered by guessing, not the confirmation again")
    jl = (leads(en) or [{}])[0].get("id")
    ok(wait_for(lambda: any(m.get("res_id") == jl and "The customer asks" in m["body"] and
                            "Do you deliver on weekends?" in m["body"] for m in get(oport, "/_messages")), 10),
       "and the question is noted on the lead for the salesperson")
    is_eq(after[1], "Thanks, I've added that to your request. Your advisor will take it into account.",
          "new details after the lead: said to be added")
    ok(wait_for(lambda: (leads(en) or [{}])[0].get("email_from") == "john.smith@example.com", 10),
       "and the lead has them", leads(en))
    is_eq(after[2], "You're welcome! Your advisor will write to you here soon.", "thanks: a short answer")
    ok(r[3] not in after and len(set(after)) == 3, "no reply repeats the confirmation or the one before it",
       [r[3]] + after)
    is_eq(len(leads(en)), 1, "still one lead")

    # ---- support: a helpdesk ticket when Helpdesk is installed, else a lead tagged for support ----
    control(oport, {"helpdesk": True})
    sp2 = "+573001110007"
    r = converse(d, sp2, ["Quiero hablar con un asesor, mi pedido no ha llegado"])
    ok(len(r) == 1, "a request for a person gets one reply", r)
    ok(wait_for(lambda: any(t.get("partner_phone") == sp2 for t in get(oport, "/_tickets")), 10),
       "with Helpdesk installed: a helpdesk.ticket")
    is_eq(len(leads(sp2)), 0, "and no lead")
    # The reply goes first; the turn is committed once its lead (or ticket) is written.
    ok(wait_for(lambda: d.get_json("/api/conversation/%s/status" % sp2)[1].get("stage") == "human", 10),
       "stage human")
    # A buyer who asks for a person (#20): a sales lead of its quality for a salesperson, never a helpdesk ticket.
    sp5 = "+573001110027"
    r = converse(d, sp5, ["Hola, soy Laura Gómez. Quiero cotizar 20 sillas de oficina para este mes, pero prefiero "
                          "que me atienda un asesor"])
    ok(len(r) == 1, "a buyer asking for a person gets one reply", r)
    ok(wait_for(lambda: len(leads(sp5)) == 1, 10), "with Helpdesk installed, still a sales lead", leads(sp5))
    ok(not any(t.get("partner_phone") == sp5 for t in get(oport, "/_tickets")), "and no helpdesk ticket")
    ok(leads(sp5) and leads(sp5)[0].get("priority") == "2" and leads(sp5)[0].get("contact_name") == "Laura Gómez",
       "hot (name, 20 office chairs, this month): the quality of what she said", leads(sp5))
    ok(wait_for(lambda: any("Handed over to a person" in m.get("body", "") and m.get("res_id") == leads(sp5)[0]["id"]
                            for m in get(oport, "/_messages")), 10), "with the hand-off note on the lead")
    ok(wait_for(lambda: d.get_json("/api/conversation/%s/status" % sp5)[1].get("stage") == "human", 10),
       "stage human: the bot is quiet")
    control(oport, {"helpdesk": False})
    sp = "+573001110003"
    r = converse(d, sp, ["Buenas, compré un comedor y llegó con una pata rota. Quiero que me lo cambien."])
    ok(len(r) == 1 and "equipo" in r[0], "a complaint: a person will follow up", r)
    ok(wait_for(lambda: d.get_json("/api/conversation/%s/status" % sp)[1].get("stage") == "support", 10),
       "stage support")
    ok(wait_for(lambda: len(leads(sp)) == 1, 10), "without Helpdesk: a lead for the support case")
    ok(leads(sp) and len(leads(sp)[0].get("tag_ids", [])) == 1, "tagged (Support)", leads(sp))

    # ---- three quick messages, one reply ----
    burst = "+573001110004"
    for line in ["hola", "busco un escritorio", "de madera"]:
        post(d, burst, line)
    time.sleep(3)
    r = replies(burst)
    ok(len(r) == 1 and "nombre" in r[0], "three quick lines: one coherent reply", r)

    # ---- a redelivered message changes nothing ----
    n_rep, n_leads = len(replies(es)), len(leads())
    status, _ = post(d, es, "Mi presupuesto es $2000", msid="SM%032x" % (0xE2E0000 + 4))
    time.sleep(2)
    ok(status == 200 and len(replies(es)) == n_rep and len(leads()) == n_leads, "a redelivered message: nothing new")

    # ---- the same message delivered twice at once (issue #24) ----
    # Twilio retries a webhook it got no answer to; the copies can arrive within one coalescing window, before any
    # turn has the message in its history. The intake's MessageSid claim is what keeps the second copy out: the
    # turn's own check (the history) cannot see a copy taken in the same turn.
    twice = "+573001110032"
    dup0 = d.get_json("/system/status")[1]["intake"]["duplicates"]
    sid2 = "SM%032x" % 0xD0B1E
    s1, _ = post(d, twice, "Hola, busco una lámpara de pie", msid=sid2)
    s2, _ = post(d, twice, "Hola, busco una lámpara de pie", msid=sid2)
    ok(s1 == 200 and s2 == 200, "a message delivered twice at once: both answered 200 (Twilio must not retry)")
    ok(wait_for(lambda: len(replies(twice)) >= 1, 15), "  answered")
    time.sleep(1.5)
    is_eq(len(replies(twice)), 1, "  once")
    hist = [h.get("text") for h in d.get_json("/api/conversation/%s/history" % twice)[1].get("history", [])
            if h.get("dir") == "in"]
    ok(hist == ["Hola, busco una lámpara de pie"], "  and once in the conversation", hist)
    is_eq(d.get_json("/system/status")[1]["intake"]["duplicates"] - dup0, 1, "  the copy counted as a duplicate")

    # ---- Odoo down for the whole conversation, then back ----
    down = "+573001110005"
    control(oport, {"down": True})
    r = converse(d, down, ["Soy Laura, busco una cama king", "Mi presupuesto es de 3 millones"])
    ok(len(r) == 2 and "Laura" in r[1], "Odoo down: the conversation goes on", r)
    is_eq(len(leads(down)), 0, "no lead yet")
    # The reply went before the lead: the write (and the client's retries) finishes after it.
    ok(wait_for(lambda: d.get_json("/api/conversation/%s/status" % down)[1].get("lead_pending") is True, 20),
       "the lead write is pending")
    ok(wait_for(lambda: d.get_json("/system/status")[1]["engine"]["odoo_deferred"] >= 1, 20),
       "and counted in the status")
    control(oport, {"down": False})
    ok(wait_for(lambda: len(leads(down)) == 1, 40), "Odoo back: the lead appears")
    time.sleep(3)
    is_eq(len(leads(down)), 1, "once")
    ok(wait_for(lambda: d.get_json("/api/conversation/%s/status" % down)[1].get("lead_pending") is False, 10),
       "and the conversation knows its lead")

    # ---- a slow Odoo (issue #17): the reply does not wait for it, and exactly one lead ----
    slow = "+573001110017"
    converse(d, slow, ["Soy Marta, busco un comedor"])
    n_before = len(replies(slow))
    control(oport, {"create_delay_ms": 14000})  # committed at once, answered after odoo.timeout (10 s)
    t0 = time.monotonic()
    post(d, slow, "Mi presupuesto es $1500")
    ok(wait_for(lambda: len(replies(slow)) > n_before, 8), "a slow Odoo: the customer is answered")
    took = time.monotonic() - t0
    ok(took < 5, "  without waiting for Odoo's 14 s create (%.1f s)" % took)
    # The customer writes again while that create is still in Odoo: answered at once too (the lead job does
    # not hold the phone's turn).
    time.sleep(1)
    n2 = len(replies(slow))
    t1 = time.monotonic()
    post(d, slow, "Y también quiero ver sillas")
    ok(wait_for(lambda: len(replies(slow)) > n2, 8), "  the next message, during the slow create, is answered")
    took = time.monotonic() - t1
    ok(took < 5, "  also without waiting for Odoo (%.1f s)" % took)
    ok(wait_for(lambda: d.get_json("/system/status")[1]["engine"].get("odoo_create_unknown", 0) >= 1, 20),
       "  the create got no answer in time: its outcome is unknown, it is not resent")
    control(oport, {"create_delay_ms": 0})
    ok(wait_for(lambda: d.get_json("/api/conversation/%s/status" % slow)[1].get("lead_pending") is False, 40),
       "  the retry finds the lead the first create made")
    time.sleep(2)
    is_eq(len(leads(slow)), 1, "  exactly one lead")
    is_eq(sum(1 for e in get(oport, "/_log") if e["method"] == "create" and e["params"][0] == "crm.lead"
              and slow in json.dumps(e["params"])), 1,
          "  and one create sent")

    # ---- SIGKILL in the middle of a turn ----
    kill = "+573001110006"
    converse(d, kill, ["Soy Pedro, busco un comedor"])
    control(oport, {"latency_ms": 1500})
    post(d, kill, "Mi presupuesto es $1500")
    time.sleep(2.5)  # the turn is waiting on Odoo now
    d.signal(signal.SIGKILL)
    d.wait(5)
    d.kill()
    control(oport, {"latency_ms": 0})
    d = Daemon(wd, conf)
    ok(d.wait_notify("READY=1", 10) is not None, "restarted after SIGKILL")
    ok(wait_for(lambda: len(replies(kill)) >= 2, 30), "the interrupted turn is redone", replies(kill))
    time.sleep(3)
    r = replies(kill)
    ok(len(r) == 2 and "Pedro" in r[1], "one confirmation, not two", r)
    is_eq(len(leads(kill)), 1, "and one lead")

    # ---- the customer writes again while the lead is being written (issue #24's scenario) ----
    # Odoo answers in 1.5 s; the next message comes 1.5 s after the one that completes the lead. The turn does not
    # wait for Odoo (the lead is a job after the turn's release, one job a phone at a time): the next turn answers,
    # and there is still one confirmation and one lead. (Two turns of one phone at once, the turn lease's bug, is
    # caught where turns are long: test-providers.py, with a slow model.)
    lease = "+573001110024"
    converse(d, lease, ["Soy Rosa, busco un comedor"])
    control(oport, {"latency_ms": 1500})
    t0 = time.monotonic()
    post(d, lease, "Mi presupuesto es $1500")
    ok(wait_for(lambda: len(replies(lease)) >= 2, 15), "  the confirmation (the turn does not wait for Odoo)")
    time.sleep(max(0.0, 1.5 - (time.monotonic() - t0)))
    post(d, lease, "¿Y tienen sillas que combinen?")
    ok(wait_for(lambda: len(replies(lease)) >= 3, 30), "a message during the turn that makes the lead: answered",
       replies(lease))
    ok(wait_for(lambda: d.get_json("/api/conversation/%s/status" % lease)[1].get("lead_pending") is False, 30),
       "  the lead written")
    control(oport, {"latency_ms": 0})
    time.sleep(2)
    r = replies(lease)
    ok(len(r) == 3, "  three messages, three replies", r)
    ok(sum(1 for x in r if "Rosa" in x and "comedor" in x) == 1, "  one confirmation", r)
    is_eq(len(leads(lease)), 1, "  one lead")
    is_eq(sum(1 for e in get(oport, "/_log") if e["method"] == "create" and e["params"][0] == "crm.lead"
              and lease in json.dumps(e["params"])), 1, "  one create sent")

    # ---- killed between queuing a reply and committing the turn (issue #24) ----
    # The turn is redone after the restart and queues its reply again: only the outbox's once-key (the turn's
    # own) keeps the customer from getting it twice. A SIGKILL from outside cannot hit that gap reliably; a test
    # build (--enable-debug) dies exactly there when CRMBRIDGE_CRASH_AT says so.
    cfg_h = os.path.join(os.environ.get("TOP_BUILDDIR", "."), "config.h")
    if os.path.exists(cfg_h) and "#define WITH_CRASH_POINTS 1" in open(cfg_h).read():
        gap = "+573001110031"
        # A short send timeout, so that the dead sender's reply is taken back within the test (send_timeout + 30 s).
        conf_gap = os.path.join(wd, "crmbridge-gap.conf")
        write_config(conf_gap, open(conf).read().replace("[odoo]", "send_timeout = 3s\n[odoo]"))
        d.signal(signal.SIGTERM)
        d.wait(20)
        d.kill()
        dc = Daemon(wd, conf_gap, env={"CRMBRIDGE_CRASH_AT": "reply-queued"})
        ok(dc.wait_notify("READY=1", 10) is not None, "a daemon that dies once a reply is queued")
        post(dc, gap, "Hola, soy Inés y busco una mesa de centro")
        ok(dc.wait(15) is not None and "crash point reply-queued" in dc.logtext(),
           "  killed between the reply's queuing and the turn's commit")
        dc.kill()
        d = Daemon(wd, conf_gap)
        ok(d.wait_notify("READY=1", 10) is not None, "  restarted")
        # The queued reply was handed to the dead instance's sender: taken back when its lease (send_timeout
        # + 30 s) runs out; meanwhile the turn is redone (its lease, engine.turn_lease, runs out first).
        ok(wait_for(lambda: d.get_json("/api/conversation/%s/status" % gap)[1].get("counters", {}).get("turns")
                    == 1, 20), "  the turn redone and committed")
        is_eq(resp(redis.port, "LLEN", "crmbridge:{outbox}:q:%s" % gap), 1,
              "  its reply queued once (the first turn's, still waiting for the dead sender's lease)")
        ok(wait_for(lambda: len(replies(gap)) >= 1, 50), "  the customer is answered", replies(gap))
        time.sleep(3)
        ok(len(replies(gap)) == 1, "  once, not twice", replies(gap))
        d.signal(signal.SIGTERM)
        d.wait(20)
        d.kill()
        d = Daemon(wd, conf)
        ok(d.wait_notify("READY=1", 10) is not None, "  back to the usual configuration")
    else:
        ok(True, "# SKIP killed between queuing a reply and the commit: needs a test build (--enable-debug)")

    # ---- two instances, 200 customers ----
    d2 = Daemon(wd, conf)
    ok(d2.wait_notify("READY=1", 10) is not None, "a second instance on the same Redis")
    phones = ["+5731200%05d" % i for i in range(200)]
    before = sum(len(v) for v in all_replies().values())
    t0 = time.monotonic()

    def phase(daemon, text_of):
        def worker(chunk):
            for p in chunk:
                post(daemon, p, text_of(p))
        ts = [threading.Thread(target=worker, args=(phones[k::8],)) for k in range(8)]
        [t.start() for t in ts]
        [t.join() for t in ts]

    names = ["Ana", "Luis", "Marta", "Pedro", "Sofía", "Juan", "Lucía", "Diego", "Camila", "Andrés"]
    phase(d, lambda p: "Hola, soy %s y busco un sofá de 3 puestos" % names[int(p[-3:]) % len(names)])
    ok(wait_for(lambda: sum(len(all_replies().get(p, [])) for p in phones) >= 200, 90), "200 first replies")
    phase(d2, lambda p: "Mi presupuesto es $2000")
    ok(wait_for(lambda: sum(len(all_replies().get(p, [])) for p in phones) >= 400, 120), "200 second replies")
    elapsed = time.monotonic() - t0
    allr = all_replies()
    in_order = sum(1 for p in phones if len(allr.get(p, [])) == 2 and "presupuesto" in allr[p][0] and
                   "Gracias" in allr[p][1])
    is_eq(in_order, 200, "every customer got both replies, in order")
    ok(wait_for(lambda: len([l for l in leads() if l["phone"] in phones]) == 200, 60), "200 leads")
    lp = [l["phone"] for l in leads() if l["phone"] in phones]
    is_eq(len(set(lp)), 200, "exactly one lead each")
    s1 = d.get_json("/system/status")[1]["engine"]
    s2 = d2.get_json("/system/status")[1]["engine"]
    ok(s1["turns"] > 0 and s2["turns"] > 0, "both instances ran turns (%d and %d)" % (s1["turns"], s2["turns"]))
    print("# two instances, 200 customers x 2 messages: %.1f s, turns %d + %d" % (elapsed, s1["turns"], s2["turns"]))
    d2.signal(signal.SIGTERM)
    rc = d2.wait(15)
    ok(rc == 0, "the second instance stops cleanly (%s)" % rc, "\n".join(
        l for l in d2.logtext().splitlines() if "ERROR" in l or " #" in l or "freed by" in l or "allocated" in l)[:6000])
    d2.kill()

    # ---- a turn that keeps failing goes to the dead-letter list, and the conversation goes on ----
    dl = "+573001110008"
    resp(redis.port, "SET", "crmbridge:{outbox}:optout", "not-a-set")  # queuing any reply now fails
    post(d, dl, "Hola, ¿tienen bibliotecas?")
    ok(wait_for(lambda: d.get_json("/api/dead-letters")[1]["turns"], 30),
       "a turn failing again and again is set aside")
    dead = d.get_json("/api/dead-letters")[1]["turns"]
    ok(len(dead) == 1 and dead[0]["phone"] == dl and dead[0]["messages"][0]["text"] == "Hola, ¿tienen bibliotecas?"
       and dead[0]["reason"], "with its message and the reason", dead)
    ok(d.get_json("/system/status")[1]["engine"]["turns_failed"] >= 5, "the failures are counted")
    resp(redis.port, "DEL", "crmbridge:{outbox}:optout")
    r = converse(d, dl, ["Busco una biblioteca"])
    ok(len(r) == 1, "once the fault is gone, the conversation goes on", r)

    # ---- Redis commands a message (#19: at most 30 on the benchmark's burst; 77-79 before, 41 before the arrivals).
    # This configuration costs about 3 more than the benchmark's: a coalescing window (the burst's start looked
    # up) and status callbacks on (the sent message's record written), and 40 claims batch less than 600. ----
    def total_commands():
        info = resp(redis.port, "INFO", "stats").decode()
        return int(info.split("total_commands_processed:")[1].split()[0])

    def by_command():
        info = resp(redis.port, "INFO", "commandstats").decode()
        return {line.split(":")[0][8:]: int(line.split("calls=")[1].split(",")[0]) for line in info.splitlines()
                if line.startswith("cmdstat_")}
    cphones = ["+5731300%05d" % i for i in range(40)]
    time.sleep(1)
    b0 = by_command()
    c0 = total_commands()
    ts = [threading.Thread(target=lambda ps: [post(d, p_, "Hola, buenas tardes") for p_ in ps], args=(cphones[k::4],))
          for k in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    ok(wait_for(lambda: all(replies(p_) for p_ in cphones), 30), "40 customers at once answered")
    per = (total_commands() - c0 - 2) / 40.0  # less our two INFO
    b1 = by_command()
    print("# Redis commands a message, 40 customers x 1 message: %.1f: %s" % (per, sorted(
        ((k_, round((v - b0.get(k_, 0)) / 40.0, 2)) for k_, v in b1.items() if v != b0.get(k_, 0)), key=lambda x: -x[1])))
    ok(per <= 32, "at most 32 Redis commands a message here (%.1f), scripts' own commands included (45 before)" % per)

    # ---- a turn redone after a crash between its commit and its release ----
    # Its state was stored with the message in its history, but the message is still among the arrivals and
    # the phone still due (the release never ran): the redone turn leaves it out, sends nothing, takes it out.
    redo = "+573001110009"
    converse(d, redo, ["Hola, busco una lámpara"])
    conv = json.loads(resp(redis.port, "GET", "crmbridge:{%s}:conv" % redo))
    last = [h for h in conv["history"] if h["dir"] == "in"][-1]
    entry = json.dumps({"sid": last["sid"], "text": last["text"], "t_ms": str(last["t_ms"])}, separators=(",", ":"))
    resp(redis.port, "ZADD", "crmbridge:{turns}:in", 0, "%s|%013d.000000|%s" % (redo, last["t_ms"], entry))
    resp(redis.port, "HSET", "crmbridge:{turns}:lease", redo, "1:1")  # the crashed turn's lease, ended
    resp(redis.port, "ZADD", "crmbridge:{turns}:due", 1, redo)
    ok(wait_for(lambda: resp(redis.port, "ZLEXCOUNT", "crmbridge:{turns}:in", "[%s|" % redo, "(%s}" % redo) == 0, 15),
       "a redone turn takes the message its history has out of the arrivals")
    time.sleep(1)
    is_eq(len(replies(redo)), 1, "and replies nothing again")
    again = json.loads(resp(redis.port, "GET", "crmbridge:{%s}:conv" % redo))
    is_eq(len([h for h in again["history"] if h["dir"] == "in"]), 1, "nor adds it to the history twice")

    # ---- an upgrade from the release with the intake stream and the per-phone inboxes ----
    d.signal(signal.SIGTERM)
    is_eq(d.wait(15), 0, "stopped for the upgrade")
    d.kill()
    up1, up2, up3 = "+573001110011", "+573001110012", "+573001110013"
    stream = "crmbridge:{intake}:stream"
    resp(redis.port, "XGROUP", "CREATE", stream, "engine", "0", "MKSTREAM")

    def old_entry(phone, msid, body):
        p_ = [("MessageSid", msid), ("From", "whatsapp:" + phone), ("To", "whatsapp:+14155238886"),
              ("Body", body), ("NumMedia", "0"), ("ProfileName", "Antes")]
        return resp(redis.port, "XADD", stream, "*", "sid", msid, "from", "whatsapp:" + phone, "idem", "",
                    "received_ms", str(int(time.time() * 1000)), "via", "direct", "form", form(p_))
    old_entry(up1, "SM%032x" % 0xA11, "Hola, busco un escritorio")
    # One the old engine read and acknowledged (routed to its inbox, below), one it never read.
    resp(redis.port, "XREADGROUP", "GROUP", "engine", "old-instance", "COUNT", 1, "STREAMS", stream, ">")
    resp(redis.port, "XACK", stream, "engine", resp(redis.port, "XRANGE", stream, "-", "+")[0][0])
    old_entry(up2, "SM%032x" % 0xA12, "Hola, busco una silla de oficina")
    resp(redis.port, "RPUSH", "crmbridge:{%s}:inbox" % up1, json.dumps(
        {"sid": "SM%032x" % 0xA11, "text": "Hola, busco un escritorio", "t_ms": str(int(time.time() * 1000)),
         "profile": "Antes"}))
    resp(redis.port, "RPUSH", "crmbridge:{%s}:inbox" % up3, json.dumps(
        {"sid": "SM%032x" % 0xA13, "text": "Hola, busco una mesa de noche", "t_ms": str(int(time.time() * 1000)),
         "profile": "Antes"}))
    resp(redis.port, "ZADD", "crmbridge:{turns}:due", int(time.time() * 1000), up1)  # routed and scheduled
    resp(redis.port, "HSET", "crmbridge:{turns}:lease", up3, "1000")  # an old lease value: no attempts in it
    resp(redis.port, "HSET", "crmbridge:{turns}:attempts", up3, "2")
    resp(redis.port, "HSET", "crmbridge:{turns}:first", up3, "1")
    resp(redis.port, "DEL", "crmbridge:{turns}:inboxes-moved")  # the old release's Redis has no marker
    d = Daemon(wd, conf)
    ok(d.wait_notify("READY=1", 10) is not None, "the new release starts on the old release's Redis")
    ok(wait_for(lambda: all(len(replies(p_)) >= 1 for p_ in (up1, up2, up3)), 30),
       "the messages in the old stream and the old inboxes are answered", [replies(p_) for p_ in (up1, up2, up3)])
    time.sleep(1)
    is_eq([len(replies(p_)) for p_ in (up1, up2, up3)], [1, 1, 1], "each once")
    ok(wait_for(lambda: resp(redis.port, "EXISTS", stream) == 0, 10), "the drained stream is deleted")
    is_eq(resp(redis.port, "KEYS", "crmbridge:{+*}:inbox"), [], "the old inboxes are gone")
    is_eq(resp(redis.port, "GET", "crmbridge:{turns}:inboxes-moved"), b"1", "and the walk is not run again")
    is_eq(resp(redis.port, "EXISTS", "crmbridge:{turns}:first", "crmbridge:{turns}:attempts"), 0,
          "the old release's hashes of burst starts and attempts (phone numbers) are gone")

    # ---- admin endpoints ----
    st, body = d.get_json("/api/conversation/not-a-phone/status")
    is_eq(st, 400, "a bad phone: 400")
    st, body = d.get_json("/api/conversation/+573009999999/status")
    is_eq(st, 404, "an unknown phone: 404")
    st, body = d.get_json("/api/conversations/%s" % es)
    ok(st == 200 and body["stage"] == "lead_created", "the /api/conversations/{phone} alias")
    st, hd, data = d.request("POST", "/api/conversation/%s/reset" % burst)
    ok(st == 200 and json.loads(data)["reset"] is True, "reset")
    is_eq(d.get_json("/api/conversation/%s/status" % burst)[0], 404, "and the conversation is gone")
    st, body = d.get_json("/api/dead-letters")
    ok(st == 200 and len(body["turns"]) == 1, "the dead-letter list holds that one turn")
    # The analytics carry Odoo's own lead figures (read_group), cached after the first read.
    # Read at start (the first call has them), then again once this instance wrote leads (at most every 5 s).
    ok(wait_for(lambda: (d.get_json("/api/analytics/conversations")[1]["lead_store"].get("figures") or {})
                .get("total") == len(get(oport, "/_leads")), 15), "analytics: Odoo's lead figures (read_group), cached")
    an = {}

    def figures_and_conversions():
        # A lead job still running may add a lead between two reads: compare within one read, until they agree.
        an.update(d.get_json("/api/analytics/conversations")[1])
        return ((an["lead_store"].get("figures") or {}).get("total") == len(get(oport, "/_leads")) and
                an["conversations"]["completed"] >= 200)
    ok(wait_for(figures_and_conversions, 15), "the Odoo figures count Odoo's leads; conversions counted",
       (an.get("lead_store"), an.get("conversations")))
    log = d.logtext()
    ok("María" not in log and "presupuesto" not in log and "3001110001" not in log, "no names, bodies or phones logged")
    d.signal(signal.SIGTERM)
    rc = d.wait(15)
    ok(rc == 0, "SIGTERM: exit 0 (%s)" % rc, "\n".join(l for l in d.logtext().splitlines() if "ERROR" in l or
                                                      " #" in l or "freed by" in l or "allocated" in l)[:6000])
finally:
    d.kill()
    twilio.terminate()
    odoo.terminate()
    redis.stop()
shutil.rmtree(wd, ignore_errors=True)
done()
