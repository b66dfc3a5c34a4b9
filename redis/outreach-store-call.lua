-- outreach-store-call: keeps a sales call's context (POST /api/call-completed) for the phone's next turn;
-- a conversation that does not exist yet starts with it.
--
-- KEYS[1]  P{+E164}:conv  the conversation state (JSON)
-- KEYS[2]  P{+E164}:ctl   hash: the field "call" holds the context until a turn merges it
-- ARGV[1]  a fresh state as JSON (written only if KEYS[1] does not exist)
-- ARGV[2]  the call's context as JSON
-- ARGV[3]  the TTL of both keys, in seconds
--
-- Returns {1 if the conversation started now else 0, the stored state}.
redis.call('HSET', KEYS[2], 'call', ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
local new = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[3])
return {new and 1 or 0, redis.call('GET', KEYS[1])}
