"""Every Redis script in redis/*.lua, run against real redis-servers on crafted keys.

Each script is loaded from the source tree (TOP_SRCDIR), as the daemon compiles it in, and checked for its
answer and for the keys it leaves, including the crash and retry cases it exists for: a claim never takes a
phone whose lease has not ended and makes what it claims due again at the lease's end, a release keeps a phone
rescheduled meanwhile, the intake stores a MessageSid once, the sender hands out one job per recipient per
lease and remembers an attempt whose outcome is unknown, erasure refuses while a turn is under way and an
erasure interrupted after any of its steps is finished by running it again.

Everything runs twice: on a plain redis-server, and on a single-node Redis Cluster (all 16384 slots on one
node). Each script is sent with a "#!lua" shebang, so on the cluster Redis itself refuses a script whose keys
are in more than one slot; and each is wrapped in a check that makes redis.call/redis.pcall fail when a key
argument (by the command's key positions, from COMMAND) is not one of the script's KEYS.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Redis, done, free_port, is_eq, ok, resp, skip_all, workdir  # noqa

if not os.path.exists(os.environ.get("REDIS_SERVER") or "/usr/bin/redis-server"):
    skip_all("redis-server not installed")

SRC = os.environ.get("SCRIPTS_DIR") or os.path.join(
    os.environ.get("TOP_SRCDIR") or os.path.join(os.path.dirname(__file__), "..", ".."), "redis")
wd = workdir()
plain = Redis(wd, name="redis-plain")
# A cluster node also listens on its port + 10000, so its port must be 55535 or less.
cport = free_port()
while cport > 55535:
    cport = free_port()
cluster = Redis(wd, name="redis-cluster", port=cport,
                args=["--cluster-enabled", "yes", "--cluster-config-file", os.path.join(wd, "nodes.conf")])
P = "t:"  # the key prefix
PH = "+573001112233"
port = None  # the server the checks run on now


def r(*args):
    return resp(port, *args)


# The key positions of every command (first, last, step; last < 0 counts from the end), as Redis lists them.
KEYSPEC = None

CHECK = """local __spec = {%s}
local __decl = {}
for _, k in ipairs(KEYS) do __decl[k] = true end
local function __chk(...)
  local a = {...}
  local s = __spec[string.lower(a[1])]
  if s then
    local last = s[2]
    if last < 0 then last = #a + last end
    for i = s[1], last, s[3] do
      if not __decl[a[i + 1]] then error('undeclared key ' .. tostring(a[i + 1]) .. ' in ' .. a[1]) end
    end
  end
end
local function __call(...) __chk(...) return redis.call(...) end
local function __pcall(...) __chk(...) return redis.pcall(...) end
"""


def keyspec():
    spec = {}
    for c in resp(plain.port, "COMMAND"):
        name, first, last, step = c[0], c[3], c[4], c[5]
        name = name.decode() if isinstance(name, bytes) else name
        if first > 0 and "|" not in name:
            spec[name] = (first, last, step)
    return ", ".join('["%s"] = {%d, %d, %d}' % (n, f, l, st) for n, (f, l, st) in sorted(spec.items()))


def wrapped(text):
    """The script as the checks send it: a shebang, the key check, redis.call/pcall through it."""
    body = text.replace(b"redis.call(", b"__call(").replace(b"redis.pcall(", b"__pcall(")
    return b"#!lua\n" + (CHECK % KEYSPEC).encode() + body


def ev(name, keys, args):
    with open(os.path.join(SRC, name + ".lua"), "rb") as f:
        text = f.read()
    return r("EVAL", wrapped(text), len(keys), *keys, *args)


def k(s):
    return P + s


def s(v):
    """A reply's bytes as text, recursively."""
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, list):
        return [s(x) for x in v]
    return v


def hget(key, field):
    return s(r("HGET", key, field))


def zscore(key, member):
    v = r("ZSCORE", key, member)
    return None if v is None else float(v)


def fails(name, keys, args):
    """The error a script run ends with, or None."""
    try:
        ev(name, keys, args)
        return None
    except RuntimeError as e:
        return str(e)


