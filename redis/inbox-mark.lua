-- inbox-mark: moves the watermark of the salespeople's chatter messages forward, after a message was stored
-- among the arrivals (or set aside), by the instance that holds the right to poll (conversation/inbox.c).
--
-- KEYS[1]  P{odoo}:inbox:lock  string: the instance polling (inbox-claim)
-- KEYS[2]  P{odoo}:inbox:mark  string: the id of the last mail.message dealt with
-- ARGV[1]  this instance's name
-- ARGV[2]  the message id dealt with
-- ARGV[3]  how long the right to poll lasts from now (ms): renewed with each message
--
-- Returns 1 when the mark moved, 0 when it did not: another instance polls now (this one's right ran out), or
-- the mark is already there or further (it never goes back, so nothing is delivered twice).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local cur = tonumber(redis.call('GET', KEYS[2]) or '-1')
if cur and cur >= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
