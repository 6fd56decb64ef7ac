--[[
claim.lua: leasing ready steps to a worker, shared by claimSteps and
settleSteps. Included in the library after complete.lua.

Claimed steps go back to the worker as one string of CLAIMED records
(wire/layouts.ts): job id, 0-based step index, attempt (the fencing token),
lease deadline, the job's submit time (CLAIMED_HEAD); the step's SPEC as its record stores it; and
its dependencies' results as msgpack {{n = name, rs = result bytes}, ...}
(I4 length + bytes, empty when it has none). queue/claimed-steps.ts reads
them.
]]

local NO_DEPS = '\0\0\0\0' -- struct.pack('<I4', 0); load-time code sees no globals

-- QUEUED -> RUNNING for step idx of a format-2 record `raw` without
-- decoding it: rewrites the headers, appends a TAIL_CLAIMED item, and
-- returns the new record, the attempt, and the step's name, route and SPEC
-- bytes. Returns nil when the record needs the generic path (its job has a
-- log, or the step has dependencies or a queue timeout) or the step is not
-- QUEUED in `where`.
local function claimInPlace(raw, idx, where, workerId, now, deadline)
  if string.byte(raw, 1) ~= 2 then return nil end
  local _, flags, jst, n, c, jsa, jf, rt, ixs, tn, st, q, fl, a, _, _, f = struct.unpack(HEADERS_1, raw)
  if bit.band(flags, LOG_FLAG + TRACE_FLAG) ~= 0 or idx > n then return nil end
  if n == 1 then
    if fl ~= 0 or st ~= S.QUEUED or q ~= where then return nil end
    a = a + 1
    -- A one-step job: both headers in one piece, and the spec (which the
    -- reply needs anyway) reused for the record.
    local name, route, spec, specEnd = specBytesOf(raw, 1, 1)
    local record = struct.pack(HEADERS_1, 2, flags, JS.RUNNING, 1, c, jsa == 0 and now or jsa, jf, rt, ixs, tn,
      S.RUNNING, 0, 0, a, deadline, now, f) .. spec .. string.sub(raw, specEnd + 1) .. tailClaimed(idx, a, now, workerId)
    return record, a, name, route, spec, tn, c
  end
  local at = stepHeaderAt(idx)
  st, q, fl, a, _, _, f = struct.unpack(STEP_HDR, raw, at)
  if fl ~= 0 or st ~= S.QUEUED or q ~= where then return nil end
  a = a + 1
  local head = string.sub(raw, 1, JOB_HDR_SIZE)
  if jst ~= JS.RUNNING or jsa == 0 then
    head = struct.pack(JOB_HDR, 2, flags, JS.RUNNING, n, c, jsa == 0 and now or jsa, jf, rt, ixs, tn)
  end
  local record = head .. string.sub(raw, JOB_HDR_SIZE + 1, at - 1)
    .. struct.pack(STEP_HDR, S.RUNNING, 0, 0, a, deadline, now, f)
    .. string.sub(raw, at + STEP_HDR_SIZE)
    .. tailClaimed(idx, a, now, workerId)
  local name, route, spec = specBytesOf(raw, n, idx)
  return record, a, name, route, spec, tn, c
end

-- How many tenants in turn order a claim looks at for one below its
-- running quota; beyond them it waits for a later claim.
local QUOTA_LOOKAHEAD = 32

