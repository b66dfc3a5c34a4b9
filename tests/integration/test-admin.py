"""The admin plane against the real daemon and a real redis-server: the admin token (generated when
none is set), a separate admin listener, /health and /metrics open or closed by configuration,
/system/status, /system/config (redacted), /metrics checked by promtool, the conversation analytics
after real conversations, the lead journal, dead-letter retry, and every crmbridgectl subcommand that
talks to the daemon, chat and replay included (their reply sink speaks Twilio's Messages API)."""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, Redis, done, free_port, is_eq, ok, resp, skip_all, wait_for, workdir, write_config  # noqa

if not os.path.exists(os.environ.get("REDIS_SERVER") or "/usr/bin/redis-server"):
    skip_all("redis-server not installed")

TOP = os.environ.get("TOP_SRCDIR", ".")
CTL = os.path.join(os.environ.get("TOP_BUILDDIR", "."), "crmbridgectl")
PROMTOOL = shutil.which("promtool")
SID = "AC" + "1" * 32
TWILIO_TOKEN = "twilio-secret-token-0123"
ODOO_PW = "odoo-password-xyz-987"
wd = workdir()
redis = Redis(wd)
redis.start()
sink_port = free_port()
state = os.path.join(wd, "state")

conf = os.path.join(wd, "crmbridge.conf")
write_config(conf, f"""[server]
listen = 127.0.0.1:0
public_url = http://bot.example.com
state_dir = {state}
[redis]
url = redis://:redis-pass-555@127.0.0.1:{redis.port}/0
[engine]
coalesce_window = 300ms
[twilio]
account_sid = {SID}
auth_token = {TWILIO_TOKEN}
whatsapp_from = whatsapp:+14155238886
api_base = http://127.0.0.1:{sink_port}
status_callback = no
""")
# Redis has no password here: AUTH with one fails, so the URL in the file is only for the redaction check.
conf_run = os.path.join(wd, "run.conf")
write_config(conf_run, open(conf).read().replace(":redis-pass-555@", ""))


def ctl(*args, stdin=None, timeout=60, config=None):
    p = subprocess.run([CTL, "-c", config or conf_run] + list(args), input=stdin, capture_output=True, text=True,
                       timeout=timeout, env={k: v for k, v in os.environ.items()
                                             if not k.startswith(("CRMBRIDGE_", "TWILIO_", "ODOO_", "GOOGLE_"))})
    return p.returncode, p.stdout, p.stderr


# ---- the admin token: generated into the state directory when none is configured ----
d = Daemon(wd, conf_run, env={"CRMBRIDGE_STATE_DIR": state})
ok(d.wait_notify("READY=1", 20), "daemon ready", d.logtext())
tok_path = os.path.join(state, "admin.token")
ok(os.path.exists(tok_path) and stat.S_IMODE(os.stat(tok_path).st_mode) == 0o600,
   "no token configured: one is generated into state_dir/admin.token, mode 0600")
token = open(tok_path).read().strip()
ok(len(token) == 64 and re.fullmatch(r"[0-9a-f]+", token), "a 256-bit random token", token)
for path in ["/system/status", "/system/config", "/api/analytics/conversations", "/api/stats", "/api/leads",
             "/api/dead-letters", "/api/conversation/+573001112233/status", "/metrics"]:
    st, hd, body = d.request("GET", path, headers={})
    ok(st == 401 and "Bearer" in hd.get("WWW-Authenticate", "") and token.encode() not in body,
       "GET %s without a token: 401 with WWW-Authenticate" % path, (st, body))
st, hd, body = d.request("POST", "/api/conversation/+573001112233/reset", headers={})
is_eq(st, 401, "POST .../reset without a token: 401")
st, hd, body = d.request("POST", "/api/dead-letters/retry", headers={})
is_eq(st, 401, "POST /api/dead-letters/retry without a token: 401")
almost = token[:-1] + ("0" if token[-1] != "0" else "1")
st, hd, body = d.request("GET", "/system/status", headers={"Authorization": "Bearer " + almost})
ok(st == 401 and token.encode() not in body and almost.encode() not in body,
   "a token wrong in its last character: 401, neither token echoed", body)
st, hd, body = d.request("GET", "/system/status", headers={"Authorization": "Basic " + token})
is_eq(st, 401, "the token under another scheme: 401")
ok(token not in d.logtext() and almost not in d.logtext(), "no token in the log")
st, body = d.get_json("/health", headers={})
is_eq(st, 200, "/health is open by default")

