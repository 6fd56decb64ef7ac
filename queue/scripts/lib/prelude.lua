--[[
prelude.lua: the clock, ids and small helpers every stepq transition uses.

queue/function-library.ts builds one Redis Functions library: the generated key
helpers (`P`, `K.*`, `usePrefix`), the generated constants (S step states,
JS job states, EV event types, EC step error codes, CODE result codes,
POLICY failure policies, LEVEL narration levels) and binary layouts
(wire/layouts.ts), the shared files in this order: record.lua (the
format), record-writes.lua (reading and writing records), this file,
events.lua, queueing.lua, finishing.lua, limits.lua, submit-limits.lua,
complete.lua, claim.lua; then each transition wrapped as `local function <name>(KEYS,
ARGV)` that first calls begin(ARGV[1]). A file uses only what files before
it define. Nothing here runs by itself.

Conventions:
- Times are Unix milliseconds from Redis's clock (TIME, read once per call
  into NOW), so workers whose clocks disagree still agree on lease deadlines.
- A job is one record at K.job(id), read and written by record-writes.lua
  (loadJob / saveJob; format in record.lua, fields in queue/job-record.ts).
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
