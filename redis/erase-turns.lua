-- erase-turns: an erasure's step in the turns' slot: the phone leaves the schedule, its messages no turn has
-- taken leave the arrivals, and the MessageSid claims of its history say "erased", unless its turn is under
-- way. The claims stay until their TTL (they do not name the phone), so a replayed webhook of the erased
-- conversation remains a duplicate.
--
-- KEYS[1]  P{turns}:due       sorted set by phone
-- KEYS[2]  P{turns}:first     hash by phone
-- KEYS[3]  P{turns}:lease     hash by phone: "<until ms>:<attempts>"; a live lease means "busy"
-- KEYS[4]  P{turns}:attempts  hash by phone, of the release before the attempts moved into the lease
-- KEYS[5]  P{turns}:in        sorted set of "<+E164>|<order>|<JSON>"
-- KEYS[6..] P{turns}:sid:<sid> the claims of the history's MessageSids (found by erase-read)
-- ARGV[1]  the phone (+E164)
-- ARGV[2]  now (ms)
--
-- Returns {"busy"} while the phone's turn lease runs (the caller retries the erasure), else {entries removed,
-- claims marked (none is created)}.
local untl = string.match(redis.call('HGET', KEYS[3], ARGV[1]) or '0', '^(%d+)')
if untl and tonumber(untl) > tonumber(ARGV[2]) then return {'busy'} end
local n = redis.call('ZREM', KEYS[1], ARGV[1])
for i = 2, 4 do n = n + redis.call('HDEL', KEYS[i], ARGV[1]) end
n = n + redis.call('ZREMRANGEBYLEX', KEYS[5], '[' .. ARGV[1] .. '|', '(' .. ARGV[1] .. '}')
local marked = 0
for i = 6, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v and v ~= 'erased' then
    redis.call('SET', KEYS[i], 'erased', 'KEEPTTL')
    marked = marked + 1
  end
end
return {n, marked}
