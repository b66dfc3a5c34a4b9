-- engine-load: a turn's start: the phone's conversation state, the messages waiting in its inbox and its
-- control hash, in one round trip (all three in the phone's slot). Nothing is changed: the messages stay in
-- the inbox until the turn's commit trims the ones it took, so a turn that dies is redone with them.
--
-- KEYS[1]  P{+E164}:conv   string: the conversation state (JSON)
-- KEYS[2]  P{+E164}:inbox  list: routed messages not yet taken (JSON each)
-- KEYS[3]  P{+E164}:ctl    hash: pause, call context, window report
--
-- Returns {state or false, the first 100 inbox entries, the control hash as a flat field/value list}.
return {redis.call('GET', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, 99), redis.call('HGETALL', KEYS[3])}