# ---- crmbridgectl status finds the daemon and the generated token from the configuration ----
# The configuration says port 0; tell ctl the real one.
url = "http://127.0.0.1:%d" % d.port
rc, out, err = ctl("--url", url, "status")
ok(rc == 0 and "crmbridged" in out and "redis" in out and "journal" in out and "QUEUE" in out,
   "crmbridgectl status: a table of dependencies and queues", out + err)
rc, out, err = ctl("--url", url, "--json", "status")
ok(rc == 0 and json.loads(out)["status"] == "ok", "crmbridgectl --json status: the daemon's JSON", out + err)
rc, out, err = ctl("--url", url, "--token", almost, "status")
ok(rc == 1 and "401" in err, "crmbridgectl with a wrong token: exit 1 and says 401", err)
elsewhere = os.path.join(wd, "elsewhere.conf")
write_config(elsewhere, open(conf_run).read().replace("state_dir = " + state, "state_dir = " + os.path.join(wd, "nost")))
rc, out, err = ctl("--url", url, "status", config=elsewhere)
ok(rc == 1 and "no admin token found in " + os.path.join(wd, "nost", "admin.token") in err
   and "/var/lib/crmbridge/admin.token" in err, "no token where it looked: the 401 names every file it tried", err)

# ---- an admin's crmbridgectl on a production host: the secrets are credentials in the store, not in the file ----
store = os.path.join(wd, "credstore")
os.makedirs(store, mode=0o700)
write_config(os.path.join(store, "admin_token"), token + "\n")
write_config(os.path.join(store, "twilio_auth_token"), TWILIO_TOKEN + "\n")
prod = os.path.join(wd, "prod.conf")
write_config(prod, re.sub(r"(?m)^(auth_token|password) = .*\n", "", open(elsewhere).read()), mode=0o644)
p = subprocess.run([CTL, "-c", prod, "--url", url, "status"], capture_output=True, text=True, timeout=30,
                   env=dict(PATH=os.environ["PATH"], CRMBRIDGE_CREDSTORE=store))
ok(p.returncode == 0 and "crmbridged" in p.stdout, "crmbridgectl status with the secrets only in the credential store "
   "(as root on a host set up by DEPLOY.md): the file's rules hold, the admin token is the credential's", p.stderr)
p = subprocess.run([CTL, "-c", prod, "--url", url, "status"], capture_output=True, text=True, timeout=30,
                   env=dict(PATH=os.environ["PATH"], CRMBRIDGE_CREDSTORE=os.path.join(wd, "nostore")))
ok(p.returncode == 1 and "credential twilio_auth_token" in p.stderr and
   "LoadCredentialEncrypted=twilio_auth_token" in p.stderr,
   "without it: the error names the credential and the drop-in line to check", p.stderr)

# ---- /system/status ----
st, s = d.get_json("/system/status")
ok(st == 200 and s["status"] == "ok" and s["version"] and s["uptime_s"] >= 0, "/system/status: verdict, version, uptime",
   s)
ok(set(s["queues"]) >= {"spool", "turns_due", "lead_writes_pending", "dead_turns", "replies_in_flight"},
   "/system/status: queue depths", s.get("queues"))
ok(s["lead_store"]["kind"] == "journal" and s["odoo"] is None, "/system/status: no Odoo, leads to the journal",
   s.get("lead_store"))
ok(s["sender"] is not None and "last_http_status" in s["sender"], "/system/status: Twilio's last send result")
ok(s["classifier"]["mode"] == "offline rules", "/system/status: the classifier mode")
ok(s["admin"]["token"].startswith("generated") and s["admin"]["auth_failures"] >= 10,
   "/system/status: token origin and refused requests counted", s["admin"])

# ---- /system/config: everything, secrets redacted ----
d2 = Daemon(wd, conf, env={"CRMBRIDGE_STATE_DIR": os.path.join(wd, "state2"), "ODOO_URL": "http://odoo.example:8069",
                           "ODOO_DB": "db", "ODOO_USERNAME": "bot", "ODOO_PASSWORD": ODOO_PW,
                           "GOOGLE_API_KEY": "AIza-google-key-secret", "CRMBRIDGE_ADMIN_TOKEN": "configured-admin-token-42"})
