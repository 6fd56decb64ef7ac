--[[
purgeExpired.lua: finished job -> deleted, once its retention has passed.
Deletes the record and the log, and the job's entries in the job index, the
dead-letter set and (when it still points at this job) the idempotency key,
so every index stays consistent with what is stored.

KEYS[1] retentions: set of retention times
KEYS[2] jobIndex: job index stream
KEYS[3] dead: dead-letter zset
KEYS[4] counts: route counts hash (each route's steps by state, per tenant)
ARGV[1] key prefix
ARGV[2] most jobs to delete in this call
Derived keys (named by what the script reads, so not declarable up front):
records of jobs it reaches (K.job), their logs (K.log), their output
sequences (K.outputSeq), expiry lists (K.expiries), idempotency keys
(K.idempotency). Like the KEYS they start with the queue's prefix
`stepq:{<queue>}:`, whose hash tag puts them in KEYS[1]'s slot.
(queue/script-keys.ts declares all of this once.)

Returns {CODE.OK, number deleted}.
Events: none (the job's final event was its last).
]]
local retentionsKey, indexKey, deadKey = KEYS[1], KEYS[2], KEYS[3]
local limit = tonumber(ARGV[2])
local now = NOW
local purged = 0
-- Entries looked at: jobs retried after they finished are skipped, and the
-- bound keeps a call short even behind many of them.
local examined = 0

-- Deletes jobId if it is still final and expired by now. A job retried
-- after it finished has a later expiry (and another entry) or is not final.
local function purge(jobId)
  local job = loadJob(jobId)
  if not (job and isJobFinal(job.st) and job.x and job.x <= now) then return end
  if job.ix then redis.call('XDEL', indexKey, job.ix) end
  for j, s in ipairs(job.s) do
    if redis.call('ZREM', deadKey, stepIdOf(jobId, j)) == 1 then addCount('d', job.tn or 0, s.r, -1) end
  end
  if job.ik then
    local idemKey = K.idempotency((job.tn or 0) .. ':' .. job.ik)
    local stored = redis.call('GET', idemKey)
    if stored and string.sub(stored, 1, #jobId + 1) == jobId .. '|' then redis.call('DEL', idemKey) end
  end
  redis.call('DEL', K.job(jobId), K.log(jobId), K.outputSeq(jobId))
  purged = purged + 1
end

-- Expiry lists (expiry time, job id, ...): oldest first, so stop at the
-- first job not due yet.
for _, rt in ipairs(redis.call('SMEMBERS', retentionsKey)) do
  local key = K.expiries(rt)
  local done = false
  while not done and examined < limit do
    local entries = redis.call('LRANGE', key, 0, 2 * (limit - examined) - 1)
    if #entries < 2 then break end
    local taken = 0
    for i = 1, #entries - 1, 2 do
      if (tonumber(entries[i]) or 0) > now then
        done = true
        break
      end
      taken = taken + 2
      examined = examined + 1
      purge(entries[i + 1])
    end
    if taken > 0 then redis.call('LPOP', key, taken) end
    if taken < #entries - 1 then break end
  end
end

return {CODE.OK, purged}
