--[[
prelude.lua: helpers shared by every stepq transition.

queue/function-library.ts builds one Redis Functions library: the generated key
helpers (`P`, `K.*`, `usePrefix`), the generated constants (S step states,
JS job states, EV event types, EC step error codes, CODE result codes,
POLICY failure policies, LEVEL narration levels), this file, then each
transition wrapped as `local function <name>(KEYS, ARGV)` that first calls
begin(ARGV[1]). Nothing here runs by itself.

Conventions:
- Times are Unix milliseconds from Redis's clock (TIME, read once per call
  into NOW), so workers whose clocks disagree still agree on lease deadlines.
- A job is one record at K.job(id), read and written by record.lua
  (loadJob / saveJob; fields in queue/job-record.ts).
  Step indexes are 1-based in Lua and 0-based in step ids.
- s.q says where a step's id currently sits: 'l' ready list, 'z' ready zset,
  'd' delayed zset, nil nowhere. Every transition keeps it true.
- Every change of state emits an event to K.events and, once the job's log
  exists, to the log.
]]

local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Redis's time at the start of the current call, read once by begin().
local NOW = 0
-- Counts calls, so values cached for one call (limits.lua) are not reused by the next.
local CALL = 0

-- Called first by every transition: selects the queue's keys, reads the clock.
local function begin(prefix)
  usePrefix(prefix)
  NOW = nowMs()
  CALL = CALL + 1
  resetWrites(nil)
end

-- Integers as decimal strings without exponent (tostring gives 1e+15 forms).
local function int(n)
  return string.format('%.0f', n)
end

local function stepIdOf(jobId, idx)
  return jobId .. '.' .. (idx - 1)
end

local function leaseMember(jobId, idx, attempt)
  return jobId .. (LEASE_SEP[idx] or ('.' .. (idx - 1) .. '|')) .. NUM(attempt)
end

-- "<jobId>.<n>" -> jobId, 1-based index
-- A bare job id stands for its first step (ready lists hold one-step jobs
-- that way).
local function parseStepId(stepId)
  local jobId, n = string.match(stepId, '^([0-9a-z]+)%.(%d+)$')
  if jobId then return jobId, tonumber(n) + 1 end
  if string.match(stepId, '^[0-9a-z]+$') then return stepId, 1 end
  return nil, nil
end

-- "<jobId>.<n>|<attempt>" -> jobId, 1-based index, attempt
local function parseLeaseMember(member)
  local stepId, attempt = string.match(member, '^(.+)|(%d+)$')
  if not stepId then return nil, nil, nil end
  local jobId, idx = parseStepId(stepId)
  return jobId, idx, tonumber(attempt)
end

-- The first 8 characters of a job id are its sequence number in base 36.
local function seqOfJobId(jobId)
  return tonumber(string.sub(jobId, 1, 8), 36)
end

-- Order in a ready zset: higher priority first, then older job first.
-- (1000 - priority) is at most 2000 < 2^11, seq < 2^42: exact in a double.
local function readyScore(priority, seq)
  return (1000 - priority) * 4398046511104 + seq
end

-- Shared empty list for fields left out of records.
local NONE = {}

