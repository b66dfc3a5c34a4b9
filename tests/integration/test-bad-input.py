"""Bad input over HTTP: every case in tests/data/bad/ (one a file: what it is, what it sends, the answer
it must get) against the real daemon and a real redis-server. Each gets its 4xx (or is cut), nothing
bad is stored, the daemon stays up, the refusals are counted, and its memory stays flat while the
whole corpus is sent again and again (LeakSanitizer checks the exit under ASan; with CRMBRIDGED_VALGRIND
set to a build without sanitizers, the same runs under valgrind's memcheck)."""

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, Redis, done, is_eq, ok, resp, sign, skip_all, workdir, write_config  # noqa

if not os.path.exists(os.environ.get("REDIS_SERVER") or "/usr/bin/redis-server"):
    skip_all("redis-server not installed")

TOP = os.environ.get("TOP_SRCDIR", ".")
TOKEN = "twilio-token-0123"
ADMIN = "admin-token-0123456789abcdefABCDEF"
PUBLIC = "https://bot.example.com"
cases = []
for path in sorted(glob.glob(os.path.join(TOP, "tests", "data", "bad", "*.json"))):
    with open(path) as f:
        c = json.load(f)
    c["name"] = os.path.basename(path)[:-5]
    cases.append(c)

wd = workdir()
redis = Redis(wd)
redis.start()
conf = os.path.join(wd, "crmbridge.conf")
write_config(conf, f"""[server]
listen = 127.0.0.1:0
public_url = {PUBLIC}
admin_token = {ADMIN}
[http]
request_timeout = 2s
[redis]
url = {redis.url}
[twilio]
auth_token = {TOKEN}
""")


def body_of(c):
    if "body_hex" in c:
        return bytes.fromhex(c["body_hex"])
    b = c.get("body", "")
    if "body_repeat" in c:
        b = c["body_repeat"]["unit"] * c["body_repeat"]["times"]
    if "body_pad" in c:
        b += c["body_pad"]["char"] * c["body_pad"]["times"]
    return b.encode("utf-8", "surrogateescape")


