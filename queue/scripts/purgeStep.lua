--[[
purgeStep.lua: FAILED -> FAILED, no longer dead-lettered. Removes a step
from the dead-letter set (an operator has dealt with it). The step stays
readable until its job's retention ends.

KEYS[1] job: the job's record
KEYS[2] dead: dead-letter zset
KEYS[3] counts: route counts hash (each route's steps by state, per tenant)
ARGV[1] key prefix
ARGV[2] job id
ARGV[3] step index, 0-based
It touches no other key. (queue/script-keys.ts declares this once.)

Returns {CODE.OK} or {CODE.JOB_NOT_FOUND | STEP_NOT_FOUND} or
{CODE.WRONG_STATE, step state} when the step is not in the dead-letter set.
Events: none.
]]
local jobId = ARGV[2]
local idx = tonumber(ARGV[3]) + 1
local job = loadJob(jobId)
if not job then return {CODE.JOB_NOT_FOUND} end
local s = job.s[idx]
if not s then return {CODE.STEP_NOT_FOUND} end
if redis.call('ZREM', KEYS[2], stepIdOf(jobId, idx)) == 0 then return {CODE.WRONG_STATE, s.st} end
addCount('d', job.tn or 0, s.r, -1)
return {CODE.OK}
