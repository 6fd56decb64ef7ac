--[[
record-writes.lua: how transitions read and write job records. Included
after record.lua (the format) and before prelude.lua.

The hot transitions gather their writes (W) and flush them once per call;
loadJob and saveJob read and write a record as a table (through the
gathered writes, so a call sees its own changes); the tail helpers build
the items the in-place transitions append to a record.
]]

-- Writes of the in-place transitions, gathered so that a batch of steps
-- costs one command per kind rather than one per step: records (MSET),
-- ready lists (RPUSH), new leases (ZADD), ended leases (ZREM), finished
-- jobs (RPUSH to their expiry list), and events (one XADD per kind, see
-- pushEvent). flushWrites() issues them; it runs before
-- any generic read of a record (loadJob) or event (emit), so Redis sees
-- every change in the order the transitions made them, and at the end of
-- every call that gathers.
local W = {records = {}, byKey = {}, pushes = {}, pushOrder = {}, laneRoute = {}, laneTenant = {}, leases = {},
  ended = {}, done = {}, doneBy = {}, events = {}, eventOrder = {}, load = {}, counts = {}, totals = {}, finished = {}}

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

-- Fair share. Each tenant's ready steps on a route wait in its own lane:
-- the route itself for tenant 0, `<route>#<tenant>` for the others ('#' is
-- in no route), each a list and a zset (queueing.lua). The tenants with
-- ready steps on a route form its rotation, K.fair(route): a zset whose
-- score is each tenant's virtual time, the claims it has been given. The
-- claimer serves the lowest (claim.lua), so tenants with ready steps take
-- turns one step at a time, whatever their backlogs.
local function laneOf(route, tn)
  if tn == 0 then return route end
  return route .. '#' .. tn
end

-- Puts tenant tn in the rotation of `route` when it is not there, at the
-- rotation's lowest virtual time: a tenant that arrives is owed nothing and
-- owes nothing.
local function joinRotation(route, tn)
  local key = K.fair(route)
  if redis.call('ZSCORE', key, tn) then return end
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  redis.call('ZADD', key, first[2] or 0, tn)
end

