/**
 * Counts of the old routes and event names stepq keeps for the clients of
 * the systems it replaces: one hash, `<name>` the uses and `<name>@last`
 * the time of the last, so an operator can see when the last old client has
 * moved (QueueService.ListLegacyUsage, `stepq stats`).
 */
import type { Redis } from "ioredis";
import type { QueueKeys } from "./keys.js";
import { redisCall } from "./queue-script.js";

export interface LegacyCount {
  uses: number;
  /** Unix ms of the last use. */
  lastUsedAt: number | undefined;
}

/** Counts `uses` uses of `name` (default one), the last at `now` (Unix ms). */
export async function recordLegacyUse(redis: Redis, keys: QueueKeys, name: string, uses = 1, now = Date.now()): Promise<void> {
  await redisCall(() => redis.multi().hincrby(keys.legacy, name, uses).hset(keys.legacy, `${name}@last`, now).exec());
}

/** The counts of every name used so far. */
export async function readLegacyUsage(redis: Redis, keys: QueueKeys): Promise<Map<string, LegacyCount>> {
  const hash = await redisCall(() => redis.hgetall(keys.legacy));
  const out = new Map<string, LegacyCount>();
  for (const [field, value] of Object.entries(hash)) {
    if (field.endsWith("@last")) continue;
    const last = hash[`${field}@last`];
    out.set(field, { uses: Number(value), lastUsedAt: last === undefined ? undefined : Number(last) });
  }
  return out;
}
