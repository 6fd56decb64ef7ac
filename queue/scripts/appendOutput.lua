--[[
appendOutput.lua: RUNNING -> RUNNING, for a batch of running steps. Appends
workers' buffered tokens and narration to their jobs' logs, each fenced by
its own lease (no other state changes, so it reads only the lease, and a
job's record only to create its log on the job's first output). Idempotent
per output sequence number (see writeOutput). One call carries the output
of many steps (queue/leases.ts gathers them), so a worker streaming a
hundred steps costs Redis one script run per round, not a hundred.

KEYS[1] leases: leases zset
KEYS[2] limits: size caps hash
KEYS[3] events: events stream
KEYS[4] eventsExtra: events stream's batch count
KEYS[5] dead: dead-letter zset
KEYS[6] retentions: set of retention times
KEYS[7] queueDeadlines: queue-timeout deadlines zset
KEYS[8] load: tenant load hash (each tenant's unfinished and running steps)
KEYS[9] counts: route counts hash (each route's steps by state, per tenant)
ARGV[1] key prefix
ARGV[2] the appends, back to back (APPEND in wire/layouts.ts): job id (B length
        + bytes), 0-based step index (H), attempt, the fencing token of the
        claim (I4), sequence number of the first entry within the attempt's
        output (I4), output (I4 + bytes, msgpack, see writeOutput)
Derived keys (named by what the script reads, so not declarable up front):
records of jobs it reaches (K.job), their logs (K.log), their output
sequences (K.outputSeq), expiry lists (K.expiries), route ready lists
(K.readyList), ready zsets (K.readyZset), tenant rotations (K.fair), delayed
zsets (K.delayed), wake-up markers (K.wake). Like the KEYS they start with
the queue's prefix `stepq:{<queue>}:`, whose hash tag puts them in KEYS[1]'s
slot. Also throughput buckets (K.throughput).
(queue/script-keys.ts declares all of this once.)

Returns {CODE.OK, one byte per append: CODE.OK, CODE.LEASE_LOST,
CODE.CANCELLED (the lease ended because the step was cancelled),
CODE.OUTPUT_TOO_LARGE (the append would take the attempt's output past
max-output-bytes: nothing of it was written and the step failed) or
CODE.JOB_NOT_FOUND}.
Events: none (the entries are the output itself), but STEP_FAILED and what
the job's failure policy brings when output goes past the cap.
]]
local leasesKey = KEYS[1]
local blob = ARGV[2]
local codes = {}
local logged = {}
local pos = 1
while pos <= #blob do
  local jobId, idx, attempt, firstSeq, packed
  jobId, idx, attempt, firstSeq, packed, pos = struct.unpack(APPEND, blob, pos)
  idx = idx + 1
  local code = CODE.OK
  local deadline = redis.call('ZSCORE', leasesKey, leaseMember(jobId, idx, attempt))
  if not deadline or tonumber(deadline) < NOW then
    code = lostLeaseCode(jobId, idx, attempt)
  elseif not logged[jobId] and redis.call('EXISTS', K.log(jobId)) == 0 then
    -- First output of the job: create its log (from the record's history).
    local job = loadJob(jobId)
    if job then
      ensureLog(jobId, job)
      saveJob(jobId, job)
    else
      code = CODE.JOB_NOT_FOUND
    end
  end
  if code == CODE.OK then
    logged[jobId] = true
    local written, bytes = writeOutput(jobId, idx, attempt, firstSeq, packed, limits().output)
    if written < 0 then code = failOutputTooLarge(jobId, idx, attempt, bytes, NOW) end
  end
  codes[#codes + 1] = string.char(code)
end
return {CODE.OK, table.concat(codes)}
