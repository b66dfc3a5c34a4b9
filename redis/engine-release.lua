-- engine-release: ends a turn's lease on its phone, and takes the messages the turn dealt with out of the
-- arrivals.
--
-- KEYS[1]  P{turns}:due    sorted set: phone -> when its turn may start (ms)
-- KEYS[2]  P{turns}:lease  hash: phone -> "<until ms>:<attempts>" (engine-claim)
-- KEYS[3]  P{turns}:in     sorted set of "<+E164>|<order>|<JSON>": the messages no turn has taken yet
-- ARGV[1]  the phone (+E164)
-- ARGV[2]  the due score the claim wrote (engine-claim's second value)
-- ARGV[3]  "1" when the turn succeeded, "0" when it failed
-- ARGV[4]  now (ms)
-- ARGV[5]  the turn's attempt count (engine-claim's third value), kept by a failed turn; "" for a turn that
--          engine-lease-one started (its phone's count stays as it was)
-- ARGV[6]  the last message the turn dealt with (its member), "" for none: it and the phone's messages before
--          it leave the arrivals (a succeeded turn, or one given up on and dead-lettered)
-- ARGV[7]  "1" when the turn took as many messages as a turn may: more may be waiting
--
-- Returns 1. A succeeded turn drops the lease and its attempts, and leaves the due set only if nothing
-- rescheduled the phone since the claim (its score is still the claimed one) and no message is left; a failed
-- turn keeps its attempts in a lease that has ended ("0:<attempts>") and is due again now, not when its lease
-- would have ended (ZADD LT: an earlier due time stands). The state was committed before this (another slot):
-- a crash in between leaves the messages here, and the turn that redoes them skips those its history has.
if ARGV[6] ~= '' then redis.call('ZREMRANGEBYLEX', KEYS[3], '[' .. ARGV[1] .. '|', '[' .. ARGV[6]) end
if ARGV[3] == '0' then
  local a = ARGV[5]
  if a == '' then a = string.match(redis.call('HGET', KEYS[2], ARGV[1]) or '', ':(%d+)$') or '0' end
  redis.call('HSET', KEYS[2], ARGV[1], '0:' .. a)
  if redis.call('ZSCORE', KEYS[1], ARGV[1]) then redis.call('ZADD', KEYS[1], 'LT', ARGV[4], ARGV[1]) end
  return 1
end
redis.call('HDEL', KEYS[2], ARGV[1])
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) == tonumber(ARGV[2]) then
  if ARGV[7] == '1' and #redis.call('ZRANGEBYLEX', KEYS[3], '[' .. ARGV[1] .. '|', '(' .. ARGV[1] .. '}',
                                    'LIMIT', 0, 1) > 0 then
    redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
  else
    redis.call('ZREM', KEYS[1], ARGV[1])
  end
end
return 1
