-- engine-claim: claims up to ARGV[3] due phones whose turn lease is free, for this instance's turns, with the
-- messages each has waiting.
--
-- KEYS[1]  P{turns}:due    sorted set: phone -> when its turn may start (ms)
-- KEYS[2]  P{turns}:lease  hash: phone -> "<until ms>:<attempts>": until when a turn holds it, and how many
--                          turns it started since its last success (a free phone: until in the past, or none)
-- KEYS[3]  P{turns}:in     sorted set of "<+E164>|<order>|<JSON>": the messages no turn has taken yet
-- ARGV[1]  now (ms)
-- ARGV[2]  the lease's end (ms)
-- ARGV[3]  how many phones at most (it looks at up to twice as many candidates and 32 more, phones in flight
--          that a message made due again being skipped, and stops once it has them)
-- ARGV[4]  how many messages a turn takes at most
--
-- Returns a flat array, per phone claimed: the phone, its new due score (the lease's end), its attempt
-- count, n, then its first n waiting messages (members of KEYS[3], oldest first). A phone whose lease has not
-- ended is skipped. A claimed phone is due again when its lease ends, so a crashed turn is redone then (its
-- messages are still there: engine-release takes them out) and later claims do not walk the phones in flight;
-- a message arriving meanwhile makes it due earlier (intake-store), and engine-release keeps it due. A lease
-- of the release before (no ":<attempts>") counts as no attempt.
local out = {}
local now, max, got = tonumber(ARGV[1]), tonumber(ARGV[3]), 0
local cand = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, max * 2 + 32)
for i = 1, #cand do
  if got >= max then break end
  local p = cand[i]
  local untl, a = string.match(redis.call('HGET', KEYS[2], p) or '0', '^(%d+):?(%d*)$')
  if not untl or tonumber(untl) <= now then
    a = (tonumber(a) or 0) + 1
    redis.call('HSET', KEYS[2], p, ARGV[2] .. ':' .. a)
    redis.call('ZADD', KEYS[1], ARGV[2], p)
    -- "(+E164}" ends the range: "}" is the character after "|".
    local m = redis.call('ZRANGEBYLEX', KEYS[3], '[' .. p .. '|', '(' .. p .. '}', 'LIMIT', 0, tonumber(ARGV[4]))
    out[#out + 1] = p; out[#out + 1] = ARGV[2]; out[#out + 1] = a; out[#out + 1] = #m
    for j = 1, #m do out[#out + 1] = m[j] end
    got = got + 1
  end
end
return out