ok(d2.wait_notify("STATUS=Listening", 20), "a second daemon with secrets everywhere", d2.logtext())
st, hd, raw = d2.request("GET", "/system/config", headers={"Authorization": "Bearer configured-admin-token-42"})
cfg = json.loads(raw)
ok(st == 200 and cfg["config"]["twilio"]["account_sid"] == SID and cfg["config"]["odoo"]["db"] == "db",
   "/system/config: the effective configuration", cfg)
for secret in [TWILIO_TOKEN, ODOO_PW, "redis-pass-555", "AIza-google-key-secret", "configured-admin-token-42"]:
    ok(secret.encode() not in raw, "/system/config does not contain the secret %s..." % secret[:6])
ok(cfg["config"]["twilio"]["auth_token"] == "<redacted>" and "<redacted>" in cfg["config"]["redis"]["url"],
   "/system/config: secrets and URL passwords shown as <redacted>", cfg["config"]["redis"])
ok(cfg["admin_token"] == "configured", "/system/config: the admin token is configured")
ok(not os.path.exists(os.path.join(wd, "state2", "admin.token")), "a configured token: no file is generated")
d2.signal(15)
d2.wait(20)
d2.kill()

# ---- /system/config shows a unix:// Redis URL as configured ----
sock = os.path.join(wd, "no-redis-here", "redis.sock")
d3 = Daemon(wd, conf_run, env={"CRMBRIDGE_STATE_DIR": os.path.join(wd, "state-unix"), "REDIS_URL": "unix://%s?db=3" % sock,
                               "CRMBRIDGE_ADMIN_TOKEN": "configured-admin-token-42"})
ok(d3.wait_notify("STATUS=Listening", 20), "a daemon with a unix:// Redis URL", d3.logtext())
st, hd, raw = d3.request("GET", "/system/config", headers={"Authorization": "Bearer configured-admin-token-42"})
is_eq(json.loads(raw)["config"]["redis"]["url"] if st == 200 else raw, "unix://%s?db=3" % sock,
      "/system/config: the unix:// Redis URL exactly as configured")
d3.kill()

# ---- a long admin token is compared whole; a kept token that is too long or unusable stops the start ----
long_tok = "L" * 40 + "0123456789" * 6  # 100 bytes: more than the 79 that used to be kept
d3 = Daemon(wd, conf_run, env={"CRMBRIDGE_STATE_DIR": os.path.join(wd, "state3"), "CRMBRIDGE_ADMIN_TOKEN": long_tok})
ok(d3.wait_notify("STATUS=Listening", 20), "a daemon with a 100-byte admin token", d3.logtext())
st, _, _ = d3.request("GET", "/system/status", headers={"Authorization": "Bearer " + long_tok})
is_eq(st, 200, "the whole 100-byte token: 200")
for cut in (79, 80, 99):
    st, _, _ = d3.request("GET", "/system/status", headers={"Authorization": "Bearer " + long_tok[:cut]})
    is_eq(st, 401, "its first %d characters: 401" % cut)
d3.kill()
d3 = Daemon(wd, conf_run, env={"CRMBRIDGE_STATE_DIR": os.path.join(wd, "state3"), "CRMBRIDGE_ADMIN_TOKEN": "t" * 1025})
ok(d3.wait(20) not in (0, None) and "admin_token" in d3.logtext() and "too long" in d3.logtext(),
   "a configured token longer than 1024 bytes: refused at start, saying so", d3.logtext())
d3.kill()


def kept_token(text, mode=0o600):
    sdir = os.path.join(wd, "state-tok-%d" % free_port())
    os.makedirs(sdir, mode=0o700)
    path = os.path.join(sdir, "admin.token")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return sdir, path


