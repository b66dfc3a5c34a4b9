"""Hardening: the unit's system-call filter against what the real daemon really calls. crmbridged runs
under strace through a whole workload (webhooks, Gemini and Odoo over libcurl, Twilio sends, the admin
API, a SIGHUP reload, a SIGTERM drain), and every system call it made must pass the unit's
SystemCallFilter= lines, expanded with systemd-analyze (a call the filter refuses gets EPERM, which
would break the daemon quietly in production). systemd itself cannot run here (no systemd as PID 1),
so this is the check of the filter against the binary (test-unit.sh scores the unit itself)."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, Redis, done, form, ok, sign, skip_all, start_fake, wait_for, workdir, write_config  # noqa

TOP = os.environ.get("TOP_SRCDIR", ".")
STRACE = shutil.which("strace")
ANALYZE = shutil.which("systemd-analyze")
if not os.path.exists(os.environ.get("REDIS_SERVER") or "/usr/bin/redis-server"):
    skip_all("redis-server not installed")
if not STRACE or not ANALYZE:
    skip_all("strace or systemd-analyze not installed")

UNIT = os.path.join(TOP, "systemd", "crmbridged.service.in")
# Calls made only by the sanitizer runtime of a test build (never by the release binary).
SANITIZER_ONLY = {"ptrace", "personality", "process_vm_readv"}


def expand(group, seen=None):
    seen = seen if seen is not None else set()
    if not group.startswith("@"):
        return {group}
    if group in seen:
        return set()
    seen.add(group)
    out = set()
    text = subprocess.run([ANALYZE, "syscall-filter", group], capture_output=True, text=True).stdout
    for line in text.splitlines()[1:]:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        out |= expand(line, seen)
    return out


allowed = None
with open(UNIT) as f:
    for line in f:
        m = re.match(r"SystemCallFilter=(~?)(.*)", line.strip())
        if not m:
            continue
        names = set()
        for item in m.group(2).split():
            names |= expand(item)
        if m.group(1) == "~":
            allowed = (allowed if allowed is not None else set()) - names
        else:
            allowed = (allowed or set()) | names
ok(allowed and "read" in allowed and "mount" not in allowed and "reboot" not in allowed,
   "the unit's filter expands (%d calls allowed)" % len(allowed or ()))

wd = workdir()
redis = Redis(wd)
redis.start()




SID, TOKEN = "AC" + "3" * 32, "syscall-token"
twilio, tport = start_fake("twilio.py", "--account-sid", SID, "--auth-token", TOKEN)
odoo, oport = start_fake("odoo.py", "--x-fields")
gemini, gport = start_fake("gemini.py", "--api-key", "k")
conf = os.path.join(wd, "crmbridge.conf")
write_config(conf, f"""[server]
listen = 127.0.0.1:0
public_url = https://bot.example.com
admin_token = syscall-admin-token-0123456
[redis]
url = {redis.url}
[engine]
coalesce_window = 200ms
[gemini]
api_key = k
api_base = http://localhost:{gport}
[twilio]
account_sid = {SID}
auth_token = {TOKEN}
whatsapp_from = whatsapp:+14155238886
api_base = http://localhost:{tport}
[odoo]
url = http://localhost:{oport}
db = crmfix
username = admin
password = admin
""")
trace = os.path.join(wd, "strace.out")
wrapper = os.path.join(wd, "crmbridged-strace")
binary = os.environ.get("CRMBRIDGED_PLAIN") or os.environ.get("CRMBRIDGED") or "crmbridged"
with open(wrapper, "w") as f:
    # localhost, not 127.0.0.1: libcurl's resolver (its thread, getaddrinfo, /etc/hosts) is exercised too.
    f.write("#!/bin/sh\nexec %s -f -qq -o %s %s \"$@\"\n" % (STRACE, trace, binary))
os.chmod(wrapper, 0o755)
os.environ["CRMBRIDGED"] = wrapper
# LeakSanitizer stops the world with ptrace, which it cannot do under strace: leaks are other tests' job.
d = Daemon(wd, conf, env={"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0"})
ok(d.wait_notify("READY=1", 60), "the daemon runs under strace", d.logtext())
A = {"Authorization": "Bearer syscall-admin-token-0123456"}
n = 0
for phone, lines in [("+573001230001", ["Hola", "Busco un sofá", "Soy Ana, presupuesto $900"]),
                     ("+573001230002", ["Quiero hablar con una persona"])]:
    for line in lines:
        n += 1
        p = [("MessageSid", "SM%032x" % n), ("From", "whatsapp:" + phone), ("Body", line)]
        req = urllib.request.Request("http://127.0.0.1:%d/api/webhook/whatsapp" % d.port, data=form(p).encode(),
                                     headers={"Content-Type": "application/x-www-form-urlencoded",
                                              "X-Twilio-Signature": sign(TOKEN, "https://bot.example.com/api/webhook/whatsapp", p)})
        urllib.request.urlopen(req, timeout=10).read()
        wait_for(lambda: len([e for e in json.loads(urllib.request.urlopen(
            "http://127.0.0.1:%d/_log" % tport).read()) if e.get("answer") == 201]) >= n, 20)
for path in ["/system/status", "/metrics", "/api/analytics/conversations", "/system/config"]:
    d.request("GET", path, headers=A)
# Signals go to the daemon, not to strace (which would detach on them).
with open("/proc/%d/task/%d/children" % (d.proc.pid, d.proc.pid)) as f:
    daemon_pid = int(f.read().split()[0])
os.kill(daemon_pid, signal.SIGHUP)
ok(wait_for(lambda: d.count("READY=1") >= 2, 20), "reloaded")
ok(len(json.loads(urllib.request.urlopen("http://127.0.0.1:%d/_log" % tport).read())) >= n,
   "the workload ran: %d replies sent through libcurl" % n)
os.kill(daemon_pid, signal.SIGTERM)
ok(d.wait(30) == 0, "clean exit under strace")
d.kill()

used = set()
with open(trace) as f:
    for line in f:
        m = re.match(r"^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)[( ]", line)
        if m and m.group(1) not in ("exit", "resumed", "killed"):
            used.add(m.group(1))
asan = "__asan_init" in subprocess.run(["nm", "-D", binary], capture_output=True, text=True).stdout or \
    "libasan" in subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
ok(len(used) > 30, "strace saw the daemon's calls (%d distinct)" % len(used))
refused = sorted(used - allowed - {"execve"} - (SANITIZER_ONLY if asan else set()))
ok(not refused, "every system call the daemon made passes the unit's filter%s" %
   (" (sanitizer runtime's own calls set aside)" if asan else ""), refused)
print("# system calls used: " + " ".join(sorted(used)))

for p in (twilio, odoo, gemini):
    p.terminate()
redis.stop()
shutil.rmtree(wd, ignore_errors=True)
done()