def suite(where):
    # ---- intake-store: the claim, the arrival and the schedule in one script ----
    r("FLUSHALL")
    due, first, lease, arr = k("{turns}:due"), k("{turns}:first"), k("{turns}:lease"), k("{turns}:in")
    attempts = k("{turns}:attempts")  # the release before kept the attempts there (erase-turns still clears it)
    inbox, routed = k("{%s}:inbox" % PH), k("{%s}:routed" % PH)  # the release before's; erase-phone deletes them

    def member(ph, ms, seq, sid, text="x"):
        return "%s|%013d.%06d|%s" % (ph, ms, seq, json.dumps({"sid": sid, "text": text}, separators=(",", ":")))

    def store(sid, ph=PH, ms=1000, seq=0, idem=None, now=1000, win=0, cap=0, text="x"):
        sk = k("{turns}:sid:" + sid)
        ik = k("{turns}:idem:" + idem) if idem else sk
        return ev("intake-store", [sk, ik, arr, due], [3600, ph, member(ph, ms, seq, sid, text), now, win, cap])

    def arrivals(ph=PH):
        return [json.loads(m.split("|", 2)[2])["sid"] for m in s(r("ZRANGEBYLEX", arr, "[%s|" % ph, "(%s}" % ph))]

    is_eq(store("SM1", idem="tok1"), 1000, "intake: a new message is stored; its phone is due now (no window)")
    is_eq(arrivals(), ["SM1"], "intake: among the phone's arrivals")
    is_eq(zscore(due, PH), 1000.0, "intake: the phone's turn is due in the same script")
    ok(0 < r("TTL", k("{turns}:sid:SM1")) <= 3600 and 0 < r("TTL", k("{turns}:idem:tok1")) <= 3600,
       "intake: the MessageSid and the token are claimed with a TTL")
    is_eq(store("SM1", idem="tok1", ms=2000), 0, "intake: a repeated MessageSid is a duplicate")
    is_eq(store("SM2", idem="tok1"), 0, "intake: a new MessageSid with a known idempotency token is a duplicate")
    ok(arrivals() == ["SM1"] and r("EXISTS", k("{turns}:sid:SM2")) == 0,
       "intake: duplicates store nothing and claim nothing")
    store("SM3", ms=1500)
    store("SM2", ms=1200)
    store("SM4", ms=1500, seq=1)
    store("SMo", ph=PH + "4", ms=1100)
    is_eq(arrivals(), ["SM1", "SM2", "SM3", "SM4"], "intake: a phone's arrivals in the order they came")
    is_eq(arrivals(PH + "4"), ["SMo"], "intake: a longer number's are not among them")
    r("SET", k("{turns}:sid:SM9"), "erased")
    is_eq(store("SM9"), 0, "intake: an erased message replayed stays a duplicate")
    r("FLUSHALL")
    is_eq(store("SM1", ms=1000, now=1000, win=200, cap=1000), 1200, "intake: due after the coalescing window")
    is_eq(store("SM2", ms=1500, now=1500, win=200, cap=1000), 1700, "intake: a later message moves it")
    is_eq(store("SM3", ms=1900, now=1900, win=200, cap=1000), 2000,
          "intake: capped from the burst's start (its oldest message waiting)")
    r("ZREMRANGEBYLEX", arr, "[%s|" % PH, "(%s}" % PH)  # a turn took them: the next message starts a burst
    is_eq(store("SM4", ms=2500, now=2500, win=200, cap=1000), 2700, "intake: a new burst once they are taken")
    is_eq(store("SM5", ms=1, now=3000, win=200, cap=1000), 1001, "intake: a message replayed from the spool "
          "long after it came (its receive time) waits no more")
    # Under maxmemory the claim, the script's first write, is refused: nothing is stored or claimed.
    r("FLUSHALL")
    r("CONFIG", "SET", "maxmemory", 1)
    err = fails("intake-store", [k("{turns}:sid:SM1"), k("{turns}:sid:SM1"), arr, due],
                [3600, PH, member(PH, 1, 0, "SM1"), 1000, 0, 0])
    r("CONFIG", "SET", "maxmemory", 0)
    ok(err is not None and "OOM" in err, "intake: Redis full: refused (the intake spools it)", err)
    is_eq(s(r("KEYS", "*")), [], "intake: Redis full: nothing claimed, stored or scheduled")

    # ---- engine-claim: due phones with a free lease, with their messages ----
    r("FLUSHALL")

    def claim(now, until, mx, take=100):
        got = s(ev("engine-claim", [due, lease, arr], [now, until, mx, take]))
        out, i = [], 0
        while i < len(got):
            n = got[i + 3]
            out.append((got[i], got[i + 1], got[i + 2], [json.loads(m.split("|", 2)[2])["sid"]
                                                         for m in got[i + 4:i + 4 + n]]))
            i += 4 + n
        return out

    store("SMa1", ph="+1a", ms=50)
    store("SMa2", ph="+1a", ms=60)
    r("ZADD", due, 100, "+1a", 100, "+1b", 5000, "+1c")
    r("HSET", lease, "+1b", "9999:1")
    is_eq(claim(1000, 31000, 10), [("+1a", "31000", 1, ["SMa1", "SMa2"])],
          "claim: the due phone whose lease is free, with its attempt and its messages")
    is_eq(hget(lease, "+1a"), "31000:1", "claim: the lease is taken until its end, with the attempt")
    is_eq(zscore(due, "+1a"), 31000.0, "claim: the claimed phone is due again at its lease's end")
    is_eq(arrivals("+1a"), ["SMa1", "SMa2"], "claim: the messages stay until the release (a crash redoes them)")
    is_eq(hget(lease, "+1b"), "9999:1", "claim: a phone whose lease has not ended is not claimed")
    is_eq(claim(2000, 32000, 10), [], "claim: nothing while the claimed phone's lease runs")
    is_eq(claim(31000, 61000, 10), [("+1b", "61000", 2, []), ("+1c", "61000", 1, []),
                                    ("+1a", "61000", 2, ["SMa1", "SMa2"])],
          "claim: a crashed turn's phone is claimed again when its lease ends (its attempts go on)")
    r("FLUSHALL")
    for i in range(5):
        store("SMt%d" % i, ph="+1t", ms=i)
    is_eq(claim(1000, 2000, 10, take=3)[0][3], ["SMt0", "SMt1", "SMt2"], "claim: at most as many messages as a "
          "turn takes, the oldest")
    r("FLUSHALL")
    r("ZADD", due, 100, "+1e", 100, "+1f")
    r("HSET", lease, "+1e", "900")  # a lease of the release before: no attempts in it
    is_eq(claim(1000, 2000, 10), [("+1e", "2000", 1, []), ("+1f", "2000", 1, [])],
          "claim: an old lease (no attempts) counts as none")
    r("FLUSHALL")
    for i in range(6):
        r("ZADD", due, 100, "+2%d" % i)
    is_eq(len(claim(1000, 2000, 2)), 2, "claim: at most as many phones as asked")
    # Two phones in flight (a message made them due again) ahead of free ones: skipped, and the claim stops
    # once it has the phones it was asked for.
    r("FLUSHALL")
    r("ZADD", due, 100, "+3a", 100, "+3b", 200, "+3c", 300, "+3d")
    r("HSET", lease, "+3a", "9999:1", "+3b", "9999:3")
    is_eq([c[0] for c in claim(1000, 2000, 1)], ["+3c"],
          "claim: phones in flight are skipped, the free one behind them claimed, and no more")
    is_eq(zscore(due, "+3d"), 300.0, "claim: the phone beyond what was asked for stays due")

    # ---- engine-release ----
    r("FLUSHALL")

    def release(ph, claimed, ok_, now, att, last="", full=0):
        return ev("engine-release", [due, lease, arr], [ph, claimed, ok_, now, att, last, full])

    for sid, ms in (("SMr1", 10), ("SMr2", 20), ("SMr3", 30)):
        store(sid, ph="+1a", ms=ms)
    store("SMx", ph="+1a4", ms=5)
    r("ZREM", due, "+1a4")
    r("ZADD", due, 31000, "+1a", 31000, "+1b", 31000, "+1c")
    r("HSET", lease, "+1a", "31000:1", "+1b", "31000:1", "+1c", "31000:2")
    is_eq(release("+1a", 31000, 1, 2000, 1, member("+1a", 20, 0, "SMr2")), 1, "release: succeeded")
    ok(r("HEXISTS", lease, "+1a") == 0, "release: success drops the lease, its attempts with it")
    is_eq(arrivals("+1a"), ["SMr3"], "release: the messages the turn dealt with leave the arrivals, not the later")
    is_eq(arrivals("+1a4"), ["SMx"], "release: a longer number's stay")
    is_eq(zscore(due, "+1a"), None, "release: ... and the phone leaves the due set when not rescheduled")
    r("ZADD", due, 2500, "+1b")  # a message arrived during the turn
    release("+1b", 31000, 1, 2000, 1)
    is_eq(zscore(due, "+1b"), 2500.0, "release: a phone rescheduled since the claim stays due")
    r("ZADD", due, 31000, "+1a")
    release("+1a", 31000, 1, 2000, 1, member("+1a", 20, 0, "SMr2"), full=1)
    is_eq(zscore(due, "+1a"), 2000.0, "release: a turn that took all it could, with more waiting: due again now")
    release("+1c", 31000, 0, 2000, 2, member("+1a", 30, 0, "SMr3"))
    is_eq(zscore(due, "+1c"), 2000.0, "release: a failed turn is due again now, not at its lease's end")
    is_eq(hget(lease, "+1c"), "0:2", "release: a failed turn ends its lease and keeps its attempts")
    is_eq(sorted(c[:3] for c in claim(2000, 40000, 10)), [("+1a", "40000", 1), ("+1c", "40000", 3)],
          "release: the failed turn's phone is claimed again with its next attempt (and the one with more waiting)")
    r("ZADD", due, 1500, "+1c")
    release("+1c", 40000, 0, 2000, "")
    is_eq(zscore(due, "+1c"), 1500.0, "release: failure keeps an earlier due time (LT)")
    is_eq(hget(lease, "+1c"), "0:3", "release: a background turn's failure keeps the phone's attempts")
    release("+1d", 31000, 0, 2000, 1)
    is_eq(zscore(due, "+1d"), None, "release: failure does not add a phone that is not due")

    # ---- engine-lease-one ----
    r("FLUSHALL")
    r("HSET", lease, "+4a", "0:2", "+4b", "9000:1")
    store("SMw", ph="+4a")
    r("ZREM", due, "+4a")
    is_eq(ev("engine-lease-one", [lease, arr], ["+4a", 1000, 5000]), 2,
          "lease-one: a free phone's lease is taken (1 + its one message waiting)")
    is_eq(hget(lease, "+4a"), "5000:2", "lease-one: the customer turns' attempts are kept")
    is_eq(ev("engine-lease-one", [lease, arr], ["+4b", 1000, 5000]), 0, "lease-one: not while a turn holds it")
    is_eq(ev("engine-lease-one", [lease, arr], ["+4c", 1000, 5000]), 1, "lease-one: a phone with no lease")
    is_eq(hget(lease, "+4c"), "5000:0", "lease-one: no attempts yet")

    # ---- engine-commit ----
    r("FLUSHALL")
    conv, ctl = k("{%s}:conv" % PH), k("{%s}:ctl" % PH)
    r("HSET", ctl, "call", "{}", "window_closed_ms", "5")
    got = ev("engine-commit", [conv, ctl], ['{"stage":"x"}', 100, 1, "pause_until", "99", "call"])
    is_eq(got, 1, "commit: done")
    is_eq(s(r("GET", conv)), '{"stage":"x"}', "commit: the state is stored")
    ok(0 < r("TTL", conv) <= 100 and 0 < r("TTL", ctl) <= 100, "commit: state and control hash expire")
    is_eq(s(r("HGETALL", ctl)), ["window_closed_ms", "5", "pause_until", "99"], "commit: ctl fields set and deleted")
    ev("engine-commit", [conv, ctl], ["{}", 100, 0, "window_closed_ms", "pause_until"])
    is_eq(r("EXISTS", ctl), 0, "commit: an emptied control hash is gone")

    # ---- engine-load ----
    r("FLUSHALL")
    is_eq(s(ev("engine-load", [conv, ctl], [])), [None, []], "load: a new phone: no state")
    r("SET", conv, '{"stage":"new"}')
    r("HSET", ctl, "pause_until", "7")
    is_eq(s(ev("engine-load", [conv, ctl], [])), ['{"stage":"new"}', ["pause_until", "7"]],
          "load: state, control hash")

    # ---- engine-drain (the intake stream of the release before) ----
    r("FLUSHALL")
    stream = k("{intake}:stream")
    is_eq(ev("engine-drain", [stream], []), 1, "drain: no stream: nothing to move")
    i1 = s(r("XADD", stream, "*", "sid", "SM1"))
    is_eq(ev("engine-drain", [stream], []), 0, "drain: an entry no engine read yet is left to move")
    r("XGROUP", "CREATE", stream, "engine", "0")
    is_eq(ev("engine-drain", [stream], []), 0, "drain: ... with the group made, still")
    r("XREADGROUP", "GROUP", "engine", "c1", "COUNT", 10, "STREAMS", stream, ">")
    is_eq(ev("engine-drain", [stream], []), 0, "drain: read but not acknowledged (a reader that died): left")
    r("XACK", stream, "engine", i1)
    r("XADD", stream, "*", "sid", "SM2")
    is_eq(ev("engine-drain", [stream], []), 0, "drain: an entry added since the last read is left")
    r("XREADGROUP", "GROUP", "engine", "c1", "COUNT", 10, "STREAMS", stream, ">")
    r("XACK", stream, "engine", s(r("XRANGE", stream, "-", "+"))[-1][0])
    is_eq(ev("engine-drain", [stream], []), 1, "drain: all delivered and acknowledged: done")
    is_eq(r("EXISTS", stream), 0, "drain: ... and the stream (messages' texts) is deleted")

    # ---- sender-enqueue ----
    r("FLUSHALL")
    odue, q, optout = k("{outbox}:due"), k("{outbox}:q:" + PH), k("{outbox}:optout")
    qp = k("{outbox}:q:")
    once = k("{outbox}:once:turn1")
    made = [0]  # the replies "the sender" made ids for: r1, r2, ... (sender.c makes <random>-<count>)

    def enqueue(once_key, opt, *parts, tag="", sid="", vars_="", to=PH, room=0, now=1000, until=31000, rid=None):
        made[0] += 1
        return ev("sender-enqueue", [odue, qp + to, optout, once_key],
                  [to, 111, now, 600, sid, vars_, tag, opt, room, until, rid or "r%d" % made[0]] + list(parts))

    def fresh():
        r("FLUSHALL")
        made[0] = 0

    def jobs(key=q):
        return [json.loads(x) for x in s(r("LRANGE", key, 0, -1))]

    is_eq(enqueue(once, "", "part one", "part two", tag="T1"), 2, "enqueue: two parts queued")
    got = jobs()
    is_eq(got[0], {"id": "r1.1", "body": "part one", "attempts": 0, "created_ms": "111", "part": 1, "parts": 2},
          "enqueue: the first job, in the recipient's queue, its id the caller's with the part")
    ok(got[1]["id"] == "r1.2" and got[1].get("tag") == "T1", "enqueue: the second, in order, with the tag", got)
    is_eq(zscore(odue, PH), 1000.0, "enqueue: the recipient is due now")
    ok(0 < r("TTL", once) <= 600, "enqueue: the once-key is set with its TTL")
    is_eq(enqueue(once, "", "again", room=1), 0, "enqueue: a message with a known once-key is not queued again")
    ok([j["body"] for j in jobs()] == ["part one", "part two"] and zscore(odue, PH) == 1000.0,
       "enqueue: (it queues nothing and hands nothing out)")
    r("ZADD", odue, 5000, PH)
    enqueue(optout, "", "three", sid="HX1", vars_='{"1":"a"}')
    is_eq(zscore(odue, PH), 5000.0, "enqueue: a due time already set stays")
    is_eq((jobs()[2]["content_sid"], jobs()[2]["content_vars"]), ("HX1", '{"1":"a"}'), "enqueue: a template")
    is_eq(enqueue(optout, "out", "bye"), 1, "enqueue: STOP queues its confirmation")
    ok(r("SISMEMBER", optout, PH) == 1 and [j["body"] for j in jobs()] == ["bye"],
       "enqueue: STOP opts out and drops what was queued")
    is_eq(enqueue(optout, "", "late reply"), -1, "enqueue: nothing else goes to an opted-out phone")
    optin = k("{outbox}:once:turn2")
    is_eq(enqueue(optin, "", "late reply"), -1, "enqueue: nor one with a once-key")
    is_eq(r("EXISTS", optin), 0, "enqueue: refused for the opt-out, it leaves its once-key unset")
    is_eq(enqueue(once, "", "late reply"), 0, "enqueue: a known once-key still answers 0 for an opted-out phone")
    is_eq(enqueue(optout, "in", "welcome"), 1, "enqueue: START opts in and queues its welcome")
    is_eq(r("SISMEMBER", optout, PH), 0, "enqueue: START removes the opt-out")
    is_eq(enqueue(optin, "", "late reply"), 1, "enqueue: after the opt-in, the refused once-key queues its reply")
    is_eq(jobs()[-1]["id"], "r%d.1" % made[0], "enqueue: ids are the caller's")
    is_eq(s(r("KEYS", k("{outbox}:seq"))), [], "enqueue: no counter in Redis")
    r("DEL", optout)
    r("SET", optout, "not a set")
    ok(fails("sender-enqueue", [odue, q, optout, k("{outbox}:once:t9")],
             [PH, 1, 1, 600, "", "", "", "", 0, 1, "r9", "p"]) is not None and r("EXISTS", k("{outbox}:once:t9")) == 0,
       "enqueue: a failure before its first write leaves the once-key unset (the reply can be queued again)")

    # The daemon sends the script without a shebang: under maxmemory Redis refuses its first write that needs
    # memory (the once-key's SET NX), so a refused enqueue writes nothing, and the reads still answer.
    if where == "plain":
        fresh()
        r("SADD", optout, "+15550001111")
        r("RPUSH", k("{outbox}:q:+15550002222"), json.dumps({"id": "x.1"}), json.dumps({"id": "x.2"}))
        r("ZADD", odue, 1, "+15550002222")
        with open(os.path.join(SRC, "sender-enqueue.lua"), "rb") as f:
            raw_enqueue = f.read()
        with open(os.path.join(SRC, "sender-done.lua"), "rb") as f:
            raw_done = f.read()
        r("CONFIG", "SET", "maxmemory-policy", "noeviction")
        r("CONFIG", "SET", "maxmemory", "1")
        try:
            def full(to, once_key):
                try:
                    return s(r("EVAL", raw_enqueue, 4, odue, qp + to, optout, once_key,
                               to, 1, 1000, 600, "", "", "", "", 1, 31000, "m1", "p"))
                except RuntimeError as e:
                    return str(e)
            got = full(PH, once)
            ok("OOM" in str(got), "enqueue, Redis full: refused at its first write", got)
            ok(r("EXISTS", once) == 0 and r("EXISTS", q) == 0 and zscore(odue, PH) is None,
               "enqueue, Redis full: nothing written, the once-key unset")
            is_eq(full("+15550001111", once), -1, "enqueue, Redis full: an opted-out phone is still answered")
            got = s(r("EVAL", raw_done, 2, odue, k("{outbox}:q:+15550002222"), "+15550002222", "x.1", 2000, 32000,
                      "1"))
            ok(isinstance(got, list) and got[0] == "x.2" and [j["id"] for j in jobs(k("{outbox}:q:+15550002222"))]
               == ["x.2"], "done, Redis full: the pop is let through, and the push back after it", got)
        finally:
            r("CONFIG", "SET", "maxmemory", "0")

    # ---- hand-offs: sender-enqueue and sender-done hand jobs out themselves ----
    fresh()
    got = s(enqueue(optout, "", "h1", "h2", room=1, tag="T"))
    is_eq(got, [2, "r1.1", PH, "h1", "0", "", "", "", ""],
          "enqueue: nothing queued or under way, room: the first part is handed out")
    is_eq(jobs()[0].get("sent_ms"), "1000", "enqueue: a hand-off marks its attempt, as a claim does")
    ok("sent_ms" not in jobs()[1], "enqueue: only the first part is handed out")
    is_eq(zscore(odue, PH), 31000.0, "enqueue: a hand-off makes the recipient due at the lease's end")
    is_eq(enqueue(optout, "", "h3", room=1), 1, "enqueue: with a job under way, no hand-off")
    ok("sent_ms" not in jobs()[2] and zscore(odue, PH) == 31000.0, "enqueue: it waits, unmarked; the lease stays")
    is_eq(s(ev("sender-claim", [odue, q], [PH, 2000, 32000])), None, "claim: not while the hand-off's lease runs")
    got = s(ev("sender-done", [odue, q], [PH, "r1.1", 5000, 35000, "1"]))
    is_eq(got, ["r1.2", PH, "h2", "0", "", "", "", "T"], "done: the next part is handed out")
    ok(jobs()[0].get("sent_ms") == "5000" and zscore(odue, PH) == 35000.0,
       "done: marked, and due at its lease's end")
    is_eq(s(ev("sender-done", [odue, q], [PH, "r1.1", 5100, 35100, "1"])), 0,
          "done: repeated, it pops and hands out nothing more")
    ok([j["id"] for j in jobs()] == ["r1.2", "r2.1"] and zscore(odue, PH) == 35000.0,
       "done: (queue, its order and lease unchanged)")
    is_eq(s(ev("sender-done", [odue, q], [PH, "r1.2", 6000, 36000, "0"])), 1, "done: no room: nothing handed out")
    ok("sent_ms" not in jobs()[0] and zscore(odue, PH) == 6000.0, "done: the next job is due now for a claim")
    is_eq(s(ev("sender-claim", [odue, q], [PH, 6000, 36000]))[:3], ["r2.1", PH, "h3"], "claim: takes it")
    is_eq(s(ev("sender-done", [odue, q], [PH, "r2.1", 7000, 37000, "1"])), 1, "done: the last job")
    ok(r("EXISTS", q) == 0 and zscore(odue, PH) is None, "done: nothing left, the recipient leaves the due set")
    is_eq(s(ev("sender-done", [odue, q], [PH, "r2.1", 7100, 37100, "1"])), 1, "done: repeated on an empty queue")
    ok(r("EXISTS", q) == 0 and zscore(odue, PH) is None, "done: (nothing is created)")
    # No hand-off without room, nor while a retry waits, nor behind jobs due but not yet claimed.
    is_eq(enqueue(optout, "", "n1", room=0), 1, "enqueue: no room: queued only")
    ok("sent_ms" not in jobs()[0] and zscore(odue, PH) == 1000.0, "enqueue: due now, for a claim")
    is_eq(enqueue(optout, "", "n2", room=1, now=2000, until=32000), 1,
          "enqueue: behind a job due but not claimed: no hand-off")
    ok(all("sent_ms" not in j for j in jobs()) and zscore(odue, PH) == 1000.0,
       "enqueue: the waiting jobs stay unmarked and due (the due time is not moved)")
    r("ZADD", odue, 9000, PH)  # a retry's wait
    is_eq(enqueue(optout, "", "n3", room=1), 1, "enqueue: behind a retry's wait: no hand-off")
    is_eq(zscore(odue, PH), 9000.0, "enqueue: (the retry's time stays)")
    r("ZREM", odue, PH)  # a due entry gone missing while jobs are queued
    is_eq(enqueue(optout, "", "n4", room=1, now=3000), 1, "enqueue: a queue without its due entry: no hand-off")
    ok(all("sent_ms" not in j for j in jobs()) and zscore(odue, PH) == 3000.0,
       "enqueue: the missing due entry is put back (due now)")
    # A due time left with nothing queued (what only an erasure's key walk or the upgrade can leave): the
    # queue is empty, so the reply is handed out and the stale time replaced.
    fresh()
    r("ZADD", odue, 9000, PH)
    is_eq(s(enqueue(optout, "", "w1", room=1))[:2], [1, "r1.1"], "enqueue: a stale due time, nothing queued: "
          "handed out")
    is_eq(zscore(odue, PH), 31000.0, "enqueue: (due at the lease's end)")
    fresh()
    r("ZADD", odue, 9000, PH)
    enqueue(optout, "", "w2", room=0)
    is_eq(zscore(odue, PH), 1000.0, "enqueue: without room, due now")
    fresh()
    got = s(enqueue(optout, "", "c1", room=1))
    ok(isinstance(got, list), "enqueue: handed out; then the sender crashes before its POST")
    is_eq(s(ev("sender-claim", [odue, q], [PH, 30999, 61000])), None, "crash: nothing is claimed before the lease ends")
    got = s(ev("sender-claim", [odue, q], [PH, 31000, 61000]))
    is_eq(got[:5], ["r1.1", PH, "c1", "0", "1000"], "crash: after the lease the job is claimed again with its "
          "sent_ms (the reconciliation looks at Twilio first)")
    fresh()
    enqueue(optout, "", "d1", "d2", room=1)
    s(ev("sender-done", [odue, q], [PH, "r1.1", 2000, 32000, "1"]))
    got = s(ev("sender-claim", [odue, q], [PH, 32000, 62000]))
    is_eq(got[:5], ["r1.2", PH, "d2", "0", "2000"], "crash: a part handed out by a done is claimed again after its "
          "lease, with its sent_ms")
    fresh()
    enqueue(optout, "", "o1", room=1)
    is_eq(s(enqueue(optout, "out", "bye", room=1))[:4], [1, "r2.1", PH, "bye"],
          "enqueue: STOP's confirmation replaces the queue and is handed out")
    msg = k("{outbox}:msg:SMx")
    got = s(ev("sender-done", [odue, q, msg], [PH, "r2.1", 3000, 33000, "1", 600]))
    ok(got == 1 and s(r("HGETALL", msg)) == ["to", PH, "job", "r2.1"] and 0 < r("TTL", msg) <= 600,
       "done: with status callbacks, the SID's record (to, job), with its TTL", got)
    fresh()
    enqueue(optout, "", "tagged", room=1)
    msg = k("{outbox}:msg:SMy")
    ev("sender-done", [odue, q, msg], [PH, "r3.1", 3000, 33000, "1", 600, "odoo:4:77"])
    is_eq(hget(msg, "tag"), "odoo:4:77", "done: a tagged job's record keeps its tag (a late failure is told to it)")
    # Jobs queued by the release before (ids from its counter, numbers) and by this one, in one queue.
    fresh()
    r("RPUSH", q, json.dumps({"id": "41", "body": "old", "attempts": 0, "part": 1, "parts": 1}))
    r("ZADD", odue, 1, PH)
    is_eq(enqueue(optout, "", "new", room=1), 1, "enqueue: behind an older release's job")
    is_eq(s(ev("sender-claim", [odue, q], [PH, 2000, 32000]))[:3], ["41", PH, "old"], "claim: the older job first")
    is_eq(s(ev("sender-done", [odue, q], [PH, "41", 3000, 33000, "1"]))[:3], ["r1.1", PH, "new"],
          "done: a numeric id is matched as the string it is, and the new job handed out")

    # ---- sender-upgrade: the previous release's bare ids and job hashes ----
    r("FLUSHALL")
    j1, j2, j3 = k("{outbox}:job:11"), k("{outbox}:job:12"), k("{outbox}:job:14")
    r("HSET", j1, "to", PH, "body", "old one", "attempts", "2", "created_ms", "5", "part", "1", "parts", "2",
      "sent_ms", "777", "tag", "")
    r("HSET", j2, "to", PH, "body", "", "attempts", "0", "created_ms", "5", "part", "2", "parts", "2",
      "content_sid", "HX9", "content_vars", '{"1":"a"}', "tag", "T2")
    r("HSET", j3, "to", PH, "body", "orphan")
    r("RPUSH", q, "11", "13", "12")
    r("ZADD", odue, 1, PH)
    is_eq(s(ev("sender-claim", [odue, q], [PH, 2000, 32000])), ["legacy", "11", PH],
          "claim: a legacy head is reported with its recipient")
    ok(s(r("LRANGE", q, 0, -1)) == ["11", "13", "12"] and zscore(odue, PH) == 1.0,
       "claim: and left in place (not dropped), the recipient still due")
    is_eq(ev("sender-upgrade", [q, j1], ["11"]), 1, "upgrade: a legacy job is converted")
    is_eq(jobs()[0], {"id": "11", "body": "old one", "attempts": 2, "created_ms": "5", "part": 1, "parts": 2,
                      "sent_ms": "777"}, "upgrade: in place, with its fields and its unknown attempt's sent_ms")
    is_eq(r("EXISTS", j1), 0, "upgrade: its hash (with the text) is gone")
    is_eq(ev("sender-upgrade", [q, j1], ["11"]), 0, "upgrade: run again, nothing to do")
    is_eq(ev("sender-upgrade", [q, k("{outbox}:job:13")], ["13"]), -2, "upgrade: an id without its job is removed")
    is_eq(ev("sender-upgrade", [q, j2], ["12"]), 1, "upgrade: a template job")
    is_eq(jobs()[1], {"id": "12", "body": "", "attempts": 0, "created_ms": "5", "part": 2, "parts": 2,
                      "content_sid": "HX9", "content_vars": '{"1":"a"}', "tag": "T2"}, "upgrade: its template and tag")
    is_eq(ev("sender-upgrade", [q, j3], ["14"]), -1, "upgrade: a job in no queue is dropped")
    is_eq(s(r("KEYS", k("{outbox}:job:*"))), [], "upgrade: no job hash is left")
    got = s(ev("sender-claim", [odue, q], [PH, 2000, 32000]))
    is_eq(got[:5], ["11", PH, "old one", "2", "777"], "claim: the converted job, its unknown attempt looked up first")
    is_eq(s(ev("sender-done", [odue, q], [PH, "11", 3000, 33000, "1"]))[:3], ["12", PH, ""],
          "done: hands out the next converted job")
    ok([j["id"] for j in jobs()] == ["12"] and jobs()[0]["sent_ms"] == "3000", "done: (marked, at the head)")
    r("FLUSHALL")
    r("RPUSH", q, json.dumps({"id": "20", "body": "new"}), "21")
    r("ZADD", odue, 32000, PH)
    is_eq(s(ev("sender-done", [odue, q], [PH, "20", 3000, 33000, "1"])), 1,
          "done: a legacy id next (an older instance queued it) is not handed out")
    ok(s(r("LRANGE", q, 0, -1)) == ["21"] and zscore(odue, PH) == 3000.0, "done: it is due now, for a claim")

    # ---- sender-claim, sender-retry and sender-done ----
    fresh()
    other = "+15550001111"
    enqueue(optout, "", "a1", "a2")
    enqueue(optout, "", "b1", to=other)

    def claim(to, now, until):
        return s(ev("sender-claim", [odue, qp + to], [to, now, until]))

    is_eq(sorted(s(r("ZRANGEBYSCORE", odue, "-inf", 2000))), sorted([PH, other]),
          "claim: the due recipients (read first)")
    is_eq(claim(PH, 2000, 32000), ["r1.1", PH, "a1", "0", "", "", "", ""], "claim: the recipient's head job")
    is_eq(claim(other, 2000, 32000), ["r2.1", other, "b1", "0", "", "", "", ""], "claim: each recipient's own")
    is_eq(jobs()[0].get("sent_ms"), "2000", "claim: the attempt under way is marked (sent_ms)")
    is_eq(zscore(odue, PH), 32000.0, "claim: the recipient is due again at the lease's end")
    is_eq(claim(PH, 3000, 33000), None, "claim: one job per recipient while its lease runs (another instance)")
    got = claim(PH, 32000, 62000)
    is_eq(got[:5], ["r1.1", PH, "a1", "0", "2000"], "claim: after a crash the job comes back with its unknown "
          "attempt's sent_ms")
    is_eq(ev("sender-retry", [odue, q], [PH, "r1.1", 1, "0", 70000]), 1, "retry: recorded")
    ok(jobs()[0]["attempts"] == 1 and "sent_ms" not in jobs()[0] and zscore(odue, PH) == 70000.0,
       "retry: attempts kept, a failed attempt's sent_ms dropped, due at the retry's time")
    claim(PH, 70000, 100000)
    ev("sender-retry", [odue, q], [PH, "r1.1", 2, "1", 110000])
    is_eq(jobs()[0].get("sent_ms"), "70000", "retry: an attempt that may have reached Twilio keeps its sent_ms")
    is_eq(ev("sender-retry", [odue, q], [PH, "99", 2, "0", 1]), 0, "retry: not the head job: nothing changes")
    is_eq(zscore(odue, PH), 110000.0, "retry: (the due time stays)")
    is_eq(ev("sender-done", [odue, q], [PH, "r1.1", 120000, 150000, "0"]), 1, "done: the sent job (no room: no hand-off)")
    is_eq([j["id"] for j in jobs()], ["r1.2"], "done: the job leaves the queue")
    is_eq(zscore(odue, PH), 120000.0, "done: the next job is due now")
    ev("sender-done", [odue, q], [PH, "r1.1", 121000, 151000, "0"])
    is_eq([j["id"] for j in jobs()], ["r1.2"], "done: repeated, it does not pop another job")
    r("LSET", q, 0, "not a job")
    is_eq(claim(PH, 130000, 160000), None, "claim: a head that is neither a job nor a job id is dropped")
    ok(r("EXISTS", q) == 0 and zscore(odue, PH) is None, "claim: a recipient with nothing left leaves the due set")
    ev("sender-done", [odue, qp + other], [other, "r2.1", 50000, 80000, "0"])
    is_eq(zscore(odue, other), None, "done: the last job leaves the due set")

    # ---- sender-optout ----
    r("FLUSHALL")
    enqueue(optout, "", "x1", "x2")
    is_eq(ev("sender-optout", [odue, q, optout], [PH]), 2, "optout: both queued jobs are dropped")
    ok(r("SISMEMBER", optout, PH) == 1 and r("EXISTS", q) == 0 and zscore(odue, PH) is None,
       "optout: opted out, queue and due entry gone")

    # ---- the erasure's steps ----
    longer = PH + "4"
    conv, ctl, odoo = k("{%s}:conv" % PH), k("{%s}:ctl" % PH), k("{%s}:odoo" % PH)
    edead, odead = k("{engine}:dead"), k("{outbox}:dead")
    tkeys = [due, first, lease, attempts, arr]

    names = {PH: "A", longer: "B", "+15550001111": "C"}  # MessageSids and tokens are not named after phones

    def fill(ph):
        """Everything crmbridge keeps about a phone, in every slot."""
        t = names[ph]
        r("SET", k("{%s}:conv" % ph), json.dumps({"lead_id": 42, "history": [{"sid": "SM1" + t},
                                                                             {"sid": "SMgone"}]}))
        r("RPUSH", k("{%s}:inbox" % ph), json.dumps({"sid": "SM2" + t}))  # the release before's inbox
        store("SM4" + t, ph=ph, ms=7)  # an arrival no turn took yet, and its claim
        r("HSET", lease, ph, "1:1")
        r("SADD", k("{%s}:routed" % ph), "1-1")
        r("HSET", k("{%s}:ctl" % ph), "call", "{}")
        for z in (due, k("{odoo}:pending"), k("{followup}:due"), k("{stats}:active")):
            r("ZADD", z, 1, ph)
        for h in (first, attempts):
            r("HSET", h, ph, 1)
        enqueue(optout, "", "queued text", to=ph)
        r("SADD", optout, ph)
        r("RPUSH", edead, json.dumps({"phone": ph}))
        r("RPUSH", odead, json.dumps({"to": ph, "job": "9" + ph}))
        r("SET", k("{outbox}:deadbody:9" + ph), "text")
        for sid in ("SM1", "SM2", "SM3"):
            r("SET", k("{intake}:sid:%s%s" % (sid, t)), "1-1", "EX", 500)
            r("SET", k("{turns}:sid:%s%s" % (sid, t)), "1", "EX", 500)
        r("SET", k("{intake}:idem:tk" + t), "1-1")
        r("XADD", stream, "*", "sid", "SM3" + t, "from", "whatsapp:" + ph, "idem", "tk" + t)
        r("SET", k("{outbox}:once:follow:%s:1" % ph), "1")
        r("HSET", k("{outbox}:msg:SMo" + ph), "to", ph)

    def erase(ph, stop=None):
        """The erasure's steps in erase.c's order (enum erase_step); stop after that many. None when done."""
        n = [0]

        def step(name, keys, args):
            if stop is not None and n[0] >= stop:
                raise StopIteration
            n[0] += 1
            got = s(ev(name, keys, args))
            if got == ["busy"]:
                raise RuntimeError("busy")
            return got

        try:
            got = step("erase-read", [k("{%s}:conv" % ph), k("{%s}:inbox" % ph), k("{%s}:odoo" % ph)], [])
            sids = got[1:]
            step("erase-turns", tkeys + [k("{turns}:sid:" + x) for x in sids], [ph, 10000])
            step("erase-outbox", [odue, qp + ph, optout], [ph, 10000])
            for z in (k("{odoo}:pending"), k("{followup}:due"), k("{stats}:active")):
                if stop is not None and n[0] >= stop:
                    raise StopIteration
                n[0] += 1
                r("ZREM", z, ph)
            for lst in (edead, odead):
                got = step("erase-dead-find", [lst], [ph])
                recs, jobs_ = got[:got.index("")], got[got.index("") + 1:]
                if recs:
                    step("erase-dead", [lst] + [k("{outbox}:deadbody:" + j) for j in jobs_], recs)
            got = step("erase-intake", [stream] + [k("{intake}:sid:" + x) for x in sids], [])
            last, start = got[1], "-"
            while last != "":
                got = step("erase-stream-find", [stream], ["whatsapp:" + ph, start, last, 2])
                start, found = got[0], got[1:]
                if found:
                    claims = [k("{intake}:sid:" + x) for x in found[1::3] if x] + \
                             [k("{intake}:idem:" + x) for x in found[2::3] if x]
                    step("erase-stream", [stream] + claims, found[0::3])
                if start == "":
                    break
            cur = "0"
            while True:
                got = step("erase-scan", [], [ph, cur, P + "*", k("{outbox}:msg:"), k("{%s}:" % ph), 5])
                cur, found = got[0], got[1:]
                tags = {}
                for key in found:
                    tags.setdefault(key[key.index("{"):key.index("}")] if "{" in key else key, []).append(key)
                for keys in tags.values():
                    step("erase-keys", keys, [ph, k("{outbox}:msg:")])
                if cur == "0":
                    break
            step("erase-phone", [k("{%s}:%s" % (ph, x)) for x in ("conv", "inbox", "routed", "ctl", "odoo")], [])
        except StopIteration:
            pass
        return n[0]

    def dump():
        """Every key and its value, as text (stream entries without their ids, jobs without theirs)."""
        out = {}
        for key in sorted(s(r("KEYS", "*"))):
            t = r("TYPE", key)
            v = {"string": lambda: r("GET", key), "list": lambda: r("LRANGE", key, 0, -1),
                 "set": lambda: sorted(r("SMEMBERS", key)), "zset": lambda: r("ZRANGE", key, 0, -1),
                 "hash": lambda: r("HGETALL", key), "stream": lambda: r("XRANGE", key, "-", "+")}[t]()
            out[key] = s(v)
            if t == "stream":
                out[key] = [e[1] for e in out[key]]
            elif key.startswith(qp):
                out[key] = [json.loads(j)["body"] for j in out[key]]
        return out

    # What erasing one phone must leave: a run on the other phones only, compared against it.
    r("FLUSHALL")
    fill(longer)
    fill("+15550001111")
    kept = dump()
    r("FLUSHALL")
    fill(PH)
    fill(longer)
    fill("+15550001111")
    r("HSET", lease, PH, "20000:1")
    try:
        erase(PH, stop=10 ** 6)
        ok(False, "erase: refused while the phone's turn lease runs")
    except RuntimeError:
        ok(True, "erase: refused while the phone's turn lease runs")
    r("HSET", lease, PH, "9000:1")
    r("SET", odoo, "1")
    is_eq(s(ev("erase-read", [conv, inbox, odoo], [])), ["busy"], "erase-read: refused while a lead write runs")
    is_eq(s(ev("erase-phone", [conv, inbox, routed, ctl, odoo], [])), ["busy"],
          "erase-phone: so is the last step")
    r("DEL", odoo)
    r("ZADD", odue, 20000, PH)
    is_eq(s(ev("erase-outbox", [odue, q, optout], [PH, 10000])), ["busy"], "erase-outbox: refused while a send "
          "to the phone is under way")
    r("ZADD", odue, 1, PH)
    is_eq(s(ev("erase-read", [conv, inbox, odoo], [])), [42, "SM1A", "SMgone", "SM2A"],
          "erase-read: the lead id and the history's and inbox's MessageSids")
    steps = erase(PH)
    after = dump()
    ok(not any(PH in key and longer not in key for key in after), "erase: no key of the phone is left",
       [key for key in after if PH in key])
    ok(not any(PH in json.dumps(v).replace(longer, "") for v in after.values()),
       "erase: no value holds the phone")
    is_eq([s(r("GET", k("{intake}:%s" % x))) for x in ("sid:SM1A", "sid:SM2A", "sid:SM3A", "idem:tkA")],
          ["erased"] * 4, "erase: the old intake's claims of the history, the inbox and the stream entries say erased")
    is_eq([s(r("GET", k("{turns}:sid:%s" % x))) for x in ("SM1A", "SM2A", "SM4A")], ["erased", "erased", "1"],
          "erase: the claims of the history say erased; an arrival's stays (it names no phone either way)")
    ok(0 < r("TTL", k("{intake}:sid:SM1A")) <= 500 and r("EXISTS", k("{intake}:sid:SMgone")) == 0 and
       0 < r("TTL", k("{turns}:sid:SM1A")) <= 500 and r("EXISTS", k("{turns}:sid:SMgone")) == 0,
       "erase: claims keep their TTL; none is created")
    others = {key: v for key, v in after.items()
              if not ((key.startswith(k("{intake}:")) or key.startswith(k("{turns}:sid:"))) and key.endswith("A"))}
    is_eq(others, kept, "erase: the other phones' keys and values (a longer number among them) are untouched")

    # Interrupted after each step, then asked again: the same result.
    ok(steps >= 14, "erase: %d steps to interrupt" % steps)
    for stop in range(1, steps):
        r("FLUSHALL")
        fill(PH)
        fill(longer)
        fill("+15550001111")
        erase(PH, stop=stop)
        erase(PH)
        if dump() != after:
            ok(False, "erase: interrupted after step %d, then run again: the same as one run" % stop)
            break
    else:
        ok(True, "erase: interrupted after any step, then run again: the same as one run")

    # ---- erase-stream-find and erase-stream: the walk's batches ----
    r("FLUSHALL")
    ids = []
    for i in range(5):
        frm = "whatsapp:" + (PH if i % 2 == 0 else longer)
        ids.append(s(r("XADD", stream, "*", "sid", "SM%d" % i, "from", frm, "idem", "tk%d" % i)))
    got = s(ev("erase-stream-find", [stream], ["whatsapp:" + PH, "-", ids[3], 2]))
    is_eq(got, ["(" + ids[1], ids[0], "SM0", "tk0"], "erase-stream-find: a full batch answers where to go on")
    got = s(ev("erase-stream-find", [stream], ["whatsapp:" + PH, got[0], ids[3], 2]))
    is_eq(got, ["(" + ids[3], ids[2], "SM2", "tk2"], "erase-stream-find: the next batch")
    got = s(ev("erase-stream-find", [stream], ["whatsapp:" + PH, got[0], ids[3], 2]))
    is_eq(got, [""], "erase-stream-find: a short batch ends the walk; the end id bounds it")

    # ---- erase-scan and erase-keys ----
    r("FLUSHALL")
    r("SET", k("{outbox}:once:follow:%s:1" % PH), "1")
    r("SET", k("{outbox}:once:follow:%s:1" % longer), "1")
    r("HSET", k("{outbox}:msg:SMa"), "to", PH)
    r("HSET", k("{outbox}:msg:SMb"), "to", longer)
    r("SET", k("{%s}:conv" % PH), "new")
    r("SET", "other:" + PH, "1")
    got = s(ev("erase-scan", [], [PH, "0", P + "*", k("{outbox}:msg:"), k("{%s}:" % PH), 1000]))
    is_eq(sorted(got[1:]), sorted([k("{outbox}:once:follow:%s:1" % PH), k("{outbox}:msg:SMa"),
                                   k("{outbox}:msg:SMb")]),
          "erase-scan: the keys named after the phone and the outbound records; not its own, nor other prefixes")
    is_eq(ev("erase-keys", got[1:], [PH, k("{outbox}:msg:")]), 2, "erase-keys: the phone's keys and records")
    is_eq(sorted(s(r("KEYS", "*"))), sorted([k("{outbox}:once:follow:%s:1" % longer), k("{outbox}:msg:SMb"),
                                             k("{%s}:conv" % PH), "other:" + PH]),
          "erase-keys: a longer number's keys and records are kept")

    # ---- erase-prune ----
    r("SET", conv, "old", "EX", 100)
    is_eq(ev("erase-prune", [conv], ["stale", "pruned"]), 0, "prune: a state changed since the read is left")
    is_eq(ev("erase-prune", [conv], ["old", "pruned"]), 1, "prune: an unchanged state is written")
    ok(s(r("GET", conv)) == "pruned" and r("TTL", conv) > 0, "prune: with its TTL kept")

    # ---- analytics-record and analytics-read ----
    r("FLUSHALL")
    tot, day, act = k("{stats}:totals"), k("{stats}:day:2024-01-02"), k("{stats}:active")
    r("ZADD", act, 10, "+1old")
    # A second's turns in one call: two phones active, the counters summed by the daemon.
    ev("analytics-record", [tot, day, act], [6000, 3456000, 100, 2, 5000, PH, 5500, "+15550001111", "turns", 2, "leads", 2])
    ev("analytics-record", [tot, day, act], [6000, 3456000, 100, 0])  # nothing counted: no change, no TTL reset
    ok(hget(tot, "turns") == "2" and hget(day, "leads") == "2" and 0 < r("TTL", day) <= 3456000,
       "record: totals and the day count, the day expires")
    is_eq(s(r("ZRANGE", act, 0, -1, "WITHSCORES")), [PH, "5000", "+15550001111", "5500"],
          "record: each phone's activity noted, the stale trimmed")
    ev("analytics-record", [tot, day, act], [7000, 3456000, 100, 1, 7000, PH, "turns", 1, "leads", -1])
    ok(hget(tot, "turns") == "3" and hget(day, "leads") == "1" and zscore(act, PH) == 7000,
       "record: a later call adds up and moves the phone's activity")
    r("HSET", tot, "turns", 2, "leads", 2)
    r("HSET", day, "turns", 2, "leads", 2)
    r("ZREM", act, "+15550001111")
    got = s(ev("analytics-read", [tot, act, day, k("{stats}:day:2024-01-01")], [4000]))
    is_eq(got, [["turns", "2", "leads", "2"], 1, 1, ["turns", "2", "leads", "2"], []], "read: totals, active, days")

    # ---- outreach-store-call ----
    r("FLUSHALL")
    got = s(ev("outreach-store-call", [conv, ctl], ['{"fresh":1}', '{"call":1}', 100]))
    is_eq(got, [1, '{"fresh":1}'], "store-call: a new conversation starts with the call")
    got = s(ev("outreach-store-call", [conv, ctl], ['{"fresh":2}', '{"call":2}', 100]))
    is_eq(got, [0, '{"fresh":1}'], "store-call: an existing conversation is kept")
    ok(hget(ctl, "call") == '{"call":2}' and 0 < r("TTL", ctl) <= 100, "store-call: the call waits in ctl")

    # ---- inbox-claim, inbox-mark: one poller of the leads' chatter, a watermark that only goes forward ----
    r("FLUSHALL")
    lock, mark = k("{odoo}:inbox:lock"), k("{odoo}:inbox:mark")
    is_eq(s(ev("inbox-claim", [lock, mark], ["a", 10000])), [1, ""], "inbox-claim: free: taken, no mark yet")
    ok(0 < r("PTTL", lock) <= 10000, "inbox-claim: the right lasts the TTL given")
    is_eq(s(ev("inbox-claim", [lock, mark], ["b", 10000])), [0, ""], "inbox-claim: another instance waits")
    is_eq(ev("inbox-mark", [lock, mark], ["b", 40, 10000]), 0, "inbox-mark: not by an instance without the right")
    ok(r("GET", mark) is None, "inbox-mark: nothing written then")
    r("PEXPIRE", lock, 500)
    is_eq(ev("inbox-mark", [lock, mark], ["a", 40, 10000]), 1, "inbox-mark: by the poller")
    ok(r("PTTL", lock) > 5000, "inbox-mark: renews the poller's right")
    is_eq(ev("inbox-mark", [lock, mark], ["a", 39, 10000]), 0, "inbox-mark: never backwards (nothing sent twice)")
    is_eq(ev("inbox-mark", [lock, mark], ["a", 40, 10000]), 0, "inbox-mark: the same id: no change")
    is_eq(s(r("GET", mark)), "40", "inbox-mark: the mark stays at the furthest")
    is_eq(s(ev("inbox-claim", [lock, mark], ["a", 10000])), [1, "40"], "inbox-claim: renewed by its holder, the mark")
    r("DEL", lock)  # the holder stopped and its right ran out
    is_eq(s(ev("inbox-claim", [lock, mark], ["b", 10000])), [1, "40"], "inbox-claim: another takes over, same mark")
    is_eq(ev("inbox-mark", [lock, mark], ["a", 50, 10000]), 0, "inbox-mark: the old holder's late mark is refused")

    # ---- conversations-row: one line of the list, picked out of the state ----
    conv, ctl = k("{+573001112233}:conv"), k("{+573001112233}:ctl")
    state = {"v": 1, "phone": "+573001112233", "stage": "lead_created", "updated_ms": 1796251901275,
             "fields": {"name": {"value": "Ana Pérez", "sid": "SM1"}, "email": {"value": "ana@example.com"}},
             "history": [{"dir": "in", "text": "hola"}, {"dir": "out", "text": "¡Hola!"}], "lead_id": 12,
             "quality": [{"q": "warm"}, {"q": "hot"}], "opted_out": False, "handoff_ms": 1796251900000}
    r("SET", conv, json.dumps(state))
    r("HSET", ctl, "pause_until", "1796338303857", "pause_reason", "human")
    is_eq(s(ev("conversations-row", [conv, ctl], [])),
          ["Ana Pérez", "ana@example.com", "lead_created", "hot", "1796251901275", 2, "12", 0, 1, "1796338303857",
           "human"], "conversations-row: the line, the latest quality, waiting for a person, the pause")
    r("SET", conv, json.dumps({"v": 1, "lead_id": None, "fields": {}, "history": [], "quality": [],
                               "opted_out": True}))
    r("DEL", ctl)
    is_eq(s(ev("conversations-row", [conv, ctl], [])), ["", "", "new", "", "", 0, "", 1, 0, "", ""],
          "conversations-row: what is absent is empty; opted out")
    r("SET", conv, "not json")
    is_eq(ev("conversations-row", [conv, ctl], []), None, "conversations-row: a state that is not JSON: nothing")
    r("DEL", conv)
    is_eq(ev("conversations-row", [conv, ctl], []), None, "conversations-row: no conversation: nothing")

    # ---- dashboard-login: a login link's code spent once, for one session ----
    code, sess, sess2 = k("{admin}:login:c0de"), k("{admin}:session:5e55"), k("{admin}:session:5e56")
    r("SET", code, "1", "PX", 300000)
    is_eq(ev("dashboard-login", [code, sess], ['{"csrf":"x"}', 43200000]), 1, "dashboard-login: the code opens a session")
    is_eq(s(r("GET", sess)), '{"csrf":"x"}', "dashboard-login: the session is kept")
    ok(43000000 < r("PTTL", sess) <= 43200000, "dashboard-login: for the session's lifetime")
    is_eq(r("EXISTS", code), 0, "dashboard-login: the code is spent")
    is_eq(ev("dashboard-login", [code, sess2], ['{"csrf":"y"}', 43200000]), 0, "dashboard-login: a second use: refused")
    is_eq(r("EXISTS", sess2), 0, "dashboard-login: and no session made")



