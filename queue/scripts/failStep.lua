--[[
failStep.lua: RUNNING -> SCHEDULED (retry after a backoff) or FAILED
(attempts used up, or the error is not retryable), fenced by the lease.
A FAILED step enters the dead-letter set; its job's failure policy then
cancels the rest of the job (fail fast) or only its dependants (continue).

KEYS[1] job: the job's record
KEYS[2] leases: leases zset
KEYS[3] events: events stream
KEYS[4] eventsExtra: events stream's batch count
KEYS[5] dead: dead-letter zset
KEYS[6] retentions: set of retention times
KEYS[7] queueDeadlines: queue-timeout deadlines zset
KEYS[8] limits: size caps hash
KEYS[9] load: tenant load hash (each tenant's unfinished and running steps)
KEYS[10] counts: route counts hash (each route's steps by state, per tenant)
ARGV[1] key prefix
ARGV[2] job id
ARGV[3] step index, 0-based
ARGV[4] attempt (the fencing token of the claim)
ARGV[5] stepq.v1.StepErrorCode number
ARGV[6] error message
ARGV[7] '1' if another attempt may help, '0' if not
ARGV[8] jitter in [0, 1): the backoff is scaled by 0.8 + 0.4 * jitter
ARGV[9] sequence number of the first buffered output entry
ARGV[10] buffered output to write first (msgpack, see writeOutput) or ''
Derived keys (named by what the script reads, so not declarable up front):
records of jobs it reaches (K.job), their logs (K.log), their output
sequences (K.outputSeq), expiry lists (K.expiries), route ready lists
(K.readyList), ready zsets (K.readyZset), tenant rotations (K.fair), delayed
zsets (K.delayed), wake-up markers (K.wake). Like the KEYS they start with
the queue's prefix `stepq:{<queue>}:`, whose hash tag puts them in KEYS[1]'s
slot. Also throughput buckets (K.throughput).
(queue/script-keys.ts declares all of this once.)

Output that would take the attempt past max-output-bytes is not written,
and the step is FAILED with OUTPUT_TOO_LARGE instead of the worker's error.

Returns {CODE.OK, step state, retry due time or 0} or {CODE.JOB_NOT_FOUND |
STEP_NOT_FOUND | LEASE_LOST}.
Events: STEP_RETRYING, or STEP_FAILED then STEP_CANCELLED for the steps it
takes down and JOB_FAILED.
]]
local PREFER_OTHER_MS = 10000
local jobId = ARGV[2]
local idx = tonumber(ARGV[3]) + 1
local attempt = tonumber(ARGV[4])
local errCode = tonumber(ARGV[5])
local message = ARGV[6]
local retryable = ARGV[7] == '1'
local jitter = tonumber(ARGV[8])
local now = NOW

local job = loadJob(jobId)
local code = checkLease(job, jobId, idx, attempt, now)
if code ~= CODE.OK then return {code} end

if ARGV[10] ~= '' then ensureLog(jobId, job) end
local written, bytes = writeOutput(jobId, idx, attempt, tonumber(ARGV[9]), ARGV[10], limits().output)
if written < 0 then
  -- The attempt's last output goes past the cap: that, not the worker's
  -- error, is why the step ends (and another attempt would not help).
  failTooLarge(jobId, job, idx, attempt, outputTooLarge(bytes), now)
  return {CODE.OK, S.FAILED, 0}
end
local s = job.s[idx]
local err = newError(errCode, message, attempt, s.wk, now, retryable)
local used = attemptsUsed(s)
if retryable and used < s.ma then
  endLease(leaseMember(jobId, idx, attempt), job.tn or 0)
  addError(s, err)
  local delay = math.min(s.bi * math.pow(2, used - 1), s.bm) * (0.8 + 0.4 * jitter)
  -- A backoff under a millisecond queues the step at once (enqueue clears s.nb).
  local retryAt = now + math.floor(delay)
  s.nb = retryAt
  -- The next attempt prefers another worker claiming from this route, if
  -- one does, for PREFER_OTHER_MS after it is due (claim.lua).
  s.av, s.avu = s.wk, retryAt + PREFER_OTHER_MS
  enqueue(jobId, job, idx, now, false)
  emit(jobId, job, idx, EV.STEP_RETRYING, extend(errorFields(err), {'w', s.wk, 'm', 'retry at ' .. int(retryAt)}))
  narrate(jobId, job, idx, attempt, LEVEL.WARN, string.format('attempt %d of %d failed: %s; retrying in %.1f s',
    used, s.ma, message, delay / 1000))
  saveJob(jobId, job)
  return {CODE.OK, s.st, retryAt}
end

stopStep(jobId, job, idx, S.FAILED, err, now, false)
afterStepFinal(jobId, job, idx, now)
saveJob(jobId, job)
return {CODE.OK, S.FAILED, 0}