-- Appends err to the step's error list (created on the first error).
local function addError(s, err)
  s.e = s.e or {}
  s.e[#s.e + 1] = err
end

-- Attempts that count against max_attempts (released ones do not).
local function attemptsUsed(s)
  return s.a - (s.rl or 0)
end

local function isFinal(state)
  return state == S.SUCCEEDED or state == S.FAILED or state == S.CANCELLED
end

local function isJobFinal(state)
  return state == JS.SUCCEEDED or state == JS.FAILED or state == JS.CANCELLED
end

-- Appends `fields` (a flat name/value list) to a Lua list.
local function extend(list, fields)
  if fields then
    for _, v in ipairs(fields) do list[#list + 1] = v end
  end
  return list
end

local function errorFields(err)
  if not err then return nil end
  return {'ec', err.c, 'em', err.m, 'er', err.r and 1 or 0}
end

-- The fields of a lifecycle event, as written to the events stream and logs
-- (one table: events are on every hot path).
local function eventFields(jobId, job, idx, etype, attempt, stepState, jobState, extra)
  local f
  if idx then
    local s = job.s[idx]
    f = {'t', NUM(etype), 'j', jobId, 's', NUM(idx - 1), 'n', s.n, 'r', s.r, 'a', NUM(attempt), 'st', NUM(stepState),
      'js', NUM(jobState)}
  else
    f = {'t', NUM(etype), 'j', jobId, 'js', NUM(jobState)}
  end
  if job.tn and job.tn ~= 0 then
    f[#f + 1], f[#f + 2] = 'tn', NUM(job.tn)
  end
  if extra then
    local n = #f
    for i = 1, #extra do f[n + i] = extra[i] end
  end
  return f
end

local FINAL_STEP_EVENT = {[EV.STEP_SUCCEEDED] = true, [EV.STEP_FAILED] = true, [EV.STEP_CANCELLED] = true}
local FINAL_JOB_EVENT = {[EV.JOB_SUCCEEDED] = true, [EV.JOB_FAILED] = true, [EV.JOB_CANCELLED] = true}

-- Records a lifecycle event of the job (idx nil) or of step idx. Returns the
-- id of its entry in the job's log, or nil when the job has no log yet: then
-- the event is kept in the record's history (job.h, a few bytes) instead of
-- a log stream (~4 KB), and ensureLog writes it out when the log is needed.
local function emit(jobId, job, idx, etype, extra)
  flushWrites()
  local s = idx and job.s[idx]
  local attempt, state = s and s.a or 0, s and s.st or 0
  local f = eventFields(jobId, job, idx, etype, attempt, state, job.st, extra)
  -- Capped by the sweeper (XTRIM once a second), not on every append.
  redis.call('XADD', K.events, '*', unpack(f))
  if job.lg then
    return redis.call('XADD', K.log(jobId), '*', 'k', 'e', unpack(f))
  end
  -- Progress is not history: the record keeps the latest value, and a step
  -- reporting often would otherwise grow its record without bound.
  if etype == EV.STEP_PROGRESS then return nil end
  job.h = job.h or {}
  job.h[#job.h + 1] = {etype, idx or 0, attempt, state, job.st, NOW, extra}
  return nil
end

-- The state a step had when its job was submitted.
local function initialState(job, s)
  if s.d then return S.WAITING end
  if job.nb then return S.SCHEDULED end
  return S.QUEUED
end

-- Creates the job's log on first use: its submit events, then the history
-- kept in the record, with fixed ids 0-1, 0-2, ... (so cursors into them are
-- stable), each with its original time. Later entries get time-based ids.
local function ensureLog(jobId, job)
  if job.lg then return end
  job.lg = 1
  local log = K.log(jobId)
  redis.call('XADD', log, '0-1', 'k', 'e', 't', EV.JOB_SUBMITTED, 'j', jobId, 'js', JS.QUEUED, 'ts', int(job.c))
  for i, s in ipairs(job.s) do
    redis.call('XADD', log, '0-' .. (i + 1), 'k', 'e', 't', EV.STEP_SUBMITTED, 'j', jobId, 's', i - 1,
      'n', s.n, 'r', s.r, 'a', 0, 'st', initialState(job, s), 'js', JS.QUEUED, 'ts', int(job.c))
  end
  local seq = #job.s + 1
  for _, h in ipairs(job.h or {}) do
    seq = seq + 1
    local id = '0-' .. seq
    if h[1] == 'n' then
      redis.call('XADD', log, id, 'k', 'n', 's', h[2] - 1, 'a', h[3], 'l', h[4], 'x', h[5], 'ts', int(h[6]))
    else
      local idx = h[2] > 0 and h[2] or nil
      local f = eventFields(jobId, job, idx, h[1], h[3], h[4], h[5], h[7])
      redis.call('XADD', log, id, 'k', 'e', 'ts', int(h[6]), unpack(f))
      if FINAL_STEP_EVENT[h[1]] then job.s[idx].fc = id elseif FINAL_JOB_EVENT[h[1]] then job.fc = id end
    end
  end
  job.h = nil
end

-- Appends a narration line to the job's log, or to its history while it has no log.
local function narrate(jobId, job, idx, attempt, level, text)
  if job.lg then
    redis.call('XADD', K.log(jobId), '*', 'k', 'n', 's', idx - 1, 'a', attempt, 'l', level, 'x', text)
  else
    job.h = job.h or {}
    job.h[#job.h + 1] = {'n', idx, attempt, level, text, NOW}
  end
end

-- Writes a worker's buffered output (msgpack list of {k='t', i=first index,
-- x=JSON array of texts} and {k='n', l=level, x=text}) to the job's log,
-- which the caller has made sure exists (ensureLog).
-- `firstSeq` numbers the first entry within the attempt's output; entries
-- already written (a retry after a lost reply) are skipped, so a worker can
-- resend output whose fate it does not know without duplicating it.
-- The output sequence hash keeps `<attempt>:<next seq>:<bytes written>` per
-- step; output that would take an attempt past `maxBytes` (its texts as
-- stored) is not written at all: returns -1 and the bytes it would have
-- made, and the caller fails the step (failTooLarge). Else returns the
-- number of entries written.
local function writeOutput(jobId, idx, attempt, firstSeq, packed, maxBytes)
  if not packed or packed == '' then return 0 end
  local entries = cmsgpack.unpack(packed)
  local seqKey = K.outputSeq(jobId)
  local field = tostring(idx - 1)
  local next, bytes = 0, 0
  local stored = redis.call('HGET', seqKey, field)
  if stored then
    local a, n, b = string.match(stored, '^(%d+):(%d+):?(%d*)$')
    if tonumber(a) == attempt then next, bytes = tonumber(n), tonumber(b) or 0 end
  end
  for i, e in ipairs(entries) do
    if firstSeq + i - 1 >= next then bytes = bytes + #e.x end
  end
  if bytes > maxBytes then return -1, bytes end
  local log = K.log(jobId)
  local written = 0
  for i, e in ipairs(entries) do
    if firstSeq + i - 1 >= next then
      if e.k == 't' then
        redis.call('XADD', log, '*', 'k', 't', 's', idx - 1, 'a', attempt, 'i', e.i, 'x', e.x)
      else
        redis.call('XADD', log, '*', 'k', 'n', 's', idx - 1, 'a', attempt, 'l', e.l, 'x', e.x)
      end
      written = written + 1
    end
  end
  local after = firstSeq + #entries
  if after > next then redis.call('HSET', seqKey, field, attempt .. ':' .. after .. ':' .. bytes) end
  return written
end

-- Wakes one idle worker of the route (a marker that BLPOP returns).
local function wake(route)
  local key = K.wake(route)
  if redis.call('LLEN', key) == 0 then
    redis.call('RPUSH', key, '1')
  end
end

-- Makes step idx ready: delayed while its not-before time is in the future,
-- otherwise queued. Fresh default-priority steps go to the route's list
-- (cheap, and in submission order); every other ready step goes to the
-- route's zset, ordered by priority then job age.
local function enqueue(jobId, job, idx, now, fresh)
  local s = job.s[idx]
  local id = stepIdOf(jobId, idx)
  if s.nb and s.nb > now then
    s.st = S.SCHEDULED
    s.q = 'd'
    redis.call('ZADD', K.delayed(s.r), s.nb, id)
  else
    s.nb = nil
    s.st = S.QUEUED
    if s.q == 'l' then
      -- Still has an entry in the list (it was never popped): reuse it.
    elseif fresh and not job.p then
      s.q = 'l'
      redis.call('RPUSH', K.readyList(s.r), id)
    else
      s.q = 'z'
      redis.call('ZADD', K.readyZset(s.r), int(readyScore(job.p or 0, job.sq)), id)
    end
    if s.qt then
      s.rdy = now
      redis.call('ZADD', K.queueDeadlines, now + s.qt, id)
    end
  end
  wake(s.r)
end

-- Takes a waiting step out of the ready and delayed structures. List
-- entries stay behind: the claimer drops them when it pops them, because
-- LREM would cost O(queue length).
local function unqueue(jobId, s, idx)
  local id = stepIdOf(jobId, idx)
  if s.q == 'z' then
    redis.call('ZREM', K.readyZset(s.r), id)
    s.q = nil
  elseif s.q == 'd' then
    redis.call('ZREM', K.delayed(s.r), id)
    s.q = nil
  end
  redis.call('ZREM', K.queueDeadlines, id)
end

local function newError(code, message, attempt, worker, now, retryable)
  return {c = code, m = message, a = attempt, w = worker or '', t = now, r = retryable and true or false}
end

-- Moves step idx to FAILED or CANCELLED. A running step loses its lease and
-- its worker is told over the cancel channel (unless the worker itself is
-- the one reporting, notify == false).
local function stopStep(jobId, job, idx, state, err, now, notify)
  local s = job.s[idx]
  if s.st == S.RUNNING then
    local member = leaseMember(jobId, idx, s.a)
    redis.call('ZREM', K.leases, member)
    if notify then redis.call('PUBLISH', K.cancelChannel, member) end
  else
    unqueue(jobId, s, idx)
  end
  s.st = state
  s.f = now
  s.nb = nil
  s.ld = nil
  addError(s, err)
  local etype = EV.STEP_CANCELLED
  if state == S.FAILED then
    etype = EV.STEP_FAILED
    redis.call('ZADD', K.dead, now, stepIdOf(jobId, idx))
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

-- Moves due scheduled steps of `route` to its ready zset.
local function promoteDue(route, now, limit)
  local key = K.delayed(route)
  local due = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(due) do
    redis.call('ZREM', key, id)
    local jobId, idx = parseStepId(id)
    local job = jobId and loadJob(jobId)
    local s = job and job.s[idx]
    if s and s.st == S.SCHEDULED and s.q == 'd' then
      s.q = nil
      s.nb = nil
      enqueue(jobId, job, idx, now, false)
      emit(jobId, job, idx, EV.STEP_QUEUED, {'m', 'scheduled time reached'})
      saveJob(jobId, job)
    end
  end
  return #due
end
