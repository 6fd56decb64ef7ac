--[[
retryStep.lua: FAILED -> QUEUED. Takes a dead-lettered step out of the
dead-letter set and queues it with a fresh set of attempts (earlier errors
are kept). Steps that were cancelled because of this failure (fail fast, or
a dependency that failed), directly or through others, come back too:
waiting for their dependencies again, or queued at once. The job is no
longer final.

KEYS[1] job: the job's record
KEYS[2] dead: dead-letter zset
KEYS[3] events: events stream
KEYS[4] eventsExtra: events stream's batch count
KEYS[5] queueDeadlines: queue-timeout deadlines zset
KEYS[6] load: tenant load hash (each tenant's unfinished and running steps)
KEYS[7] counts: route counts hash (each route's steps by state, per tenant)
ARGV[1] key prefix
ARGV[2] job id
ARGV[3] step index, 0-based
Derived keys (named by what the script reads, so not declarable up front):
their logs (K.log), route ready lists (K.readyList), ready zsets
(K.readyZset), tenant rotations (K.fair), delayed zsets (K.delayed), wake-up
markers (K.wake). Like the KEYS they start with the queue's prefix
`stepq:{<queue>}:`, whose hash tag puts them in KEYS[1]'s slot.
(queue/script-keys.ts declares all of this once.)

Returns {CODE.OK, job state} or {CODE.JOB_NOT_FOUND | STEP_NOT_FOUND} or
{CODE.WRONG_STATE, step state}.
Events: STEP_QUEUED for the step and every step that comes back ready (the
others when their dependencies succeed).
]]
local deadKey = KEYS[2]
local jobId = ARGV[2]
local idx = tonumber(ARGV[3]) + 1
local now = NOW

local job = loadJob(jobId)
if not job then return {CODE.JOB_NOT_FOUND} end
local s = job.s[idx]
if not s then return {CODE.STEP_NOT_FOUND} end
if s.st ~= S.FAILED then return {CODE.WRONG_STATE, s.st} end

-- Which steps come back: the step, and (transitively) every step whose
-- cancellation names a returning step as its cause.
local back = {[idx] = true}
local changed = true
while changed do
  changed = false
  for j, o in ipairs(job.s) do
    local last = o.e and o.e[#o.e]
    if not back[j] and o.st == S.CANCELLED and last and last.by and back[last.by] then
      back[j] = true
      changed = true
    end
  end
end

if redis.call('ZREM', deadKey, stepIdOf(jobId, idx)) == 1 then addCount('d', job.tn or 0, s.r, -1) end
job.f, job.x, job.fc, job.cx = nil, nil, nil, nil
for j in pairs(back) do
  local o = job.s[j]
  o.rl = o.a -- a fresh set of attempts
  o.f, o.fc, o.wk = nil, nil, nil
  setState(o, job.tn or 0, S.WAITING)
  addLoad(job.tn or 0, 'u', 1)
end
-- Queue what is ready, in step order; the rest waits for its dependencies.
for j, o in ipairs(job.s) do
  if back[j] then
    local waiting = 0
    for _, d in ipairs(o.d or NONE) do
      if job.s[d].st ~= S.SUCCEEDED then waiting = waiting + 1 end
    end
    o.w = waiting > 0 and waiting or nil
    if waiting == 0 then enqueue(jobId, job, j, now, false) end
  end
end
syncJob(jobId, job, now)
for j in pairs(back) do
  local o = job.s[j]
  -- Steps still waiting for a dependency are queued (with their event) when it succeeds.
  if o.st ~= S.WAITING then
    local why = j == idx and 'retried from the dead-letter list' or "brought back by the retry of step '" .. s.n .. "'"
    emit(jobId, job, j, EV.STEP_QUEUED, {'m', why})
  end
end
saveJob(jobId, job)
return {CODE.OK, job.st}
