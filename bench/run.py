#!/usr/bin/env python3
"""The standard benchmark set: the real daemon (build it without sanitizers: `make -C build bench`), a real
redis-server, the Gemini and Odoo doubles with their latency knobs, and bench/loadgen (C, libcurl multi)
playing both the customers (signed webhooks at a target rate) and Twilio's REST API (80 ms a call).

For each run it prints: webhook acknowledgement p50/p99/p99.9; turn latency (webhook sent -> reply at
"Twilio") p50/p99 and the daemon's own overhead (turn latency minus the model's latency at the same
percentile); sustained messages per second; the most model calls in flight at once; the daemon's RSS
(peak); CPU per 1,000 messages; Redis commands per message; messages left unanswered.

  bench/run.py [--quick] [--json FILE]     (CRMBRIDGED, LOADGEN, REDIS_SERVER from the environment)
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.environ.get("TOP_SRCDIR") or os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
from harness import Daemon, Redis, control, resp, start_fake, workdir, write_config  # noqa: E402

TOKEN = "bench-token"
SID = "AC" + "9" * 32
PUBLIC = "https://bot.example.com"
CLK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p






def proc_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    cpu = (int(parts[11]) + int(parts[12])) / CLK
    # The scheduler's own count, in nanoseconds, summed over the process's threads: utime and stime above
    # come in clock ticks (10 ms), a sixteenth of a millisecond a message on the 600-message burst.
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
        ns = 0
        for t in tasks:
            with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                ns += int(f.read().split()[0])
        # A thread that ended took its count with it; the ticks keep it (the daemon runs one thread).
        cpu = ns / 1e9 if len(tasks) == 1 else cpu
    except (OSError, ValueError, IndexError):
        pass
    rss = hwm = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return cpu, rss, hwm


def redis_commands(port):
    info = resp(port, "INFO", "stats").decode()
    for line in info.splitlines():
        if line.startswith("total_commands_processed:"):
            return int(line.split(":")[1])
    return 0


def idle_commands(port, settle, window):
    """Redis commands a second while the daemon has nothing to do (less the INFO calls measuring it): measured
    before the load (after it, replies to the load generator's stopped sink are still being retried), settle
    seconds for the polls to slow down, then counted over window seconds."""
    time.sleep(settle)
    c0 = redis_commands(port)
    time.sleep(window)
    return (redis_commands(port) - c0 - 1) / window


def one_run(name, customers, rate, duration, model_ms, jitter_ms, odoo_ms=50, twilio_ms=80, idle_window=10,
            max_turns=2048, clients=512, model=True, twilio_in_flight=1024):
    wd = workdir()
    redis = Redis(wd)
    redis.start()
    gemini, gport = start_fake("gemini.py", "--api-key", "bench-key")
    odoo, oport = start_fake("odoo.py", "--x-fields")
    control(gport, {"latency_ms": model_ms, "jitter_ms": jitter_ms, "keep_log": False})
    control(oport, {"latency_ms": odoo_ms})
    sink = free_port()
    # None: the default twilio.max_in_flight (64).
    tw_in_flight = "max_in_flight = %d\n" % twilio_in_flight if twilio_in_flight else ""
    conf = os.path.join(wd, "crmbridge.conf")
    # Without the model section the turns are classified by the offline rules alone.
    model_section = f"""[gemini]
api_key = bench-key
api_base = http://127.0.0.1:{gport}
timeout = 30s
breaker_failures = 100
""" if model else ""
    write_config(conf, f"""[server]
listen = 127.0.0.1:0
public_url = {PUBLIC}
log_level = warning
[http]
max_connections = 4096
[redis]
url = {redis.url}
[engine]
coalesce_window = 0
max_turns = {max_turns}
turn_lease = 120s
{model_section}[twilio]
account_sid = {SID}
auth_token = {TOKEN}
whatsapp_from = whatsapp:+14155238886
api_base = http://127.0.0.1:{sink}
status_callback = no
{tw_in_flight}[odoo]
url = http://127.0.0.1:{oport}
db = crmfix
username = admin
password = admin
""")
    d = Daemon(wd, conf)
    if not d.wait_notify("READY=1", 30):
        for p in (gemini, odoo):
            p.terminate()
        redis.stop()
        d.kill()
        raise RuntimeError(d.logtext())
    time.sleep(1)  # the Odoo probe
    idle = idle_commands(redis.port, 6, idle_window)
    cpu0, _, _ = proc_stat(d.proc.pid)
    cmd0 = redis_commands(redis.port)
    out = os.path.join(wd, "loadgen.json")
    subprocess.run([os.environ.get("LOADGEN") or os.path.join(TOP, "build", "bench", "loadgen"),
                    "--target", "http://127.0.0.1:%d" % d.port, "--public-url", PUBLIC, "--auth-token", TOKEN,
                    "--account-sid", SID, "--customers", str(customers), "--rate", str(rate),
                    "--duration", str(duration), "--drain", str(max(20, model_ms * 4 / 1000)),
                    "--sink-port", str(sink), "--sink-latency-ms", str(twilio_ms), "--max-open", str(clients),
                    "--json", out], check=True)
    cpu1, rss, hwm = proc_stat(d.proc.pid)
    cmd1 = redis_commands(redis.port)
    with open(out) as f:
        lg = json.load(f)
    gst = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/_stats" % gport).read())
    d.signal(15)
    d.wait(30)
    d.kill()
    for p in (gemini, odoo):
        p.terminate()
    redis.stop()
    shutil.rmtree(wd, ignore_errors=True)
    msgs = max(1, lg["acked"])
    # The model's own latency at the same percentile (uniform in [model - jitter, model + jitter]).
    m50 = model_ms
    m99 = model_ms + jitter_ms * 0.98
    r = {"run": name, "customers": customers, "rate": rate,
         "model_ms": "%d±%d" % (model_ms, jitter_ms) if model else "offline rules",
         "ack_p50_ms": lg["ack_ms"]["p50"], "ack_p99_ms": lg["ack_ms"]["p99"], "ack_p999_ms": lg["ack_ms"]["p999"],
         "turn_p50_ms": lg["turn_ms"]["p50"], "turn_p99_ms": lg["turn_ms"]["p99"],
         "overhead_p50_ms": lg["turn_ms"]["p50"] - m50, "overhead_p99_ms": lg["turn_ms"]["p99"] - m99,
         "sustained_msg_s": lg["acked_per_s"], "model_in_flight_max": gst["max_in_flight"],
         "rss_peak_mb": hwm / 1024.0, "cpu_s_per_1000": (cpu1 - cpu0) * 1000.0 / msgs,
         "cpu_ms_per_msg": (cpu1 - cpu0) * 1000.0 / msgs, "redis_cmds_per_msg": (cmd1 - cmd0) / msgs,
         "sent": lg["sent"], "acked": lg["acked"], "failed": lg["failed"], "replies": lg["replies"],
         "unanswered": lg["unanswered"], "idle_redis_cmds_s": idle}
    print("%-22s %6d cust %4d/s  ack p50 %.2f p99 %.2f p99.9 %.2f ms | turn p50 %.0f p99 %.0f ms, own p50 %.0f "
          "p99 %.0f ms | %.0f msg/s, model in flight %d | RSS %.1f MB, CPU %.3f ms/msg, Redis %.1f cmd/msg | "
          "unanswered %d | idle Redis %.1f cmd/s" % (name, customers, rate, r["ack_p50_ms"], r["ack_p99_ms"], r["ack_p999_ms"],
                             r["turn_p50_ms"], r["turn_p99_ms"], r["overhead_p50_ms"], r["overhead_p99_ms"],
                             r["sustained_msg_s"], r["model_in_flight_max"], r["rss_peak_mb"], r["cpu_ms_per_msg"],
                             r["redis_cmds_per_msg"], r["unanswered"], r["idle_redis_cmds_s"]), flush=True)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a smoke run: small and short")
    ap.add_argument("--json")
    ap.add_argument("--only", help="run only the runs whose name contains this")
    a = ap.parse_args()
    runs = []
    if a.quick:
        runs.append(one_run("smoke", 50, 20, 3, 100, 20, idle_window=4))
    else:
        standard = [("500/s, model 1 s", (10000, 500, 20, 1000, 0), {}),
                    ("500/s, model 0.8±0.2 s", (10000, 500, 20, 800, 200), {}),
                    ("200/s, model 3 s", (10000, 200, 20, 3000, 0), {}),
                    ("100 conversations", (100, 200, 20, 800, 200), {}),
                    ("1,000 conversations", (1000, 200, 20, 800, 200), {}),
                    ("10,000 conversations", (10000, 200, 20, 800, 200), {}),
                    # 1,500 customers at once from 48 clients (Twilio's burst), the default 256 turns in flight.
                    ("burst 1,500 / 48 clients", (1500, 150000, 0.01, 1000, 0), {"max_turns": 256, "clients": 48}),
                    # #19's per-message figures: 600 customers x 1 message at once, offline rules (no model).
                    ("burst 600, offline rules", (600, 60000, 0.01, 0, 0),
                     {"max_turns": 256, "clients": 48, "model": False}),
                    # The same at the default twilio.max_in_flight (64; the runs above allow 1,024 calls to
                    # Twilio at once, each a connection of its own in a burst: Twilio's own limit, error 20429).
                    ("burst 600, 64 to Twilio, offline rules", (600, 60000, 0.01, 0, 0),
                     {"max_turns": 256, "clients": 48, "model": False, "twilio_in_flight": None}),
                    # The same at a steady pace, where Redis's batches are small: 2,000 customers over 10 s.
                    ("steady 200/s, offline rules", (2000, 200, 10, 0, 0),
                     {"max_turns": 256, "clients": 48, "model": False})]
        for name, args, kw in standard:
            if a.only is None or a.only in name:
                runs.append(one_run(name, *args, **kw))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(runs, f, indent=1)
    bad = [r for r in runs if r["unanswered"] > 0 or r["failed"] > 0]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
