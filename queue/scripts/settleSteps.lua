--[[
settleSteps.lua: RUNNING -> SUCCEEDED for a batch of a worker's finished
steps, then QUEUED -> RUNNING for up to ARGV[4] replacements: the worker's
hot path, one call per batch instead of two per step. Each completion is
fenced by its own lease and succeeds or fails on its own.

KEYS[1] leases zset
KEYS[2] events stream
ARGV[1] key prefix
ARGV[2] worker id
ARGV[3] lease duration, ms
ARGV[4] most steps to claim (0: only complete)
ARGV[5] msgpack list of completions {j = job id, i = 0-based step index,
        a = attempt, rs = result bytes, q = first output sequence number,
        o = packed buffered output or ''}
ARGV[6..] the routes the worker serves

Returns {CODE.OK, msgpack {r = result code per completion, c = claimed steps
(as claimSteps), due = earliest scheduled time of these routes or nil,
now = Redis time}}.
Events: as completeStep for each completion, then as claimSteps.
]]
local workerId = ARGV[2]
local leaseMs = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local completions = cmsgpack.unpack(ARGV[5])
local routes = {}
for i = 6, #ARGV do routes[#routes + 1] = ARGV[i] end

local results = {}
for n, c in ipairs(completions) do
  results[n] = completeOne(c.j, c.i + 1, c.a, c.rs, c.q, c.o, NOW)
end
local claimed, due = {}, nil
if want > 0 then claimed, due = claimReady(workerId, leaseMs, want, routes, NOW) end
return {CODE.OK, cmsgpack.pack({r = results, c = claimed, due = due, now = NOW})}
