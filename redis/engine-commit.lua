-- engine-commit: stores a turn's outcome: the conversation state and its changes to the phone's control hash.
-- (engine-release then takes the messages the turn dealt with out of the arrivals, in the turns' slot.)
--
-- KEYS[1]  P{+E164}:conv   the conversation state (JSON)
-- KEYS[2]  P{+E164}:ctl    hash: pause_until, pause_reason, pause_by, call, window_closed_ms
-- ARGV[1]  the state as JSON
-- ARGV[2]  the TTL of the state, and of the control hash when this sets fields in it, in seconds
-- ARGV[3]  n, how many field/value pairs follow to set in the control hash
-- ARGV[4..3+2n]  those pairs; ARGV[4+2n..]  fields to delete from the control hash
--
-- Returns 1. (The control hash's fields are short-lived: a pause, a call's context, a window report; its TTL
-- is renewed when one is set, and a hash emptied by the deletes is gone.)
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local n = tonumber(ARGV[3])
for i = 0, n - 1 do redis.call('HSET', KEYS[2], ARGV[4 + 2 * i], ARGV[5 + 2 * i]) end
for i = 4 + 2 * n, #ARGV do redis.call('HDEL', KEYS[2], ARGV[i]) end
if n > 0 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return 1