def build(c):
    """The request's bytes, and whether to send it slowly or hold the connection."""
    if "raw" in c:
        return c["raw"].encode("latin-1"), c.get("hold", False)
    body = body_of(c)
    path = c["path"].replace("{TOKEN}", ADMIN)
    if "query_repeat" in c:
        path += "?" + c["query_repeat"]["unit"] * c["query_repeat"]["times"]
    method = c.get("method", "POST" if body or c.get("headers") is not None and "Content-Type" in c["headers"]
                   else "GET")
    hdrs = dict(c.get("headers", {}))
    if c.get("sign"):
        params = urllib.parse.parse_qsl(body.decode("utf-8", "surrogateescape"), keep_blank_values=True,
                                        errors="surrogateescape")
        try:
            hdrs["X-Twilio-Signature"] = sign(TOKEN, PUBLIC + path, params)
        except UnicodeEncodeError:
            hdrs["X-Twilio-Signature"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
    if c.get("admin"):
        hdrs["Authorization"] = "Bearer " + ADMIN
    mut = c.get("token_mutation")
    if mut:
        hdrs["Authorization"] = {"last": "Bearer " + ADMIN[:-1] + ("x" if ADMIN[-1] != "x" else "y"),
                                 "half": "Bearer " + ADMIN[:len(ADMIN) // 2],
                                 "space": "Bearer " + ADMIN + " ",
                                 "empty": "Bearer ",
                                 "basic": "Basic " + ADMIN}[mut]
    head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % (method, path)
    for k, v in hdrs.items():
        head += "%s: %s\r\n" % (k, v)
    head += c.get("raw_headers", "")
    if c.get("chunked"):
        head += "Transfer-Encoding: chunked\r\n\r\n"
        out = head.encode("latin-1")
        for i in range(0, len(body), 1024):
            part = body[i:i + 1024]
            out += b"%x\r\n%s\r\n" % (len(part), part)
        return out + b"0\r\n\r\n", False
    if body or method == "POST":
        head += "Content-Length: %d\r\n" % len(body)
    return head.encode("latin-1") + b"\r\n" + body, c.get("slow", False)


def send(port, c):
    """Returns (status or "closed", body bytes, seconds)."""
    data, slow = build(c)
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    got = b""
    try:
        if slow:
            # A byte a second, as long as the server keeps the connection.
            for b in data:
                s.sendall(bytes([b]))
                time.sleep(1.0)
                if time.monotonic() - t0 > 12:
                    break
        else:
            s.sendall(data)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
            if b"\r\n\r\n" in got:
                head, _, rest = got.partition(b"\r\n\r\n")
                cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if cl and len(rest) >= int(cl[0].split(b":")[1]):
                    break
    except (ConnectionResetError, BrokenPipeError, socket.timeout):
        pass
    finally:
        s.close()
    secs = time.monotonic() - t0
    if not got.startswith(b"HTTP/1."):
        return "closed", got, secs
    return int(got.split(b" ")[1]), got.partition(b"\r\n\r\n")[2], secs


def expected(c, got):
    want = c["expect"]
    return got in want if isinstance(want, list) else got == want


env = {}
valgrind = os.environ.get("CRMBRIDGED_VALGRIND")
if valgrind:
    # memcheck around a build without sanitizers: every access checked, definite leaks fail the exit.
    wrapper = os.path.join(wd, "crmbridged-valgrind")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec valgrind --quiet --error-exitcode=99 --leak-check=full "
                "--errors-for-leak-kinds=definite %s \"$@\"\n" % valgrind)
    os.chmod(wrapper, 0o755)
    os.environ["CRMBRIDGED"] = wrapper
else:
    # A small ASan quarantine, so that the resident size says what the daemon keeps, not what ASan holds back.
    env["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4"
d = Daemon(wd, conf, env=env)
ok(d.wait_notify("READY=1", 60), "daemon ready", d.logtext())
AUTH = {"Authorization": "Bearer " + ADMIN}
st0 = d.get_json("/system/status", AUTH)[1]
claims = "crmbridge:{turns}:sid:*"  # a MessageSid's claim: one per message stored

json_errors = 0
for c in cases:
    status, body, secs = send(d.port, c)
    good = expected(c, status)
    if status == "closed" and c["expect"] == "closed":
        good = secs < 8
    ok(good, "%s: %s -> %s" % (c["name"], c["why"], status), "got %r in %.1f s, want %r; %r" %
       (status, secs, c["expect"], body[:300]))
    if isinstance(status, int) and 400 <= status < 500 and body.startswith(b'{"error"'):
        json_errors += 1
    ok(d.proc.poll() is None, "%s: the daemon is still running" % c["name"])

st1 = d.get_json("/system/status", AUTH)[1]
stored = sum(1 for c in cases if c.get("stored"))
is_eq(len(resp(redis.port, "KEYS", claims)), stored, "only the %d valid messages were stored" % stored)
is_eq(st1["http"]["status_4xx"] - st0["http"]["status_4xx"], json_errors,
      "every 4xx answered by the daemon is counted (%d)" % json_errors)
ok(st1["http"]["slow_clients_cut"] - st0["http"]["slow_clients_cut"] >= 2, "slow clients are cut and counted",
   st1["http"])
ok(st1["webhook"]["bad_request"] > st0["webhook"]["bad_request"] and
   st1["webhook"]["signature_missing"] > st0["webhook"]["signature_missing"], "webhook refusals counted by kind",
   st1["webhook"])
log = d.logtext()
ok(ADMIN not in log and TOKEN not in log and "FLUSHALL" not in log, "no token or injected text in the log")


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---- memory stays flat while the corpus is sent again and again ----
quick = [c for c in cases if not c.get("slow") and not c.get("hold") and not c.get("stored")]
rounds = int(os.environ.get("BAD_INPUT_ROUNDS", "12"))
samples = []
for r in range(rounds):
    for c in quick:
        send(d.port, c)
    samples.append(rss_kb(d.proc.pid))
growth = samples[-1] - samples[2]
ok(d.proc.poll() is None, "after %d rounds of %d bad requests the daemon runs" % (rounds, len(quick)))
if valgrind:
    ok(True, "# SKIP resident size under valgrind is valgrind's own (its free list); its leak check decides")
else:
    ok(growth < 2048, "resident memory flat: %d KiB after round 3, %d KiB after round %d (%+d KiB)" %
       (samples[2], samples[-1], rounds, growth), samples)
print("# RSS by round (KiB): %s" % " ".join(str(s) for s in samples))

d.signal(15)
rc = d.wait(30)
is_eq(rc, 0, "clean exit (no error or leak reported by %s)" % ("valgrind" if valgrind else "ASan/LeakSanitizer"))
if rc != 0:
    print("\n".join("# " + l for l in d.logtext().splitlines()[-40:]))
d.kill()
redis.stop()
shutil.rmtree(wd, ignore_errors=True)
done()
