--[[
recoverLeases.lua: RUNNING -> QUEUED (attempts left) or FAILED (used up),
for steps whose lease expired: their worker crashed, hung, or lost Redis.
Every server and worker process runs this periodically, so recovery needs no
special process; the script is atomic, so two processes cannot recover the
same lease twice.

KEYS[1] leases: leases zset
KEYS[2] events: events stream
KEYS[3] eventsExtra: events stream's batch count
KEYS[4] dead: dead-letter zset
KEYS[5] retentions: set of retention times
KEYS[6] queueDeadlines: queue-timeout deadlines zset
KEYS[7] load: tenant load hash (each tenant's unfinished and running steps)
KEYS[8] counts: route counts hash (each route's steps by state, per tenant)
ARGV[1] key prefix
ARGV[2] most leases to recover in this call
Derived keys (named by what the script reads, so not declarable up front):
records of jobs it reaches (K.job), their logs (K.log), their output
sequences (K.outputSeq), expiry lists (K.expiries), route ready lists
(K.readyList), ready zsets (K.readyZset), tenant rotations (K.fair), delayed
zsets (K.delayed), wake-up markers (K.wake). Like the KEYS they start with
the queue's prefix `stepq:{<queue>}:`, whose hash tag puts them in KEYS[1]'s
slot. Also throughput buckets (K.throughput).
(queue/script-keys.ts declares all of this once.)

Returns {CODE.OK, number recovered}.
Events: STEP_RETRYING (requeued at once, the attempt counted), or
STEP_FAILED and what follows from it.
]]
local leasesKey = KEYS[1]
local limit = tonumber(ARGV[2])
local now = NOW
local expired = redis.call('ZRANGEBYSCORE', leasesKey, '-inf', '(' .. now, 'LIMIT', 0, limit)
for _, member in ipairs(expired) do
  local jobId, idx, attempt = parseLeaseMember(member)
  local job = jobId and loadJob(jobId)
  endLease(member, job and (job.tn or 0))
  local s = job and job.s[idx]
  if s and s.st == S.RUNNING and s.a == attempt then
    local err
    if s.to and s.to > 0 and s.sa and now >= s.sa + s.to then
      err = newError(EC.TIMEOUT, 'attempt ran past timeout_ms=' .. s.to .. ' and its worker stopped renewing the lease',
        attempt, s.wk, now, true)
    else
      err = newError(EC.LEASE_EXPIRED, 'worker ' .. (s.wk or '?') .. ' stopped renewing its lease', attempt, s.wk, now, true)
      addTotal('e', s.r)
    end
    if attemptsUsed(s) < s.ma then
      addError(s, err)
      enqueue(jobId, job, idx, now, false)
      emit(jobId, job, idx, EV.STEP_RETRYING, extend(errorFields(err), {'w', s.wk, 'm', 'requeued after lease expiry'}))
      narrate(jobId, job, idx, attempt, LEVEL.WARN, err.m .. '; step requeued')
    else
      stopStep(jobId, job, idx, S.FAILED, err, now, false)
      afterStepFinal(jobId, job, idx, now)
    end
    saveJob(jobId, job)
  end
end
return {CODE.OK, #expired}
