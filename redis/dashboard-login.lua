-- dashboard-login: spends a one-time login code and opens a dashboard session with it, in one step, so a
-- login link works once however many times it is opened.
--
-- KEYS[1]  P{admin}:login:<SHA-256 of the code>     the code, made by POST /api/dashboard/link
-- KEYS[2]  P{admin}:session:<SHA-256 of the session id>
-- ARGV[1]  the session (JSON: csrf, via, created_ms)
-- ARGV[2]  the session's lifetime (ms)
--
-- Returns 1 (the session is open, the code spent) or 0 (no such code: used, expired or never made).
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
