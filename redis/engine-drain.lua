-- engine-drain: the intake stream of the releases before the inboxes were written by the intake itself: is
-- anything left in it for the engine to route? Deletes it when everything in it was delivered to the
-- consumer group "engine" and acknowledged, or when it is empty.
--
-- KEYS[1]  P{intake}:stream  the old intake stream
--
-- Returns 1 when there is no stream (any more), 0 while entries are left to route (the engine reads them with
-- its consumer group, as before, and asks again once a read comes back empty).
if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then
  local done = false
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local f = {}
    for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
    if f['name'] == 'engine' and f['pending'] == 0 and f['last-delivered-id'] == last[1][1] then done = true end
  end
  if not done then return 0 end
end
redis.call('DEL', KEYS[1])
return 1