-- A worker's tenant filter (--tenants, --exclude-tenants) from its claim
-- argument: '' (none), '+<n>,<n>...' (only these tenants' steps) or
-- '-<n>,...' (never these). Returns nil or {allow = {n...}} or
-- {deny = {[n] = true}, ndeny = count}; tenant numbers as the rotation's
-- members (strings).
local function tenantFilter(arg)
  if arg == nil or arg == '' then return nil end
  local list = {}
  for n in string.gmatch(string.sub(arg, 2), '[^,]+') do list[#list + 1] = n end
  if string.sub(arg, 1, 1) == '+' then return {allow = list} end
  local deny = {}
  for _, n in ipairs(list) do deny[n] = true end
  return {deny = deny, ndeny = #list}
end

-- The tenants of route r's rotation a claim considers, in turn order (lowest
-- virtual time first): with an allow list, those of its tenants in the
-- rotation (one ZSCORE each, so a tenant far back in the rotation is not
-- missed); otherwise the first one, or QUOTA_LOOKAHEAD when quotas may skip
-- some, plus as many as the deny list could skip.
local function turnOrder(r, quotas, filter)
  local key = K.fair(r)
  if filter and filter.allow then
    local list = {}
    for _, t in ipairs(filter.allow) do
      local score = redis.call('ZSCORE', key, t)
      if score then list[#list + 1] = {t, tonumber(score)} end
    end
    table.sort(list, function(a, b) return a[2] < b[2] end)
    local order = {}
    for i, e in ipairs(list) do order[i] = e[1] end
    return order
  end
  local n = (quotas and QUOTA_LOOKAHEAD or 1) + (filter and filter.ndeny or 0)
  return redis.call('ZRANGE', key, 0, n - 1)
end

-- Whether a live worker other than workerId claims from route r now.
local function otherServes(r, workerId, now)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', K.routeWorkers(r), now, '+inf', 'LIMIT', 0, 2)) do
    if id ~= workerId then return true end
  end
  return false
end

-- The lane whose turn it is on route r: the lane of the tenant with the
-- lowest virtual time that is below its running quota (when `quotas`, some
-- tenant may have one) and that the worker's tenant `filter` lets it serve,
-- after dropping from the rotation tenants whose lanes turned out empty
-- (their last ready steps were cancelled); lanes in `skip` (their head is
-- left for another worker during this call) are passed over. Returns the
-- lane, its tenant, its list's head and its zset's first {id, score}; nil
-- when no tenant (among those turnOrder considers) may have a ready step of
-- r now.
local function laneInTurn(r, quotas, filter, skip)
  local key = K.fair(r)
  for _ = 1, 100 do
    local dropped = false
    for _, t in ipairs(turnOrder(r, quotas, filter)) do
      local tn = tonumber(t)
      local cap = quotas and runningQuota(tn) or 0
      if not (filter and filter.deny and filter.deny[t]) and not (skip and skip[laneOf(r, tn)]) and (cap == 0 or loadOf(tn, 'r') < cap) then
        local lane = laneOf(r, tn)
        local head = redis.call('LINDEX', K.readyList(lane), 0)
        local z = redis.call('ZRANGE', K.readyZset(lane), 0, 0, 'WITHSCORES')
        if head or z[1] then return lane, tn, head, z end
        -- The rotation changed: read it again.
        redis.call('ZREM', key, t)
        dropped = true
        break
      end
    end
    if not dropped then return nil end
  end
  return nil
end

-- After tenant tn's lane on route r gave up a step: a tenant whose lane is
-- now empty leaves the rotation; otherwise a claim advances its virtual
-- time (a stale entry, dropped, does not).
local function served(r, tn, lane, claimed)
  if redis.call('LLEN', K.readyList(lane)) == 0 and redis.call('ZCARD', K.readyZset(lane)) == 0 then
    redis.call('ZREM', K.fair(r), tn)
  elseif claimed then
    redis.call('ZINCRBY', K.fair(r), 1, tn)
  end
end

-- Leases up to `want` steps of `routes` to `workerId`, best first (higher
-- priority, then older job) within the tenants' turns, after promoting the routes' due scheduled
-- steps; a step whose queue timeout passed while it waited fails instead.
-- Returns how many were claimed, their CLAIMED records as one string, and
-- the earliest scheduled time of these routes (nil when the worker got all
-- it asked for, or nothing is scheduled).
local function claimReady(workerId, leaseMs, want, routes, now, filterArg)
  local deadline = now + leaseMs
  local count = 0
  local out = {}
  local filter = tenantFilter(filterArg)
  -- Lanes whose head this worker leaves for another during this call (a
  -- table only once there is one), and when it may take it after all.
  local skip, skipUntil = nil, nil
  W.worker = workerId

  -- The best ready step across the routes: on each route, the head of the
  -- lane whose turn it is (fair share), then across routes the lowest score.
  -- A list holds only fresh priority-0 steps, so its head's score follows
  -- from its id.
  local function best()
    local bestScore, bestRoute, bestId, fromList, bestTn, bestLane = nil, nil, nil, false, 0, nil
    local quotas = limits().running > 0 or tenantQuotasSet()
    for _, r in ipairs(routes) do
      local lane, tn, head, z = laneInTurn(r, quotas, filter, skip)
      if head then
        local score = readyScore(0, seqOfJobId(head))
        if not bestScore or score < bestScore then
          bestScore, bestRoute, bestId, fromList, bestTn, bestLane = score, r, head, true, tn, lane
        end
      end
      if z and z[1] then
        local score = tonumber(z[2])
        if not bestScore or score < bestScore then
          bestScore, bestRoute, bestId, fromList, bestTn, bestLane = score, r, z[1], false, tn, lane
        end
      end
    end
    return bestId, bestRoute, fromList, bestTn, bestLane
  end

  -- Adds a CLAIMED record to the reply, in pieces joined once at the end.
  local function push(jobId, idx, a, spec, deps, created, readyAt, tp)
    count = count + 1
    local n = #out
    out[n + 1] = struct.pack(CLAIMED_HEAD, #jobId, jobId, idx - 1, a, deadline, created, readyAt, #tp, tp)
    out[n + 2] = spec
    out[n + 3] = deps
  end

  -- Leases the step whose id was just popped from the list (fromList) or the
  -- zset; `raw` is its record if already read. Drops stale entries (steps
  -- cancelled while queued).
  -- (jobId, idx, key: what the caller already derived from id.)
  local function take(id, fromList, raw, jobId, idx, key)
    if not jobId then jobId, idx = parseStepId(id) end
    if not jobId then return end
    key = key or K.job(jobId)
    raw = raw or getRecord(key)
    if not raw then return end
    local record, a, name, route, spec, tn, created = claimInPlace(raw, idx, fromList and 1 or 2, workerId, now, deadline)
    if record then
      putRecord(key, record)
      local leases = W.leases
      leases[#leases + 1] = deadline
      leases[#leases + 1] = leaseMember(jobId, idx, a)
      addLoad(tn, 'r', 1)
      addCount('q', tn, route, -1)
      addCount('r', tn, route, 1)
      pushEvent('claimed', jobId, idx, name, route, a, tn)
      -- In place: the step has been ready since its job's submit (record.lua stepFlags).
      push(jobId, idx, a, spec, NO_DEPS, created, created, '')
      return
    end
    -- The generic path reads and writes Redis directly: what was gathered
    -- so far goes first.
    flushWrites()
    local job = decodeJob(jobId, raw)
    local s = job.s[idx]
    if not (s and s.q == (fromList and 'l' or 'z')) then return end
    if s.st == S.QUEUED and s.av == workerId and now < (s.avu or 0) and otherServes(s.r, workerId, now) then
      -- Its last attempt failed on this worker, and another live worker
      -- claims from its route: it stays first in line for that one until
      -- s.avu, then anyone may take it (this worker wakes up by then).
      local lane = laneOf(s.r, job.tn or 0)
      if fromList then
        redis.call('LPUSH', K.readyList(lane), id)
      else
        redis.call('ZADD', K.readyZset(lane), int(readyScore(job.p or 0, job.sq)), id)
      end
      skip = skip or {}
      skip[lane] = true
      if not skipUntil or s.avu < skipUntil then skipUntil = s.avu end
      return
    end
    s.q = nil
    if s.st == S.QUEUED then
      s.av, s.avu = nil, nil
      if s.qt then redis.call('ZREM', K.queueDeadlines, id) end
      if s.qt and s.rdy and s.rdy + s.qt <= now then
        local why = 'no worker started it within queue_timeout_ms=' .. s.qt
        stopStep(jobId, job, idx, S.FAILED, newError(EC.QUEUE_TIMEOUT, why, s.a, '', now, false), now, false)
        afterStepFinal(jobId, job, idx, now)
      else
        s.a = s.a + 1
        setState(s, job.tn or 0, S.RUNNING)
        s.sa = now
        s.wk = workerId
        s.ld = deadline
        redis.call('ZADD', K.leases, deadline, leaseMember(jobId, idx, s.a))
        addLoad(job.tn or 0, 'r', 1)
        syncJob(jobId, job, now)
        emit(jobId, job, idx, EV.STEP_CLAIMED, {'w', workerId})
        local deps = NO_DEPS
        if s.d then
          local list = {}
          for _, d in ipairs(s.d) do
            list[#list + 1] = {n = job.s[d].n, rs = job.s[d].rs or ''}
          end
          local packed = cmsgpack.pack(list)
          deps = struct.pack('<I4', #packed) .. packed
        end
        push(jobId, idx, s.a, struct.pack(SPEC, #s.n, s.n, #s.r, s.r, #s.o, s.o, s.to or 0), deps, job.c, s.rdy or job.c, job.tp or '')
        s.rdy = nil
      end
    end
    saveJob(jobId, job)
  end

  -- Pops and leases ready steps until `want` are claimed or none is left.
  local function fill()
    -- Stale list entries are dropped as they are met; the bound keeps one call
    -- short even behind many of them.
    local popped = 0
    local maybeMore = false
    local r = routes[1]
    -- One read says whether one tenant (or none) has ready steps, and which.
    -- (A worker with a tenant filter always takes the general path.)
    local members = #routes == 1 and not filter and redis.call('ZRANGE', K.fair(r), 0, 1) or nil
    local tenants = members and #members or 2
    local lane, tn = r, 0
    if tenants == 1 then
      tn = tonumber(members[1])
      lane = laneOf(r, tn)
    end
    if tenants <= 1 and redis.call('ZCARD', K.readyZset(lane)) == 0 then
      -- The common case: one route, one tenant with ready steps, only fresh
      -- default-priority ones. The list is already in order: pop what is
      -- needed at once (within the tenant's running quota), and read their
      -- records in one call.
      local list = K.readyList(lane)
      local seen = {}
      local drained = false
      local upTo = want
      local cap = runningQuota(tn)
      if cap > 0 then upTo = math.min(want, count + math.max(0, cap - loadOf(tn, 'r'))) end
      while count < upTo and popped < want + 1000 do
        local n = upTo - count
        local ids = redis.call('LPOP', list, n)
        if not ids then drained = true break end
        popped = popped + #ids
        local keys, jobIds, idxs = {}, {}, {}
        for i, id in ipairs(ids) do
          local jobId, idx = parseStepId(id)
          jobIds[i], idxs[i] = jobId, idx
          keys[i] = jobId and K.job(jobId) or id
        end
        local raws = redis.call('MGET', unpack(keys))
        for i, id in ipairs(ids) do
          -- A job met before in this call may have changed since the MGET.
          local key = keys[i]
          if jobIds[i] then take(id, true, not seen[key] and raws[i] or nil, jobIds[i], idxs[i], key) end
          seen[key] = true
        end
        if #ids < n then drained = true break end
        -- A step left for another worker went back to the head: stop here.
        if skip then break end
        maybeMore = true
      end
      -- The tenant's lane ran dry: it leaves the rotation (served checks, as
      -- a step taken meanwhile could have queued another).
      if drained and tenants == 1 then served(r, tn, lane, false) end
      -- A full pop may have left more behind: wake another idle worker.
      if maybeMore and count == want then wake(r) end
    else
      while count < want and popped < want + 1000 do
        local id, route, fromList, owner, from = best()
        if not id then break end
        popped = popped + 1
        if fromList then
          redis.call('LPOP', K.readyList(from))
        else
          redis.call('ZREM', K.readyZset(from), id)
        end
        local before = count
        take(id, fromList)
        served(route, owner, from, count > before)
      end

      -- More work left than this worker took: wake another idle worker.
      if count == want and want > 0 then
        for _, rr in ipairs(routes) do
          if redis.call('ZCARD', K.fair(rr)) > 0 then wake(rr) end
        end
      end
    end
  end

  fill()
  -- Short of work: scheduled steps that are due now come first. (Under a
  -- backlog they wait for this, or for the sweeper, at most a second.)
  if count < want then
    local promoted = 0
    for _, r in ipairs(routes) do promoted = promoted + promoteDue(r, now, 1000) end
    if promoted > 0 then fill() end
  end
  flushWrites()

  -- The next due time matters only to a worker that is about to wait.
  if count == want then return count, table.concat(out), nil end
  local due = skipUntil
  for _, r in ipairs(routes) do
    local first = redis.call('ZRANGE', K.delayed(r), 0, 0, 'WITHSCORES')
    if first[2] then
      local t = tonumber(first[2])
      if not due or t < due then due = t end
    end
  end
  return count, table.concat(out), due
end