try:
    every = sorted(f[:-4] for f in os.listdir(SRC) if f.endswith(".lua"))
    for name in every:
        with open(os.path.join(SRC, name + ".lua")) as f:
            head = f.read().split("\n")
        ok(head[0].startswith("-- " + name + ": ") and any(h.startswith("-- Returns") for h in head),
           "%s.lua opens with its purpose and says what it returns" % name)
    plain.start()
    cluster.start()
    resp(cluster.port, "CLUSTER", "ADDSLOTSRANGE", 0, 16383)
    import time
    for _ in range(100):
        if "cluster_state:ok" in s(resp(cluster.port, "CLUSTER", "INFO")):
            break
        time.sleep(0.1)
    KEYSPEC = keyspec()

    # The checks themselves: an undeclared key and keys in two slots are refused.
    port = cluster.port
    try:
        r("EVAL", wrapped(b"return redis.call('GET', 'x')"), 0)
        ok(False, "check: an undeclared key is refused")
    except RuntimeError as e:
        ok("undeclared key x in GET" in str(e), "check: an undeclared key is refused", str(e))
    try:
        r("EVAL", b"#!lua\nreturn redis.call('SET', 'zzz', 1)", 1, "{a}k")
        ok(False, "check: the cluster refuses a key of another slot than the declared one")
    except RuntimeError as e:
        ok("do not hash to the same slot" in str(e),
           "check: the cluster refuses a key of another slot than the declared one", str(e))
    try:
        r("EVAL", b"#!lua\nreturn 1", 2, "{a}k", "{b}k")
        ok(False, "check: the cluster refuses declared keys in two slots")
    except RuntimeError as e:
        ok("CROSSSLOT" in str(e), "check: the cluster refuses declared keys in two slots", str(e))
    is_eq(r("EVAL", wrapped(b"return redis.call('DEL', KEYS[1], KEYS[2])"), 2, "{a}1", "{a}2"), 0,
          "check: declared keys of one slot pass")

    for where, srv in (("plain", plain), ("cluster", cluster)):
        port = srv.port
        suite(where)
finally:
    plain.stop()
    cluster.stop()
done()
