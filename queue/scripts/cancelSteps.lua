--[[
cancelSteps.lua: WAITING / QUEUED / SCHEDULED / RUNNING -> CANCELLED, for one
step or for every unfinished step of a job. Running steps lose their lease
and their workers are told on the cancel channel. Dependants of a cancelled
step are cancelled too. Cancelling something already cancelled succeeds.

KEYS[1] job: the job's record
KEYS[2] leases: leases zset
KEYS[3] events: events stream
KEYS[4] eventsExtra: events stream's batch count
KEYS[5] dead: dead-letter zset
KEYS[6] retentions: set of retention times
KEYS[7] queueDeadlines: queue-timeout deadlines zset
KEYS[8] load: tenant load hash (each tenant's unfinished and running steps)
KEYS[9] counts: route counts hash (each route's steps by state, per tenant)
ARGV[1] key prefix
ARGV[2] job id
ARGV[3] step index, 0-based, or '' for the whole job
ARGV[4] reason
Derived keys (named by what the script reads, so not declarable up front):
records of jobs it reaches (K.job), their logs (K.log), their output
sequences (K.outputSeq), expiry lists (K.expiries), route ready lists
(K.readyList), ready zsets (K.readyZset), tenant rotations (K.fair), delayed
zsets (K.delayed), wake-up markers (K.wake). Like the KEYS they start with
the queue's prefix `stepq:{<queue>}:`, whose hash tag puts them in KEYS[1]'s
slot. (queue/script-keys.ts declares all of this once.)

Returns {CODE.OK, job state} or {CODE.JOB_NOT_FOUND | STEP_NOT_FOUND}, or
{CODE.WRONG_STATE, state} when the step (or job) already succeeded or
failed.
Events: STEP_CANCELLED per step, STEP_QUEUED never, JOB_CANCELLED.
]]
local jobId = ARGV[2]
local reason = ARGV[4]
local now = NOW

local job = loadJob(jobId)
if not job then return {CODE.JOB_NOT_FOUND} end

if ARGV[3] == '' then
  if job.st == JS.CANCELLED then return {CODE.OK, job.st} end
  if isJobFinal(job.st) then return {CODE.WRONG_STATE, job.st} end
  job.cx = 1
  for j, s in ipairs(job.s) do
    if not isFinal(s.st) then
      stopStep(jobId, job, j, S.CANCELLED, newError(EC.CANCELLED, reason, s.a, s.wk, now, false), now, true)
    end
  end
  syncJob(jobId, job, now)
else
  local idx = tonumber(ARGV[3]) + 1
  local s = job.s[idx]
  if not s then return {CODE.STEP_NOT_FOUND} end
  if s.st == S.CANCELLED then return {CODE.OK, job.st} end
  if isFinal(s.st) then return {CODE.WRONG_STATE, s.st} end
  stopStep(jobId, job, idx, S.CANCELLED, newError(EC.CANCELLED, reason, s.a, s.wk, now, false), now, true)
  afterStepFinal(jobId, job, idx, now)
end
saveJob(jobId, job)
return {CODE.OK, job.st}
