-- engine-release: ends a turn's lease on its phone.
--
-- KEYS[1]  P{turns}:due       sorted set: phone -> when its turn may start (ms)
-- KEYS[2]  P{turns}:lease     hash: phone -> until when a turn holds it (ms)
-- KEYS[3]  P{turns}:attempts  hash: phone -> consecutive turns started without success
-- ARGV[1]  the phone (+E164)
-- ARGV[2]  the due score the claim wrote (engine-claim's second value)
-- ARGV[3]  "1" when the turn succeeded, "0" when it failed
-- ARGV[4]  now (ms)
--
-- Returns 1. A succeeded turn clears the attempts and leaves the due set only if nothing rescheduled the
-- phone since the claim (its score is still the claimed one); a failed turn is due again now, not when its
-- lease would have ended (ZADD LT: an earlier due time stands).
redis.call('HDEL', KEYS[2], ARGV[1])
if ARGV[3] == '1' then redis.call('HDEL', KEYS[3], ARGV[1]) end
if ARGV[3] == '0' and redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], 'LT', ARGV[4], ARGV[1])
end
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if ARGV[3] == '1' and s and tonumber(s) == tonumber(ARGV[2]) then redis.call('ZREM', KEYS[1], ARGV[1]) end
return 1
