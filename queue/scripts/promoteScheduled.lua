--[[
promoteScheduled.lua: SCHEDULED -> QUEUED for every route, once a step's
not_before or retry time has come. Claimers promote their own routes as they
claim; this periodic pass keeps the state true for routes no worker serves.

KEYS[1] routes: set of routes
KEYS[2] events: events stream
KEYS[3] eventsExtra: events stream's batch count
KEYS[4] queueDeadlines: queue-timeout deadlines zset
KEYS[5] counts: route counts hash (each route's steps by state, per tenant)
ARGV[1] key prefix
ARGV[2] most steps to promote per route in this call
Derived keys (named by what the script reads, so not declarable up front):
records of jobs it reaches (K.job), their logs (K.log), route ready lists
(K.readyList), ready zsets (K.readyZset), tenant rotations (K.fair), delayed
zsets (K.delayed), wake-up markers (K.wake). Like the KEYS they start with
the queue's prefix `stepq:{<queue>}:`, whose hash tag puts them in KEYS[1]'s
slot. (queue/script-keys.ts declares all of this once.)

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
