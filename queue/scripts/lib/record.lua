--[[
record.lua: the stored form of a job, read and written only here (and, for
reading, by queue/job-record.ts). Included first in the library.

A job is one string at K.job(jobId). Format 2 puts what the hot transitions
(claim, complete, lease renewal) read and write at fixed places, so they
never decode or re-encode the rest:

  job header   JOB_HDR:  version 2, flags (LOG_FLAG: the job has a log;
                         INDEX_FLAG: its job-index entry id is
                         `<created>-<index seq>`; TRACE_FLAG: it holds
                         the submitting call's trace context, which its
                         claims hand to the worker), job state, step count,
                         created, started, finished (Unix ms, 0 = unset),
                         retention ms, index seq, tenant number;
                         expires = finished + retention
  step headers STEP_HDR, one per step: state, where queued (Q_CODE),
                         flags (1 = claiming needs the whole record: the
                         step has dependencies or a queue timeout, or
                         should go to another worker than its last, s.av,
                         or became ready after its job's submit, s.rdy),
                         attempts, lease deadline, started, finished
  step specs   SPEC, one per step, never changed: name, route, operation
                         bytes, timeout ms (0 = none)
  cold map     msgpack: every other job field, and `s` = the other fields
               of each step (absent when no step has any); fields holding
               their default (DEFAULTS) are left out
  tail         msgpack arrays appended by the hot transitions, applied in
               order by decodeJob (see TAIL_CLAIMED, TAIL_SUCCEEDED)

The first byte is the format. Only format 2 exists (0.1.0 wrote format 1, a
single msgpack map, but has no deployed data); a record of any other format
is refused with an error naming it, which is where a later migration will
hook in.

Integers are little-endian; times are 6-byte integers (Unix ms < 2^47).
]]

-- JOB_HDR, STEP_HDR, HEADERS_1 (both headers of a one-step job, packed or
-- unpacked in one call), SPEC and their _SIZE and _AT (field positions) are
-- generated from wire/layouts.ts, which declares every layout once.
local LOG_FLAG, INDEX_FLAG, TRACE_FLAG = 1, 2, 4
local Q_CODE = {l = 1, z = 2, d = 3}
local Q_NAME = {'l', 'z', 'd'}
-- Step fields that live in the headers and specs rather than the cold map.
local STEP_HOT = {st = true, q = true, a = true, ld = true, sa = true, f = true, n = true, r = true, o = true, to = true}
local JOB_HOT = {st = true, c = true, sa = true, f = true, x = true, rt = true, lg = true, s = true, sq = true, ix = true, tn = true}
-- Step fields left out of the cold map when they hold these values.
local DEFAULTS = {ma = 3, bi = 1000, bm = 60000}
-- Tail items: {TAIL_CLAIMED, index, attempt, time, worker id}: the step was
-- claimed (its job is RUNNING); {TAIL_SUCCEEDED, index, attempt, time,
-- result, job finished (1/0)}: the step succeeded, and with it the job.
local TAIL_CLAIMED = 1
local TAIL_SUCCEEDED = 2
-- {TAIL_INDEX, job-index entry id}: the id, when INDEX_FLAG cannot say it.
local TAIL_INDEX = 3

-- Decimal strings of small integers, made once: Redis formats a number
-- argument of redis.call with sprintf, which costs more than the call itself.
-- (Built with .., not tostring: library code at load time sees no globals.)
local NUMS = {}
for i = 0, 1024 do NUMS[i] = '' .. i end
local function NUM(n)
  return NUMS[n] or tostring(n)
end
-- Base-36 digit pairs, 0..1295, for job ids.
local DIGIT = {'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l',
  'm', 'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z'}
local DIGITS2 = {}
for hi = 0, 35 do
  for lo = 0, 35 do DIGITS2[hi * 36 + lo] = DIGIT[hi + 1] .. DIGIT[lo + 1] end
end

-- '.<index>|' per 1-based step index: the middle of lease members.
local LEASE_SEP = {}
for i = 1, 1024 do LEASE_SEP[i] = '.' .. (i - 1) .. '|' end

local function orZero(v) return v or 0 end
local function orNil(v) if v == 0 then return nil end return v end

-- The byte offset (1-based) of step idx's header in a format-2 record.
local function stepHeaderAt(idx)
  return JOB_HDR_SIZE + (idx - 1) * STEP_HDR_SIZE + 1
end

-- Applies one tail item to a decoded job (see TAIL_*); the history keeps
-- the events the item stands for while the job has no log.
local function applyTail(job, item)
  local kind, idx, attempt, t = item[1], item[2], item[3], item[4]
  if kind == TAIL_INDEX then
    job.ix = item[2]
    return
  end
  local s = job.s[idx]
  if kind == TAIL_CLAIMED then
    s.wk = item[5]
    if not job.lg then
      job.h = job.h or {}
      job.h[#job.h + 1] = {EV.STEP_CLAIMED, idx, attempt, S.RUNNING, JS.RUNNING, t, {'w', item[5]}}
    end
  elseif kind == TAIL_SUCCEEDED then
    s.rs = item[5]
    s.pg = 1
    if not job.lg then
      job.h = job.h or {}
      job.h[#job.h + 1] = {EV.STEP_SUCCEEDED, idx, attempt, S.SUCCEEDED, JS.RUNNING, t, {'w', s.wk}}
      if item[6] == 1 then job.h[#job.h + 1] = {EV.JOB_SUCCEEDED, 0, 0, 0, JS.SUCCEEDED, t} end
    end
  end
end

-- A stored job as a table; see queue/job-record.ts for fields.
local function decodeJob(jobId, raw)
  local format = string.byte(raw, 1)
  if format ~= 2 then
    error('job ' .. jobId .. ' has record format ' .. tostring(format) .. '; this stepq reads format 2 only')
  end
  local _, flags, st, n, c, sa, f, rt, ixs, tn, pos = struct.unpack(JOB_HDR, raw)
  local steps = {}
  for i = 1, n do
    local sst, q, _, a, ld, ssa, sf
    sst, q, _, a, ld, ssa, sf, pos = struct.unpack(STEP_HDR, raw, pos)
    steps[i] = {st = sst, q = Q_NAME[q], a = a, ld = orNil(ld), sa = orNil(ssa), f = orNil(sf)}
  end
  for i = 1, n do
    local s = steps[i]
    local to
    s.n, s.r, s.o, to, pos = struct.unpack(SPEC, raw, pos)
    s.to = orNil(to)
  end
  local parts = {cmsgpack.unpack(string.sub(raw, pos))}
  local job = parts[1]
  local cold = job.s
  for i, s in ipairs(steps) do
    for k, v in pairs(DEFAULTS) do s[k] = v end
    local extra = cold and cold[i]
    if extra then
      for k, v in pairs(extra) do s[k] = v end
    end
  end
  job.s = steps
  job.st, job.c, job.sa, job.f, job.rt, job.tn = st, c, orNil(sa), orNil(f), rt, orNil(tn)
  if f ~= 0 then job.x = f + rt end
  job.sq = tonumber(string.sub(jobId, 1, 8), 36)
  if bit.band(flags, LOG_FLAG) ~= 0 then job.lg = 1 end
  if bit.band(flags, INDEX_FLAG) ~= 0 then job.ix = string.format('%.0f-%.0f', c, ixs) end
  for k = 2, #parts do applyTail(job, parts[k]) end
  return job
end

-- The flags byte of a step's header.
local function stepFlags(s)
  if (s.d and #s.d > 0) or s.qt or s.av or s.rdy then return 1 end
  return 0
end

local function stepHeader(s)
  return struct.pack(STEP_HDR, s.st, Q_CODE[s.q] or 0, stepFlags(s), s.a, orZero(s.ld), orZero(s.sa), orZero(s.f))
end

-- A job table as a format-2 record (no tail: everything is in place).
local function encodeJob(job)
  local n = #job.s
  local flags = job.lg and LOG_FLAG or 0
  if job.tp then flags = flags + TRACE_FLAG end
  -- The index entry id is almost always <created>-<seq>: 4 bytes then.
  local ixMs, ixSeq = string.match(job.ix or '', '^(%d+)-(%d+)$')
  local ixs = 0
  if ixMs and tonumber(ixMs) == job.c and tonumber(ixSeq) < 4294967296 then
    flags = flags + INDEX_FLAG
    ixs = tonumber(ixSeq)
  end
  local heads = {struct.pack(JOB_HDR, 2, flags, job.st, n, job.c, orZero(job.sa), orZero(job.f), job.rt, ixs, orZero(job.tn))}
  local specs, colds, anyCold = {}, {}, false
  for i, s in ipairs(job.s) do
    heads[i + 1] = stepHeader(s)
    specs[i] = struct.pack(SPEC, #s.n, s.n, #s.r, s.r, #s.o, s.o, orZero(s.to))
    local cold = {}
    for k, v in pairs(s) do
      if not STEP_HOT[k] and DEFAULTS[k] ~= v then
        cold[k] = v
        anyCold = true
      end
    end
    colds[i] = cold
  end
  local cold = {}
  for k, v in pairs(job) do
    if not JOB_HOT[k] then cold[k] = v end
  end
  if ixs == 0 then cold.ix = job.ix end
  if anyCold then cold.s = colds end
  return table.concat(heads) .. table.concat(specs) .. cmsgpack.pack(cold)
end