sdir, path = kept_token("k" * 200 + "\n")
d3 = Daemon(wd, conf_run, env={"CRMBRIDGE_STATE_DIR": sdir})
ok(d3.wait_notify("STATUS=Listening", 20), "a daemon with a 200-byte token kept in state_dir", d3.logtext())
st, _, _ = d3.request("GET", "/system/status", headers={"Authorization": "Bearer " + "k" * 200})
is_eq(st, 200, "the whole kept token: 200")
st, _, _ = d3.request("GET", "/system/status", headers={"Authorization": "Bearer " + "k" * 79})
is_eq(st, 401, "its first 79 characters: 401")
d3.kill()
for what, text, mode, says in [("longer than 1024 bytes", "k" * 1500 + "\n", 0o600, "longer than 1024"),
                               ("readable by others", "k" * 64 + "\n", 0o644, "not a private regular file"),
                               ("too short", "Zq7xW\n", 0o600, "shorter than 16")]:
    sdir, path = kept_token(text, mode)
    d3 = Daemon(wd, conf_run, env={"CRMBRIDGE_STATE_DIR": sdir})
    rc = d3.wait(20)
    log = d3.logtext()
    ok(rc not in (0, None) and path in log and says in log and "CRMBRIDGE_ADMIN_TOKEN" in log,
       "a kept token %s: the daemon stops, naming the file and what to do" % what, log)
    is_eq(open(path).read(), text, "and the file is not replaced")
    ok(text.strip() not in log, "nor its content logged")
    d3.kill()

# ---- a conversation through crmbridgectl replay: replies come back through the reply sink ----
case = os.path.join(TOP, "tests", "data", "conversations", "es-sofa-complete.json")
rc, out, err = ctl("--url", url, "replay", "--reset", "--phone", "+573001112233", case)
ok(rc == 0 and out.count("customer:") == 4 and out.count("bot:") >= 4, "replay: four lines, a reply to each",
   out + err + d.logtext()[-3000:])
ok("journal lead 1" in out and "stage lead_created" in out, "replay: the lead, in the journal", out)
journal = os.path.join(state, "leads.jsonl")
recs = [json.loads(x) for x in open(journal)]
ok(stat.S_IMODE(os.stat(journal).st_mode) == 0o600 and recs and recs[0]["op"] == "create"
   and recs[0]["phone"] == "+573001112233" and recs[0]["x_product_interest"] and recs[0]["x_source"] == "WhatsApp",
   "the lead journal: a private JSON-lines file with the lead's fields", recs)

rc, out, err = ctl("--url", url, "--json", "replay", "--phone", "+573001112233",
                   os.path.join(TOP, "tests", "data", "conversations", "es-sofa-complete.json"))
res = json.loads(out) if rc == 0 else {}
ok(rc == 0 and res["conversation"]["lead_id"] == 1, "replaying again: the same lead (id 1)", out + err)
recs = [json.loads(x) for x in open(journal)]
ok(len({r["id"] for r in recs}) == 1, "one lead per phone in the journal, never a second", recs)

rc, out, err = ctl("--url", url, "leads")
ok(rc == 0 and "+573001112233" in out and "1 lead in the journal" in out, "crmbridgectl leads: the journal's leads",
   out + err)
rc, out, err = ctl("--url", url, "--json", "leads")
ok(rc == 0 and json.loads(out)["leads"][0]["x_quality_score"] in ("hot", "warm", "cold"), "crmbridgectl --json leads")

# ---- chat: lines from stdin, replies from the sink ----
rc, out, err = ctl("--url", url, "chat", "+34600111222", stdin="Hello, do you sell dining tables?\n")
ok(rc == 0 and "bot:" in out, "crmbridgectl chat: the customer's line gets the bot's reply", out + err)
rc, out, err = ctl("--url", url, "conversation", "history", "+34600111222")
ok(rc == 0 and "customer Hello, do you sell dining tables?" in out and "bot " in out,
   "crmbridgectl conversation history: both sides", out + err)
rc, out, err = ctl("--url", url, "conversation", "show", "+34600111222")
ok(rc == 0 and "stage" in out and "+34600111222" in out, "crmbridgectl conversation show", out + err)
rc, out, err = ctl("--url", url, "conversation", "reset", "+34600111222")
ok(rc == 0 and "reset" in out, "crmbridgectl conversation reset", out + err)
rc, out, err = ctl("--url", url, "conversation", "show", "+34600111222")
ok(rc == 1 and "404" in err, "after a reset the conversation is gone (404)", out + err)
rc, out, err = ctl("--url", url, "conversation", "show", "not-a-phone")
ok(rc == 2 and "not a phone" in err, "a bad phone is refused before any request", err)

# ---- analytics ----
st, a = d.get_json("/api/analytics/conversations")
c = a["conversations"]
ok(st == 200 and c["started"] == 2 and c["completed"] == 1 and c["active_24h"] == 2 and c["messages_in"] == 9
   and c["conversion_rate"] == 0.5, "analytics: 2 customers, 2 conversations started, 1 became a lead, 9 messages", a)
