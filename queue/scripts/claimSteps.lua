--[[
claimSteps.lua: QUEUED -> RUNNING.
Leases up to ARGV[4] steps from the worker's routes, best first (higher
priority, then older job), after promoting the routes' due scheduled steps.
A step whose queue timeout passed while it waited fails instead.

KEYS[1] leases zset
KEYS[2] events stream
ARGV[1] key prefix
ARGV[2] worker id
ARGV[3] lease duration, ms
ARGV[4] most steps to claim (0 only promotes and reports the next due time)
ARGV[5..] the routes the worker serves

Returns {CODE.OK, Redis time, earliest scheduled time of these routes or
-1, number of claimed steps, their CLAIMED records (see claim.lua), the
queue's max-operation-bytes (the worker checks each operation against it
once its references are resolved)}.
Events: STEP_QUEUED (promoted), STEP_CLAIMED, STEP_FAILED and JOB_* (queue
timeout).
]]
local workerId = ARGV[2]
local leaseMs = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local routes = {}
for i = 5, #ARGV do routes[#routes + 1] = ARGV[i] end
local count, claimed, due = claimReady(workerId, leaseMs, want, routes, NOW)
return {CODE.OK, NOW, due or -1, count, claimed, count > 0 and limits().operation or 0}
