-- engine-load: a turn's start: the phone's conversation state and its control hash, in one round trip (both
-- in the phone's slot). Nothing is changed. (The messages the turn takes came with its claim, engine-claim.)
--
-- KEYS[1]  P{+E164}:conv   string: the conversation state (JSON)
-- KEYS[2]  P{+E164}:ctl    hash: pause, call context, window report
--
-- Returns {state or false, the control hash as a flat field/value list}.
return {redis.call('GET', KEYS[1]), redis.call('HGETALL', KEYS[2])}
