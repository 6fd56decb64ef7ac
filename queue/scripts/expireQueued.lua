--[[
expireQueued.lua: QUEUED -> FAILED for steps that waited past their
queue_timeout_ms (for example because no worker serves their route). Run
periodically by every process; the claimer also checks the deadline when it
pops a step.

KEYS[1] queueDeadlines: queue-timeout deadlines zset
KEYS[2] events: events stream
KEYS[3] eventsExtra: events stream's batch count
KEYS[4] leases: leases zset
KEYS[5] dead: dead-letter zset
KEYS[6] retentions: set of retention times
KEYS[7] load: tenant load hash (each tenant's unfinished and running steps)
KEYS[8] counts: route counts hash (each route's steps by state, per tenant)
ARGV[1] key prefix
ARGV[2] most steps to expire in this call
Derived keys (named by what the script reads, so not declarable up front):
records of jobs it reaches (K.job), their logs (K.log), their output
sequences (K.outputSeq), expiry lists (K.expiries), route ready lists
(K.readyList), ready zsets (K.readyZset), tenant rotations (K.fair), delayed
zsets (K.delayed), wake-up markers (K.wake). Like the KEYS they start with
the queue's prefix `stepq:{<queue>}:`, whose hash tag puts them in KEYS[1]'s
slot. Also throughput buckets (K.throughput).
(queue/script-keys.ts declares all of this once.)

Returns {CODE.OK, number expired}.
Events: STEP_FAILED and what follows from it (dependants cancelled,
JOB_FAILED).
]]
local deadlinesKey = KEYS[1]
local limit = tonumber(ARGV[2])
local now = NOW
local due = redis.call('ZRANGEBYSCORE', deadlinesKey, '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(due) do
  redis.call('ZREM', deadlinesKey, id)
  local jobId, idx = parseStepId(id)
  local job = jobId and loadJob(jobId)
  local s = job and job.s[idx]
  if s and s.st == S.QUEUED then
    local why = 'no worker started it within queue_timeout_ms=' .. s.qt
    stopStep(jobId, job, idx, S.FAILED, newError(EC.QUEUE_TIMEOUT, why, s.a, '', now, false), now, false)
    afterStepFinal(jobId, job, idx, now)
    saveJob(jobId, job)
  end
end
return {CODE.OK, #due}
