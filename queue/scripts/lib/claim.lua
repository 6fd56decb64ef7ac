--[[
claim.lua: leasing ready steps to a worker, shared by claimSteps and
settleSteps. Included in the library after prelude.lua.
]]

-- Leases up to `want` steps of `routes` to `workerId`, best first (higher
-- priority, then older job), after promoting the routes' due scheduled
-- steps; a step whose queue timeout passed while it waited fails instead.
-- Returns the claimed steps (see claimSteps.lua for their fields) and the
-- earliest scheduled time of these routes, or nil.
local function claimReady(workerId, leaseMs, want, routes, now)
  local leasesKey = K.leases

  -- The best ready step across the routes: the lowest score. The list holds
  -- only fresh priority-0 steps, so its head's score follows from its id.
  local function best()
    local bestScore, bestRoute, bestId, fromList = nil, nil, nil, false
    for _, r in ipairs(routes) do
      local head = redis.call('LINDEX', K.readyList(r), 0)
      if head then
        local score = readyScore(0, seqOfJobId(head))
        if not bestScore or score < bestScore then
          bestScore, bestRoute, bestId, fromList = score, r, head, true
        end
      end
      local z = redis.call('ZRANGE', K.readyZset(r), 0, 0, 'WITHSCORES')
      if z[1] then
        local score = tonumber(z[2])
        if not bestScore or score < bestScore then
          bestScore, bestRoute, bestId, fromList = score, r, z[1], false
        end
      end
    end
    return bestId, bestRoute, fromList
  end

  local claimed = {}

  -- Leases the step whose id was just popped from the list (fromList) or the
  -- zset; drops stale entries (steps cancelled while queued).
  local function take(id, fromList)
    local jobId, idx = parseStepId(id)
    local job = jobId and loadJob(jobId)
    local s = job and job.s[idx]
    if not (s and s.q == (fromList and 'l' or 'z')) then return end
    s.q = nil
    if s.st == S.QUEUED then
      if s.qt then redis.call('ZREM', K.queueDeadlines, id) end
      if s.qt and s.rdy and s.rdy + s.qt <= now then
        local why = 'no worker started it within queue_timeout_ms=' .. s.qt
        stopStep(jobId, job, idx, S.FAILED, newError(EC.QUEUE_TIMEOUT, why, s.a, '', now, false), now, false)
        afterStepFinal(jobId, job, idx, now)
      else
        s.a = s.a + 1
        s.st = S.RUNNING
        s.sa = now
        s.wk = workerId
        local deadline = now + leaseMs
        redis.call('ZADD', leasesKey, deadline, leaseMember(jobId, idx, s.a))
        s.ld = deadline
        syncJob(jobId, job, now)
        emit(jobId, job, idx, EV.STEP_CLAIMED, {'w', workerId})
        local deps = {}
        for _, d in ipairs(s.d or NONE) do
          deps[#deps + 1] = {n = job.s[d].n, rs = job.s[d].rs or ''}
        end
        claimed[#claimed + 1] = {j = jobId, i = idx - 1, a = s.a, ld = deadline, n = s.n, r = s.r, o = s.o,
          to = s.to, dp = deps}
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
    if #routes == 1 and redis.call('ZCARD', K.readyZset(routes[1])) == 0 then
      -- The common case: one route, only fresh default-priority steps. The list
      -- is already in order: pop what is needed at once.
      local list = K.readyList(routes[1])
      while #claimed < want and popped < want + 1000 do
        local n = want - #claimed
        local ids = redis.call('LPOP', list, n)
        if not ids then break end
        popped = popped + #ids
        for _, id in ipairs(ids) do take(id, true) end
        if #ids < n then break end
        maybeMore = true
      end
      -- A full pop may have left more behind: wake another idle worker.
      if maybeMore and #claimed == want then wake(routes[1]) end
    else
      while #claimed < want and popped < want + 1000 do
        local id, route, fromList = best()
        if not id then break end
        popped = popped + 1
        if fromList then
          redis.call('LPOP', K.readyList(route))
        else
          redis.call('ZREM', K.readyZset(route), id)
        end
        take(id, fromList)
      end

      -- More work left than this worker took: wake another idle worker.
      if #claimed == want and want > 0 then
        for _, r in ipairs(routes) do
          if redis.call('LLEN', K.readyList(r)) > 0 or redis.call('ZCARD', K.readyZset(r)) > 0 then wake(r) end
        end
      end
    end
  end

  fill()
  -- Short of work: scheduled steps that are due now come first. (Under a
  -- backlog they wait for this, or for the sweeper, at most a second.)
  if #claimed < want then
    local promoted = 0
    for _, r in ipairs(routes) do promoted = promoted + promoteDue(r, now, 1000) end
    if promoted > 0 then fill() end
  end

  -- The next due time matters only to a worker that is about to wait.
  if #claimed == want then return claimed, nil end
  local due = nil
  for _, r in ipairs(routes) do
    local first = redis.call('ZRANGE', K.delayed(r), 0, 0, 'WITHSCORES')
    if first[2] then
      local t = tonumber(first[2])
      if not due or t < due then due = t end
    end
  end
  return claimed, due
end
