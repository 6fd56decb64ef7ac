--[[
completeStep.lua: RUNNING -> SUCCEEDED, fenced by the lease.
Writes the worker's last buffered output, stores the result, releases the
dependants whose last dependency this was, and finishes the job when
nothing is left to run.

KEYS[1] job: the job's record
KEYS[2] leases: leases zset
KEYS[3] events: events stream
KEYS[4] eventsExtra: events stream's batch count
KEYS[5] dead: dead-letter zset
KEYS[6] retentions: set of retention times
KEYS[7] queueDeadlines: queue-timeout deadlines zset
KEYS[8] limits: size caps hash
KEYS[9] load: tenant load hash (each tenant's unfinished and running steps)
KEYS[10] counts: route counts hash (each route's steps by state, per tenant)
ARGV[1] key prefix
ARGV[2] job id
ARGV[3] step index, 0-based
ARGV[4] attempt (the fencing token of the claim)
ARGV[5] result: stepq.v1.StepResult in protobuf binary
ARGV[6] sequence number of the first buffered output entry
ARGV[7] buffered output to write first (msgpack, see writeOutput) or ''
Derived keys (named by what the script reads, so not declarable up front):
records of jobs it reaches (K.job), their logs (K.log), their output
sequences (K.outputSeq), expiry lists (K.expiries), route ready lists
(K.readyList), ready zsets (K.readyZset), tenant rotations (K.fair), delayed
zsets (K.delayed), wake-up markers (K.wake). Like the KEYS they start with
the queue's prefix `stepq:{<queue>}:`, whose hash tag puts them in KEYS[1]'s
slot. Also throughput buckets (K.throughput).
(queue/script-keys.ts declares all of this once.)

Returns {CODE.OK, job state} or {CODE.JOB_NOT_FOUND | STEP_NOT_FOUND |
LEASE_LOST | CANCELLED | OUTPUT_TOO_LARGE (the step failed instead: see
completeOne)}.
Events: STEP_SUCCEEDED, STEP_QUEUED (released dependants), JOB_SUCCEEDED;
or STEP_FAILED and what the job's failure policy brings.
]]
local code, state = completeOne(ARGV[2], tonumber(ARGV[3]) + 1, tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]), ARGV[7], NOW)
if code ~= CODE.OK then return {code} end
return {CODE.OK, state}
