--[[
registerWorker.lua: a worker's heartbeat in the worker registry. Writes (or
renews) its record for a time to live, lists its id, and puts it in the
live-worker set of every route it claims from, expiring by Redis's clock,
so a claim can tell whether another worker could take a step
(claim.lua, otherServes). Stale members (their time ran out) leave those
sets here. With a time to live of 0 the worker leaves: its record, its id
and its route memberships go.

KEYS[1] workers: set of registered worker ids
KEYS[2] routes: set of every route used
ARGV[1] key prefix
ARGV[2] worker id
ARGV[3] time to live, ms (0: unregister)
ARGV[4] the worker's record (JSON)
ARGV[5..] the routes it claims from
Derived keys: the worker's record (K.worker), the routes' live workers
(K.routeWorkers), all with the queue's prefix (queue/script-keys.ts).

Returns {CODE.OK, the number of routes in use}.
]]
local id = ARGV[2]
local ttl = tonumber(ARGV[3])
if ttl == 0 then
  redis.call('DEL', K.worker(id))
  redis.call('SREM', K.workers, id)
  for i = 5, #ARGV do redis.call('ZREM', K.routeWorkers(ARGV[i]), id) end
else
  redis.call('SET', K.worker(id), ARGV[4], 'PX', ttl)
  redis.call('SADD', K.workers, id)
  for i = 5, #ARGV do
    local key = K.routeWorkers(ARGV[i])
    redis.call('ZREMRANGEBYSCORE', key, '-inf', NOW)
    redis.call('ZADD', key, NOW + ttl, id)
  end
end
return {CODE.OK, redis.call('SCARD', K.routes)}
