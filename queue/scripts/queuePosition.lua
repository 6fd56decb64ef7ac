--[[
queuePosition.lua: no transition; where a queued step stands in its line,
computed when asked (a follower of the step asks every few seconds while it
is queued) rather than kept up to date by a timer.

Its line is its lane: its tenant's share of its route (claim.lua). The steps
ahead of it are the lane's list entries and zset members with a lower ready
score (higher priority, then older job): for a list entry, its index plus
the zset's members scored below it (LPOS, bounded by MAX_SCAN, and ZCOUNT);
for a zset member, its rank plus the list entries scored below it (a binary
search of the list, which is in score order). A stale list entry (a step
cancelled while queued) counts until a claimer drops it.

KEYS[1] job: the job's record
KEYS[2] limits: size caps hash (the default running quota)
KEYS[3] load: tenant load hash (its running steps)
KEYS[4] quotas: tenants' own quota values hash
ARGV[1] key prefix
ARGV[2] job id
ARGV[3] 0-based step index
Derived keys: the lane's list (K.readyList) and zset (K.readyZset), and the
route's rotation (K.fair), with the queue's prefix (queue/script-keys.ts).

Returns {CODE.OK, step state, route, 1-based position (0: not queued, -1:
further back than MAX_SCAN list entries), tenants taking turns on the
route, the tenant's running-steps quota (0: none), its running steps} or
{CODE.JOB_NOT_FOUND} or {CODE.STEP_NOT_FOUND}.
Events: none.
]]
local MAX_SCAN = 100000
local jobId = ARGV[2]
local idx = tonumber(ARGV[3]) + 1
local job = loadJob(jobId)
if not job then return {CODE.JOB_NOT_FOUND} end
local s = job.s[idx]
if not s then return {CODE.STEP_NOT_FOUND} end
if s.st ~= S.QUEUED or (s.q ~= 'l' and s.q ~= 'z') then return {CODE.OK, s.st, s.r, 0, 0, 0, 0} end
local tn = job.tn or 0
local cap, running = runningQuota(tn), loadOf(tn, 'r')
local lane = laneOf(s.r, tn)
local list, zset = K.readyList(lane), K.readyZset(lane)
local id = stepIdOf(jobId, idx)
local score = readyScore(job.p or 0, job.sq)
local ahead
if s.q == 'l' then
  local at = redis.call('LPOS', list, id, 'MAXLEN', MAX_SCAN)
  if not at and idx == 1 then at = redis.call('LPOS', list, jobId, 'MAXLEN', MAX_SCAN) end
  if not at then return {CODE.OK, s.st, s.r, -1, redis.call('ZCARD', K.fair(s.r)), cap, running} end
  ahead = at + redis.call('ZCOUNT', zset, '-inf', '(' .. int(score))
else
  ahead = redis.call('ZRANK', zset, id) or 0
  -- List entries scored below it: the list is in score order.
  local lo, hi = 0, redis.call('LLEN', list)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local entry = redis.call('LINDEX', list, mid)
    local entryJob = entry and parseStepId(entry)
    if entryJob and readyScore(0, seqOfJobId(entryJob)) < score then lo = mid + 1 else hi = mid end
  end
  ahead = ahead + lo
end
return {CODE.OK, s.st, s.r, ahead + 1, redis.call('ZCARD', K.fair(s.r)), cap, running}
