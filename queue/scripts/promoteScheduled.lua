--[[
promoteScheduled.lua: SCHEDULED -> QUEUED for every route, once a step's
not_before or retry time has come. Claimers promote their own routes as they
claim; this periodic pass keeps the state true for routes no worker serves.

KEYS[1] routes set
KEYS[2] events stream
ARGV[1] key prefix
ARGV[2] most steps to promote per route in this call

Returns {CODE.OK, number promoted}.
Events: STEP_QUEUED.
]]
local limit = tonumber(ARGV[2])
local now = NOW
local promoted = 0
for _, route in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  promoted = promoted + promoteDue(route, now, limit)
end
return {CODE.OK, promoted}
