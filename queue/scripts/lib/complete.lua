--[[
complete.lua: completing a step, shared by completeStep and settleSteps.
Included in the library after prelude.lua.
]]

-- RUNNING -> SUCCEEDED for step idx of jobId, fenced by (idx, attempt)'s
-- lease: writes the worker's last buffered output, stores the result,
-- releases dependants whose last dependency this was, and finishes the job
-- when nothing is left. Returns CODE.OK and the job's state, or the code
-- saying why not (JOB_NOT_FOUND, STEP_NOT_FOUND, LEASE_LOST).
local function completeOne(jobId, idx, attempt, result, firstSeq, packedOutput, now)
  local job = loadJob(jobId)
  local code = checkLease(job, jobId, idx, attempt, now)
  if code ~= CODE.OK then return code end
  if packedOutput ~= '' then ensureLog(jobId, job) end
  writeOutput(jobId, idx, attempt, firstSeq, packedOutput)
  local s = job.s[idx]
  redis.call('ZREM', K.leases, leaseMember(jobId, idx, attempt))
  s.st = S.SUCCEEDED
  s.f = now
  s.ld = nil
  s.pg = 1
  s.rs = result
  s.fc = emit(jobId, job, idx, EV.STEP_SUCCEEDED, {'w', s.wk})
  afterStepFinal(jobId, job, idx, now)
  saveJob(jobId, job)
  return CODE.OK, job.st
end
