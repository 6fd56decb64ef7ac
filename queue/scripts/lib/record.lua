--[[
record.lua: the stored form of a job, read and written only here (and, for
reading, by queue/job-record.ts). Included first in the library.

A job is one string at K.job(jobId). Format 2 puts what the hot transitions
(claim, complete, lease renewal) read and write at fixed places, so they
never decode or re-encode the rest:

  job header   JOB_HDR:  version 2, flags (LOG_FLAG: the job has a log;
                         INDEX_FLAG: its job-index entry id is
                         `<created>-<index seq>`), job state, step count,
                         created, started, finished (Unix ms, 0 = unset),
                         retention ms, index seq; expires = finished +
                         retention
  step headers STEP_HDR, one per step: state, where queued (Q_CODE),
                         flags (1 = claiming needs the whole record: the
                         step has dependencies or a queue timeout),
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
local LOG_FLAG, INDEX_FLAG = 1, 2
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
  if (s.d and #s.d > 0) or s.qt then return 1 end
  return 0
end

local function stepHeader(s)
  return struct.pack(STEP_HDR, s.st, Q_CODE[s.q] or 0, stepFlags(s), s.a, orZero(s.ld), orZero(s.sa), orZero(s.f))
end

-- A job table as a format-2 record (no tail: everything is in place).
local function encodeJob(job)
  local n = #job.s
  local flags = job.lg and LOG_FLAG or 0
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

-- Writes of the in-place transitions, gathered so that a batch of steps
-- costs one command per kind rather than one per step: records (MSET),
-- ready lists (RPUSH), new leases (ZADD), ended leases (ZREM), finished
-- jobs (RPUSH to their expiry list), and events (one XADD per kind, see
-- pushEvent). flushWrites() issues them; it runs before
-- any generic read of a record (loadJob) or event (emit), so Redis sees
-- every change in the order the transitions made them, and at the end of
-- every call that gathers.
local W = {records = {}, byKey = {}, pushes = {}, pushOrder = {}, leases = {}, ended = {}, done = {}, doneBy = {},
  events = {}, eventOrder = {}}

-- The list gathered in `byKey` under `key`, made (and `key` added to
-- `order`, so flushes keep the order of first use) when there is none yet.
local function gathered(order, byKey, key)
  local list = byKey[key]
  if not list then
    list = {}
    byKey[key] = list
    order[#order + 1] = key
  end
  return list
end

-- Stores a record with the next flush.
local flushWrites
local function putRecord(key, raw)
  W.records[#W.records + 1] = key
  W.records[#W.records + 1] = raw
  W.byKey[key] = raw
  -- Bounds the arguments of one command (and Lua's stack for unpack).
  if #W.records >= 2000 then flushWrites() end
end

-- Records that a job finished and expires at `expires` (its retention
-- `rt` after now), with the next flush: two elements, the expiry time then
-- the job id, at the end of the expiry list of its retention, which
-- purgeExpired reads oldest first.
local function pushExpiry(rt, expires, jobId)
  local entries = gathered(W.done, W.doneBy, rt)
  -- Two list elements per job (a number is no Lua string to make).
  entries[#entries + 1] = expires
  entries[#entries + 1] = jobId
end

-- Appends a step id to a route's ready list with the next flush.
local function pushReady(route, id)
  local ids = gathered(W.pushOrder, W.pushes, route)
  ids[#ids + 1] = id
end

-- The current record at `key`: a gathered write, or what Redis has.
local function getRecord(key)
  return W.byKey[key] or redis.call('GET', key)
end

-- Gathers one step event of a batch entry: the entry holds events of one
-- type, `kind` names it; its line is `jobId index name route attempt`, then
-- ` tenant` when the job's tenant is not 0.
local function pushEvent(kind, jobId, idx, name, route, attempt, tenant)
  local parts = gathered(W.eventOrder, W.events, kind)
  local n = #parts
  parts[n + 1], parts[n + 2], parts[n + 3], parts[n + 4], parts[n + 5] = '\n', jobId, ' ', NUMS[idx - 1] or idx - 1, ' '
  parts[n + 6], parts[n + 7], parts[n + 8], parts[n + 9] = name, ' ', route, ' '
  parts[n + 10] = NUMS[attempt] or attempt
  -- Always 12 parts a line (flushWrites counts lines by them).
  if tenant ~= 0 then parts[n + 11], parts[n + 12] = ' ', tenant else parts[n + 11], parts[n + 12] = '', '' end
end

-- The fields of each batch entry kind: the step event type, the step and
-- job state after it, and the job event each step event brings along.
local BATCH_KINDS = {
  claimed = {EV.STEP_CLAIMED, S.RUNNING, JS.RUNNING},
  succeeded = {EV.STEP_SUCCEEDED, S.SUCCEEDED, JS.RUNNING, EV.JOB_SUCCEEDED},
  submitted = {EV.STEP_SUBMITTED, S.QUEUED, JS.QUEUED, EV.JOB_SUBMITTED},
}

-- Forgets gathered writes: every call starts empty (a call that failed
-- half-way must not leave writes for the next one).
local function resetWrites(workerId)
  W.records, W.byKey, W.pushes, W.pushOrder, W.leases, W.ended = {}, {}, {}, {}, {}, {}
  W.done, W.doneBy, W.events, W.eventOrder = {}, {}, {}, {}
  W.worker = workerId
end

function flushWrites()
  local workerId = W.worker
  if #W.records > 0 then
    redis.call('MSET', unpack(W.records))
    W.records, W.byKey = {}, {}
  end
  -- Ready lists, each with its wake-up marker.
  if #W.pushOrder > 0 then
    for _, r in ipairs(W.pushOrder) do
      redis.call('RPUSH', K.readyList(r), unpack(W.pushes[r]))
      if redis.call('LLEN', K.wake(r)) == 0 then redis.call('RPUSH', K.wake(r), '1') end
    end
    W.pushes, W.pushOrder = {}, {}
  end
  if #W.leases > 0 then redis.call('ZADD', K.leases, unpack(W.leases)) W.leases = {} end
  if #W.ended > 0 then redis.call('ZREM', K.leases, unpack(W.ended)) W.ended = {} end
  if #W.done > 0 then
    for _, rt in ipairs(W.done) do
      local name = string.format('%.0f', rt)
      redis.call('RPUSH', K.expiries(name), unpack(W.doneBy[rt]))
      redis.call('SADD', K.retentions, name)
    end
    W.done, W.doneBy = {}, {}
  end
  local extra = 0
  for _, kind in ipairs(W.eventOrder) do
    local f = BATCH_KINDS[kind]
    local parts = W.events[kind]
    local fields = {'t', f[1], 'st', f[2], 'js', f[3], 'b', table.concat(parts, '', 2)}
    if f[4] then fields[#fields + 1] = 'jt' fields[#fields + 1] = f[4] end
    if workerId and kind ~= 'submitted' then fields[#fields + 1] = 'w' fields[#fields + 1] = workerId end
    redis.call('XADD', K.events, '*', unpack(fields))
    extra = extra + (#parts / 12) * (f[4] and 2 or 1) - 1
  end
  -- Events beyond one per entry: the sweeper caps the stream in events, not
  -- entries (queue.ts sweep).
  if extra > 0 then redis.call('INCRBY', K.eventsExtra, extra) end
  if #W.eventOrder > 0 then W.events, W.eventOrder = {}, {} end
end

local function loadJob(jobId)
  flushWrites()
  local raw = redis.call('GET', K.job(jobId))
  if not raw then return nil end
  return decodeJob(jobId, raw)
end

-- Stores the job; returns the stored bytes.
local function saveJob(jobId, job)
  local packed = encodeJob(job)
  redis.call('SET', K.job(jobId), packed)
  return packed
end

-- Step idx's name and route, its spec as stored (SPEC bytes, without
-- copying the operation out on its own), and where the spec ends.
local function specBytesOf(raw, n, idx)
  local pos = JOB_HDR_SIZE + n * STEP_HDR_SIZE + 1
  for _ = 2, idx do
    local _, _, _, _, nextPos = struct.unpack(SPEC, raw, pos)
    pos = nextPos
  end
  local name, route, routeEnd = struct.unpack(SPEC_NAMES, raw, pos)
  local last = routeEnd + 4 + struct.unpack('<I4', raw, routeEnd) + 4 - 1
  return name, route, string.sub(raw, pos, last), last
end

-- Tail items in msgpack, written by hand for the common sizes (cmsgpack
-- would build a table first); TS and cmsgpack read either form.
local function tailClaimed(idx, attempt, now, workerId)
  if idx < 128 and attempt < 128 and #workerId < 256 then
    return struct.pack('>BBBBBI8BBc0', 0x95, TAIL_CLAIMED, idx, attempt, 0xcf, now, 0xd9, #workerId, workerId)
  end
  return cmsgpack.pack({TAIL_CLAIMED, idx, attempt, now, workerId})
end

local function tailIndex(ix)
  return cmsgpack.pack({TAIL_INDEX, ix})
end

-- A TAIL_SUCCEEDED item as up to three pieces to join: the result bytes go
-- into the record as they are, not copied into an item string first.
local JOB_DONE, JOB_NOT_DONE = '\1', '\0'
local function tailSucceeded(idx, attempt, now, result, jobFinished)
  if idx < 128 and attempt < 128 and #result < 65536 then
    return struct.pack('>BBBBBI8BH', 0x96, TAIL_SUCCEEDED, idx, attempt, 0xcf, now, 0xda, #result), result,
      jobFinished == 1 and JOB_DONE or JOB_NOT_DONE
  end
  return cmsgpack.pack({TAIL_SUCCEEDED, idx, attempt, now, result, jobFinished}), '', ''
end
