--[[
submitJobs.lua: (nothing) -> QUEUED / SCHEDULED / WAITING.
Stores a batch of jobs, all or none. Steps without dependencies become
ready at once (or scheduled until not_before); the others wait.

KEYS[1] seq counter
KEYS[2] job index stream
KEYS[3] events stream
ARGV[1] key prefix
ARGV[2] msgpack list of job specs, each
        {x = 8 random id characters, p = priority, fp = failure policy,
         rt = retention ms, nb = not-before ms or nil, lb = flat label list,
         ik = idempotency key or nil, ih = request digest,
         s = {{n = name, o = operation bytes, r = route, d = 1-based
               dependency indexes, ma, bi, bm = retry policy, to = timeout ms,
               qt = queue timeout ms}, ...}}
ARGV[3] most queued steps per route (0: no limit)
ARGV[4] idempotency key lifetime, ms

Returns {CODE.OK, msgpack list of {id = job id, d = 1 if deduplicated,
        rec = the stored record (absent when a deduplicated job is gone)}},
        {CODE.IDEMPOTENCY_CONFLICT, batch index},
        {CODE.QUEUE_FULL, route, queued now, limit}.
Events: JOB_SUBMITTED, STEP_SUBMITTED per step.
]]
local seqKey = KEYS[1]
local indexKey = KEYS[2]
local specs = cmsgpack.unpack(ARGV[2])
local maxQueued = tonumber(ARGV[3])
local idemTtl = tonumber(ARGV[4])
local now = NOW

local function base36(n, width)
  local digits = '0123456789abcdefghijklmnopqrstuvwxyz'
  local out = ''
  while n > 0 do
    local r = n % 36
    out = string.sub(digits, r + 1, r + 1) .. out
    n = math.floor(n / 36)
  end
  return string.rep('0', width - #out) .. out
end

-- Pass 1: idempotency keys and limits, before anything is written.
local results = {}
local firstOfKey = {}
for i, spec in ipairs(specs) do
  if spec.ik then
    local stored = redis.call('GET', K.idempotency(spec.ik))
    if stored then
      local jobId, digest = string.match(stored, '^([^|]*)|(.*)$')
      if digest ~= spec.ih then return {CODE.IDEMPOTENCY_CONFLICT, i - 1} end
      results[i] = {id = jobId, d = 1, rec = redis.call('GET', K.job(jobId)) or nil}
    elseif firstOfKey[spec.ik] then
      if specs[firstOfKey[spec.ik]].ih ~= spec.ih then return {CODE.IDEMPOTENCY_CONFLICT, i - 1} end
      results[i] = {same = firstOfKey[spec.ik], d = 1}
    else
      firstOfKey[spec.ik] = i
    end
  end
end

if maxQueued > 0 then
  local adding = {}
  for i, spec in ipairs(specs) do
    if not results[i] then
      for _, st in ipairs(spec.s) do
        if #st.d == 0 then adding[st.r] = (adding[st.r] or 0) + 1 end -- specs always carry d
      end
    end
  end
  for route, n in pairs(adding) do
    local queued = redis.call('LLEN', K.readyList(route)) + redis.call('ZCARD', K.readyZset(route))
      + redis.call('ZCARD', K.delayed(route))
    if queued + n > maxQueued then return {CODE.QUEUE_FULL, route, queued, maxQueued} end
  end
end

-- Pass 2: store.
for i, spec in ipairs(specs) do
  if not results[i] then
    local seq = redis.call('INCR', seqKey)
    local jobId = base36(seq, 8) .. spec.x
    -- Fields holding their default are left out (see queue/record.ts): a
    -- smaller record is cheaper to store and to decode in every transition.
    local job = {sq = seq, st = JS.QUEUED, c = now, rt = spec.rt, ik = spec.ik, nb = spec.nb, s = {}}
    if spec.p ~= 0 then job.p = spec.p end
    if spec.fp ~= POLICY.FAIL_FAST then job.fp = spec.fp end
    if #spec.lb > 0 then job.lb = spec.lb end
    for j, st in ipairs(spec.s) do
      local s = {n = st.n, o = st.o, r = st.r, ma = st.ma, bi = st.bi, bm = st.bm, a = 0, st = S.WAITING, nb = spec.nb}
      if #st.d > 0 then
        s.d = st.d
        s.w = #st.d
      end
      if st.to > 0 then s.to = st.to end
      if st.qt > 0 then s.qt = st.qt end
      job.s[j] = s
      redis.call('SADD', K.routes, st.r)
    end
    job.ix = redis.call('XADD', indexKey, '*', 'j', jobId)
    for j, s in ipairs(job.s) do
      if not s.d then enqueue(jobId, job, j, now, true) end
    end
    local stored = saveJob(jobId, job)
    if spec.ik then
      redis.call('SET', K.idempotency(spec.ik), jobId .. '|' .. spec.ih, 'PX', idemTtl)
    end
    emit(jobId, job, nil, EV.JOB_SUBMITTED, nil)
    for j = 1, #job.s do emit(jobId, job, j, EV.STEP_SUBMITTED, nil) end
    results[i] = {id = jobId, d = 0, rec = stored}
  elseif results[i].same then
    local first = results[results[i].same]
    results[i] = {id = first.id, d = 1, rec = first.rec}
  end
end
return {CODE.OK, cmsgpack.pack(results)}
