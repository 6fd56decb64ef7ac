--[[
releaseSteps.lua: RUNNING -> QUEUED. A worker hands back steps it will not
run: it is stopping, or it claimed them ahead (prefetch) and is busy for
longer than expected. Another worker takes them at once instead of waiting
for the lease to expire. A released attempt does not count against
max_attempts.

KEYS[1] leases: leases zset
KEYS[2] events: events stream
KEYS[3] eventsExtra: events stream's batch count
KEYS[4] queueDeadlines: queue-timeout deadlines zset
KEYS[5] load: tenant load hash (each tenant's unfinished and running steps)
KEYS[6] counts: route counts hash (each route's steps by state, per tenant)
ARGV[1] key prefix
ARGV[2] worker id
ARGV[3] why: 'stopping' (the worker is shutting down) or 'busy' (the steps
        were claimed ahead and never started)
Derived keys (named by what the script reads, so not declarable up front):
records of jobs it reaches (K.job), their logs (K.log), route ready lists
(K.readyList), ready zsets (K.readyZset), tenant rotations (K.fair), delayed
zsets (K.delayed), wake-up markers (K.wake). Like the KEYS they start with
the queue's prefix `stepq:{<queue>}:`, whose hash tag puts them in KEYS[1]'s
slot. (queue/script-keys.ts declares all of this once.)
ARGV[4..] lease members "<stepId>|<attempt>" to release

Returns {CODE.OK, number released} (members whose lease is already gone are
skipped).
Events: STEP_QUEUED.
]]
local workerId = ARGV[2]
local busy = ARGV[3] == 'busy'
local message = busy and 'handed back unstarted by a busy worker' or 'released by a stopping worker'
local line = 'worker ' .. workerId .. (busy and ' claimed it ahead but stayed busy' or ' is stopping')
  .. '; step handed back to the queue'
local now = NOW
local released = 0
for i = 4, #ARGV do
  local jobId, idx, attempt = parseLeaseMember(ARGV[i])
  local job = jobId and loadJob(jobId)
  if job and checkLease(job, jobId, idx, attempt, now) == CODE.OK then
    local s = job.s[idx]
    endLease(ARGV[i], job.tn or 0)
    s.rl = (s.rl or 0) + 1
    enqueue(jobId, job, idx, now, false)
    emit(jobId, job, idx, EV.STEP_QUEUED, {'w', workerId, 'm', message})
    narrate(jobId, job, idx, attempt, busy and LEVEL.INFO or LEVEL.WARN, line)
    saveJob(jobId, job)
    released = released + 1
  end
end
return {CODE.OK, released}
