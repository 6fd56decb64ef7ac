/**
 * Each tenant's own quota values and its load. A quota's default is the
 * server's flag; a tenant's own value (the `quotas` hash: `waiting:<n>`,
 * `running:<n>`, `rate:<n>`) replaces it, 0 meaning none. The scripts read
 * both where they enforce them (submitJobs.lua, claim.lua); the load (steps
 * waiting and running) is what they keep in the `load` hash.
 */
import type { Redis } from "ioredis";
import { InvalidArgumentError } from "./errors.js";
import type { QueueKeys } from "./keys.js";
import { redisCall } from "./queue-script.js";
import { tenantNames, tenantNumber } from "./tenants.js";

/** Quota values; an absent one follows the default, 0 means no quota. */
export interface QuotaValues {
  /** Steps waiting to run (submitted, neither running nor final). */
  waiting?: number;
  /** Steps running at once. */
  running?: number;
  /** Jobs submitted per second. */
  rate?: number;
}

const QUOTA_NAMES = ["waiting", "running", "rate"] as const;

export interface TenantLoad {
  number: number;
  name: string;
  /** The tenant's own values. */
  quotas: QuotaValues;
  /** Its steps waiting to run now. */
  waiting: number;
  /** Its steps running now. */
  running: number;
}

/** Every tenant, by number (0, "default", first), with its own quota values and its load. */
export async function listTenants(redis: Redis, keys: QueueKeys): Promise<TenantLoad[]> {
  const [names, quotas, load] = await Promise.all([
    tenantNames(redis, keys),
    redisCall(() => redis.hgetall(keys.quotas)),
    redisCall(() => redis.hgetall(keys.load)),
  ]);
  return [...names.entries()].sort(([a], [b]) => a - b).map(([n, name]) => tenantLoad(n, name, quotas, load));
}

/** `fields` with their HMGET values, the absent ones left out. */
function pairsOf(fields: readonly string[], values: readonly (string | null)[]): Record<string, string> {
  const out: Record<string, string> = {};
  fields.forEach((f, i) => {
    const v = values[i];
    if (v !== null && v !== undefined) out[f] = v;
  });
  return out;
}

function tenantLoad(n: number, name: string, quotas: Record<string, string>, load: Record<string, string>): TenantLoad {
  const own: QuotaValues = {};
  for (const q of QUOTA_NAMES) {
    const v = quotas[`${q}:${n}`];
    if (v !== undefined) own[q] = Number(v);
  }
  const unfinished = Number(load[`u:${n}`] ?? 0);
  const running = Number(load[`r:${n}`] ?? 0);
  return { number: n, name, quotas: own, waiting: Math.max(0, unfinished - running), running };
}

/**
 * Replaces tenant `name`'s own quota values (absent ones follow the
 * defaults again), creating the tenant when it has no number yet. Takes
 * effect at the next submit or claim, on every server and worker.
 */
export async function setTenantQuotas(redis: Redis, keys: QueueKeys, name: string, quotas: QuotaValues): Promise<TenantLoad> {
  for (const q of QUOTA_NAMES) {
    const v = quotas[q];
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 0xffffffff)) {
      throw new InvalidArgumentError(`quotas.${q}`, `${v} is not a quota: give a whole number from 0 (no quota) to 4294967295`);
    }
  }
  const n = await tenantNumber(redis, keys, name);
  const set = QUOTA_NAMES.flatMap((q) => (quotas[q] === undefined ? [] : [`${q}:${n}`, String(quotas[q])]));
  await redisCall(() => {
    const tx = redis.multi().hdel(keys.quotas, ...QUOTA_NAMES.map((q) => `${q}:${n}`));
    if (set.length > 0) tx.hset(keys.quotas, ...set);
    // The scripts read this flag with the queue's caps, and look for tenant values only once it is set.
    tx.hset(keys.limits, "quotas", "1");
    return tx.exec();
  });
  // Only this tenant's fields, read back as stored.
  const quotaFields = QUOTA_NAMES.map((q) => `${q}:${n}`);
  const loadFields = [`u:${n}`, `r:${n}`];
  const [quotaValues, loadValues] = await Promise.all([
    redisCall(() => redis.hmget(keys.quotas, ...quotaFields)),
    redisCall(() => redis.hmget(keys.load, ...loadFields)),
  ]);
  return tenantLoad(n, name, pairsOf(quotaFields, quotaValues), pairsOf(loadFields, loadValues));
}
