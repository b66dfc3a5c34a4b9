"""Integration test of crmbridged as systemd runs it: a real redis-server,
the daemon with a NOTIFY_SOCKET made here; READY only once Redis answers,
watchdog pings, /health and /system/status, Redis lost and found again,
SIGHUP with a bad then a good configuration, and SIGTERM."""

import json
import re
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, Redis, done, form, is_eq, ok, resp, sign, skip_all, wait_for, workdir, write_config  # noqa: E402

SECRET_TOKEN = "twilio-secret-7f3a9c"
SECRET_PW = "odoo-secret-pw-91b2"
ADMIN = "admin-token-0123456789abcdef"

if not os.path.exists(os.environ.get("REDIS_SERVER") or "/usr/bin/redis-server"):
    skip_all("redis-server not installed")

wd = workdir()
redis = Redis(wd)
conf = os.path.join(wd, "crmbridge.conf")


def config(level="info", extra=""):
    return f"""[server]
listen = 127.0.0.1:0
public_url = https://bot.example.com
admin_token = {ADMIN}
log_level = {level}
[http]
request_timeout = 3s
shutdown_timeout = 3s
[redis]
url = {redis.url}
connect_timeout = 500ms
ping_interval = 300ms
[twilio]
account_sid = AC00000000000000000000000000000000
auth_token = {SECRET_TOKEN}
whatsapp_from = whatsapp:+14155238886
[odoo]
url = http://127.0.0.1:1
db = crm
username = bot@example.com
password = {SECRET_PW}
{extra}"""


AUTH = {"Authorization": "Bearer " + ADMIN}

# ---- crmbridged -n ----
write_config(conf, config())
bin_ = os.environ.get("CRMBRIDGED", "crmbridged")
r = subprocess.run([bin_, "-n", "-f", conf], capture_output=True, text=True)
is_eq(r.returncode, 0, "crmbridged -n accepts a good configuration")
ok("configuration OK" in r.stdout, "and says so")
bad = os.path.join(wd, "bad.conf")
write_config(bad, "[server]\nlisten = nowhere\n[twilio]\nauth_token = " + SECRET_TOKEN + "\nfoo = 1\n")
r = subprocess.run([bin_, "-n", "-f", bad], capture_output=True, text=True)
is_eq(r.returncode, 1, "crmbridged -n refuses a bad one with exit status 1")
ok(bad + ":2: key 'server.listen': invalid" in r.stderr and bad + ":5: unknown key 'twilio.foo'" in r.stderr,
   "every error with file:line and key", r.stderr)
ok(SECRET_TOKEN not in r.stderr and "nowhere" not in r.stderr, "no value in the errors")
ok(r.stderr.startswith("<3>"), "errors carry the journald priority prefix <3>", r.stderr)
nowebhook = os.path.join(wd, "nowebhook.conf")
write_config(nowebhook, "[server]\nlisten = 127.0.0.1:0\n")
r = subprocess.run([bin_, "-n", "-f", nowebhook], capture_output=True, text=True)
ok(r.returncode == 0 and "will refuse real traffic" in r.stdout and "<4>twilio: server.public_url" in r.stderr
   and "every webhook will be refused (403)" in r.stderr,
   "crmbridged -n: valid, but it says webhooks will all be refused without public_url / auth_token", r.stdout + r.stderr)
typo = os.path.join(wd, "typo.conf")
write_config(typo, "[twilio]\nauth_tokn = x\n[odo]\nurl = http://odoo.example\n")
r = subprocess.run([bin_, "-n", "-f", typo], capture_output=True, text=True)
ok(r.returncode == 1 and "unknown key 'twilio.auth_tokn'; did you mean 'twilio.auth_token'?" in r.stderr
   and "unknown section [odo]; did you mean [odoo] url?" in r.stderr, "a mistyped key or section: did you mean",
   r.stderr)
for flag, want in (("--help", "usage: crmbridged"), ("--version", "crmbridged 0.")):
    r = subprocess.run([bin_, flag], capture_output=True, text=True)
    ok(r.returncode == 0 and r.stdout.startswith(want), "crmbridged %s" % flag, r.stdout + r.stderr)
