#!/usr/bin/env python3
"""Fault injection under load: scripted conversations through the real daemon, a real redis-server and
the Twilio, Odoo and Gemini doubles, while one kind of fault is injected per run. Then it counts what
users rely on: every message Twilio handed us is answered, once, in order, and a qualified conversation
is exactly one lead.

The offline rules are deterministic, so a run without faults ("baseline") gives each conversation's
expected replies and leads; every fault run is compared with it, reply by reply.

  tests/faults/run.py [--conversations N] [--short] [SCENARIO ...]
  scenarios: baseline kill redis-restart redis-hang odoo gemini twilio (default: all)

Acting as Twilio, the driver retries a webhook that got no answer or a 5xx (as Twilio does with its
connection-override retries, same MessageSid and I-Twilio-Idempotency-Token). Prints TAP and, per run,
a line of figures; exits non-zero when anything is lost, duplicated or reordered.
"""

import argparse
import concurrent.futures
import glob
import http.client
import json
import os
import random
import re
import shutil
import signal
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.environ.get("TOP_SRCDIR") or os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
from harness import Daemon, Redis, control, done, form, get, ok, sign, start_fake, wait_for, workdir, write_config  # noqa

TOKEN = "fault-token-12345"
SID = "AC" + "5" * 32
PUBLIC = "https://bot.example.com"








