"""Hostile clients against the real daemon and a real redis-server (issue #18's attacks, kept as tests):
a flood of requests whose query overflows libmicrohttpd's per-connection memory leaves the resident size
flat and nothing leaked; 256 connections that announce 64 KiB bodies and send nothing (from four
addresses) do not stop real signed webhooks from getting 200; one address opening hundreds of connections
gets only http.max_connections_per_address of them while /health keeps answering others; a request with
both Content-Length and Transfer-Encoding is refused and its connection closed. bench/hostile.py runs the
same measurements on any builds side by side and prints the figures."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.environ.get("TOP_SRCDIR", "."), "bench"))
from harness import done, is_eq, ok, skip_all  # noqa

if not os.path.exists(os.environ.get("REDIS_SERVER") or "/usr/bin/redis-server"):
    skip_all("redis-server not installed")
import hostile as h  # noqa

FLOOD = int(os.environ.get("HOSTILE_FLOOD", "3000"))
# A small ASan quarantine, so that the resident size says what the daemon keeps, not what ASan holds back.
d, redis = h.start(env={"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4"})
AUTH = {"Authorization": "Bearer " + h.ADMIN}

f = h.query_flood(d, FLOOD)
print("# query flood: %d requests in %.1f s, answers %s, RSS %d -> %d KiB" %
      (FLOOD, f["seconds"], f["answers"], f["rss_before_kb"], f["rss_after_kb"]))
ok(set(f["answers"]) <= {"closed", 414, 431}, "every request with 20,000 '&' is refused or closed", f["answers"])
growth = f["rss_after_kb"] - f["rss_before_kb"]
ok(growth < 2048, "the resident size stays flat under %d of them (%+d KiB)" % (FLOOD, growth))
is_eq(h.health_probes(d, 1), 1, "the daemon still answers")
st = d.get_json("/system/status", AUTH)[1]
ok(st["http"]["closed_early"] >= FLOOD, "they are counted as closed early", st["http"])
is_eq(h.exchange(d, ("GET /health?a=" + "x" * 9000 + " HTTP/1.1\r\nHost: x\r\n\r\n").encode()), 414,
      "a 9 KB query (over http.max_uri, 8 KiB) gets 414")

i = h.idle_bodies(d)
print("# webhooks while %d connections announce 64 KiB bodies: %d of %d got 200" %
      (i["idle"], i["webhooks_200"], i["webhooks"]))
is_eq(i["idle"], 256, "256 connections announcing 64 KiB bodies are held")
is_eq(i["webhooks_200"], i["webhooks"], "every signed webhook gets 200 meanwhile")
is_eq(i["health"], 10, "and /health answers 10 probes in 10")

o = h.one_address(d, 300)
print("# one address opened %d connections: %d closed at once" % (o["connections"], o["closed_at_once"]))
is_eq(o["closed_at_once"], 300 - 64, "beyond http.max_connections_per_address (64) its connections are closed")
is_eq(o["health"], 10, "while /health answers 10 probes in 10 from another address")
is_eq(o["webhook"], 200, "and a webhook gets 200")
o = h.one_address(d, 100, "127.0.0.1")
is_eq(o["closed_at_once"], 0, "a reverse proxy's address (http.proxy_addresses: 127.0.0.1) keeps its 100 connections")

got = h.converse(d, b"POST /api/webhook/whatsapp HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n", whole=True)
ok(got.startswith(b"HTTP/1.1 400") and got.count(b"HTTP/1.1") == 1,
   "Content-Length with Transfer-Encoding: 400, the connection closed, the request behind it never answered",
   got[:400])

d.signal(15)
is_eq(d.wait(60), 0, "clean exit (LeakSanitizer found nothing under ASan)")
redis.stop()
done()