bare = os.path.join(wd, "bare-from.conf")
write_config(bare, "[twilio]\naccount_sid = AC" + "0" * 32 + "\nauth_token = t\nwhatsapp_from = +14155238886\n")
r = subprocess.run([bin_, "-p", "-f", bare], capture_output=True, text=True)
ok(r.returncode == 0 and json.loads(r.stdout)["twilio"]["whatsapp_from"] == "whatsapp:+14155238886",
   "TWILIO_WHATSAPP_FROM without 'whatsapp:' gets it (Twilio refuses a bare number: 21910)", r.stdout[-300:])
badlex = os.path.join(wd, "bad-lexicon.conf")
write_config(badlex, "[classifier]\nlexicon = /nonexistent/lexicon.json\n")
r = subprocess.run([bin_, "-n", "-f", badlex], capture_output=True, text=True)
ok(r.returncode == 1 and "classifier.lexicon" in r.stderr, "crmbridged -n refuses a lexicon that cannot load", r.stderr)
r = subprocess.run([bin_, "-n", "-f", conf], capture_output=True, text=True,
                   env={k: v for k, v in os.environ.items() if k not in ("GOOGLE_API_KEY", "CREDENTIALS_DIRECTORY")})
ok(r.returncode == 0 and "gemini.api_key (credential google_api_key, or GOOGLE_API_KEY) not set: conversations will "
   "be classified by the offline rules" in r.stderr, "without a model key: the notice names the key, the credential "
   "and the variable", r.stderr)
r = subprocess.run([bin_, "-n", "-f", conf], capture_output=True, text=True,
                   env=dict(os.environ, GOOGLE_API_KEY="AIzaTEST"))
ok(r.returncode == 0 and "classified by the offline rules" not in r.stderr, "with GOOGLE_API_KEY the offline notice is gone")
os.chmod(bad, 0o644)
write_config(bad, "[twilio]\nauth_token = " + SECRET_TOKEN + "\n", mode=0o644)
r = subprocess.run([bin_, "-n", "-f", bad], capture_output=True, text=True)
ok(r.returncode == 1 and "readable by group or others" in r.stderr, "a world-readable file with a secret is refused")
ok("'twilio.auth_token'" in r.stderr and "systemd credential 'twilio_auth_token'" in r.stderr and
   "LoadCredentialEncrypted=twilio_auth_token" in r.stderr and SECRET_TOKEN not in r.stderr,
   "... naming the key and the credential to use instead (what works under DynamicUser=), not the value", r.stderr)
# The secret as an admin keeps it: a credential in the store, outside the file (docs/DEPLOY.md, section 4).
store = os.path.join(wd, "credstore")
os.makedirs(store, mode=0o700)
write_config(os.path.join(store, "twilio_auth_token"), SECRET_TOKEN + "\n")
write_config(bad, "[twilio]\naccount_sid = AC%s\n" % ("0" * 32), mode=0o644)
env = dict(os.environ, CRMBRIDGE_CREDSTORE=store)
env.pop("CREDENTIALS_DIRECTORY", None)
r = subprocess.run([bin_, "-n", "-f", bad], capture_output=True, text=True, env=env)
ok(r.returncode == 0 and "twilio.auth_token (credential twilio_auth_token): in the credential store, given to the "
   "service at its start" in r.stderr, "crmbridged -n by hand: a secret in the credential store counts as given",
   r.stderr)
write_config(bad, "[server]\npublic_url = https://bot.example.com\n[twilio]\naccount_sid = AC%s\n" % ("0" * 32),
             mode=0o644)
r = subprocess.run([bin_, "-n", "-f", bad], capture_output=True, text=True, env=env)
ok(r.returncode == 0 and "will be refused" not in r.stderr and "refuse real traffic" not in r.stderr,
   "... and no warning that webhooks will be refused for want of it", r.stderr)
if shutil.which("script"):
    # At a terminal the lines carry no journald priority prefix (<5>): a person reads them.
    t = subprocess.run(["script", "-qec", "%s -n -f %s" % (bin_, bad), "/dev/null"], capture_output=True, text=True,
                       env=env)
    ok(t.returncode == 0 and "configuration OK" in t.stdout and "in the credential store" in t.stdout and
       "<5>" not in t.stdout, "at a terminal: no priority prefixes", t.stdout)
write_config(bad, "[twilio]\naccount_sid = AC%s\n" % ("0" * 32), mode=0o644)
r = subprocess.run([bin_, "-f", bad], capture_output=True, text=True, env=env, timeout=20)
ok(r.returncode == 1 and "not given to this process" in r.stderr and "LoadCredentialEncrypted=" in r.stderr,
   "but the daemon will not run without its value (started by hand, or a unit without the drop-in)", r.stderr)
