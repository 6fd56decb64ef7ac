--[[
submit-limits.lua: the limits submitJobs checks before it stores anything.
Included in the library after limits.lua.

Each check marks the jobs it refuses in `results` (mode 'each'), or
returns the refusal that stops the whole call (mode 'atomic'); a job
already refused (an idempotency conflict, an earlier check) is skipped.
]]

-- Pass 1b: a route may hold at most maxQueued waiting steps (0: no limit).
local function refuseFullRoutes(specs, results, atomic, maxQueued)
  if maxQueued <= 0 then return nil end
  local queued, adding = {}, {}
  for i, spec in ipairs(specs) do
    if not results[i] then
      local full = nil
      for route, n in pairs(spec.roots) do
        if not queued[route] then
          queued[route] = routeDepth(route)
          adding[route] = 0
        end
        if queued[route] + adding[route] + n > maxQueued then full = route end
      end
      if full then
        local refusal = {CODE.QUEUE_FULL, full, queued[full] + adding[full], maxQueued}
        if atomic then return refusal end
        results[i] = refusal
      else
        for route, n in pairs(spec.roots) do adding[route] = adding[route] + n end
      end
    end
  end
  return nil
end

-- Pass 1c: each tenant's steps waiting to run (not final, not running),
-- against its quota: its own value, else maxWaiting (0: none).
local function refuseOverWaiting(specs, results, atomic, maxWaiting)
  if maxWaiting <= 0 and not tenantQuotasSet() then return nil end
  local waiting, maxes = {}, {}
  for i, spec in ipairs(specs) do
    local tn = spec.tn
    if not maxes[tn] then maxes[tn] = quotaOf(tn, 'waiting', maxWaiting) end
    if not results[i] and maxes[tn] > 0 then
      waiting[tn] = waiting[tn] or (loadOf(tn, 'u') - loadOf(tn, 'r'))
      if waiting[tn] + spec.steps > maxes[tn] then
        local refusal = {CODE.TENANT_FULL, waiting[tn], spec.steps, maxes[tn]}
        if atomic then return refusal end
        results[i] = refusal
      else
        waiting[tn] = waiting[tn] + spec.steps
      end
    end
  end
  return nil
end

-- Pass 1d: each tenant's submits this second (Redis time), against its
-- quota: its own value, else maxRate (0: none). Last, so that a job
-- refused for another reason does not count; the accepted ones are counted.
local function refuseOverRate(specs, results, atomic, maxRate, now)
  if maxRate <= 0 and not tenantQuotasSet() then return nil end
  local counts = {}
  local second = math.floor(now / 1000)
  for i, spec in ipairs(specs) do
    local c = counts[spec.tn]
    if not c then
      local key = K.submitRate(spec.tn .. ':' .. second)
      c = {key = key, max = quotaOf(spec.tn, 'rate', maxRate), adding = 0}
      c.used = c.max > 0 and tonumber(redis.call('GET', key) or '0') or 0
      counts[spec.tn] = c
    end
    if not results[i] and c.max > 0 then
      if c.used + c.adding >= c.max then
        local refusal = {CODE.RATE_LIMITED, c.max, c.used + c.adding + 1}
        if atomic then return refusal end
        results[i] = refusal
      else
        c.adding = c.adding + 1
      end
    end
  end
  for _, c in pairs(counts) do
    if c.adding > 0 then
      redis.call('INCRBY', c.key, c.adding)
      redis.call('PEXPIRE', c.key, 2000)
    end
  end
  return nil
end