def load_conversations(n):
    """n customers: the multi-message cases as they are, and others made of four one-line cases in a row."""
    multi, single = [], []
    for path in sorted(glob.glob(os.path.join(TOP, "tests", "data", "conversations", "*.json"))):
        with open(path) as f:
            doc = json.load(f)
        lines = [m["text"] for m in doc.get("messages", []) if m.get("from") == "user" and m.get("text")]
        (multi if len(lines) > 1 else single).append(lines[:6])
    out = []
    for i in range(n):
        if i % 3 == 0 and multi:
            lines = multi[(i // 3) % len(multi)]
        else:
            lines = [single[(i * 7 + k * 13) % len(single)][0] for k in range(4)]
        # One customer, one identity: an e-mail shared by two customers would (rightly) make one lead of them.
        lines = [re.sub(r"([\w.+-]+)@([\w-]+\.[\w.]+)", lambda m: "%s.c%d@%s" % (m.group(1), i, m.group(2)), l)
                 for l in lines]
        out.append(("+5730055%05d" % i, lines))
    return out


class Run:
    def __init__(self, scenario, convs, args, expect=None):
        # expect: per round, the replies each phone has after it (from the baseline). None = this is the
        # baseline: a phone is done with a round when it has one reply more, or when the bot has handed it
        # to a person (a hand-off pauses the bot; later messages are kept, not answered).
        self.scenario, self.convs, self.args = scenario, convs, args
        self.expect = expect
        self.per_round = []
        self.wd = workdir()
        self.scale = 0.25 if args.short else 1.0
        self.redis = Redis(self.wd, aof=scenario == "redis-restart")
        self.redis.start()
        self.twilio, self.tport = start_fake("twilio.py", "--account-sid", SID, "--auth-token", TOKEN)
        self.odoo, self.oport = start_fake("odoo.py", "--x-fields")
        self.gemini = self.gport = None
        if scenario == "gemini":
            self.gemini, self.gport = start_fake("gemini.py", "--api-key", "fault-key")
        self.conf = os.path.join(self.wd, "crmbridge.conf")
        gem = ""
        if self.gemini:
            gem = "[gemini]\napi_key = fault-key\napi_base = http://127.0.0.1:%d\ntimeout = 2s\nmax_attempts = 3\n" \
                  "breaker_failures = 20\nbreaker_open = 5s\n" % self.gport
        write_config(self.conf, f"""[server]
listen = 127.0.0.1:{args.port}
public_url = {PUBLIC}
[redis]
url = {self.redis.url}
connect_timeout = 1s
ping_interval = 1s
[engine]
coalesce_window = 200ms
turn_lease = 10s
max_turn_attempts = 50
[twilio]
account_sid = {SID}
auth_token = {TOKEN}
whatsapp_from = whatsapp:+14155238886
api_base = http://127.0.0.1:{self.tport}
status_callback = no
max_attempts = 100
[odoo]
url = http://127.0.0.1:{self.oport}
db = crmfix
username = admin
password = admin
timeout = 10s
{gem}""")
        self.d = None
        self.kills = 0
        self.accepted = set()
        self.retried = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.round_started = threading.Event()
        self.notes = []

    # ---- the daemon ----
    def start_daemon(self):
        self.d = Daemon(self.wd, self.conf, env={"CRMBRIDGE_STATE_DIR": os.path.join(self.wd, "state")})
        if not self.d.wait_notify("STATUS=Listening", 30):
            raise RuntimeError("daemon did not start:\n" + self.d.logtext()[-3000:])

    # ---- acting as Twilio ----
    def post(self, phone, i, text):
        msid = "SM%08x%024x" % (int(phone[1:]) % 0xFFFFFFFF, i)
        p = [("MessageSid", msid), ("AccountSid", SID), ("From", "whatsapp:" + phone),
             ("To", "whatsapp:+14155238886"), ("Body", text), ("NumMedia", "0"), ("ProfileName", "Cliente")]
        body = form(p).encode()
        hdrs = {"Content-Type": "application/x-www-form-urlencoded", "I-Twilio-Idempotency-Token": msid.lower(),
                "X-Twilio-Signature": sign(TOKEN, PUBLIC + "/api/webhook/whatsapp", p)}
        for attempt in range(200):
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.args.port, timeout=15)
                c.request("POST", "/api/webhook/whatsapp", body=body, headers=hdrs)
                r = c.getresponse()
                r.read()
                c.close()
                if r.status == 200:
                    with self.lock:
                        self.accepted.add(msid)
                    return True
            except (OSError, http.client.HTTPException):
                pass
            with self.lock:
                self.retried += 1
            time.sleep(0.25)
        return False

    def replies(self):
        out = {}
        for e in get(self.tport, "/_log"):
            if e.get("answer") == 201:
                out.setdefault(e["form"]["To"][len("whatsapp:"):], []).append(e["form"]["Body"])
        return out

    # ---- faults ----
    def faults(self):
        s = self.scale
        sc = self.scenario
        rnd = random.Random(7)
        if sc == "kill":
            for k in range(self.args.kills):
                if k % 2 == 0:
                    # In the middle of a burst of webhooks: some are being stored, some get no answer.
                    self.round_started.wait(5)
                    self.round_started.clear()
                    if self.stop.wait(rnd.uniform(0.05, 0.4)):
                        break
                elif self.stop.wait(rnd.uniform(1.0, 3.0) * (1 if self.args.short else 2)):
                    break
                self.d.proc.kill()  # SIGKILL: no chance to finish anything
                self.d.proc.wait()
                self.d.kill()
                self.kills += 1
                self.start_daemon()
        elif sc == "redis-restart":
            self.stop.wait(3)
            self.redis.stop()  # SIGKILL; its append-only file (fsync always) keeps what it acknowledged
            self.notes.append("Redis killed for %.0f s" % (20 * s))
            time.sleep(20 * s)
            self.redis.start()
        elif sc == "redis-hang":
            self.stop.wait(3)
            os.kill(self.redis.proc.pid, signal.SIGSTOP)
            self.notes.append("Redis stopped (SIGSTOP) for %.0f s" % (20 * s))
            time.sleep(20 * s)
            os.kill(self.redis.proc.pid, signal.SIGCONT)
        elif sc == "odoo":
            self.stop.wait(2)
            control(self.oport, {"down": True})
            time.sleep(60 * s)
            control(self.oport, {"down": False, "latency_ms": 5000})
            time.sleep(30 * s)
            control(self.oport, {"latency_ms": 0, "fault_every": 3})
            self.notes.append("Odoo down %.0f s, then 5 s a call for %.0f s, then a fault every third write"
                              % (60 * s, 30 * s))
        elif sc == "gemini":
            steps = ["429", "503", "malformed", "slow", "503", "429", "malformed", "slow"]
            control(self.gport, {"slow_ms": 3000, "script": steps * 4000})
            self.notes.append("Gemini: 429 with retryDelay, 503, malformed JSON, timeouts, over and over")
        elif sc == "twilio":
            # Storms last a while, then pass: 429s (with Retry-After) and 500s, then normal service.
            for k in range(3):
                if self.stop.wait(3):
                    break
                storm = ([{"status": 429, "code": 20429, "retry_after": "1"}] * 500 + [{"status": 500}] * 500)
                rnd.shuffle(storm)
                control(self.tport, {"script": storm})
                time.sleep(10 * s)
                control(self.tport, {"script": []})
            self.notes.append("Twilio REST: three storms of %.0f s, 429 and 500 mixed" % (10 * s))

    # ---- the run ----
    def go(self):
        t0 = time.monotonic()
        self.start_daemon()
        if not self.d.wait_notify("READY=1", 30):
            raise RuntimeError("daemon not ready")
        ft = threading.Thread(target=self.faults, daemon=True)
        ft.start()
        rounds = max(len(lines) for _, lines in self.convs)
        deadline_per_round = 150 if self.args.short else 400
        stalled = 0
        with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
            for r in range(rounds):
                batch = [(p, lines[r]) for p, lines in self.convs if len(lines) > r]
                self.round_started.set()
                list(pool.map(lambda pl: self.post(pl[0], r, pl[1]), batch))
                if self.expect is not None:
                    need = self.expect[r]
                    done_ = lambda: all(len(self.replies().get(p, [])) >= n for p, n in need.items())  # noqa
                else:
                    need = {p: r + 1 for p, lines in self.convs if len(lines) > r}
                    done_ = lambda: all(len(self.replies().get(p, [])) >= n or self.paused(p)  # noqa
                                        for p, n in need.items())
                if not wait_for(done_, deadline_per_round, step=1.0):
                    stalled += 1
                if self.expect is None:
                    # Settled first, so a reply still on its way is counted in this round.
                    wait_for(lambda: self.settled(), 60, step=0.5)
                    reps = self.replies()
                    self.per_round.append({p: len(reps.get(p, [])) for p, _ in self.convs})
        if self.scenario == "kill":
            ft.join(timeout=600)  # all the kills happen, the last ones on a quieter daemon
        self.stop.set()
        ft.join(timeout=120)
        # Let what is still queued drain (deferred lead writes, retried sends).
        wait_for(lambda: self.settled(), 120 if not self.args.short else 60, step=1)
        self.secs = time.monotonic() - t0
        self.stalled = stalled
        return self

    def paused(self, phone):
        """The bot handed this customer to a person (or they opted out): no reply is due."""
        try:
            st = self.d.get_json("/api/conversation/%s/status" % urllib.parse.quote(phone, safe=""))[1]
            return bool(st and (st.get("paused") or st.get("opted_out")))
        except Exception:
            return False

    def settled(self):
        try:
            st = self.d.get_json("/system/status")[1]
            q = st["queues"]
            return q["lead_writes_pending"] == 0 and q["turns_due"] == 0 and q["replies_in_flight"] == 0
        except Exception:
            return False

    def figures(self):
        reps = self.replies()
        leads = get(self.oport, "/_leads")
        per_phone = {}
        for l in leads:
            per_phone[l.get("phone")] = per_phone.get(l.get("phone"), 0) + 1
        try:
            st = self.d.get_json("/api/analytics/conversations")[1]
            turns = st["conversations"]["turns"]
        except Exception:
            turns = -1
        return {"replies": reps, "leads": per_phone, "turns": turns}

    def close(self):
        try:
            if self.d is not None and self.d.proc.poll() is None:
                self.d.signal(signal.SIGTERM)
                self.d.wait(30)
            rc = self.d.proc.returncode if self.d else None
            if self.d:
                self.d.kill()
        finally:
            for p in (self.twilio, self.odoo, self.gemini):
                if p is not None:
                    p.terminate()
            try:
                os.kill(self.redis.proc.pid, signal.SIGCONT)
            except Exception:
                pass
            self.redis.stop()
        return rc


def compare(ref, got, convs, diag):
    lost = dup = reordered = 0
    for phone, _ in convs:
        want, have = ref["replies"].get(phone, []), got["replies"].get(phone, [])
        for text in set(want) | set(have):
            a, b = want.count(text), have.count(text)
            lost += max(0, a - b)
            dup += max(0, b - a)
            if a != b:
                diag.append({"phone": phone, "text": text, "expected": a, "got": b})
        if sorted(want) == sorted(have) and want != have:
            reordered += 1
            diag.append({"phone": phone, "reordered": have})
    lead_dup = sum(n - 1 for n in got["leads"].values() if n > 1)
    lead_lost = sum(1 for p in ref["leads"] if p not in got["leads"])
    return lost, dup, reordered, lead_lost, lead_dup


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conversations", type=int, default=500)
    ap.add_argument("--short", action="store_true", help="shorter faults (a quarter of each duration)")
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("scenarios", nargs="*")
    args = ap.parse_args()
    if not args.port:
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        args.port = s.getsockname()[1]
        s.close()
    scenarios = args.scenarios or ["kill", "redis-restart", "redis-hang", "odoo", "gemini", "twilio"]
    convs = load_conversations(args.conversations)
    messages = sum(len(l) for _, l in convs)
    results = []
    ref_run = Run("baseline", convs, args).go()
    ref = ref_run.figures()
    handed = {p for p, _ in convs if len(ref["replies"].get(p, [])) < len(_)}
    odd = {p: (l, ref["replies"].get(p, [])) for p, l in convs
           if len(ref["replies"].get(p, [])) > len(l) or (p in handed and not ref_run.paused(p))}
    ok(not odd, "baseline: %d conversations, %d messages, one reply each (%d handed to a person, then quiet), "
       "%d leads, %.0f s" % (len(convs), messages, len(handed), len(ref["leads"]), ref_run.secs),
       json.dumps(dict(list(odd.items())[:3]), ensure_ascii=False, indent=1))
    rc = ref_run.close()
    ok(rc == 0, "baseline: clean exit")
    results.append({"scenario": "baseline", "messages": messages, "accepted": len(ref_run.accepted),
                    "turns": ref["turns"], "replies": sum(len(v) for v in ref["replies"].values()),
                    "leads": sum(ref["leads"].values()), "lost": 0, "duplicated": 0, "reordered": 0,
                    "seconds": round(ref_run.secs), "faults": "none"})
    for sc in scenarios:
        if sc == "baseline":
            continue
        run = Run(sc, convs, args, expect=ref_run.per_round)
        try:
            run.go()
            got = run.figures()
        finally:
            rc = run.close()
        diag = []
        lost, dup, reord, lead_lost, lead_dup = compare(ref, got, convs, diag)
        faults = "; ".join(run.notes) or ("%d SIGKILLs" % run.kills if sc == "kill" else sc)
        line = ("%s: %s; %d accepted of %d (webhook retries %d), %d turns, %d replies, %d leads; "
                "lost %d, duplicated %d, reordered %d, leads lost %d, duplicate leads %d; %.0f s" %
                (sc, faults, len(run.accepted), messages, run.retried, got["turns"],
                 sum(len(v) for v in got["replies"].values()), sum(got["leads"].values()), lost, dup, reord,
                 lead_lost, lead_dup, run.secs))
        print("# " + line, flush=True)
        ok(len(run.accepted) == messages, "%s: every message accepted (%d)" % (sc, len(run.accepted)))
        ok(lost == 0, "%s: no reply lost (%d)" % (sc, lost), json.dumps(diag[:5], ensure_ascii=False))
        ok(dup == 0, "%s: no reply duplicated (%d)" % (sc, dup), json.dumps(diag[:5], ensure_ascii=False))
        ok(reord == 0, "%s: no reply out of order (%d)" % (sc, reord))
        ok(lead_lost == 0 and lead_dup == 0, "%s: exactly one lead per qualified conversation (lost %d, extra %d)"
           % (sc, lead_lost, lead_dup), {"missing": [p for p in ref["leads"] if p not in got["leads"]][:5],
                                         "extra": [p for p in got["leads"] if p not in ref["leads"]][:5]})
        ok(rc == 0, "%s: clean exit at the end (%s)" % (sc, rc))
        if sc == "kill":
            ok(run.kills >= args.kills, "kill: %d SIGKILLs" % run.kills)
        results.append({"scenario": sc, "faults": faults, "messages": messages, "accepted": len(run.accepted),
                        "webhook_retries": run.retried, "turns": got["turns"],
                        "replies": sum(len(v) for v in got["replies"].values()),
                        "leads": sum(got["leads"].values()), "lost": lost, "duplicated": dup,
                        "reordered": reord, "leads_lost": lead_lost, "duplicate_leads": lead_dup,
                        "seconds": round(run.secs)})
        shutil.rmtree(run.wd, ignore_errors=True)
    shutil.rmtree(ref_run.wd, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    done()


if __name__ == "__main__":
    main()