ok(a["leads"]["created"] == 1 and sum(a["leads"]["quality"].values()) == 1, "analytics: one lead, by quality", a["leads"])
ok(a["time_to_lead_s"]["count"] == 1 and a["time_to_lead_s"]["median"] is not None
   and abs(a["time_to_lead_s"]["median"] - a["time_to_lead_s"]["mean"]) < 0.01,
   "analytics: time to lead (one lead: median = mean)", a["time_to_lead_s"])
ok(a["classifier"]["by_rules"] == a["conversations"]["turns"] and a["classifier"]["gemini_share"] == 0
   and 0 < a["classifier"]["mean_confidence"] <= 1, "analytics: classifier effectiveness", a["classifier"])
ok(len(a["daily"]) == 30 and a["daily"][-1]["leads_created"] == 1 and a["daily"][-1]["conversations"] == 2,
   "analytics: 30 daily figures, today's last", a["daily"][-1])
ok(a["lead_store"]["figures"] is None or a["lead_store"]["figures"]["store"] == "journal", "analytics: the lead store")
st, a7 = d.get_json("/api/stats?days=7")
ok(st == 200 and len(a7["daily"]) == 7 and a7["conversations"] == a["conversations"], "/api/stats?days=7: the same")
st, _ = d.get_json("/api/stats?days=99")
is_eq(st, 400, "days out of range: 400")
st, a2 = d.get_json("/api/stats")
ok(a2["lead_store"]["figures"]["total"] == 1, "the lead figures are cached and served on the next read", a2["lead_store"])
rc, out, err = ctl("--url", url, "analytics")
ok(rc == 0 and "2 started" in out and "1 became leads" in out and "DATE" in out, "crmbridgectl analytics: a summary",
   out + err)
# Counted in Redis: a restart keeps them.
d.signal(15)
d.wait(20)
d.kill()
d = Daemon(wd, conf_run, env={"CRMBRIDGE_STATE_DIR": state})
ok(d.wait_notify("READY=1", 20), "daemon restarted")
url = "http://127.0.0.1:%d" % d.port
st, a3 = d.get_json("/api/analytics/conversations")
ok(a3["conversations"]["started"] == 2 and a3["leads"]["created"] == 1, "analytics survive a restart", a3["conversations"])
is_eq(d.generated_token(), token, "the generated token is kept across restarts")

# ---- /metrics ----
rc, out, err = ctl("--url", url, "replay", "--phone", "+573009998877",
                   os.path.join(TOP, "tests", "data", "conversations", "es-sofa-complete.json"))
ok(rc == 0, "another conversation", out + err)
st, hd, m = d.request("GET", "/metrics")
m = m.decode()
ok(st == 200 and hd["Content-Type"].startswith("text/plain; version=0.0.4"), "/metrics: Prometheus text format", hd)
for name in ["crmbridge_webhook_requests_total{result=\"accepted\"} 4", "crmbridge_turn_duration_seconds_bucket",
             "crmbridge_classifier_duration_seconds_count{source=\"rules\"}",
             "crmbridge_classifier_outcomes_total{source=\"rules\",outcome=\"no_model\"}",
             "crmbridge_twilio_sends_total{result=\"sent\",code=\"0\"}", "crmbridge_queue_depth{queue=\"turns\"}",
             "crmbridge_leads_total{action=\"created\",quality=", "crmbridge_odoo_calls_total",
             "crmbridge_webhook_signature_rejects_total", "crmbridge_webhook_duplicates_total"]:
    ok(name in m, "/metrics has %s" % name.split("{")[0], m[:3000])
created = sum(int(x) for x in re.findall(r'crmbridge_leads_total\{action="created",quality="\w+"\} (\d+)', m))
is_eq(created, 1, "/metrics: one lead created by this process")
if PROMTOOL:
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=m, capture_output=True, text=True)
    ok(p.returncode == 0, "promtool check metrics accepts /metrics", p.stdout + p.stderr)
else:
    ok(True, "# SKIP promtool not installed (apt-get install prometheus)")

