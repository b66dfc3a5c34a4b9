"""Hostile clients, measured: the attacks of issue #18 against a running crmbridged, as figures.

    python3 bench/hostile.py BINARY [BINARY...]     (from the source tree; REDIS_SERVER optional)

For each binary (say the release build before and after a change) it starts the daemon on a private
redis-server and prints, side by side:
  - the resident size before and after FLOOD (10,000) requests whose query is 20,000 '&' (16 clients);
  - how many of 40 signed webhooks get 200 while 256 connections (64 from each of four addresses)
    announce 64 KiB bodies and send nothing;
  - how many of 1,030 connections from one address are closed at once, and /health probes answered meanwhile.
tests/integration/test-hostile.py runs the same functions on the test build and asserts on them."""

import concurrent.futures
import os
import select
import socket
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from harness import Daemon, Redis, sign, workdir, write_config  # noqa

TOKEN = "twilio-token-0123"
ADMIN = "admin-token-0123456789abcdefABCDEF"
PUBLIC = "https://bot.example.com"
HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
FLOOD_REQUEST = ("GET /health?" + "&" * 20000 + " HTTP/1.1\r\nHost: x\r\n\r\n").encode()


def start(binary=None, env=None):
    """A daemon (and its Redis) with the embedded defaults but a 30 s request deadline."""
    wd = workdir()
    redis = Redis(wd)
    redis.start()
    conf = os.path.join(wd, "crmbridge.conf")
    write_config(conf, f"""[server]
listen = 127.0.0.1:0
public_url = {PUBLIC}
admin_token = {ADMIN}
[http]
request_timeout = 30s
[redis]
url = {redis.url}
[twilio]
auth_token = {TOKEN}
""")
    if binary:
        os.environ["CRMBRIDGED"] = binary
    d = Daemon(wd, conf, env=env or {})
    if not d.wait_notify("READY=1", 60):
        raise RuntimeError("crmbridged did not start: " + d.logtext()[-2000:])
    return d, redis


def rss_kb(d):
    with open("/proc/%d/status" % d.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def dial(d, src="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((src, 0))
    s.connect(("127.0.0.1", d.port))
    return s


def converse(d, data, src="127.0.0.1", whole=False):
    """Sends data on a new connection; what came back: the first answer's head, or (whole) all until the
    server closed."""
    s = dial(d, src)
    got = b""
    try:
        s.sendall(data)
        while whole or b"\r\n\r\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    except OSError:
        pass
    s.close()
    return got


def exchange(d, data, src="127.0.0.1"):
    """Sends data on a new connection; the answer's status, or "closed"."""
    got = converse(d, data, src)
    return int(got.split(b" ")[1]) if got.startswith(b"HTTP/1.") else "closed"


_sid = [0]


def webhook(d, src="127.0.0.1"):
    """A signed Twilio message webhook from a new customer; its status."""
    _sid[0] += 1
    params = [("MessageSid", "SM%032d" % _sid[0]), ("AccountSid", "AC" + "0" * 32),
              ("From", "whatsapp:+57300111%04d" % _sid[0]), ("To", "whatsapp:+14155238886"), ("Body", "Hola"),
              ("NumMedia", "0")]
    body = urllib.parse.urlencode(params).encode()
    path = "/api/webhook/whatsapp"
    head = ("POST %s HTTP/1.1\r\nHost: bot.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            "X-Twilio-Signature: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % (path, sign(TOKEN, PUBLIC + path, params), len(body)))
    return exchange(d, head.encode() + body, src)


def health_probes(d, n=10):
    return sum(1 for _ in range(n) if exchange(d, HEALTH) == 200)


def query_flood(d, n, clients=16):
    """RSS before and after n requests with 20,000 '&' in the query, from 16 clients at once (after 200 to
    warm up)."""
    def send(k):
        return [exchange(d, FLOOD_REQUEST) for _ in range(k)]

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, [200 // clients] * clients))
        r0, t0, answers = rss_kb(d), time.monotonic(), {}
        for part in pool.map(send, [n // clients + (1 if i < n % clients else 0) for i in range(clients)]):
            for st in part:
                answers[st] = answers.get(st, 0) + 1
    return {"requests": n, "seconds": time.monotonic() - t0, "answers": answers, "rss_before_kb": r0,
            "rss_after_kb": rss_kb(d)}


def idle_bodies(d, conns=256, webhooks=40):
    """Webhooks answered 200 while conns connections announce 64 KiB bodies and send none (65,535 bytes:
    with its NUL, 256 of them are exactly the default http.body_memory of 16 MiB)."""
    idle = []
    for i in range(conns):
        try:
            s = dial(d, "127.0.0.%d" % (10 + i % 4))
            s.sendall(b"POST /api/webhook/whatsapp HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 65535\r\n\r\n")
            idle.append(s)
        except OSError:
            pass
    time.sleep(0.5)
    results = [webhook(d) for _ in range(webhooks)]
    out = {"idle": len(idle), "webhooks": webhooks, "webhooks_200": sum(1 for r in results if r == 200),
           "health": health_probes(d)}
    for s in idle:
        s.close()
    return out


def one_address(d, conns=300, src="127.0.0.20"):
    """How many of conns connections from one address are closed at once; /health meanwhile."""
    held, closed = [], 0
    for _ in range(conns):
        try:
            held.append(dial(d, src))
        except OSError:
            closed += 1
    time.sleep(0.5)
    # All at once: one by one, the last would be looked at after the request deadline had cut them.
    poller = select.poll()
    by_fd = {s.fileno(): s for s in held}
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    for fd, _ in poller.poll(500):
        s = by_fd[fd]
        try:
            if s.recv(1) == b"":
                closed += 1
        except OSError:
            closed += 1
    out = {"connections": conns, "closed_at_once": closed, "health": health_probes(d),
           "webhook": webhook(d)}
    for s in held:
        s.close()
    return out


def main():
    flood_n = int(os.environ.get("FLOOD", "10000"))
    rows = []
    for binary in sys.argv[1:]:
        d, redis = start(os.path.abspath(binary))
        f = query_flood(d, flood_n)
        i = idle_bodies(d)
        o = one_address(d, 1030)
        rows.append((binary, f, i, o))
        d.signal(15)
        d.wait(30)
        redis.stop()
    for binary, f, i, o in rows:
        print("%s" % binary)
        print("  query flood: %d requests in %.1f s, answers %s; RSS %d -> %d KiB (%+d KiB)" %
              (f["requests"], f["seconds"], f["answers"], f["rss_before_kb"], f["rss_after_kb"],
               f["rss_after_kb"] - f["rss_before_kb"]))
        print("  %d idle connections announcing 64 KiB: %d of %d webhooks got 200, /health %d of 10" %
              (i["idle"], i["webhooks_200"], i["webhooks"], i["health"]))
        print("  one address, %d connections: %d closed at once; /health %d of 10, a webhook got %s" %
              (o["connections"], o["closed_at_once"], o["health"], o["webhook"]))


if __name__ == "__main__":
    main()
