--[[
openLog.lua: creates a job's log before its first transition, so a client
can follow a job that is still queued. Idempotent; the job's state does not
change.

KEYS[1] job: the job's record
ARGV[1] key prefix
ARGV[2] job id
Derived keys (named by what the script reads, so not declarable up front):
their logs (K.log). Like the KEYS they start with the queue's prefix
`stepq:{<queue>}:`, whose hash tag puts them in KEYS[1]'s slot.
(queue/script-keys.ts declares all of this once.)

Returns {CODE.OK} or {CODE.JOB_NOT_FOUND}.
Events: none (the log starts with the job's submit events).
]]
local jobId = ARGV[2]
local job = loadJob(jobId)
if not job then return {CODE.JOB_NOT_FOUND} end
if not job.lg then
  ensureLog(jobId, job)
  saveJob(jobId, job)
end
return {CODE.OK}