# ---- dead letters: listed, retried, and the retried ones really go through ----
# Written a minute ago: a turn retried inside the 24-hour window is answered with free text.
dead_turn = json.dumps({"phone": "+573005550000", "messages": [{"sid": "SM" + "d" * 32, "text": "Hola, busco una mesa",
                                                                "t_ms": str(int(time.time() * 1000) - 60000)}],
                        "at_ms": 1, "reason": "the turn failed repeatedly"})
dead_reply = json.dumps({"job": "77", "to": "whatsapp:+573005551111", "reason": "HTTP 500", "attempts": 10,
                         "at_ms": 1})
resp(redis.port, "SET", "crmbridge:{outbox}:deadbody:77", "Respuesta pendiente")
resp(redis.port, "LPUSH", "crmbridge:{engine}:dead", dead_turn)
resp(redis.port, "LPUSH", "crmbridge:{outbox}:dead", dead_reply)
st, dl = d.get_json("/api/dead-letters")
ok(st == 200 and dl["turns"][0]["phone"] == "+573005550000" and dl["replies"][0]["to"] == "whatsapp:+573005551111",
   "/api/dead-letters: turns and replies given up", dl)
rc, out, err = ctl("--url", url, "dead-letters")
ok(rc == 0 and "TURNS GIVEN UP (1)" in out and "REPLIES GIVEN UP (1)" in out, "crmbridgectl dead-letters", out + err)
# The retried messages are answered: run a chat sink meanwhile to receive them.
sink = subprocess.Popen([CTL, "-c", conf_run, "--url", url, "chat", "--wait", "20", "+573005550000"],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
time.sleep(0.5)
sent_before = d.get_json("/system/status")[1]["sender"]["sent"]
rc, out, err = ctl("--url", url, "dead-letters", "retry")
ok(rc == 0 and "requeued 1 turns and 1 replies" in out, "crmbridgectl dead-letters retry", out + err)
ok(wait_for(lambda: any(m2["dir"] == "out" for m2 in
                        (d.get_json("/api/conversation/+573005550000/history")[1] or {}).get("history", [])), 15),
   "the retried turn is processed: the customer is answered", d.logtext()[-2000:])
st, dl = d.get_json("/api/dead-letters")
ok(dl["turns"] == [] and dl["replies"] == [], "the dead-letter lists are empty after the retry", dl)
is_eq(resp(redis.port, "EXISTS", "crmbridge:{outbox}:deadbody:77"), 0, "and the retried reply's text is not kept")
ok(wait_for(lambda: d.get_json("/system/status")[1]["sender"]["sent"] == sent_before + 2, 15),
   "the retried reply and the retried turn's reply are both sent to Twilio", d.get_json("/system/status")[1]["sender"])
sink.stdin.close()
sink.wait(30)

# ---- a separate admin listener; /health closed and /metrics open by configuration ----
d.signal(15)
d.wait(20)
d.kill()
aport = free_port()
conf3 = os.path.join(wd, "admin.conf")
write_config(conf3, open(conf_run).read().replace("[server]\n", "[server]\nadmin_listen = 127.0.0.1:%d\n"
                                                  "health_public = no\nmetrics_public = yes\n" % aport))
d = Daemon(wd, conf3, env={"CRMBRIDGE_STATE_DIR": state})
ok(d.wait_notify("READY=1", 20), "daemon with an admin listener", d.logtext())
st, _, _ = d.request("GET", "/system/status")
is_eq(st, 404, "admin endpoints are not on the main listener")
st, _, _ = d.request("GET", "/system/status", port=aport)
is_eq(st, 200, "admin endpoints answer on the admin listener, with the token")
st, _, _ = d.request("GET", "/system/status", headers={}, port=aport)
is_eq(st, 401, "... and still need the token there")
st, _, _ = d.request("POST", "/api/webhook/whatsapp", body="a=b", headers={}, port=aport)
is_eq(st, 404, "webhooks are not on the admin listener")
st, _, _ = d.request("GET", "/health", headers={})
is_eq(st, 401, "health_public = no: /health needs the token")
st, _, _ = d.request("GET", "/metrics", headers={})
is_eq(st, 200, "metrics_public = yes: /metrics without a token")
rc, out, err = ctl("status", config=conf3)
ok(rc == 0 and "crmbridged" in out, "crmbridgectl finds the admin listener in the configuration", out + err)

d.signal(15)
is_eq(d.wait(20), 0, "clean exit")
d.kill()
redis.stop()
shutil.rmtree(wd, ignore_errors=True)
done()
