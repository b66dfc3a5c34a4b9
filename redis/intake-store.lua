-- intake-store: claims a webhook's MessageSid (and idempotency token) and appends it to the intake stream,
-- atomically, so a message is never claimed without being stored; a replayed message is a no-op.
--
-- KEYS[1]  P{intake}:sid:<MessageSid>  the claim of the MessageSid: the stream entry id, or "erased"
-- KEYS[2]  P{intake}:idem:<token>      the claim of Twilio's I-Twilio-Idempotency-Token; KEYS[1] again when
--                                      the webhook had none
-- KEYS[3]  P{intake}:stream            the intake stream
-- ARGV[1]  the claims' TTL, in seconds (intake.dedupe_ttl)
-- ARGV[2..]  the stream entry's field/value pairs: sid, from, idem, received_ms, via, form
--
-- Returns {1, the new entry id} when stored, {0, the stored claim's value} for a duplicate.
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, redis.call('GET', KEYS[1])} end
if KEYS[2] ~= KEYS[1] and redis.call('EXISTS', KEYS[2]) == 1 then return {0, redis.call('GET', KEYS[2])} end
local id = redis.call('XADD', KEYS[3], '*', unpack(ARGV, 2))
redis.call('SET', KEYS[1], id, 'EX', ARGV[1])
if KEYS[2] ~= KEYS[1] then redis.call('SET', KEYS[2], id, 'EX', ARGV[1]) end
return {1, id}
