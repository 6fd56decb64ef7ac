--[[
extendLeases.lua: RUNNING -> RUNNING. Renews a worker's leases in one call.
A lease that already expired is not renewed (the step may be running
elsewhere by now): the worker must abandon it. A step with a timeout is
never leased past its start + timeout + one lease period, so a stuck worker
that keeps renewing still loses the step.

KEYS[1] leases: leases zset
ARGV[1] key prefix
ARGV[2] lease duration, ms
Derived keys (named by what the script reads, so not declarable up front):
records of jobs it reaches (K.job). Like the KEYS they start with the
queue's prefix `stepq:{<queue>}:`, whose hash tag puts them in KEYS[1]'s
slot. (queue/script-keys.ts declares all of this once.)
ARGV[3..] lease members "<stepId>|<attempt>"

Returns {CODE.OK, {per member: 1 renewed, 2 not renewed because the step was
cancelled during that attempt, 0 not renewed (expired, recovered)},
{deadline per member}}.
Events: none.
]]
local leasesKey = KEYS[1]
local leaseMs = tonumber(ARGV[2])
local now = NOW
local held, deadlines = {}, {}
for i = 3, #ARGV do
  local member = ARGV[i]
  local current = redis.call('ZSCORE', leasesKey, member)
  local ok, deadline = 0, 0
  if current and tonumber(current) >= now then
    deadline = now + leaseMs
    local jobId, idx = parseLeaseMember(member)
    local job = jobId and loadJob(jobId)
    local s = job and job.s[idx]
    if s and s.to and s.to > 0 and s.sa then
      deadline = math.min(deadline, s.sa + s.to + leaseMs)
    end
    deadline = math.max(deadline, tonumber(current))
    redis.call('ZADD', leasesKey, 'XX', deadline, member)
    if s then
      s.ld = deadline -- the record keeps the deadline too (checkLease reads it)
      saveJob(jobId, job)
    end
    ok = 1
  else
    local jobId, idx, attempt = parseLeaseMember(member)
    if jobId and lostLeaseCode(jobId, idx, attempt) == CODE.CANCELLED then ok = 2 end
  end
  held[#held + 1] = ok
  deadlines[#deadlines + 1] = deadline
end
return {CODE.OK, held, deadlines}
