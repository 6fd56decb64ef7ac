--[[
submitJobs.lua: (nothing) -> QUEUED / SCHEDULED / WAITING.
Stores a batch of jobs. Steps without dependencies become ready at once (or
scheduled until not_before); the others wait. In mode 'atomic' the batch
is stored all or none (SubmitSteps, Queue.submit); in mode 'each' every job
succeeds or fails on its own (separate submits that one call carries).

KEYS[1] seq: job sequence counter
KEYS[2] jobIndex: job index stream
KEYS[3] events: events stream
KEYS[4] eventsExtra: events stream's batch count
KEYS[5] routes: set of routes
KEYS[6] queueDeadlines: queue-timeout deadlines zset
KEYS[7] load: tenant load hash (each tenant's unfinished and running steps)
KEYS[8] quotas: tenants' own quota values hash
KEYS[9] limits: size caps hash (read for its flag that some tenant has its own quotas)
KEYS[10] counts: route counts hash (each route's steps by state, per tenant)
ARGV[1] key prefix
ARGV[2] 'atomic' or 'each'
ARGV[3] most queued steps per route (0: no limit)
ARGV[4] idempotency key lifetime, ms
ARGV[5] the jobs, back to back (JOB_SPEC in wire/layouts.ts): kind (B: SIMPLE
        or GENERIC), tenant number (H), 8 random id characters (B length +
        bytes),
        idempotency key (B + bytes, empty when none), request digest (B +
        bytes), retention ms (i6), body (I4 + bytes).
        SIMPLE: one ready step with default priority and no queue timeout;
        the body is the record's step spec and cold map (record.lua), which
        queue/record-body.ts writes.
        GENERIC: the body is msgpack {p = priority, fp = failure policy,
        nb = not-before ms or nil, lb = flat label list, s = {{n = name,
        o = operation bytes, r = route, d = 1-based dependency indexes,
        ma, bi, bm = retry policy, to = timeout ms, qt = queue timeout ms},
        ...}}.
ARGV[6] most jobs one tenant may submit per second, Redis time (0: no limit;
        a refusal carries the quota and the number the job would have had
        in its second)
ARGV[7] most steps one tenant may have waiting to run, not final and not
        running (0: no limit; a refusal carries the tenant's waiting steps,
        the job's steps and the quota)
Derived keys (named by what the script reads, so not declarable up front):
records of jobs it reaches (K.job), route ready lists (K.readyList), ready
zsets (K.readyZset), tenant rotations (K.fair), delayed zsets (K.delayed),
wake-up markers (K.wake), idempotency keys (K.idempotency), tenant submit
counters (K.submitRate). Like the KEYS they start with the queue's prefix
`stepq:{<queue>}:`, whose hash tag puts them in KEYS[1]'s slot.
(queue/script-keys.ts declares all of this once.)

Returns {CODE.OK, Redis time, the outcomes, back to back (OUTCOME,
        little-endian): code (B), then
        for CODE.OK: job id (B + bytes), 1 if deduplicated else 0 (B), the
            stored record (I4 + bytes; empty for a new SIMPLE job: the
            caller knows what it sent);
        for CODE.QUEUE_FULL: route (H + bytes), queued now (I4), limit (I4);
        for CODE.RATE_LIMITED: quota (I4), the job's number this second (I4);
        for CODE.TENANT_FULL: the tenant's waiting steps (I4), the job's
            steps (I4), quota (I4);
        for CODE.IDEMPOTENCY_CONFLICT: nothing},
        or, in mode 'atomic', {CODE.IDEMPOTENCY_CONFLICT, batch index} or
        {CODE.QUEUE_FULL, route, queued now, limit} or {CODE.RATE_LIMITED,
        quota, number} or {CODE.TENANT_FULL, waiting, adding, quota}.
Events: JOB_SUBMITTED, STEP_SUBMITTED per step (one batch entry for the
SIMPLE jobs of the call).
]]
local SIMPLE = 1
local seqKey = KEYS[1]
local indexKey = KEYS[2]
local atomic = ARGV[2] == 'atomic'
local maxQueued = tonumber(ARGV[3])
local maxRate = tonumber(ARGV[6])
local maxTenantQueued = tonumber(ARGV[7]) or 0
local idemTtl = tonumber(ARGV[4])
local blob = ARGV[5]
local now = NOW

local specs = {}
local pos = 1
while pos <= #blob do
  local spec = {}
  spec.kind, spec.tn, spec.x, spec.ik, spec.ih, spec.rt, spec.body, pos = struct.unpack(JOB_SPEC, blob, pos)
  if spec.ik == '' then spec.ik = nil end
  -- Idempotency keys are per tenant: the tenant's number (digits) before the key.
  if spec.ik then spec.slot = spec.tn .. ':' .. spec.ik end
  if spec.kind == SIMPLE then
    spec.n, spec.r = struct.unpack(SPEC_NAMES, spec.body)
    spec.roots = {[spec.r] = 1}
    spec.steps = 1
  else
    local body = cmsgpack.unpack(spec.body)
    for k, v in pairs(body) do spec[k] = v end
    spec.roots = {}
    for _, st in ipairs(spec.s) do
      if #st.d == 0 then spec.roots[st.r] = (spec.roots[st.r] or 0) + 1 end
    end
    spec.steps = #spec.s
  end
  specs[#specs + 1] = spec
end

-- Pass 1: idempotency keys and limits, before anything is written. A job
-- that cannot be stored gets its error (mode 'each') or stops the batch.
local results = {}
local firstOfKey = {}
for i, spec in ipairs(specs) do
  if spec.ik then
    local stored = redis.call('GET', K.idempotency(spec.slot))
    local conflict = false
    if stored then
      local jobId, digest = string.match(stored, '^([^|]*)|(.*)$')
      if digest ~= spec.ih then conflict = true
      else results[i] = {CODE.OK, jobId, 1, redis.call('GET', K.job(jobId)) or ''} end
    elseif firstOfKey[spec.slot] then
      if specs[firstOfKey[spec.slot]].ih ~= spec.ih then conflict = true else results[i] = {same = firstOfKey[spec.slot]} end
    else
      firstOfKey[spec.slot] = i
    end
    if conflict then
      if atomic then return {CODE.IDEMPOTENCY_CONFLICT, i - 1} end
      results[i] = {CODE.IDEMPOTENCY_CONFLICT, '', '', ''}
    end
  end
end

-- Passes 1b-1d (submit-limits.lua): a route's queue, each tenant's
-- waiting steps, each tenant's submits this second.
local refusal = refuseFullRoutes(specs, results, atomic, maxQueued)
  or refuseOverWaiting(specs, results, atomic, maxTenantQueued)
  or refuseOverRate(specs, results, atomic, maxRate, now)
if refusal then return refusal end

-- A job's id: its sequence number in 8 base-36 digits (more beyond 36^8
-- jobs), then the random characters x.
local function jobIdOf(n, x)
  local lo, hi = n % 1679616, math.floor(n / 1679616)
  local id = DIGITS2[math.floor(hi / 1296) % 1296] .. DIGITS2[hi % 1296] .. DIGITS2[math.floor(lo / 1296)]
    .. DIGITS2[lo % 1296] .. x
  hi = math.floor(hi / 1679616)
  while hi > 0 do
    id = DIGIT[hi % 36 + 1] .. id
    hi = math.floor(hi / 36)
  end
  return id
end

-- Job index entries get explicit ids <created>-<n>, consecutive within a
-- call: no id to parse back per job. They continue after the newest entry
-- (whose time may be ahead of ours if the clock went back).
local indexMs, indexSeq
local function nextIndexId()
  if not indexMs then
    local last = redis.call('XREVRANGE', indexKey, '+', '-', 'COUNT', 1)[1]
    local lastMs, lastSeq = 0, 0
    if last then
      local a, b = string.match(last[1], '^(%d+)-(%d+)$')
      lastMs, lastSeq = tonumber(a), tonumber(b)
    end
    if lastMs < now then indexMs, indexSeq = now, -1 else indexMs, indexSeq = lastMs, lastSeq end
    indexMs = string.format('%.0f', indexMs)
  end
  indexSeq = indexSeq + 1
  return indexMs .. '-' .. NUM(indexSeq), indexSeq
end

-- Pass 2: store, with consecutive sequence numbers.
local count = 0
for i = 1, #specs do
  if not results[i] then count = count + 1 end
end
local seq = count > 0 and redis.call('INCRBY', seqKey, count) - count or 0
local routesSeen = {}
local function route(r)
  if not routesSeen[r] then
    routesSeen[r] = true
    -- A route with requirements seen for the first time: the workers that
    -- meet them learn of it now (worker/claim-routes.ts), not at their next
    -- heartbeat.
    if redis.call('SADD', K.routes, r) == 1 and string.find(r, '?', 1, true) then
      redis.call('PUBLISH', K.newRoutes, r)
    end
  end
end

for i, spec in ipairs(specs) do
  if not results[i] then
    seq = seq + 1
    local jobId = jobIdOf(seq, spec.x)
    if spec.kind == SIMPLE then
      local key = K.job(jobId)
      local ix, ixSeq = nextIndexId()
      redis.call('XADD', indexKey, ix, 'j', jobId)
      local flags, ixs, extra = 0, 0, ''
      if tonumber(indexMs) == now and ixSeq < 4294967296 then
        flags, ixs = INDEX_FLAG, ixSeq
      else
        extra = tailIndex(ix)
      end
      putRecord(key, struct.pack(HEADERS_1, 2, flags, JS.QUEUED, 1, now, 0, 0, spec.rt, ixs, spec.tn, S.QUEUED, Q_CODE.l, 0, 0, 0, 0, 0)
        .. spec.body .. extra)
      route(spec.r)
      -- A bare job id in a ready list stands for its first step.
      pushReady(spec.r, spec.tn, jobId)
      pushEvent('submitted', jobId, 1, spec.n, spec.r, 0, spec.tn)
      addLoad(spec.tn, 'u', 1)
      addCount('q', spec.tn, spec.r, 1)
      results[i] = {CODE.OK, jobId, 0, ''}
    else
      -- Generic: the job as a table, through the shared helpers. What was
      -- gathered goes first, so the ready lists stay in submission order.
      flushWrites()
      -- Fields holding their default are left out (see queue/job-record.ts): a
      -- smaller record is cheaper to store and to decode in every transition.
      local job = {sq = seq, st = JS.QUEUED, c = now, rt = spec.rt, ik = spec.ik, nb = spec.nb, s = {}}
      if spec.tn ~= 0 then job.tn = spec.tn end
      if spec.p ~= 0 then job.p = spec.p end
      if spec.fp ~= POLICY.FAIL_FAST then job.fp = spec.fp end
      if #spec.lb > 0 then job.lb = spec.lb end
      if spec.tp then job.tp = spec.tp end
      for j, st in ipairs(spec.s) do
        local s = {n = st.n, o = st.o, r = st.r, ma = st.ma, bi = st.bi, bm = st.bm, a = 0, st = S.WAITING, nb = spec.nb}
        if #st.d > 0 then
          s.d = st.d
          s.w = #st.d
        end
        if st.to > 0 then s.to = st.to end
        if st.qt > 0 then s.qt = st.qt end
        job.s[j] = s
        addCount('w', spec.tn, st.r, 1)
        route(st.r)
      end
      job.ix = nextIndexId()
      redis.call('XADD', indexKey, job.ix, 'j', jobId)
      for j, s in ipairs(job.s) do
        if not s.d then enqueue(jobId, job, j, now, true) end
      end
      addLoad(spec.tn, 'u', #job.s)
      local stored = saveJob(jobId, job)
      emit(jobId, job, nil, EV.JOB_SUBMITTED, nil)
      for j = 1, #job.s do emit(jobId, job, j, EV.STEP_SUBMITTED, nil) end
      results[i] = {CODE.OK, jobId, 0, stored}
    end
    if spec.ik then
      redis.call('SET', K.idempotency(spec.slot), jobId .. '|' .. spec.ih, 'PX', idemTtl)
    end
  end
end

local out = {}
for i = 1, #specs do
  local r = results[i]
  if r.same then
    -- The same request twice in one call: the second gets the first's job.
    r = results[r.same]
    if r[1] == CODE.OK then r = {r[1], r[2], 1, r[4]} end
  end
  if r[1] == CODE.OK then
    out[i] = struct.pack(OUTCOME_OK, r[1], #r[2], r[2], r[3], #r[4], r[4])
  elseif r[1] == CODE.QUEUE_FULL then
    out[i] = struct.pack(OUTCOME_QUEUE_FULL, r[1], #r[2], r[2], r[3], r[4])
  elseif r[1] == CODE.RATE_LIMITED then
    out[i] = struct.pack(OUTCOME_RATE_LIMITED, r[1], r[2], r[3])
  elseif r[1] == CODE.TENANT_FULL then
    out[i] = struct.pack(OUTCOME_TENANT_FULL, r[1], r[2], r[3], r[4])
  else
    out[i] = string.char(r[1])
  end
end
return {CODE.OK, now, table.concat(out)}
