/**
 * Tenants: every job belongs to one, the tenant of the API key that
 * submitted it. Records and events carry a tenant's number (2 bytes in the
 * job header, so the hot transitions copy it without decoding anything),
 * not its name; the `tenants` hash maps each name to its number, given once
 * and never reused. `default` is always 0: the tenant of jobs submitted
 * while the server does not require keys.
 */
import type { Redis } from "ioredis";
import { InvalidArgumentError, quoted } from "./errors.js";
import type { QueueKeys } from "./keys.js";
import { redisCall } from "./queue-script.js";

/** The default tenant's name; its number is 0. */
export const DEFAULT_TENANT = "default";
/** The largest tenant number (the job header holds it in 2 bytes). */
export const MAX_TENANT = 0xffff;

const TENANT_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const LAST = "#last";

/** Checks a tenant name; throws INVALID_ARGUMENT naming `field`. */
export function checkTenantName(name: string, field = "tenant"): void {
  if (!TENANT_NAME.test(name)) {
    throw new InvalidArgumentError(field, `${quoted(name)} must be 1-64 characters of [a-z0-9_-], starting with one of [a-z0-9]`);
  }
}

/**
 * The number of tenant `name`, given it now if it has none. Atomic: two
 * servers naming a new tenant at once get the same number.
 */
export async function tenantNumber(redis: Redis, keys: QueueKeys, name: string): Promise<number> {
  checkTenantName(name);
  if (name === DEFAULT_TENANT) return 0;
  const n = await redisCall(() => redis.eval(ASSIGN, 1, keys.tenants, name, LAST, MAX_TENANT) as Promise<number | string>);
  if (typeof n === "string") throw new InvalidArgumentError("tenant", n);
  return n;
}

// Runs as EVAL: a key-management operation, rare, and not part of the
// function library's transitions.
const ASSIGN = `
local n = redis.call('HGET', KEYS[1], ARGV[1])
if n then return tonumber(n) end
local last = tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '0')
if last >= tonumber(ARGV[3]) then
  return 'this queue already has ' .. last .. ' tenants, the most it can hold'
end
redis.call('HSET', KEYS[1], ARGV[1], last + 1, ARGV[2], last + 1)
return last + 1
`;

/** Every tenant's name by number (0: default). */
export async function tenantNames(redis: Redis, keys: QueueKeys): Promise<Map<number, string>> {
  const all = await redisCall(() => redis.hgetall(keys.tenants));
  const names = new Map<number, string>([[0, DEFAULT_TENANT]]);
  for (const [name, n] of Object.entries(all)) if (name !== LAST) names.set(Number(n), name);
  return names;
}
