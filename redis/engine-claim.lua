-- engine-claim: claims up to ARGV[3] due phones whose turn lease is free, for this instance's turns.
--
-- KEYS[1]  P{turns}:due       sorted set: phone -> when its turn may start (ms)
-- KEYS[2]  P{turns}:lease     hash: phone -> until when a turn holds it (ms)
-- KEYS[3]  P{turns}:first     hash: phone -> when its current burst began (reset here)
-- KEYS[4]  P{turns}:attempts  hash: phone -> consecutive turns started without success
-- ARGV[1]  now (ms)
-- ARGV[2]  the lease's end (ms)
-- ARGV[3]  how many phones at most (it looks at up to twice as many candidates and 32 more, phones in flight
--          that a message made due again being skipped, and stops once it has them; out holds three values
--          a phone, hence the * 3 below)
--
-- Returns a flat array: phone, its new due score (the lease's end), its attempt count; per phone claimed.
-- A phone whose lease has not ended is skipped. A claimed phone is due again when its lease ends, so a
-- crashed turn is redone then and later claims do not walk the phones in flight; a message arriving
-- meanwhile makes it due earlier (engine-schedule), and engine-release keeps it due.
local out = {}
local now, max = tonumber(ARGV[1]), tonumber(ARGV[3])
local cand = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, max * 2 + 32)
for i = 1, #cand do
  if #out >= max * 3 then break end
  local p = cand[i]
  local l = redis.call('HGET', KEYS[2], p)
  if not l or tonumber(l) <= now then
    redis.call('HSET', KEYS[2], p, ARGV[2])
    redis.call('HDEL', KEYS[3], p)
    redis.call('ZADD', KEYS[1], ARGV[2], p)
    local a = redis.call('HINCRBY', KEYS[4], p, 1)
    table.insert(out, p); table.insert(out, ARGV[2]); table.insert(out, a)
  end
end
return out
