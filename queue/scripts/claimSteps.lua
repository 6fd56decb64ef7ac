--[[
claimSteps.lua: QUEUED -> RUNNING.
Leases up to ARGV[4] steps from the worker's routes, best first (higher
priority, then older job), after promoting the routes' due scheduled steps.
A step whose queue timeout passed while it waited fails instead.

KEYS[1] leases zset
KEYS[2] events stream
ARGV[1] key prefix
ARGV[2] worker id
ARGV[3] lease duration, ms
ARGV[4] most steps to claim (0 only promotes and reports the next due time)
ARGV[5..] the routes the worker serves

Returns {CODE.OK, msgpack {c = claimed steps, due = earliest scheduled time
of these routes or nil, now = Redis time}}, each claimed step
{j = job id, i = 0-based index, a = attempt (the fencing token),
 ld = lease deadline, n = name, r = route, o = operation bytes,
 to = timeout ms, dp = {{n = dependency name, rs = its result bytes}}}.
Events: STEP_QUEUED (promoted), STEP_CLAIMED, STEP_FAILED and JOB_* (queue
timeout).
]]
local leasesKey = KEYS[1]
local workerId = ARGV[2]
local leaseMs = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local routes = {}
for i = 5, #ARGV do routes[#routes + 1] = ARGV[i] end
local now = nowMs()

for _, r in ipairs(routes) do promoteDue(r, now, 1000) end

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
local popped = 0
-- Stale list entries (steps cancelled while queued) are dropped as they are
-- met; the bound keeps one call short even behind many of them.
while #claimed < want and popped < want + 1000 do
  local id, route, fromList = best()
  if not id then break end
  popped = popped + 1
  if fromList then
    redis.call('LPOP', K.readyList(route))
  else
    redis.call('ZREM', K.readyZset(route), id)
  end
  local jobId, idx = parseStepId(id)
  local job = jobId and loadJob(jobId)
  local s = job and job.s[idx]
  if s and s.q == (fromList and 'l' or 'z') then
    s.q = nil
    if s.st == S.QUEUED then
      redis.call('ZREM', K.queueDeadlines, id)
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
end

-- More work left than this worker took: wake another idle worker.
if #claimed == want and want > 0 then
  for _, r in ipairs(routes) do
    if redis.call('LLEN', K.readyList(r)) > 0 or redis.call('ZCARD', K.readyZset(r)) > 0 then wake(r) end
  end
end

local due = nil
for _, r in ipairs(routes) do
  local first = redis.call('ZRANGE', K.delayed(r), 0, 0, 'WITHSCORES')
  if first[2] then
    local t = tonumber(first[2])
    if not due or t < due then due = t end
  end
end
return {CODE.OK, cmsgpack.pack({c = claimed, due = due, now = now})}
