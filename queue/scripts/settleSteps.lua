--[[
settleSteps.lua: RUNNING -> SUCCEEDED for a batch of a worker's finished
steps, then QUEUED -> RUNNING for up to ARGV[4] replacements: the worker's
hot path, one call per batch instead of two per step. Each completion is
fenced by its own lease and succeeds or fails on its own.

KEYS[1] leases: leases zset
KEYS[2] events: events stream
KEYS[3] eventsExtra: events stream's batch count
KEYS[4] dead: dead-letter zset
KEYS[5] retentions: set of retention times
KEYS[6] queueDeadlines: queue-timeout deadlines zset
KEYS[7] limits: size caps hash
KEYS[8] load: tenant load hash (each tenant's unfinished and running steps)
KEYS[9] quotas: tenants' own quota values hash
KEYS[10] counts: route counts hash (each route's steps by state, per tenant)
KEYS[11] routes: set of every route used (as claimSteps)
ARGV[1] key prefix
ARGV[2] worker id
ARGV[3] lease duration, ms
ARGV[4] most steps to claim (0: only complete)
ARGV[5] the completions, back to back (COMPLETION in wire/layouts.ts): job id
        (B length + bytes), 0-based step index (H), attempt (I4), sequence
        number of the first buffered output entry (I4), result bytes, a
        stepq.v1.StepResult (I4 + bytes), buffered output to write first
        (I4 + bytes, see writeOutput; empty when none)
Derived keys (named by what the script reads, so not declarable up front):
records of jobs it reaches (K.job), their logs (K.log), their output
sequences (K.outputSeq), expiry lists (K.expiries), route ready lists
(K.readyList), ready zsets (K.readyZset), tenant rotations (K.fair), delayed
zsets (K.delayed), wake-up markers (K.wake), the routes' live workers
(K.routeWorkers). Like the KEYS they start with
the queue's prefix `stepq:{<queue>}:`, whose hash tag puts them in KEYS[1]'s
slot. Also throughput buckets (K.throughput).
(queue/script-keys.ts declares all of this once.)
ARGV[6] the worker's tenant filter (as claimSteps)
ARGV[7..] the routes the worker claims from

Returns {CODE.OK, Redis time, earliest scheduled time of these routes or -1,
one byte per completion: its result code (OUTPUT_TOO_LARGE: the step failed
instead, see completeOne), number of claimed steps, their CLAIMED records
(see claim.lua), the queue's max-operation-bytes, the number of routes in
use (both as claimSteps)}.
Events: as completeStep for each completion, then as claimSteps.
]]
local workerId = ARGV[2]
local leaseMs = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local blob = ARGV[5]
local routes = {}
for i = 7, #ARGV do routes[#routes + 1] = ARGV[i] end

W.worker = workerId
local codes = {}
if #blob > 0 then
  local list = {}
  local pos = 1
  while pos <= #blob do
    local c = {}
    c.j, c.i, c.a, c.q, c.rs, c.o, pos = struct.unpack(COMPLETION, blob, pos)
    list[#list + 1] = c
  end
  -- Every record in one read; a job met twice is read again (it changed).
  local keys = {}
  for n, c in ipairs(list) do keys[n] = K.job(c.j) end
  local raws = redis.call('MGET', unpack(keys))
  local seen = {}
  for n, c in ipairs(list) do
    local key = keys[n]
    local code = completeOne(c.j, c.i + 1, c.a, c.rs, c.q, c.o, NOW, workerId, not seen[key] and raws[n] or nil)
    codes[n] = string.char(code)
    seen[key] = true
  end
end
local count, claimed, due = 0, '', nil
if want > 0 then count, claimed, due = claimReady(workerId, leaseMs, want, routes, NOW, ARGV[6]) end
return {CODE.OK, NOW, due or -1, table.concat(codes), count, claimed, count > 0 and limits().operation or 0, want > 0 and count < want and redis.call('SCARD', K.routes) or -1}
