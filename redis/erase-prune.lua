-- erase-prune: writes back a conversation whose old history the retention sweep dropped, unless a turn
-- changed it since it was read (compare and set).
--
-- KEYS[1]  P{+E164}:conv  the conversation state (JSON)
-- ARGV[1]  the state as the sweep read it
-- ARGV[2]  the state pruned
--
-- Returns 1 when written (its TTL kept), 0 when the state changed meanwhile.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
