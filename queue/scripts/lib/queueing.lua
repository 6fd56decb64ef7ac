--[[
queueing.lua: where ready steps wait. Included after events.lua.

A ready step sits in its tenant's lane of its route (record-writes.lua,
laneOf): the lane's list (fresh, default priority) or zset (priority, then
job age); or in the route's delayed zset until its not-before time; s.q
says which. A tenant with a ready step is in the route's rotation
(joinRotation). Idle workers block on the route's wake-up marker.
]]

-- Wakes one idle worker of the route (a marker that BLPOP returns).
local function wake(route)
  local key = K.wake(route)
  if redis.call('LLEN', key) == 0 then
    redis.call('RPUSH', key, '1')
  end
end

-- Makes step idx ready: delayed while its not-before time is in the future,
-- otherwise queued. Fresh default-priority steps go to the list of the
-- tenant's lane (cheap, and in submission order); every other ready step
-- goes to the lane's zset, ordered by priority then job age.
local function enqueue(jobId, job, idx, now, fresh)
  local s = job.s[idx]
  local id = stepIdOf(jobId, idx)
  local tn = job.tn or 0
  if s.nb and s.nb > now then
    setState(s, tn, S.SCHEDULED)
    s.q = 'd'
    redis.call('ZADD', K.delayed(s.r), s.nb, id)
  else
    s.nb = nil
    setState(s, tn, S.QUEUED)
    if s.q == 'l' then
      -- Still has an entry in the list (it was never popped): reuse it.
    elseif fresh and not job.p then
      s.q = 'l'
      redis.call('RPUSH', K.readyList(laneOf(s.r, tn)), id)
      joinRotation(s.r, tn)
    else
      s.q = 'z'
      redis.call('ZADD', K.readyZset(laneOf(s.r, tn)), int(readyScore(job.p or 0, job.sq)), id)
      joinRotation(s.r, tn)
    end
    -- When it became ready: the claim reports it (CLAIMED's readyAt, for
    -- stepq_step_queued_seconds) and the queue timeout counts from it. Kept
    -- only when it is not the job's submit time (which a claim knows anyway);
    -- a step holding it is claimed through the whole record (stepFlags).
    if s.qt or now ~= job.c then s.rdy = now else s.rdy = nil end
    if s.qt then redis.call('ZADD', K.queueDeadlines, now + s.qt, id) end
  end
  wake(s.r)
end

-- Takes a waiting step out of the ready and delayed structures. List
-- entries stay behind: the claimer drops them when it pops them, because
-- LREM would cost O(queue length). A tenant whose lane this empties stays in
-- the rotation until a claimer finds the lane empty.
local function unqueue(jobId, job, idx)
  local s = job.s[idx]
  local id = stepIdOf(jobId, idx)
  if s.q == 'z' then
    redis.call('ZREM', K.readyZset(laneOf(s.r, job.tn or 0)), id)
    s.q = nil
  elseif s.q == 'd' then
    redis.call('ZREM', K.delayed(s.r), id)
    s.q = nil
  end
  redis.call('ZREM', K.queueDeadlines, id)
end

-- Steps waiting on `route`: each tenant's lanes, and the delayed zset; in
-- O(tenants with ready steps on it). A stale list entry (its step was
-- cancelled) counts until a claimer drops it.
local function routeDepth(route)
  local n = redis.call('ZCARD', K.delayed(route))
  for _, t in ipairs(redis.call('ZRANGE', K.fair(route), 0, -1)) do
    local lane = laneOf(route, tonumber(t))
    n = n + redis.call('LLEN', K.readyList(lane)) + redis.call('ZCARD', K.readyZset(lane))
  end
  return n
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
