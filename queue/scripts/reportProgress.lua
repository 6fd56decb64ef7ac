--[[
reportProgress.lua: RUNNING -> RUNNING. Records a worker's progress estimate
and one-line message, fenced by the lease.

KEYS[1] job: the job's record
KEYS[2] leases: leases zset
KEYS[3] events: events stream
KEYS[4] eventsExtra: events stream's batch count
ARGV[1] key prefix
ARGV[2] job id
ARGV[3] step index, 0-based
ARGV[4] attempt (the fencing token of the claim)
ARGV[5] progress in [0, 1]
ARGV[6] message ('' keeps the previous one)
Derived keys (named by what the script reads, so not declarable up front):
their logs (K.log). Like the KEYS they start with the queue's prefix
`stepq:{<queue>}:`, whose hash tag puts them in KEYS[1]'s slot.
(queue/script-keys.ts declares all of this once.)

Returns {CODE.OK} or {CODE.JOB_NOT_FOUND | STEP_NOT_FOUND | LEASE_LOST}.
Events: STEP_PROGRESS.
]]
local jobId = ARGV[2]
local idx = tonumber(ARGV[3]) + 1
local attempt = tonumber(ARGV[4])
local now = NOW

local job = loadJob(jobId)
local code = checkLease(job, jobId, idx, attempt, now)
if code ~= CODE.OK then return {code} end

local s = job.s[idx]
s.pg = tonumber(ARGV[5])
if ARGV[6] ~= '' then s.pm = ARGV[6] end
emit(jobId, job, idx, EV.STEP_PROGRESS, {'p', ARGV[5], 'm', s.pm or '', 'w', s.wk})
saveJob(jobId, job)
return {CODE.OK}
