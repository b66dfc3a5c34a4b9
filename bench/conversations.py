"""GET /api/conversations (the dashboard's list and search) over 1,000 conversations of ~40 KB each (100 messages),
for two crmbridged binaries against one redis-server, runs alternating, so that the figures compare as a ratio on
a shared machine.

    python3 bench/conversations.py OLD_CRMBRIDGED NEW_CRMBRIDGED

Prints each binary's median time for a search (?q=, the 1,000 most recent) and for the first 50, and the ratios.
Measured for #23 (the lines read in Redis by conversations-row.lua instead of each state read whole): see the
CHANGELOG."""
import json, os, statistics, subprocess, sys, time, urllib.request, socket
OLD, NEW = sys.argv[1], sys.argv[2]
import tempfile
WD = tempfile.mkdtemp(prefix="crmb-bench-conv-")
def free():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
rport = free()
subprocess.run(["redis-server", "--port", str(rport), "--save", "", "--daemonize", "yes", "--dir", WD], check=True)
time.sleep(0.5)
cmds = []
now = int(time.time() * 1000)
for i in range(1000):
    phone = "+5730010%05d" % i
    hist = [{"dir": "in" if j % 2 == 0 else "out", "text": ("mensaje %d de la conversación, " % j) * 12, "t_ms": now - j * 1000}
            for j in range(100)]
    st = {"v": 1, "phone": phone, "stage": "gathering_info", "created_ms": now - 3600000, "updated_ms": now - i,
          "fields": {"name": {"value": "Cliente %d" % i}, "email": {"value": "c%d@example.com" % i}}, "history": hist,
          "lead_id": None, "quality": [{"q": "warm", "t_ms": now}], "counters": {"in": 50, "out": 50, "turns": 50},
          "last_inbound_ms": now - i}
    cmds.append("SET 'crmbridge:{%s}:conv' '%s'" % (phone, json.dumps(st).replace("'", "")))
    cmds.append("ZADD 'crmbridge:{stats}:active' %d '%s'" % (now - i, phone))
p = subprocess.run(["redis-cli", "-p", str(rport)], input="\n".join(cmds) + "\n", capture_output=True, text=True)
print("# seeded: %s bytes used" % subprocess.run(["redis-cli", "-p", str(rport), "info", "memory"], capture_output=True, text=True).stdout.split("used_memory:")[1].split()[0])
TOKEN = "bench-admin-token-0123456789"
def start(binary):
    port = free()
    conf = WD + "/%d.conf" % port
    with open(conf, "w") as f:
        f.write("[server]\nlisten = 127.0.0.1:%d\nadmin_token = %s\nstate_dir = %s/state%d\nlog_level = warning\n"
                "[redis]\nurl = redis://127.0.0.1:%d/0\n[webhook]\nverify_signature = no\n" % (port, TOKEN, WD, port, rport))
    os.chmod(conf, 0o600)
    os.makedirs(WD + "/state%d" % port, exist_ok=True)
    proc = subprocess.Popen([binary, "-f", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=1); break
        except Exception:
            time.sleep(0.1)
    return proc, port
def get(port, q):
    req = urllib.request.Request("http://127.0.0.1:%d/api/conversations%s" % (port, q), headers={"Authorization": "Bearer " + TOKEN})
    t = time.perf_counter(); body = urllib.request.urlopen(req, timeout=60).read(); return time.perf_counter() - t, body
old, oport = start(OLD); new, nport = start(NEW)
res = {("old", "search"): [], ("new", "search"): [], ("old", "list"): [], ("new", "list"): []}
for rnd in range(7):
    for name, port in (("old", oport), ("new", nport)):
        dt, body = get(port, "?q=cliente%20999")
        res[(name, "search")].append(dt)
        assert [c["phone"] for c in json.loads(body)["conversations"]] == ["+573001000999"], body[:200]
        dt, body = get(port, "?limit=50")
        res[(name, "list")].append(dt)
        assert len(json.loads(body)["conversations"]) == 50
for k, v in sorted(res.items()):
    print("%s %-6s median %.1f ms (of %d)" % (k[0], k[1], statistics.median(v) * 1000, len(v)))
print("search: old/new = %.1f; list of 50: old/new = %.1f" % (
    statistics.median(res[("old", "search")]) / statistics.median(res[("new", "search")]),
    statistics.median(res[("old", "list")]) / statistics.median(res[("new", "list")])))
old.terminate(); new.terminate()
subprocess.run(["redis-cli", "-p", str(rport), "shutdown", "nosave"])
