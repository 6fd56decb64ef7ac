--[[
appendOutput.lua: RUNNING -> RUNNING. Appends a worker's buffered tokens and
narration to the job's log, fenced by the lease (no other state changes, so
it reads only the lease, and the job record only to create the log on the
job's first output). Idempotent per output sequence
number (see writeOutput).

KEYS[1] leases zset
KEYS[2] the job's log stream
KEYS[3] the job's output sequence hash
ARGV[1] key prefix
ARGV[2] job id
ARGV[3] step index, 0-based
ARGV[4] attempt (the fencing token of the claim)
ARGV[5] sequence number of the first entry within the attempt's output
ARGV[6] output (msgpack, see writeOutput)

Returns {CODE.OK, entries written} or {CODE.LEASE_LOST | JOB_NOT_FOUND}.
Events: none (the entries are the output itself).
]]
local leasesKey = KEYS[1]
local jobId = ARGV[2]
local idx = tonumber(ARGV[3]) + 1
local attempt = tonumber(ARGV[4])

local deadline = redis.call('ZSCORE', leasesKey, leaseMember(jobId, idx, attempt))
if not deadline or tonumber(deadline) < NOW then return {CODE.LEASE_LOST} end
if redis.call('EXISTS', KEYS[2]) == 0 then
  -- First output of the job: create its log (from the record's history).
  local job = loadJob(jobId)
  if not job then return {CODE.JOB_NOT_FOUND} end
  ensureLog(jobId, job)
  saveJob(jobId, job)
end
return {CODE.OK, writeOutput(jobId, idx, attempt, tonumber(ARGV[5]), ARGV[6])}
