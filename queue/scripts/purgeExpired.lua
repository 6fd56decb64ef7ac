--[[
purgeExpired.lua: finished job -> deleted, once its retention has passed.
Deletes the record and the log, and the job's entries in the job index, the
dead-letter set and (when it still points at this job) the idempotency key,
so every index stays consistent with what is stored.

KEYS[1] done zset (finished jobs by expiry time)
KEYS[2] job index stream
KEYS[3] dead-letter zset
ARGV[1] key prefix
ARGV[2] most jobs to delete in this call

Returns {CODE.OK, number deleted}.
Events: none (the job's final event was its last).
]]
local doneKey, indexKey, deadKey = KEYS[1], KEYS[2], KEYS[3]
local limit = tonumber(ARGV[2])
local now = NOW
local due = redis.call('ZRANGEBYSCORE', doneKey, '-inf', now, 'LIMIT', 0, limit)
for _, jobId in ipairs(due) do
  redis.call('ZREM', doneKey, jobId)
  local job = loadJob(jobId)
  if job and isJobFinal(job.st) and job.x and job.x > now then
    -- Finished again later (after a retry): keep it until its new expiry.
    redis.call('ZADD', doneKey, job.x, jobId)
  elseif job and isJobFinal(job.st) and job.x then
    if job.ix then redis.call('XDEL', indexKey, job.ix) end
    for j = 1, #job.s do redis.call('ZREM', deadKey, stepIdOf(jobId, j)) end
    if job.ik then
      local idemKey = K.idempotency(job.ik)
      local stored = redis.call('GET', idemKey)
      if stored and string.sub(stored, 1, #jobId + 1) == jobId .. '|' then redis.call('DEL', idemKey) end
    end
    redis.call('DEL', K.job(jobId), K.log(jobId), K.outputSeq(jobId))
  end
end
return {CODE.OK, #due}
