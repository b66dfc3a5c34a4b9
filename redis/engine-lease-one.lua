-- engine-lease-one: takes one phone's turn lease if no turn holds it (lead jobs merging their result,
-- background lead retries, follow-ups).
--
-- KEYS[1]  P{turns}:lease  hash: phone -> "<until ms>:<attempts>" (engine-claim)
-- KEYS[2]  P{turns}:in     sorted set of "<+E164>|<order>|<JSON>": the messages no turn has taken yet
-- ARGV[1]  the phone (+E164)
-- ARGV[2]  now (ms)
-- ARGV[3]  the lease's end (ms)
--
-- Returns 0 when a lease that has not ended holds the phone; else the lease is taken (the customer turns'
-- attempts kept) and it returns 1 + how many of the phone's messages wait for a turn (a follow-up is not sent
-- to a customer who just wrote).
local untl, a = string.match(redis.call('HGET', KEYS[1], ARGV[1]) or '0', '^(%d+):?(%d*)$')
if untl and tonumber(untl) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3] .. ':' .. (tonumber(a) or 0))
return 1 + redis.call('ZLEXCOUNT', KEYS[2], '[' .. ARGV[1] .. '|', '(' .. ARGV[1] .. '}')