r = subprocess.run([bin_, "-n", "-f", bad], capture_output=True, text=True,
                   env=dict(env, CRMBRIDGE_CREDSTORE=os.path.join(wd, "nostore")))
ok(r.returncode == 1 and "credential twilio_auth_token" in r.stderr, "no such credential: the error names it", r.stderr)

# ---- start without Redis: alive, not ready ----
d = Daemon(wd, conf, watchdog_usec=1000000)
try:
    ok(d.wait_notify("STATUS=Listening on 127.0.0.1:", 10) is not None, "the daemon reports the port it got")
    ok(d.port is not None and d.port > 0, "port 0 picked a free port (%s)" % d.port)
    ok(f"http: listening on 127.0.0.1:{d.port}" in d.logtext(), "and logs it")
    d.poll_notify(1.0)
    ok(not d.seen("READY=1"), "no READY=1 while Redis is down")
    st, body = d.get_json("/health")
    is_eq(st, 200, "/health answers while Redis is down (liveness)")
    st, body = d.get_json("/system/status", AUTH)
    ok(st == 200 and body["status"] == "degraded" and body["redis"]["state"] != "up",
       "/system/status says degraded, Redis not up", body)
    ok(body and body["redis"]["last_error"], "and why: %s" % (body and body["redis"]["last_error"]))
    ok(body["queues"]["turns_due"] is None and body["queues"]["dead_turns"] is None
       and body["queues"]["spool"] == 0, "the depths only Redis knows are null (unknown), not -1", body["queues"])
    ok("cannot reach Redis at " in d.logtext() and "redis.url (REDIS_URL)" in d.logtext(),
       "the log says it cannot reach Redis, where, and what to check", d.logtext()[-500:])

    redis.start()
    ok(d.wait_notify("READY=1", 10) is not None, "READY=1 once Redis answers PING")
    st, body = d.get_json("/system/status", AUTH)
    ok(st == 200 and body["redis"]["state"] == "up", "Redis up", body)
    ok(wait_for(lambda: d.get_json("/system/status", AUTH)[1]["odoo"]["last_error"], 15),
       "nothing answers at odoo.url: the status says why once the probe gives up")
    st, body = d.get_json("/system/status", AUTH)
    ok(body["status"] == "degraded" and body["odoo"]["reachable"] is False and
       body["odoo"]["last_error"]["kind"] == "transient", "status degraded, Odoo unreachable (transient)", body.get("odoo"))
    ok(body["odoo"]["url"] == "http://127.0.0.1:1/", "the Odoo URL is shown")
    built = subprocess.run([d.bin, "--version"], capture_output=True, text=True).stdout.split()[-1]
    ok(re.fullmatch(r"\d+\.\d+\.\d+", built), "crmbridged --version prints the version", built)
    is_eq(body["version"], built, "status has the version crmbridged --version prints")
    ok(isinstance(body["uptime_s"], int), "and the uptime")
    ok(body["services"]["classifier"]["mode"] == "offline rules", "and says the offline rules classify")
    ok(body["classifier"]["mode"] == "offline rules" and "gemini" not in body["classifier"],
       "the classifier section shows the offline rules", body.get("classifier"))

    st, body = d.get_json("/system/status")
    is_eq(st, 401, "/system/status needs the admin token")
    st, body = d.get_json("/system/status", {"Authorization": "Bearer " + ADMIN[:-1] + "X"})
    is_eq(st, 401, "an almost-right token is refused")
    ok(body and body["error"]["code"] == 401, "with a JSON error")
    st, hd, data = d.request("GET", "/nope")
    ok(st == 404 and b'"code":404' in data, "unknown path: 404 JSON")
    st, hd, data = d.request("DELETE", "/health")
    ok(st == 405 and "GET" in hd.get("Allow", ""), "wrong method: 405 with Allow")
    st, hd, data = d.request("POST", "/health", body=b"x" * 70000)
    ok(st in (405, 413), "a 70 KB body is refused (%d)" % st)

    # ---- idle: the engine and the sender back off instead of polling Redis twenty times a second ----
    def redis_calls():
        info = resp(redis.port, "INFO", "commandstats")
        info = info.decode() if isinstance(info, bytes) else info
        return {line.split(":")[0][8:]: int(line.split("calls=")[1].split(",")[0]) for line in info.splitlines()
                if line.startswith("cmdstat_")}
    time.sleep(6)  # the pace slows down after a few quiet polls
    c0 = redis_calls()
    time.sleep(10)
    c1 = redis_calls()
    by = {k: (v - c0.get(k, 0)) / 10.0 for k, v in c1.items() if v != c0.get(k, 0)}
    # Less the health PINGs this test asks for every 300 ms (the default is one every 5 s) and our INFO.
    rate = (sum(c1.values()) - sum(c0.values()) - 1) / 10.0 - by.get("ping", 0)
    print("# idle: %.1f Redis commands a second besides PING: %s" % (rate, by))
    ok(rate <= 5, "idle, the daemon sends Redis at most 5 commands a second (%.1f; it was 58)" % rate, by)

    # ---- watchdog ----
    d.clear()
    time.sleep(1.6)
    n = d.count("WATCHDOG=1")
    ok(n >= 2, "WATCHDOG=1 sent from the loop at half of WATCHDOG_USEC (%d in 1.6 s)" % n)

    # ---- Redis lost and found ----
    redis.stop()
    ok(wait_for(lambda: d.get_json("/system/status", AUTH)[1]["redis"]["state"] != "up", 5),
       "Redis killed: status shows it down")
    is_eq(d.get_json("/health")[0], 200, "/health still answers")
    redis.start()
    ok(wait_for(lambda: d.get_json("/system/status", AUTH)[1]["redis"]["state"] == "up", 10),
       "Redis back: the daemon reconnects by itself")
    is_eq(d.get_json("/system/status", AUTH)[1]["redis"]["reconnects"], 1, "one reconnect counted")

    # ---- SIGHUP with a bad configuration: the old one stays ----
    write_config(conf, config(extra="[http]\nmax_body = 1GiB\n") + "\n[bogus]\nx = 1\n")
    d.clear()
    d.signal(signal.SIGHUP)
    ok(d.wait_notify("READY=1", 5) is not None, "after a failed reload the daemon is READY again")
    ok(d.seen("RELOADING=1"), "RELOADING=1 was sent first")
    ok(wait_for(lambda: "keeping the running configuration" in d.logtext(), 3), "the failed reload is logged")
    log = d.logtext()
    ok(f"{conf}:" in log and "unknown section [bogus]" in log, "with file:line of each error")
    st, body = d.get_json("/system/status", AUTH)
    ok(st == 200 and body["config"]["last_reload"]["ok"] is False, "status shows the failed reload", body)
    ok(body["redis"]["state"] == "up", "and the daemon still works on the old configuration")

    # ---- SIGHUP with a good configuration ----
    write_config(conf, config(level="debug"))
    d.clear()
    d.signal(signal.SIGHUP)
    ok(d.wait_notify("READY=1", 5) is not None, "READY=1 after a good reload")
    ok(wait_for(lambda: "reload: configuration reloaded from " + conf in d.logtext(), 3), "reload logged")
    st, body = d.get_json("/system/status", AUTH)
    ok(body["config"]["last_reload"]["ok"] is True and body["config"]["reloads"] == 2, "status shows it", body)
    d.get_json("/health")
    ok(wait_for(lambda: "<7>" in d.logtext(), 3), "the new log level (debug) took effect")

    # ---- SIGHUP with a new Twilio token: the signature is checked with it, not with the old one ----
    # (signature.c keeps an HMAC handle per token; one keyed with the old token must not be reused.)
    def webhook(token, n):
        params = [("MessageSid", "SM%032d" % n), ("AccountSid", "AC" + "0" * 32), ("From", "whatsapp:+573001234567"),
                  ("To", "whatsapp:+14155238886"), ("Body", "Hola")]
        url = "https://bot.example.com/api/webhook/whatsapp"
        return d.request("POST", "/api/webhook/whatsapp", body=form(params), headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sign(token, url, params)})[0]

    NEW_TOKEN = "twilio-rotated-51c2e8"
    is_eq(webhook(SECRET_TOKEN, 1), 200, "a webhook signed with the token: accepted")
    is_eq(webhook(NEW_TOKEN, 2), 403, "one signed with another token: refused")
    write_config(conf, config(level="debug").replace(SECRET_TOKEN, NEW_TOKEN))
    d.clear()
    d.signal(signal.SIGHUP)
    ok(d.wait_notify("READY=1", 5) is not None, "READY=1 after a reload changing the Twilio token")
    is_eq(webhook(NEW_TOKEN, 3), 200, "after it, a webhook signed with the new token: accepted")
    is_eq(webhook(SECRET_TOKEN, 4), 403, "and one signed with the old token: refused")
    write_config(conf, config(level="debug"))
    d.clear()
    d.signal(signal.SIGHUP)
    ok(d.wait_notify("READY=1", 5) is not None, "READY=1 after the token is changed back")
    is_eq(webhook(SECRET_TOKEN, 5), 200, "the first token accepted again")
    is_eq(webhook(NEW_TOKEN, 6), 403, "the second refused again")

    # ---- a daemon with a Gemini key shows the model and its breaker ----
    g = Daemon(wd, conf, env={"GOOGLE_API_KEY": "AIzaTEST", "GEMINI_API_BASE": "http://127.0.0.1:9",
                              "CRMBRIDGE_STATE_DIR": os.path.join(wd, "state-g")})
    try:
        ok(g.wait_notify("READY=1", 10) is not None, "a Gemini-keyed daemon starts")
        st, body = g.get_json("/system/status", AUTH)
        cj = body.get("classifier", {})
        ok(cj.get("mode") == "gemini" and cj["gemini"]["model"] == "gemini-3.5-flash-lite" and
           cj["gemini"]["breaker"] == "closed", "status: gemini, the model, the breaker closed", cj)
        ok("AIzaTEST" not in json.dumps(body) and "AIzaTEST" not in g.logtext(), "the API key appears nowhere")
    finally:
        g.signal(signal.SIGTERM)
        g.wait(10)
        g.kill()

    # ---- another daemon on a taken port fails clearly ----
    taken = os.path.join(wd, "taken.conf")
    write_config(taken, config().replace("listen = 127.0.0.1:0", f"listen = 127.0.0.1:{d.port}"))
    r = subprocess.run([bin_, "-f", taken], capture_output=True, text=True, timeout=10,
                       env=dict(os.environ, CRMBRIDGE_STATE_DIR=os.path.join(wd, "state2")))
    ok(r.returncode == 1 and f"cannot listen on 127.0.0.1:{d.port}" in r.stderr, "a taken port: exit 1, clear error",
       r.stderr)

    # ---- privacy: nothing secret in the log or the status ----
    log = d.logtext()
    st, hd, data = d.request("GET", "/system/status", headers=AUTH)
    ok(SECRET_TOKEN not in log and SECRET_PW not in log and ADMIN not in log, "no secret in the log")
    ok(SECRET_TOKEN.encode() not in data and SECRET_PW.encode() not in data and ADMIN.encode() not in data,
       "no secret in the status")

    # ---- SIGTERM, with a request in flight: the drain lets it finish, then stops ----
    d.clear()
    answer = {}

    def slow_request():
        # A webhook: it is answered once stored (Redis, or the spool when Redis does not answer in time).
        params = [("MessageSid", "SM" + "d" * 32), ("AccountSid", "AC" + "1" * 32), ("From", "whatsapp:+573001234567"),
                  ("To", "whatsapp:+14155238886"), ("Body", "Hola")]
        url = "https://bot.example.com/api/webhook/whatsapp"
        answer["status"] = d.request("POST", "/api/webhook/whatsapp", body=form(params), timeout=10, headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sign(SECRET_TOKEN, url, params)})[0]

    resp(redis.port, "CLIENT", "PAUSE", "1500", "ALL")  # the webhook's store waits 1.5 s
    th = threading.Thread(target=slow_request)
    th.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    rc = d.wait(10)
    elapsed = time.monotonic() - t0
    th.join(10)
    time.sleep(0.2)
    is_eq(rc, 0, "SIGTERM: exit status 0")
    is_eq(answer.get("status"), 200, "the request in flight at SIGTERM was answered before the stop")
    ok(0.3 < elapsed < 5, "within the drain bound, after the request (%.2f s)" % elapsed)
    ok(d.seen("STOPPING=1"), "STOPPING=1 was sent")
    ok("stopped" in d.logtext(), "and it logged its stop", d.logtext())
finally:
    d.kill()
    redis.stop()

shutil.rmtree(wd, ignore_errors=True)
done()
