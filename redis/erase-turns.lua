-- erase-turns: an erasure's step in the turn schedule: the phone leaves it, unless its turn is under way.
--
-- KEYS[1]  P{turns}:due       sorted set by phone
-- KEYS[2]  P{turns}:first     hash by phone
-- KEYS[3]  P{turns}:lease     hash by phone: a live lease means "busy"
-- KEYS[4]  P{turns}:attempts  hash by phone
-- ARGV[1]  the phone (+E164)
-- ARGV[2]  now (ms)
--
-- Returns {"busy"} while the phone's turn lease runs (the caller retries the erasure), else {entries removed}.
local l = redis.call('HGET', KEYS[3], ARGV[1])
if l and tonumber(l) > tonumber(ARGV[2]) then return {'busy'} end
local n = redis.call('ZREM', KEYS[1], ARGV[1])
for i = 2, 4 do n = n + redis.call('HDEL', KEYS[i], ARGV[1]) end
return {n}
