#!/usr/bin/env python3
"""Webhook acknowledgement latency: N sequential signed Twilio webhooks over
one kept-alive loopback connection to the real daemon with a real Redis;
prints p50/p99/p99.9/max of the time from sending the request to reading the
200 (client overhead included), plus the same for GET /health as a floor.

usage: bench/ack_latency.py [N]   (needs a built daemon: build/crmbridged or $CRMBRIDGED)
"""

import http.client
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from harness import Daemon, Redis, form, sign, workdir, write_config  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
os.environ.setdefault("CRMBRIDGED", os.path.join(HERE, "..", "build", "crmbridged"))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def report(name, xs):
    ms = [x * 1000 for x in xs]
    print("%-28s n=%d  p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms" %
          (name, len(ms), pct(ms, 50), pct(ms, 99), pct(ms, 99.9), max(ms)))


wd = workdir()
redis = Redis(wd)
redis.start()
conf = os.path.join(wd, "c.conf")
write_config(conf, """[server]
listen = 127.0.0.1:0
public_url = https://bot.example.com
log_level = warning
[redis]
url = %s
[twilio]
auth_token = 12345
""" % redis.url)
d = Daemon(wd, conf)
try:
    if d.wait_notify("READY=1", 10) is None:
        sys.exit("daemon did not start:\n" + d.logtext())
    c = http.client.HTTPConnection("127.0.0.1", d.port)
    health = []
    for i in range(N):
        t0 = time.perf_counter()
        c.request("GET", "/health")
        c.getresponse().read()
        health.append(time.perf_counter() - t0)
    reqs = []
    for i in range(N):
        p = [("MessageSid", "SM%032x" % (0xBE0000 + i)), ("From", "whatsapp:+5730011%05d" % (i % 500)),
             ("To", "whatsapp:+14155238886"), ("Body", "Hola, busco un sofá de 3 puestos"), ("NumMedia", "0"),
             ("ProfileName", "Cliente %d" % i), ("MessageType", "text"), ("AccountSid", "AC" + "0" * 32)]
        reqs.append((form(p).encode(), sign("12345", "https://bot.example.com/api/webhook/whatsapp", p)))
    acks = []
    for body, sig in reqs:
        t0 = time.perf_counter()
        c.request("POST", "/api/webhook/whatsapp", body=body,
                  headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})
        r = c.getresponse()
        r.read()
        acks.append(time.perf_counter() - t0)
        if r.status != 200:
            sys.exit("unexpected status %d" % r.status)
    c.close()
    print("crmbridged %s, %d sequential requests on one loopback connection, Redis %s" %
          (os.environ["CRMBRIDGED"], N, redis.url))
    report("GET /health (floor)", health)
    report("signed webhook -> 200", acks)
finally:
    d.kill()
    redis.stop()
    shutil.rmtree(wd, ignore_errors=True)
