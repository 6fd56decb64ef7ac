--[[
openLog.lua: creates a job's log before its first transition, so a client
can follow a job that is still queued. Idempotent; the job's state does not
change.

KEYS[1] the job's record
ARGV[1] key prefix
ARGV[2] job id

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
