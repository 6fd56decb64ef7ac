--[[
complete.lua: completing a step, shared by completeStep and settleSteps.
Included in the library after finishing.lua.
]]

-- RUNNING -> SUCCEEDED for the only step of a format-2 record `raw` without
-- decoding it: the job succeeds with it. Returns the new record, the job's
-- expiry, and the step's name and route; nil when the record needs the
-- generic path (a log, several steps). The caller has checked the lease.
local function completeInPlace(raw, idx, attempt, result, now)
  local _, flags, _, n, c, jsa, _, rt, ixs, tn, _, _, fl, a, _, sa = struct.unpack(HEADERS_1, raw)
  if bit.band(flags, LOG_FLAG) ~= 0 or n ~= 1 then return nil end
  local expires = now + rt
  local tailHead, tailResult, tailEnd = tailSucceeded(idx, attempt, now, result, 1)
  local record = struct.pack(HEADERS_1, 2, flags, JS.SUCCEEDED, 1, c, jsa, now, rt, ixs, tn, S.SUCCEEDED, 0, fl, a, 0, sa, now)
    .. string.sub(raw, HEADERS_1_SIZE + 1) .. tailHead .. tailResult .. tailEnd
  local name, route = struct.unpack(SPEC_NAMES, raw, HEADERS_1_SIZE + 1)
  return record, expires, name, route, tn
end

-- The lease check of checkLease, on a format-2 record's step header.
local function leaseCodeInPlace(raw, idx, attempt, now)
  local n = struct.unpack('<H', raw, JOB_HDR_AT.steps)
  if idx < 1 or idx > n then return CODE.STEP_NOT_FOUND end
  local st, _, _, a, ld = struct.unpack(STEP_HDR, raw, stepHeaderAt(idx))
  if st == S.CANCELLED and a == attempt then return CODE.CANCELLED end
  if st ~= S.RUNNING or a ~= attempt or ld == 0 or ld < now then return CODE.LEASE_LOST end
  return CODE.OK
end

-- Why the lease on step idx's `attempt` is missing from the leases zset:
-- CODE.CANCELLED when the step was cancelled during that attempt (as the
-- lease checks above say), else CODE.LEASE_LOST. Reads the record, so it is
-- for the refusal path only.
local function lostLeaseCode(jobId, idx, attempt)
  local raw = getRecord(K.job(jobId))
  if not raw then return CODE.LEASE_LOST end
  local code
  if string.byte(raw, 1) == 2 then
    code = leaseCodeInPlace(raw, idx, attempt, NOW)
  else
    code = checkLease(decodeJob(jobId, raw), jobId, idx, attempt, NOW)
  end
  if code == CODE.CANCELLED then return code end
  return CODE.LEASE_LOST
end

-- RUNNING -> SUCCEEDED for step idx of jobId, fenced by (idx, attempt)'s
-- lease: writes the worker's last buffered output, stores the result,
-- releases dependants whose last dependency this was, and finishes the job
-- when nothing is left. `workerId` (the lease holder, when the caller knows
-- it) lets a one-step job without output complete in place, its writes
-- gathered (flushWrites); `raw` is the record when the caller read it.
-- A result over max-output-bytes, or one that would take the job's record
-- past max-job-bytes, is not stored: the step fails (failTooLarge).
-- Returns CODE.OK and the job's state, or the code saying why not
-- (JOB_NOT_FOUND, STEP_NOT_FOUND, LEASE_LOST, CANCELLED, OUTPUT_TOO_LARGE).
local function completeOne(jobId, idx, attempt, result, firstSeq, packedOutput, now, workerId, raw)
  local key = K.job(jobId)
  raw = raw or getRecord(key)
  if not raw then return CODE.JOB_NOT_FOUND end
  local lim = limits()
  local tooLarge
  if #result > lim.output then
    tooLarge = string.format('the result is %d bytes, over the queue\'s max-output-bytes of %d; it was not stored',
      #result, lim.output)
  elseif #raw + #result > lim.job then
    tooLarge = string.format('storing the result (%d bytes) would make job %s\'s record %d bytes, over the ' ..
      'queue\'s max-job-bytes of %d; it was not stored', #result, jobId, #raw + #result, lim.job)
  end
  if not tooLarge and workerId and packedOutput == '' and string.byte(raw, 1) == 2 then
    local code = leaseCodeInPlace(raw, idx, attempt, now)
    if code ~= CODE.OK then return code end
    local record, expires, name, route, tn = completeInPlace(raw, idx, attempt, result, now)
    if record then
      putRecord(key, record)
      W.ended[#W.ended + 1] = leaseMember(jobId, idx, attempt)
      addLoad(tn, 'r', -1)
      addLoad(tn, 'u', -1)
      addCount('r', tn, route, -1)
      addFinished('s', tn, route, now)
      pushExpiry(expires - now, expires, jobId)
      pushEvent('succeeded', jobId, idx, name, route, attempt, tn)
      return CODE.OK, JS.SUCCEEDED
    end
  end
  flushWrites()
  local job = decodeJob(jobId, raw)
  local code = checkLease(job, jobId, idx, attempt, now)
  if code ~= CODE.OK then return code end
  if packedOutput ~= '' then ensureLog(jobId, job) end
  local written, bytes = writeOutput(jobId, idx, attempt, firstSeq, packedOutput, lim.output)
  if written < 0 then tooLarge = outputTooLarge(bytes) end
  if tooLarge then
    failTooLarge(jobId, job, idx, attempt, tooLarge, now)
    return CODE.OUTPUT_TOO_LARGE
  end
  local s = job.s[idx]
  endLease(leaseMember(jobId, idx, attempt), job.tn or 0)
  addLoad(job.tn or 0, 'u', -1)
  setState(s, job.tn or 0, S.SUCCEEDED)
  addFinished('s', job.tn or 0, s.r, now)
  s.f = now
  s.ld = nil
  s.pg = 1
  s.rs = result
  s.fc = emit(jobId, job, idx, EV.STEP_SUCCEEDED, {'w', s.wk})
  afterStepFinal(jobId, job, idx, now)
  saveJob(jobId, job)
  return CODE.OK, job.st
end