-- Appends a step id to tenant tn's ready list on `route` with the next flush.
local function pushReady(route, tn, id)
  local lane = laneOf(route, tn)
  local ids = W.pushes[lane]
  if not ids then
    ids = gathered(W.pushOrder, W.pushes, lane)
    W.laneRoute[lane], W.laneTenant[lane] = route, tn
  end
  ids[#ids + 1] = id
end

-- Tenant load (K.load): per tenant, `u:<n>` its steps not yet final and
-- `r:<n>` its running steps (the leases it holds), which its quotas count.
-- Every transition that changes either says so here; the changes are
-- gathered and written with the next flush, and loadOf reads through them,
-- so a call sees its own.
local function addLoad(tn, field, n)
  local f = field .. ':' .. tn
  W.load[f] = (W.load[f] or 0) + n
end

local function loadOf(tn, field)
  local f = field .. ':' .. tn
  return (tonumber(redis.call('HGET', K.load, f)) or 0) + (W.load[f] or 0)
end

-- Route counts (K.counts): `<letter>:<tenant>:<route>` is how many of the
-- tenant's steps on the route are in a state now: w waiting for
-- dependencies, q queued, s scheduled, r running (leased), d dead-lettered
-- (in K.dead). Every state change goes through setState (or, in place,
-- says so with addCount), and the dead-letter set's changes through
-- addCount 'd', so GetQueueStats reads them (queue/queue-stats.ts) instead
-- of scanning steps. Gathered, like the load, and written with the flush.
local COUNTED = {[S.WAITING] = 'w', [S.QUEUED] = 'q', [S.SCHEDULED] = 's', [S.RUNNING] = 'r'}

local function addCount(letter, tn, route, n)
  local f = letter .. ':' .. tn .. ':' .. route
  W.counts[f] = (W.counts[f] or 0) + n
end

-- Route totals, in the same hash: `+<letter>:<route>` is how many times
-- something happened on the route since the queue began, over all tenants,
-- never decreasing: s submitted, c claimed, k succeeded, r retried, f
-- attempts failed (retried or not), d dead-lettered, e leases expired, x
-- cancelled. The servers' /metrics report them as counters
-- (server/metrics/step-totals.ts), so counting costs no event reading; a
-- batch adds one HINCRBY per route and letter. (queue-stats.ts's reads skip
-- these fields: their letter is not at the first place.)
-- (Gathered by letter and route, and the field names made at the flush: a
-- name made per step cost ~1 µs of Redis CPU per step in a drain.)
local function addTotal(letter, route)
  local byRoute = W.totals[letter]
  if not byRoute then
    byRoute = {}
    W.totals[letter] = byRoute
  end
  byRoute[route] = (byRoute[route] or 0) + 1
end

-- Moves step s of tenant tn to `state`, keeping the route counts.
local function setState(s, tn, state)
  local from, to = COUNTED[s.st], COUNTED[state]
  if from ~= to then
    if from then addCount(from, tn, s.r, -1) end
    if to then addCount(to, tn, s.r, 1) end
  end
  s.st = state
end

-- Throughput (K.throughput): one hash per 10-second bucket of Redis's
-- clock (`%` = the bucket's start in seconds), `s:<tenant>:<route>` the
-- steps that succeeded in it and `f:<tenant>:<route>` those that failed for
-- good; each expires THROUGHPUT_KEEP_MS after it was last written, so the
-- last 15 minutes are always there.
local BUCKET_MS = 10000
local THROUGHPUT_KEEP_MS = 16 * 60 * 1000

local function addFinished(letter, tn, route, now)
  local b = string.format('%.0f', math.floor(now / BUCKET_MS) * (BUCKET_MS / 1000))
  local fields = W.finished[b]
  if not fields then
    fields = {}
    W.finished[b] = fields
  end
  local f = letter .. ':' .. tn .. ':' .. route
  fields[f] = (fields[f] or 0) + 1
end

-- Ends lease `member`, of a step of tenant tn (nil when its job is gone):
-- removes it from the leases zset and, when it was there, counts one
-- running step fewer.
local function endLease(member, tn)
  if redis.call('ZREM', K.leases, member) == 1 and tn then addLoad(tn, 'r', -1) end
end

-- The current record at `key`: a gathered write, or what Redis has.
local function getRecord(key)
  return W.byKey[key] or redis.call('GET', key)
end

-- The route total (addTotal) each batch entry kind adds to.
local BATCH_TOTAL = {claimed = 'c', succeeded = 'k', submitted = 's'}

-- Gathers one step event of a batch entry: the entry holds events of one
-- type, `kind` names it; its line is `jobId index name route attempt`, then
-- ` tenant` when the job's tenant is not 0.
local function pushEvent(kind, jobId, idx, name, route, attempt, tenant)
  addTotal(BATCH_TOTAL[kind], route)
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
  W.laneRoute, W.laneTenant, W.load, W.counts, W.totals, W.finished = {}, {}, {}, {}, {}, {}
  W.done, W.doneBy, W.events, W.eventOrder = {}, {}, {}, {}
  W.worker = workerId
end

function flushWrites()
  local workerId = W.worker
  if #W.records > 0 then
    redis.call('MSET', unpack(W.records))
    W.records, W.byKey = {}, {}
  end
  -- Ready lists, each with its tenant in the route's rotation and the
  -- route's wake-up marker.
  if #W.pushOrder > 0 then
    for _, lane in ipairs(W.pushOrder) do
      local r = W.laneRoute[lane]
      redis.call('RPUSH', K.readyList(lane), unpack(W.pushes[lane]))
      joinRotation(r, W.laneTenant[lane])
      if redis.call('LLEN', K.wake(r)) == 0 then redis.call('RPUSH', K.wake(r), '1') end
    end
    W.pushes, W.pushOrder, W.laneRoute, W.laneTenant = {}, {}, {}, {}
  end
  if #W.leases > 0 then redis.call('ZADD', K.leases, unpack(W.leases)) W.leases = {} end
  -- Tenant load; a count back at 0 (or, by a bug, below) is removed.
  for f, n in pairs(W.load) do
    if n ~= 0 and redis.call('HINCRBY', K.load, f, n) <= 0 then redis.call('HDEL', K.load, f) end
  end
  W.load = {}
  for f, n in pairs(W.counts) do
    if n ~= 0 and redis.call('HINCRBY', K.counts, f, n) <= 0 then redis.call('HDEL', K.counts, f) end
  end
  W.counts = {}
  if next(W.totals) then
    for letter, byRoute in pairs(W.totals) do
      for route, n in pairs(byRoute) do redis.call('HINCRBY', K.counts, '+' .. letter .. ':' .. route, n) end
    end
    W.totals = {}
  end
  for b, fields in pairs(W.finished) do
    local key = K.throughput(b)
    for f, n in pairs(fields) do redis.call('HINCRBY', key, f, n) end
    redis.call('PEXPIRE', key, THROUGHPUT_KEEP_MS)
  end
  W.finished = {}
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
