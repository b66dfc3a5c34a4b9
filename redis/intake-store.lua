-- intake-store: claims a webhook's MessageSid (and idempotency token), adds the message to the arrivals and
-- makes its phone's turn due, atomically: a message is never claimed without being stored, a stored message
-- always has a turn due, and a replayed message (or one of an erased conversation) is a no-op.
--
-- KEYS[1]  P{turns}:sid:<MessageSid>  the claim of the MessageSid ("1", or "erased" by an erasure)
-- KEYS[2]  P{turns}:idem:<token>      the claim of Twilio's I-Twilio-Idempotency-Token; KEYS[1] again when
--                                     the webhook had none
-- KEYS[3]  P{turns}:in                sorted set, every score 0: the messages no turn has taken yet, as
--                                     "<+E164>|<order>|<JSON>", so one phone's are a range in arrival order
-- KEYS[4]  P{turns}:due               sorted set: phone -> when its turn may start (ms)
-- ARGV[1]  the claims' TTL, in seconds (webhook.dedupe_ttl)
-- ARGV[2]  the phone (+E164)
-- ARGV[3]  the member: "<+E164>|<order>|<JSON>" (order: the receive time in ms, 13 digits, "." and a 6-digit
--          sequence; JSON: sid, text, t_ms, profile, media)
-- ARGV[4]  now (ms)
-- ARGV[5]  the coalescing window (ms): the turn waits this long after the last message; 0: due now
-- ARGV[6]  the cap (ms): a burst never waits longer than this after its first message (the oldest of the
--          phone's messages waiting: its order starts with its receive time)
--
-- Returns the phone's due time (ms) when stored, 0 for a duplicate. The first write is the claim's SET NX:
-- under maxmemory Redis refuses a script's first write and lets the later ones through, so it stores all or
-- nothing.
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
if KEYS[2] ~= KEYS[1] and not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  -- The same delivery under another MessageSid: not a message of its own.
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('ZADD', KEYS[3], 0, ARGV[3])
local now, win = tonumber(ARGV[4]), tonumber(ARGV[5])
local due = now
if win > 0 then
  local m = redis.call('ZRANGEBYLEX', KEYS[3], '[' .. ARGV[2] .. '|', '(' .. ARGV[2] .. '}', 'LIMIT', 0, 1)
  local first = tonumber(string.match(m[1] or '', '^[^|]*|(%d+)%.')) or now
  due = math.min(now + win, first + tonumber(ARGV[6]))
end
redis.call('ZADD', KEYS[4], due, ARGV[2])
return due
