--[[
claimSteps.lua: QUEUED -> RUNNING.
Leases up to ARGV[4] steps from the worker's routes, best first (higher
priority, then older job), after promoting the routes' due scheduled steps.
A step whose queue timeout passed while it waited fails instead.

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
KEYS[11] routes: set of every route used (its size tells the worker a new one appeared)
ARGV[1] key prefix
ARGV[2] worker id
ARGV[3] lease duration, ms
ARGV[4] most steps to claim (0 only promotes and reports the next due time)
Derived keys (named by what the script reads, so not declarable up front):
records of jobs it reaches (K.job), their logs (K.log), their output
sequences (K.outputSeq), expiry lists (K.expiries), route ready lists
(K.readyList), ready zsets (K.readyZset), tenant rotations (K.fair), delayed
zsets (K.delayed), wake-up markers (K.wake), the routes' live workers
(K.routeWorkers). Like the KEYS they start with
the queue's prefix `stepq:{<queue>}:`, whose hash tag puts them in KEYS[1]'s
slot. Also throughput buckets (K.throughput).
(queue/script-keys.ts declares all of this once.)
ARGV[5] the worker's tenant filter: '', '+<n>,...' (only these tenants) or
        '-<n>,...' (never these), tenant numbers
ARGV[6..] the routes the worker claims from

Returns {CODE.OK, Redis time, earliest scheduled time of these routes (or
when a step left for another worker may be taken after all) or -1, number
of claimed steps, their CLAIMED records (see claim.lua), the queue's
max-operation-bytes (the worker checks each operation against it once its
references are resolved), the number of routes in use when it claimed fewer
steps than asked, else -1 (a worker refreshes its requirement routes when it
changes)}.
Events: STEP_QUEUED (promoted), STEP_CLAIMED, STEP_FAILED and JOB_* (queue
timeout).
]]
local workerId = ARGV[2]
local leaseMs = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local routes = {}
for i = 6, #ARGV do routes[#routes + 1] = ARGV[i] end
local count, claimed, due = claimReady(workerId, leaseMs, want, routes, NOW, ARGV[5])
-- The route count matters only to a worker that got less than it asked for
-- (about to wait): a saturated one is told of new routes by its heartbeat.
return {CODE.OK, NOW, due or -1, count, claimed, count > 0 and limits().operation or 0, count < want and redis.call('SCARD', K.routes) or -1}
