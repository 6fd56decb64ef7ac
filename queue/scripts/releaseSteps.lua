--[[
releaseSteps.lua: RUNNING -> QUEUED. A stopping worker hands back steps it
will not finish, so another worker takes them at once instead of waiting for
the lease to expire. A released attempt does not count against max_attempts.

KEYS[1] leases zset
KEYS[2] events stream
ARGV[1] key prefix
ARGV[2] worker id
ARGV[3..] lease members "<stepId>|<attempt>" to release

Returns {CODE.OK, number released} (members whose lease is already gone are
skipped).
Events: STEP_QUEUED.
]]
local leasesKey = KEYS[1]
local workerId = ARGV[2]
local now = NOW
local released = 0
for i = 3, #ARGV do
  local jobId, idx, attempt = parseLeaseMember(ARGV[i])
  local job = jobId and loadJob(jobId)
  if job and checkLease(job, jobId, idx, attempt, now) == CODE.OK then
    local s = job.s[idx]
    redis.call('ZREM', leasesKey, ARGV[i])
    s.rl = (s.rl or 0) + 1
    enqueue(jobId, job, idx, now, false)
    emit(jobId, job, idx, EV.STEP_QUEUED, {'w', workerId, 'm', 'released by a stopping worker'})
    narrate(jobId, job, idx, attempt, LEVEL.WARN, 'worker ' .. workerId .. ' is stopping; step handed back to the queue')
    saveJob(jobId, job)
    released = released + 1
  end
end
return {CODE.OK, released}
