#!/usr/bin/env python3
"""How long an erasure holds Redis, as the key space grows (figures, not a test).

Fills a real redis-server with N other customers' conversations (4 keys each: conv, ctl, an outbox once-key,
an outbound message record) and N messages waiting for a turn (in P{turns}:in; before #19's third session, N
intake stream entries), gives the erased phone a conversation among them,
then times DELETE /api/conversation/{phone} while a second client PINGs Redis without pause: the longest
PING is how long Redis was unavailable to everyone else (webhooks, turns) during the erasure.

  python3 bench/erase.py [N ...]      (needs TOP_BUILDDIR with crmbridged, and redis-server)
"""

import http.client
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from harness import Daemon, Redis, free_port, workdir, write_config  # noqa


def pipeline(port, cmds):
    with socket.create_connection(("127.0.0.1", port)) as s:
        out = bytearray()
        for c in cmds:
            out += b"*%d\r\n" % len(c)
            for a in c:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
        s.sendall(out)
        f = s.makefile("rb")
        for _ in cmds:
            line = f.readline()
            if line[:1] == b"$" and int(line[1:]) >= 0:
                f.read(int(line[1:]) + 2)


def pinger(port, stop, worst):
    with socket.create_connection(("127.0.0.1", port)) as s:
        f = s.makefile("rb")
        while not stop.is_set():
            t = time.perf_counter()
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            f.readline()
            worst[0] = max(worst[0], time.perf_counter() - t)


def run(n):
    wd = workdir()
    redis = Redis(wd)
    redis.start()
    port = free_port()
    conf = os.path.join(wd, "crmbridge.conf")
    write_config(conf, f"""[server]
listen = 127.0.0.1:{port}
state_dir = {os.path.join(wd, "state")}
[redis]
url = {redis.url}
""")
    d = Daemon(wd, conf)
    d.wait_notify("READY=1", 15)
    cmds = []
    for i in range(n):
        ph = "+5730%08d" % i
        cmds += [["SET", "crmbridge:{%s}:conv" % ph, '{"phone":"%s","history":[]}' % ph],
                 ["HSET", "crmbridge:{%s}:ctl" % ph, "last_inbound_ms", "1"],
                 ["SET", "crmbridge:{outbox}:once:%s:t1" % ph, "1"],
                 ["HSET", "crmbridge:{outbox}:msg:SM%032x" % i, "to", ph],
                 ["ZADD", "crmbridge:{turns}:in", "0",
                  '%s|0000000000001.000000|{"sid":"SM%032x","text":"x","t_ms":"1"}' % (ph, i)]]
        if len(cmds) >= 5000:
            pipeline(redis.port, cmds)
            cmds = []
    victim = "+573999999999"
    cmds += [["SET", "crmbridge:{%s}:conv" % victim, '{"phone":"%s","history":[]}' % victim],
             ["SET", "crmbridge:{outbox}:once:%s:t1" % victim, "1"],
             ["ZADD", "crmbridge:{turns}:in", "0", '%s|0000000000001.000000|{"sid":"SMv","text":"x","t_ms":"1"}' % victim]]
    pipeline(redis.port, cmds)
    stop, worst = threading.Event(), [0.0]
    th = threading.Thread(target=pinger, args=(redis.port, stop, worst))
    th.start()
    time.sleep(0.3)
    worst[0] = 0.0
    t = time.perf_counter()
    st, _, body = d.request("DELETE", "/api/conversation/%2B573999999999")
    took = time.perf_counter() - t
    stop.set()
    th.join()
    keys = int(redis.cli("DBSIZE").strip() or 0)
    print("N=%7d  keys %7d  waiting %7d  erase %7.1f ms  longest Redis stall %6.1f ms  (HTTP %d)"
          % (n, keys, n, took * 1000, worst[0] * 1000, st), flush=True)
    d.signal(15)
    d.wait(20)
    d.kill()
    redis.stop()


for arg in sys.argv[1:] or ["2000", "20000", "100000"]:
    run(int(arg))
