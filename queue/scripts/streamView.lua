--[[
streamView.lua: no transition; reads the few fields of a job that its
streams need, without reading the rest of its record: the job's state,
whether it has a log, its final-event cursor, and per step its name, state,
final-event cursor, last error, and its result's usage and stop reason.

A record holds every step's operation and result, megabytes for a large
output, and every follower of a job reads these fields when it starts and
again when a step or the job ends. So the record is read in small ranges
(GETRANGE) and walked, skipping what is not needed: the operations and the
results' text and embeddings are never read.

KEYS[1] job: the job's record
ARGV[1] key prefix
ARGV[2] job id
It touches no other key. (queue/script-keys.ts declares this once.)

Returns {CODE.OK, job state, has log (1/0), job final cursor or '', step
count, then for each step: name, state, final cursor or '', last error
(code or -1, message, attempt, worker, time, retryable 1/0, cause index + 1
or 0), result fields 3 and 4 (usage, stop reason) as protobuf bytes or '';
then the job's tenant number} or {CODE.JOB_NOT_FOUND}.
Events: none.
]]
local key = KEYS[1]
local jobId = ARGV[2]
local CHUNK = 4096

-- The record's bytes buf[1..] are bytes at..at+#buf-1 of the record (1-based).
local buf, at = redis.call('GETRANGE', key, 0, CHUNK - 1), 1
if buf == '' then return {CODE.JOB_NOT_FOUND} end

-- Bytes pos..pos+n-1 of the record as a string.
local function bytes(pos, n)
  if n <= 0 then return '' end
  if pos < at or pos + n > at + #buf then
    buf = redis.call('GETRANGE', key, pos - 1, pos + math.max(n, CHUNK) - 2)
    at = pos
    if #buf < n then error('stepq streamView: the record of job ' .. jobId .. ' ends early') end
  end
  return string.sub(buf, pos - at + 1, pos - at + n)
end
local function byte(pos) return string.byte(bytes(pos, 1)) end
local function bigEndian(pos, n)
  local s, v = bytes(pos, n), 0
  for i = 1, n do v = v * 256 + string.byte(s, i) end
  return v
end
local function signed(v, n) if v >= 2 ^ (8 * n - 1) then return v - 2 ^ (8 * n) end return v end

-- msgpack, walked in place: the header at pos as (kind, n, position after
-- it). Kinds: 'str' (n bytes follow), 'arr' (n items), 'map' (n pairs),
-- 'ext' (n bytes follow), 'val' (n is the value).
local function head(pos)
  local b = byte(pos)
  if b < 0x80 then return 'val', b, pos + 1 end
  if b >= 0xe0 then return 'val', b - 256, pos + 1 end
  if b < 0x90 then return 'map', b - 0x80, pos + 1 end
  if b < 0xa0 then return 'arr', b - 0x90, pos + 1 end
  if b < 0xc0 then return 'str', b - 0xa0, pos + 1 end
  if b == 0xc0 then return 'val', nil, pos + 1 end
  if b == 0xc2 then return 'val', false, pos + 1 end
  if b == 0xc3 then return 'val', true, pos + 1 end
  if b == 0xc4 or b == 0xd9 then return 'str', bigEndian(pos + 1, 1), pos + 2 end
  if b == 0xc5 or b == 0xda then return 'str', bigEndian(pos + 1, 2), pos + 3 end
  if b == 0xc6 or b == 0xdb then return 'str', bigEndian(pos + 1, 4), pos + 5 end
  if b == 0xc7 then return 'ext', bigEndian(pos + 1, 1) + 1, pos + 2 end
  if b == 0xc8 then return 'ext', bigEndian(pos + 1, 2) + 1, pos + 3 end
  if b == 0xc9 then return 'ext', bigEndian(pos + 1, 4) + 1, pos + 5 end
  if b == 0xca then return 'val', struct.unpack('>f', bytes(pos + 1, 4)), pos + 5 end
  if b == 0xcb then return 'val', struct.unpack('>d', bytes(pos + 1, 8)), pos + 9 end
  if b >= 0xcc and b <= 0xcf then
    local n = 2 ^ (b - 0xcc)
    return 'val', bigEndian(pos + 1, n), pos + 1 + n
  end
  if b >= 0xd0 and b <= 0xd3 then
    local n = 2 ^ (b - 0xd0)
    return 'val', signed(bigEndian(pos + 1, n), n), pos + 1 + n
  end
  if b >= 0xd4 and b <= 0xd8 then return 'ext', 2 ^ (b - 0xd4) + 1, pos + 1 end
  if b == 0xdc then return 'arr', bigEndian(pos + 1, 2), pos + 3 end
  if b == 0xdd then return 'arr', bigEndian(pos + 1, 4), pos + 5 end
  if b == 0xde then return 'map', bigEndian(pos + 1, 2), pos + 3 end
  if b == 0xdf then return 'map', bigEndian(pos + 1, 4), pos + 5 end
  error('stepq streamView: unexpected msgpack byte ' .. b .. ' in the record of job ' .. jobId)
end

-- The position after the value at pos, without reading it.
local function skip(pos)
  local kind, n, p = head(pos)
  if kind == 'str' or kind == 'ext' then return p + n end
  if kind == 'arr' or kind == 'map' then
    if kind == 'map' then n = 2 * n end
    for _ = 1, n do p = skip(p) end
  end
  return p
end

-- The (small) value at pos, and the position after it.
local function value(pos)
  local kind, n, p = head(pos)
  if kind == 'str' then return bytes(p, n), p + n end
  if kind == 'ext' then return nil, p + n end
  if kind == 'arr' then
    local t = {}
    for i = 1, n do t[i], p = value(p) end
    return t, p
  end
  if kind == 'map' then
    local t = {}
    for _ = 1, n do
      local k, v
      k, p = value(p)
      v, p = value(p)
      if k ~= nil then t[k] = v end
    end
    return t, p
  end
  return n, p
end

-- A protobuf varint at pos, and the position after it.
local function varint(pos)
  local v, scale = 0, 1
  while true do
    local b = byte(pos)
    pos = pos + 1
    v = v + (b % 128) * scale
    if b < 128 then return v, pos end
    scale = scale * 128
  end
end

-- Fields 3 (usage) and 4 (stop reason) of the StepResult at pos, len bytes
-- long, as protobuf bytes: a StepResult without its text and embeddings.
local function usageOf(pos, len)
  local stop, parts = pos + len, {}
  while pos < stop do
    local tag, p = varint(pos)
    local field, wire = math.floor(tag / 8), tag % 8
    local after
    if wire == 0 then
      local _, q = varint(p)
      after = q
    elseif wire == 1 then after = p + 8
    elseif wire == 2 then
      local n, q = varint(p)
      after = q + n
    elseif wire == 5 then after = p + 4
    else break end
    if field == 3 or field == 4 then parts[#parts + 1] = bytes(pos, after - pos) end
    pos = after
  end
  return table.concat(parts)
end

local view = {st = 0, lg = 0, fc = '', s = {}, tn = 0}

-- One step's map in the cold map (or a tail item's fields): its final
-- cursor, last error and result position.
local function coldStep(s, pos)
  local kind, n, p = head(pos)
  if kind ~= 'map' then return skip(pos) end
  for _ = 1, n do
    local k
    k, p = value(p)
    if k == 'fc' then
      s.fc, p = value(p)
    elseif k == 'e' then
      local ekind, count, q = head(p)
      if ekind == 'arr' or ekind == 'map' then
        for i = 1, count do
          if ekind == 'map' then q = skip(q) end
          if i == count then s.e, q = value(q) else q = skip(q) end
        end
        p = q
      else
        p = skip(p)
      end
    elseif k == 'rs' then
      local _, len, q = head(p)
      s.rs = {q, len}
      p = q + len
    else
      p = skip(p)
    end
  end
  return p
end

local function finish()
  local reply = {CODE.OK, view.st, view.lg, view.fc or '', #view.s}
  for _, s in ipairs(view.s) do
    local e = type(s.e) == 'table' and s.e or nil
    local usage = s.usage or ''
    if s.rs then usage = usageOf(s.rs[1], s.rs[2]) end
    local r = reply
    r[#r + 1] = s.n
    r[#r + 1] = s.st
    r[#r + 1] = type(s.fc) == 'string' and s.fc or ''
    r[#r + 1] = e and (e.c or 0) or -1
    r[#r + 1] = e and tostring(e.m or '') or ''
    r[#r + 1] = e and (e.a or 0) or 0
    r[#r + 1] = e and tostring(e.w or '') or ''
    r[#r + 1] = e and (e.t or 0) or 0
    r[#r + 1] = (e and (e.r == true or e.r == 1)) and 1 or 0
    r[#r + 1] = e and (e.by or 0) or 0
    r[#r + 1] = usage
  end
  reply[#reply + 1] = view.tn
  return reply
end

if string.byte(buf, 1) ~= 2 then
  error('job ' .. jobId .. ' has record format ' .. tostring(string.byte(buf, 1)) .. '; this stepq reads format 2 only')
end

-- Format 2: headers, specs, cold map, tail (record.lua has the layout).
local _, flags, st, n, _, _, _, _, _, tn = struct.unpack(JOB_HDR, bytes(1, JOB_HDR_SIZE))
view.st, view.tn = st, tn
if bit.band(flags, LOG_FLAG) ~= 0 then view.lg = 1 end
local pos = JOB_HDR_SIZE + 1
for i = 1, n do
  view.s[i] = {st = struct.unpack(STEP_HDR, bytes(pos, STEP_HDR_SIZE))}
  pos = pos + STEP_HDR_SIZE
end
for i = 1, n do
  local nameLen = byte(pos)
  view.s[i].n = bytes(pos + 1, nameLen)
  pos = pos + 1 + nameLen
  pos = pos + 2 + struct.unpack('<H', bytes(pos, 2))
  pos = pos + 4 + struct.unpack('<I4', bytes(pos, 4)) + 4
end
-- The cold map: the job's final cursor, and the steps' cold fields.
local kind, pairsLeft, p = head(pos)
if kind ~= 'map' then error('stepq streamView: the record of job ' .. jobId .. ' has no cold map') end
for _ = 1, pairsLeft do
  local k
  k, p = value(p)
  if k == 'fc' then
    view.fc, p = value(p)
  elseif k == 's' then
    local skind, count, q = head(p)
    for i = 1, count do
      local idx = i
      if skind == 'map' then idx, q = value(q) end
      if view.s[idx] then q = coldStep(view.s[idx], q) else q = skip(q) end
    end
    p = q
  else
    p = skip(p)
  end
end
-- The tail: items appended by in-place transitions; a result comes from TAIL_SUCCEEDED.
local size = redis.call('STRLEN', key)
while p <= size do
  local ikind, count, q = head(p)
  if ikind ~= 'arr' then break end
  local itemKind
  itemKind, q = value(q)
  if itemKind == TAIL_SUCCEEDED and count >= 5 then
    local idx
    idx, q = value(q)
    q = skip(skip(q))
    local _, len, r = head(q)
    if view.s[idx] then view.s[idx].rs = {r, len} end
    q = r + len
    for _ = 6, count do q = skip(q) end
  else
    for _ = 2, count do q = skip(q) end
  end
  p = q
end
return finish()
