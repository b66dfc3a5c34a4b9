-- engine-commit: stores a turn's outcome: the conversation state, the inbox without the messages it took,
-- and its changes to the phone's control hash.
--
-- KEYS[1]  P{+E164}:conv   the conversation state (JSON)
-- KEYS[2]  P{+E164}:inbox  list of routed messages not yet taken by a turn
-- KEYS[3]  P{+E164}:ctl    hash: pause_until, pause_reason, pause_by, call, window_closed_ms
-- ARGV[1]  the state as JSON
-- ARGV[2]  how many messages the turn took from the head of the inbox
-- ARGV[3]  the TTL of the state, and of the control hash when this sets fields in it, in seconds
-- ARGV[4]  n, how many field/value pairs follow to set in the control hash
-- ARGV[5..4+2n]  those pairs; ARGV[5+2n..]  fields to delete from the control hash
--
-- Returns 1. (The control hash's fields are short-lived: a pause, a call's context, a window report; its TTL
-- is renewed when one is set, and a hash emptied by the deletes is gone.)
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
if tonumber(ARGV[2]) > 0 then redis.call('LTRIM', KEYS[2], tonumber(ARGV[2]), -1) end
local n = tonumber(ARGV[4])
for i = 0, n - 1 do redis.call('HSET', KEYS[3], ARGV[5 + 2 * i], ARGV[6 + 2 * i]) end
for i = 5 + 2 * n, #ARGV do redis.call('HDEL', KEYS[3], ARGV[i]) end
if n > 0 then redis.call('EXPIRE', KEYS[3], ARGV[3]) end
return 1
