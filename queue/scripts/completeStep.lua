--[[
completeStep.lua: RUNNING -> SUCCEEDED, fenced by the lease.
Writes the worker's last buffered output, stores the result, releases the
dependants whose last dependency this was, and finishes the job when
nothing is left to run.

KEYS[1] the job's record
KEYS[2] leases zset
KEYS[3] events stream
ARGV[1] key prefix
ARGV[2] job id
ARGV[3] step index, 0-based
ARGV[4] attempt (the fencing token of the claim)
ARGV[5] result: stepq.v1.StepResult in protobuf binary
ARGV[6] sequence number of the first buffered output entry
ARGV[7] buffered output to write first (msgpack, see writeOutput) or ''

Returns {CODE.OK, job state} or {CODE.JOB_NOT_FOUND | STEP_NOT_FOUND |
LEASE_LOST}.
Events: STEP_SUCCEEDED, STEP_QUEUED (released dependants), JOB_SUCCEEDED.
]]
local leasesKey = KEYS[2]
local jobId = ARGV[2]
local idx = tonumber(ARGV[3]) + 1
local attempt = tonumber(ARGV[4])
local now = nowMs()

local job = loadJob(jobId)
local code = checkLease(job, jobId, idx, attempt, now)
if code ~= CODE.OK then return {code} end

if ARGV[7] ~= '' then ensureLog(jobId, job) end
writeOutput(jobId, idx, attempt, tonumber(ARGV[6]), ARGV[7])
local s = job.s[idx]
redis.call('ZREM', leasesKey, leaseMember(jobId, idx, attempt))
s.st = S.SUCCEEDED
s.f = now
s.pg = 1
s.rs = ARGV[5]
s.fc = emit(jobId, job, idx, EV.STEP_SUCCEEDED, {'w', s.wk})
afterStepFinal(jobId, job, idx, now)
saveJob(jobId, job)
return {CODE.OK, job.st}
