"""Every Redis script in redis/*.lua, run with EVAL against a real redis-server on crafted keys.

Each script is loaded from the source tree (TOP_SRCDIR), as the daemon compiles it in, and checked for its
answer and for the keys it leaves, including the crash and retry cases it exists for: a claim never takes a
phone whose lease has not ended and makes what it claims due again at the lease's end, a release keeps a phone
rescheduled meanwhile, the intake stores a MessageSid once, the sender hands out one job per recipient per
lease and remembers an attempt whose outcome is unknown, erasure refuses while a turn is under way.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Redis, done, is_eq, ok, resp, skip_all, workdir  # noqa

if not os.path.exists(os.environ.get("REDIS_SERVER") or "/usr/bin/redis-server"):
    skip_all("redis-server not installed")

SRC = os.path.join(os.environ.get("TOP_SRCDIR") or os.path.join(os.path.dirname(__file__), "..", ".."), "redis")
redis = Redis(workdir())
redis.start()
P = "t:"  # the key prefix
PH = "+573001112233"


def r(*args):
    return resp(redis.port, *args)


def ev(name, keys, args):
    with open(os.path.join(SRC, name + ".lua"), "rb") as f:
        text = f.read()
    return r("EVAL", text, len(keys), *keys, *args)


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


try:
    every = sorted(f[:-4] for f in os.listdir(SRC) if f.endswith(".lua"))
    for name in every:
        with open(os.path.join(SRC, name + ".lua")) as f:
            head = f.read().split("\n")
        ok(head[0].startswith("-- " + name + ": ") and any(h.startswith("-- Returns") for h in head),
           "%s.lua opens with its purpose and says what it returns" % name)

    # ---- engine-route ----
    r("FLUSHALL")
    inbox, routed = k("{%s}:inbox" % PH), k("{%s}:routed" % PH)
    is_eq(ev("engine-route", [inbox, routed], ["1-1", '{"sid":"SM1"}', 100]), 1, "route: a new entry is routed")
    is_eq(ev("engine-route", [inbox, routed], ["1-1", '{"sid":"SM1"}', 100]), 0, "route: a re-delivered entry is not")
    is_eq(s(r("LRANGE", inbox, 0, -1)), ['{"sid":"SM1"}'], "route: the inbox holds the message once")
    ok(0 < r("TTL", inbox) <= 100 and 0 < r("TTL", routed) <= 100, "route: inbox and routed expire")

    # ---- engine-schedule ----
    due, first, lease, attempts = k("{turns}:due"), k("{turns}:first"), k("{turns}:lease"), k("{turns}:attempts")
    is_eq(ev("engine-schedule", [due, first], [PH, 1000, 200, 1000]), 1200, "schedule: due after the window")
    is_eq(ev("engine-schedule", [due, first], [PH, 1500, 200, 1000]), 1700, "schedule: a later message moves it")
    is_eq(ev("engine-schedule", [due, first], [PH, 1900, 200, 1000]), 2000, "schedule: capped from the burst's start")
    is_eq(hget(first, PH), "1000", "schedule: the burst's start stays")

    # ---- engine-claim ----
    r("FLUSHALL")
    r("ZADD", due, 100, "+1a", 100, "+1b", 5000, "+1c")
    r("HSET", lease, "+1b", 9999)
    r("HSET", first, "+1a", 90)
    got = s(ev("engine-claim", [due, lease, first, attempts], [1000, 31000, 10]))
    is_eq(got, ["+1a", "31000", 1], "claim: the due phone whose lease is free, with its attempt")
    is_eq(hget(lease, "+1a"), "31000", "claim: the lease is taken until its end")
    is_eq(zscore(due, "+1a"), 31000.0, "claim: the claimed phone is due again at its lease's end")
    is_eq(r("HEXISTS", first, "+1a"), 0, "claim: the burst's start is reset")
    is_eq(hget(lease, "+1b"), "9999", "claim: a phone whose lease has not ended is not claimed")
    is_eq(ev("engine-claim", [due, lease, first, attempts], [2000, 32000, 10]), [],
          "claim: nothing while the claimed phone's lease runs")
    got = s(ev("engine-claim", [due, lease, first, attempts], [31000, 61000, 10]))
    is_eq(got, ["+1b", "61000", 1, "+1c", "61000", 1, "+1a", "61000", 2],
          "claim: a crashed turn's phone is claimed again when its lease ends (attempt 2)")
    r("FLUSHALL")
    for i in range(6):
        r("ZADD", due, 100, "+2%d" % i)
    is_eq(len(ev("engine-claim", [due, lease, first, attempts], [1000, 2000, 2])), 6,
          "claim: at most as many phones as asked (three values each)")

    # ---- engine-release ----
    r("FLUSHALL")
    r("ZADD", due, 31000, "+1a", 31000, "+1b", 31000, "+1c")
    r("HSET", lease, "+1a", 31000, "+1b", 31000, "+1c", 31000)
    r("HSET", attempts, "+1a", 1, "+1b", 1, "+1c", 2)
    is_eq(ev("engine-release", [due, lease, attempts], ["+1a", 31000, 1, 2000]), 1, "release: succeeded")
    ok(r("HEXISTS", lease, "+1a") == 0 and r("HEXISTS", attempts, "+1a") == 0 and zscore(due, "+1a") is None,
       "release: success drops the lease, the attempts and the due entry")
    r("ZADD", due, 2500, "+1b")  # a message arrived during the turn
    ev("engine-release", [due, lease, attempts], ["+1b", 31000, 1, 2000])
    is_eq(zscore(due, "+1b"), 2500.0, "release: a phone rescheduled since the claim stays due")
    ev("engine-release", [due, lease, attempts], ["+1c", 31000, 0, 2000])
    is_eq(zscore(due, "+1c"), 2000.0, "release: a failed turn is due again now, not at its lease's end")
    is_eq(hget(attempts, "+1c"), "2", "release: a failed turn keeps its attempts")
    is_eq(r("HEXISTS", lease, "+1c"), 0, "release: a failed turn drops its lease")
    r("ZADD", due, 1500, "+1c")
    ev("engine-release", [due, lease, attempts], ["+1c", 31000, 0, 2000])
    is_eq(zscore(due, "+1c"), 1500.0, "release: failure keeps an earlier due time (LT)")
    ev("engine-release", [due, lease, attempts], ["+1d", 31000, 0, 2000])
    is_eq(zscore(due, "+1d"), None, "release: failure does not add a phone that is not due")

    # ---- engine-commit ----
    r("FLUSHALL")
    conv, ctl = k("{%s}:conv" % PH), k("{%s}:ctl" % PH)
    r("RPUSH", inbox, "m1", "m2", "m3")
    r("HSET", ctl, "call", "{}", "window_closed_ms", "5")
    got = ev("engine-commit", [conv, inbox, ctl], ['{"stage":"x"}', 2, 100, 1, "pause_until", "99", "call"])
    is_eq(got, 1, "commit: answers the messages left")
    is_eq(s(r("LRANGE", inbox, 0, -1)), ["m3"], "commit: the messages taken leave the inbox")
    is_eq(s(r("GET", conv)), '{"stage":"x"}', "commit: the state is stored")
    ok(0 < r("TTL", conv) <= 100 and 0 < r("TTL", ctl) <= 100, "commit: state and control hash expire")
    is_eq(s(r("HGETALL", ctl)), ["window_closed_ms", "5", "pause_until", "99"], "commit: ctl fields set and deleted")
    ev("engine-commit", [conv, inbox, ctl], ["{}", 0, 100, 0, "window_closed_ms", "pause_until"])
    is_eq(r("EXISTS", ctl), 0, "commit: an emptied control hash is gone")

    # ---- engine-lease-one ----
    r("FLUSHALL")
    is_eq(ev("engine-lease-one", [lease], [PH, 1000, 5000]), 1, "lease-one: a free phone's lease is taken")
    is_eq(ev("engine-lease-one", [lease], [PH, 2000, 6000]), 0, "lease-one: not while it runs")
    is_eq(hget(lease, PH), "5000", "lease-one: a refused take changes nothing")
    is_eq(ev("engine-lease-one", [lease], [PH, 5000, 9000]), 1, "lease-one: taken again once it ended")

    # ---- engine-load ----
    r("FLUSHALL")
    is_eq(s(ev("engine-load", [conv, inbox, ctl], [])), [None, [], []], "load: a new phone: no state, no messages")
    r("SET", conv, '{"stage":"new"}')
    r("RPUSH", inbox, "m1", "m2")
    r("HSET", ctl, "pause_until", "7")
    got = s(ev("engine-load", [conv, inbox, ctl], []))
    is_eq(got, ['{"stage":"new"}', ["m1", "m2"], ["pause_until", "7"]], "load: state, messages, control hash")
    is_eq(s(r("LRANGE", inbox, 0, -1)), ["m1", "m2"], "load: the messages stay until the commit (a crash redoes them)")
    r("RPUSH", inbox, *["x%d" % i for i in range(150)])
    is_eq(len(s(ev("engine-load", [conv, inbox, ctl], []))[1]), 100, "load: at most 100 messages a turn")

    # ---- intake-store ----
    r("FLUSHALL")
    stream = k("{intake}:stream")
    sid1, idem1 = k("{intake}:sid:SM1"), k("{intake}:idem:tok1")
    fields = ["sid", "SM1", "from", "whatsapp:" + PH, "idem", "tok1", "received_ms", "1", "via", "direct", "form", "a=b"]
    got = s(ev("intake-store", [sid1, idem1, stream], [3600] + fields))
    ok(got[0] == 1 and "-" in got[1], "intake: a new message is stored", got)
    stored = got[1]
    is_eq(s(r("XRANGE", stream, "-", "+")), [[stored, fields]], "intake: the stream entry holds the fields")
    ok(s(r("GET", sid1)) == stored and 0 < r("TTL", sid1) <= 3600, "intake: the MessageSid is claimed with a TTL")
    is_eq(s(r("GET", idem1)), stored, "intake: so is the idempotency token")
    is_eq(s(ev("intake-store", [sid1, idem1, stream], [3600] + fields)), [0, stored],
          "intake: a repeated MessageSid is a duplicate (the stored id)")
    sid2 = k("{intake}:sid:SM2")
    is_eq(s(ev("intake-store", [sid2, idem1, stream], [3600] + fields)), [0, stored],
          "intake: a new MessageSid with a known idempotency token is a duplicate")
    is_eq(r("XLEN", stream), 1, "intake: duplicates are not stored")
    is_eq(r("EXISTS", sid2), 0, "intake: a duplicate claims nothing")
    got = s(ev("intake-store", [sid2, sid2, stream], [3600] + fields))
    ok(got[0] == 1 and r("XLEN", stream) == 2, "intake: without a token the MessageSid alone counts")
    r("SET", sid1, "erased")
    is_eq(s(ev("intake-store", [sid1, sid1, stream], [3600] + fields)), [0, "erased"],
          "intake: an erased message replayed stays a duplicate")

    # ---- sender-enqueue ----
    r("FLUSHALL")
    seq, odue, q, optout = k("{outbox}:seq"), k("{outbox}:due"), k("{outbox}:q:" + PH), k("{outbox}:optout")
    jp, qp = k("{outbox}:job:"), k("{outbox}:q:")
    once = k("{outbox}:once:turn1")

    def enqueue(once_key, opt, *parts, tag="", sid="", vars_=""):
        return ev("sender-enqueue", [seq, odue, q, optout, once_key],
                  [jp, PH, 111, 1000, 600, sid, vars_, tag, opt] + list(parts))

    is_eq(enqueue(once, "", "part one", "part two", tag="T1"), 2, "enqueue: two parts queued")
    is_eq(s(r("LRANGE", q, 0, -1)), ["1", "2"], "enqueue: the recipient's queue holds both, in order")
    j1, j2 = s(r("HGETALL", jp + "1")), s(r("HGETALL", jp + "2"))
    is_eq(dict(zip(j1[::2], j1[1::2])), {"to": PH, "body": "part one", "attempts": "0", "created_ms": "111",
                                          "part": "1", "parts": "2"}, "enqueue: the first job")
    is_eq(dict(zip(j2[::2], j2[1::2])).get("tag"), "T1", "enqueue: the tag is on the last part")
    is_eq(zscore(odue, PH), 1000.0, "enqueue: the recipient is due now")
    ok(0 < r("TTL", once) <= 600, "enqueue: the once-key is set with its TTL")
    is_eq(enqueue(once, "", "again"), 0, "enqueue: a message with a known once-key is not queued again")
    r("ZADD", odue, 5000, PH)
    enqueue(optout, "", "three", sid="HX1", vars_='{"1":"a"}')
    is_eq(zscore(odue, PH), 5000.0, "enqueue: a due time already set stays")
    is_eq(hget(jp + "3", "content_sid"), "HX1", "enqueue: a template's content_sid")
    is_eq(enqueue(optout, "out", "bye"), 1, "enqueue: STOP queues its confirmation")
    ok(r("SISMEMBER", optout, PH) == 1 and s(r("LRANGE", q, 0, -1)) == ["4"] and r("EXISTS", jp + "1") == 0,
       "enqueue: STOP opts out and drops what was queued")
    is_eq(enqueue(optout, "", "late reply"), -1, "enqueue: nothing else goes to an opted-out phone")
    is_eq(enqueue(optout, "in", "welcome"), 1, "enqueue: START opts in and queues its welcome")
    is_eq(r("SISMEMBER", optout, PH), 0, "enqueue: START removes the opt-out")

    # ---- sender-claim and sender-done ----
    r("FLUSHALL")
    enqueue(optout, "", "a1", "a2")
    other = "+15550001111"
    ev("sender-enqueue", [seq, odue, qp + other, optout, optout], [jp, other, 111, 1000, 600, "", "", "", "", "b1"])

    def claim(now, until, most=10):
        return s(ev("sender-claim", [odue], [qp, jp, now, until, most]))

    got = claim(2000, 32000)
    is_eq(got, ["3", other, "b1", "0", "", "", "", "", "1", PH, "a1", "0", "", "", "", ""],
          "claim: the head job of each due recipient")
    is_eq(hget(jp + "1", "sent_ms"), "2000", "claim: the attempt under way is marked (sent_ms)")
    is_eq(zscore(odue, PH), 32000.0, "claim: the recipient is due again at the lease's end")
    is_eq(claim(3000, 33000), [], "claim: one job per recipient while its lease runs")
    got = claim(32000, 62000)
    is_eq(got[8:13], ["1", PH, "a1", "0", "2000"],
          "claim: after a crash the job comes back with its unknown attempt's sent_ms")
    is_eq(ev("sender-done", [odue, q, jp + "1"], [PH, "1", 40000]), 1, "done: the sent job")
    ok(s(r("LRANGE", q, 0, -1)) == ["2"] and r("EXISTS", jp + "1") == 0, "done: the job leaves queue and store")
    is_eq(zscore(odue, PH), 40000.0, "done: the next job is due now")
    ev("sender-done", [odue, q, jp + "1"], [PH, "1", 41000])
    is_eq(s(r("LRANGE", q, 0, -1)), ["2"], "done: repeated, it does not pop another job")
    r("DEL", jp + "2")
    is_eq(claim(50000, 80000, 1), [], "claim: a head job that is gone is dropped")
    ok(r("EXISTS", q) == 0 and zscore(odue, PH) is None, "claim: a recipient with nothing left leaves the due set")
    ev("sender-done", [odue, qp + other, jp + "3"], [other, "3", 50000])
    is_eq(zscore(odue, other), None, "done: the last job leaves the due set")

    # ---- sender-optout ----
    r("FLUSHALL")
    enqueue(optout, "", "x1", "x2")
    is_eq(ev("sender-optout", [odue, q, optout], [PH, jp]), 2, "optout: both queued jobs are dropped")
    ok(r("SISMEMBER", optout, PH) == 1 and r("EXISTS", q) == 0 and r("EXISTS", jp + "1") == 0
       and zscore(odue, PH) is None, "optout: opted out, queue, jobs and due entry gone")

    # ---- erase-phone ----
    r("FLUSHALL")
    longer = PH + "4"
    ekeys = [k("{%s}:conv" % PH), inbox, routed, k("{%s}:ctl" % PH), due, first, lease, attempts,
             k("{odoo}:pending"), k("{followup}:due"), k("{engine}:dead"), stream, q, odue, optout,
             k("{outbox}:dead"), k("{stats}:active"), k("{%s}:odoo" % PH)]
    eargs = [PH, jp, k("{outbox}:deadbody:"), k("{intake}:sid:"), 10000]
    r("SET", ekeys[0], json.dumps({"lead_id": 42, "history": [{"sid": "SM1"}, {"sid": "SMgone"}]}))
    r("RPUSH", inbox, json.dumps({"sid": "SM2"}))
    r("SADD", routed, "1-1")
    r("HSET", ekeys[3], "call", "{}")
    for z in (due, k("{odoo}:pending"), k("{followup}:due"), k("{stats}:active")):
        r("ZADD", z, 1, PH, 1, longer)
    for h in (first, attempts):
        r("HSET", h, PH, 1, longer, 1)
    r("HSET", lease, PH, 20000)
    is_eq(s(ev("erase-phone", ekeys, eargs)), ["busy"], "erase: refused while the phone's turn lease runs")
    r("HSET", lease, PH, 9000)
    r("SET", ekeys[17], "1")
    is_eq(s(ev("erase-phone", ekeys, eargs)), ["busy"], "erase: refused while a lead write is under way")
    r("DEL", ekeys[17])
    r("RPUSH", q, "7")
    r("HSET", jp + "7", "to", PH)
    r("ZADD", odue, 20000, PH)
    is_eq(s(ev("erase-phone", ekeys, eargs)), ["busy"], "erase: refused while a send is under way")
    r("ZADD", odue, 5000, PH)
    r("RPUSH", k("{engine}:dead"), json.dumps({"phone": PH}), json.dumps({"phone": longer}))
    r("RPUSH", k("{outbox}:dead"), json.dumps({"to": PH, "job": "9"}))
    r("SET", k("{outbox}:deadbody:9"), "text")
    r("SADD", optout, PH)
    r("SET", k("{intake}:sid:SM1"), "1-1", "EX", 500)
    r("SET", k("{intake}:sid:SM2"), "1-2")
    last = s(r("XADD", stream, "*", "from", "whatsapp:" + PH))
    got = s(ev("erase-phone", ekeys, eargs))
    is_eq(got, [42, 4, 7, 2, 1, 1, 2, last], "erase: lead id, keys, schedules, dead letters, jobs, opt-out, "
          "dedupe keys, the stream's last id")
    ok(all(r("EXISTS", x) == 0 for x in ekeys[:4] + [q, jp + "7", k("{outbox}:deadbody:9")]),
       "erase: the phone's keys, jobs and reply texts are gone")
    ok(all(zscore(z, longer) == 1.0 for z in (due, k("{odoo}:pending"))) and hget(first, longer) == "1"
       and s(r("LRANGE", k("{engine}:dead"), 0, -1)) == [json.dumps({"phone": longer})],
       "erase: a longer number that starts with the phone is kept")
    ok(s(r("GET", k("{intake}:sid:SM1"))) == "erased" and 0 < r("TTL", k("{intake}:sid:SM1")) <= 500
       and r("EXISTS", k("{intake}:sid:SMgone")) == 0,
       "erase: dedupe keys say erased and keep their TTL; none is created")

    # ---- erase-stream ----
    r("FLUSHALL")
    ids = []
    for i in range(5):
        frm = "whatsapp:" + (PH if i % 2 == 0 else longer)
        ids.append(s(r("XADD", stream, "*", "sid", "SM%d" % i, "from", frm, "idem", "tk%d" % i)))
        r("SET", k("{intake}:sid:SM%d" % i), ids[-1])
        r("SET", k("{intake}:idem:tk%d" % i), ids[-1])
    sargs = ["whatsapp:" + PH, "-", ids[3], 2, k("{intake}:sid:"), k("{intake}:idem:")]
    got = s(ev("erase-stream", [stream], sargs))
    is_eq(got, ["(" + ids[1], 1, 2], "erase-stream: a full batch answers where to go on")
    n = dd = 0
    while got[0] != "":
        got = s(ev("erase-stream", [stream], sargs[:1] + [got[0]] + sargs[2:]))
        n, dd = n + got[1], dd + got[2]
    is_eq([n, dd], [1, 2], "erase-stream: a short batch ends the walk")
    is_eq([e[0] for e in s(r("XRANGE", stream, "-", "+"))], [ids[1], ids[3], ids[4]],
          "erase-stream: only the phone's entries up to the end id are deleted")
    ok(s(r("GET", k("{intake}:sid:SM2"))) == "erased" and s(r("GET", k("{intake}:idem:tk2"))) == "erased"
       and s(r("GET", k("{intake}:sid:SM1"))) == ids[1], "erase-stream: only their dedupe keys say erased")

    # ---- erase-scan ----
    r("FLUSHALL")
    r("SET", k("{outbox}:once:follow:%s:1" % PH), "1")
    r("SET", k("{outbox}:once:follow:%s:1" % longer), "1")
    r("HSET", k("{outbox}:msg:SMa"), "to", PH)
    r("HSET", k("{outbox}:msg:SMb"), "to", longer)
    r("SET", k("{%s}:conv" % PH), "new")
    r("SET", "other:" + PH, "1")
    cur, n = "0", 0
    while True:
        cur, d = s(ev("erase-scan", [], [PH, cur, P + "*", k("{outbox}:msg:"), k("{%s}:" % PH), 10]))
        n += d
        if cur == "0":
            break
    is_eq(n, 2, "erase-scan: the keys named after the phone and its outbound records")
    is_eq(sorted(s(r("KEYS", "*"))), sorted([k("{outbox}:once:follow:%s:1" % longer), k("{outbox}:msg:SMb"),
                                             k("{%s}:conv" % PH), "other:" + PH]),
          "erase-scan: a longer number, the phone's new keys and other prefixes are kept")

    # ---- erase-prune ----
    r("SET", conv, "old", "EX", 100)
    is_eq(ev("erase-prune", [conv], ["stale", "pruned"]), 0, "prune: a state changed since the read is left")
    is_eq(ev("erase-prune", [conv], ["old", "pruned"]), 1, "prune: an unchanged state is written")
    ok(s(r("GET", conv)) == "pruned" and r("TTL", conv) > 0, "prune: with its TTL kept")

    # ---- analytics-record and analytics-read ----
    r("FLUSHALL")
    tot, day, act = k("{stats}:totals"), k("{stats}:day:2024-01-02"), k("{stats}:active")
    r("ZADD", act, 10, "+1old")
    ev("analytics-record", [tot, day, act], [PH, 5000, 3456000, 100, "turns", 1, "leads", 2])
    ev("analytics-record", [tot, day, act], ["", 6000, 3456000, 100, "turns", 1])
    ok(hget(tot, "turns") == "2" and hget(day, "leads") == "2" and 0 < r("TTL", day) <= 3456000,
       "record: totals and the day count, the day expires")
    is_eq(s(r("ZRANGE", act, 0, -1, "WITHSCORES")), [PH, "5000"], "record: activity noted, the stale trimmed")
    got = s(ev("analytics-read", [tot, act, day, k("{stats}:day:2024-01-01")], [4000]))
    is_eq(got, [["turns", "2", "leads", "2"], 1, 1, ["turns", "2", "leads", "2"], []], "read: totals, active, days")

    # ---- outreach-store-call ----
    r("FLUSHALL")
    got = s(ev("outreach-store-call", [conv, ctl], ['{"fresh":1}', '{"call":1}', 100]))
    is_eq(got, [1, '{"fresh":1}'], "store-call: a new conversation starts with the call")
    got = s(ev("outreach-store-call", [conv, ctl], ['{"fresh":2}', '{"call":2}', 100]))
    is_eq(got, [0, '{"fresh":1}'], "store-call: an existing conversation is kept")
    ok(hget(ctl, "call") == '{"call":2}' and 0 < r("TTL", ctl) <= 100, "store-call: the call waits in ctl")

    # ---- routes-dead-letters ----
    r("FLUSHALL")
    r("RPUSH", k("{engine}:dead"), "turn1")
    r("RPUSH", k("{outbox}:dead"), json.dumps({"job": "5"}), "not json", json.dumps({"job": "6"}))
    r("SET", k("{outbox}:deadbody:5"), "the text")
    got = s(ev("routes-dead-letters", [k("{engine}:dead"), k("{outbox}:dead")], [k("{outbox}:deadbody:")]))
    is_eq(got, [["turn1"], [json.dumps({"job": "5"}), "not json", json.dumps({"job": "6"})], ["the text", "", ""]],
          "dead-letters: both lists and each reply's text")
finally:
    redis.stop()
done()
