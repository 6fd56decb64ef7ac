--[[
events.lua: lifecycle events, job logs and step output. Included after
prelude.lua.

Every change of state emits an event to K.events and, once the job's log
exists, to the log; until then the record keeps a short history that
ensureLog writes out. Workers' output (tokens, narration) goes to the log,
deduplicated by its sequence numbers and capped in bytes.
]]

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
-- The route total (record-writes.lua addTotal) each step event adds to; a
-- retry is also a failed attempt. (A failed attempt that ends the step and a
-- lease expiry are counted where they are known: stopStep, recoverLeases.)
local EVENT_TOTAL = {[EV.STEP_SUBMITTED] = 's', [EV.STEP_CLAIMED] = 'c', [EV.STEP_SUCCEEDED] = 'k',
  [EV.STEP_RETRYING] = 'r', [EV.STEP_FAILED] = 'd', [EV.STEP_CANCELLED] = 'x'}

-- Records a lifecycle event of the job (idx nil) or of step idx. Returns the
-- id of its entry in the job's log, or nil when the job has no log yet: then
-- the event is kept in the record's history (job.h, a few bytes) instead of
-- a log stream (~4 KB), and ensureLog writes it out when the log is needed.
local function emit(jobId, job, idx, etype, extra)
  flushWrites()
  local s = idx and job.s[idx]
  local attempt, state = s and s.a or 0, s and s.st or 0
  local total = s and EVENT_TOTAL[etype]
  if total then
    addTotal(total, s.r)
    if etype == EV.STEP_RETRYING then addTotal('f', s.r) end
  end
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
