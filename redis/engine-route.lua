-- engine-route: moves one intake stream entry into its phone's inbox, once per stream id.
--
-- KEYS[1]  P{+E164}:inbox   list of routed messages not yet taken by a turn
-- KEYS[2]  P{+E164}:routed  set of stream ids already routed (a re-delivered entry is routed once)
-- ARGV[1]  the intake stream entry id
-- ARGV[2]  the message as JSON (what the turn reads)
-- ARGV[3]  the TTL of both keys, in seconds
--
-- Returns 1 when the message was appended, 0 when this entry id was routed before.
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
