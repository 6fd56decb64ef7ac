--[[
limits.lua: the queue's size caps, and failing a step that goes past one.
Included in the library after finishing.lua.

The caps live in the K.limits hash (fields `output`, `job`, `operation`,
bytes; `running`, each tenant's running-steps quota; `quotas`, 1 once some
tenant has its own quota values), which servers set from their flags (queue.publishLimits); a field
that is absent means the default of queue/limits.ts (DEFAULT_LIMIT, generated).
They are enforced here, where the bytes are stored, so no worker (whatever
its version or configuration) can store more:
- output: one attempt's output in the job's log (writeOutput), and its result;
- job: the job's stored record once a result is added.
]]

local LIMITS, LIMITS_CALL = nil, -1

-- The caps, read at most once per call.
local function limits()
  if LIMITS_CALL ~= CALL then
    local v = redis.call('HMGET', K.limits, 'output', 'job', 'operation', 'running', 'quotas')
    LIMITS = {
      output = tonumber(v[1]) or DEFAULT_LIMIT.output,
      job = tonumber(v[2]) or DEFAULT_LIMIT.job,
      operation = tonumber(v[3]) or DEFAULT_LIMIT.operation,
      -- Most running steps per tenant (0: no quota), enforced by claims.
      running = tonumber(v[4]) or 0,
      -- Whether some tenant was given its own quota values (K.quotas).
      quotas = v[5] == '1',
    }
    LIMITS_CALL = CALL
  end
  return LIMITS
end

-- Whether any tenant has its own quota values (K.quotas): the flag
-- queue/tenant-quotas.ts sets with them, read with the caps. Without any,
-- the quotas cost nothing more.
local function tenantQuotasSet()
  return limits().quotas
end

-- Tenant tn's quota `name` (waiting, running or rate): its own value when
-- it has one, else `default`; 0 means no quota.
local function quotaOf(tn, name, default)
  if not tenantQuotasSet() then return default end
  local v = redis.call('HGET', K.quotas, name .. ':' .. tn)
  if v then return tonumber(v) end
  return default
end

-- Tenant tn's running-steps quota (0: none), which claims enforce.
local function runningQuota(tn)
  return quotaOf(tn, 'running', limits().running)
end

-- RUNNING -> FAILED (dead letter) for step idx, whose attempt `attempt`
-- (lease checked by the caller) produced more than a cap allows: not
-- retried, since another attempt would produce as much. The job's failure
-- policy applies as for any failure. Saves the job.
local function failTooLarge(jobId, job, idx, attempt, message, now)
  local s = job.s[idx]
  local err = newError(EC.OUTPUT_TOO_LARGE, message, attempt, s.wk, now, false)
  stopStep(jobId, job, idx, S.FAILED, err, now, false)
  afterStepFinal(jobId, job, idx, now)
  saveJob(jobId, job)
end

-- The message for output past the cap.
local function outputTooLarge(bytes)
  return string.format('the output of this attempt reached %d bytes, over the queue\'s max-output-bytes of %d; ' ..
    'nothing past the limit was stored', bytes, limits().output)
end

-- Fails step idx of jobId for output past the cap, after a lease check
-- that found the lease in the leases zset (appendOutput reads no record).
-- Returns the code for the caller's reply.
local function failOutputTooLarge(jobId, idx, attempt, bytes, now)
  local job = loadJob(jobId)
  local code = checkLease(job, jobId, idx, attempt, now)
  if code ~= CODE.OK then return code end
  failTooLarge(jobId, job, idx, attempt, outputTooLarge(bytes), now)
  return CODE.OUTPUT_TOO_LARGE
end
