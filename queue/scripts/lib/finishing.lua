--[[
finishing.lua: steps reaching final states, and what follows for their job:
dependants released or cancelled, the job's state derived and its final
event emitted; and the lease check every worker write starts with.
Included after queueing.lua.
]]

local function newError(code, message, attempt, worker, now, retryable)
  return {c = code, m = message, a = attempt, w = worker or '', t = now, r = retryable and true or false}
end

-- Moves step idx to FAILED or CANCELLED. A running step loses its lease and
-- its worker is told over the cancel channel (unless the worker itself is
-- the one reporting, notify == false).
local function stopStep(jobId, job, idx, state, err, now, notify)
  local s = job.s[idx]
  local tn = job.tn or 0
  if s.st == S.RUNNING then
    if state == S.FAILED then addTotal('f', s.r) end
    local member = leaseMember(jobId, idx, s.a)
    endLease(member, tn)
    if notify then redis.call('PUBLISH', K.cancelChannel, member) end
  else
    unqueue(jobId, job, idx)
  end
  if not isFinal(s.st) then addLoad(tn, 'u', -1) end
  setState(s, tn, state)
  s.f = now
  s.nb = nil
  s.ld = nil
  addError(s, err)
  local etype = EV.STEP_CANCELLED
  if state == S.FAILED then
    etype = EV.STEP_FAILED
    redis.call('ZADD', K.dead, now, stepIdOf(jobId, idx))
    addCount('d', tn, s.r, 1)
    addFinished('f', tn, s.r, now)
  end
  -- fc: the log cursor of the step's final event, so followers know which
  -- final event is the last one (a dead-lettered step can be retried).
  s.fc = emit(jobId, job, idx, etype, extend(errorFields(err), {'w', err.w}))
end

-- Derives the job's state from its steps; on a change to a final state,
-- stamps it, schedules its expiry and emits the job's final event.
local function syncJob(jobId, job, now)
  local total, final, succeeded, failed, started = #job.s, 0, 0, 0, false
  for _, s in ipairs(job.s) do
    if isFinal(s.st) then final = final + 1 end
    if s.st == S.SUCCEEDED then succeeded = succeeded + 1 end
    if s.st == S.FAILED then failed = failed + 1 end
    if s.a > 0 or isFinal(s.st) then started = true end
  end
  local state = JS.QUEUED
  if final == total then
    if succeeded == total then state = JS.SUCCEEDED
    elseif job.cx then state = JS.CANCELLED
    elseif failed > 0 then state = JS.FAILED
    else state = JS.CANCELLED end
  elseif started then
    state = JS.RUNNING
  end
  if state == job.st then return end
  job.st = state
  if state == JS.RUNNING and not job.sa then job.sa = now end
  if isJobFinal(state) then
    job.f = now
    job.x = now + job.rt
    pushExpiry(job.rt, job.x, jobId)
    local etype = EV.JOB_CANCELLED
    if state == JS.SUCCEEDED then etype = EV.JOB_SUCCEEDED elseif state == JS.FAILED then etype = EV.JOB_FAILED end
    job.fc = emit(jobId, job, nil, etype, nil)
  end
end

-- After step idx reached a final state: release its dependants (success),
-- or cancel what can no longer run (failure, cancellation), then update the
-- job. Fail-fast jobs cancel every unfinished step when a step FAILS.
local function afterStepFinal(jobId, job, idx, now)
  local s = job.s[idx]
  if s.st == S.SUCCEEDED then
    for j, o in ipairs(job.s) do
      if o.st == S.WAITING then
        for _, d in ipairs(o.d or NONE) do
          if d == idx then o.w = o.w - 1 end
        end
        if o.w <= 0 then
          enqueue(jobId, job, j, now, false)
          emit(jobId, job, j, EV.STEP_QUEUED, {'m', 'dependencies succeeded'})
        end
      end
    end
  elseif s.st == S.FAILED and job.fp ~= POLICY.CONTINUE then
    local why = "step '" .. s.n .. "' failed and the job fails fast"
    for j, o in ipairs(job.s) do
      if not isFinal(o.st) then
        local err = newError(EC.CANCELLED, why, o.a, o.wk, now, false)
        err.by = idx -- the cause, so a retry of step idx can bring this one back
        stopStep(jobId, job, j, S.CANCELLED, err, now, true)
      end
    end
  else
    -- Dependants, transitively, can never run.
    local changed = true
    while changed do
      changed = false
      for j, o in ipairs(job.s) do
        if not isFinal(o.st) then
          for _, d in ipairs(o.d or NONE) do
            local dep = job.s[d]
            if dep.st == S.FAILED or dep.st == S.CANCELLED then
              local verb = dep.st == S.FAILED and 'failed' or 'was cancelled'
              local why = "dependency '" .. dep.n .. "' " .. verb
              local err = newError(EC.DEPENDENCY_FAILED, why, o.a, o.wk, now, false)
              err.by = d
              stopStep(jobId, job, j, S.CANCELLED, err, now, true)
              changed = true
              break
            end
          end
        end
      end
    end
  end
  syncJob(jobId, job, now)
end

-- Checks that (jobId, idx, attempt) holds a live lease. Returns CODE.OK or
-- the code saying why not. The record keeps the lease's deadline (s.ld),
-- written with the leases zset by every script that sets or renews it.
local function checkLease(job, jobId, idx, attempt, now)
  if not job then return CODE.JOB_NOT_FOUND end
  local s = job.s[idx]
  if not s then return CODE.STEP_NOT_FOUND end
  if s.st == S.CANCELLED and s.a == attempt then return CODE.CANCELLED end
  if s.st ~= S.RUNNING or s.a ~= attempt then return CODE.LEASE_LOST end
  if not s.ld or s.ld < now then return CODE.LEASE_LOST end
  return CODE.OK
end
