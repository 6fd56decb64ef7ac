/**
 * Checks the Redis settings a queue depends on, so a server warns at start
 * instead of losing steps later: without AOF a Redis crash loses every
 * acknowledged write since the last snapshot; with an evicting maxmemory
 * policy Redis may delete a job's record under memory pressure.
 */
import type { Redis } from "ioredis";

/** Warnings about `redis`'s configuration (empty when it is safe, or when CONFIG is not allowed). */
export async function redisSafetyWarnings(redis: Redis): Promise<string[]> {
  let config: string[];
  try {
    config = (await redis.config("GET", "*")) as string[];
  } catch {
    return []; // managed Redis often disables CONFIG: nothing to check
  }
  const get = (name: string) => {
    const i = config.indexOf(name);
    return i >= 0 ? config[i + 1] : undefined;
  };
  const warnings: string[] = [];
  if (get("appendonly") !== "yes") {
    warnings.push(
      "Redis runs without AOF (appendonly no): a Redis crash loses acknowledged submits and completions; " +
        "set appendonly yes with appendfsync everysec (or always)",
    );
  } else if (get("appendfsync") === "no") {
    warnings.push("Redis AOF uses appendfsync no: a machine crash can lose many seconds of writes; use everysec or always");
  }
  const policy = get("maxmemory-policy");
  if (policy !== undefined && policy !== "noeviction") {
    warnings.push(`Redis maxmemory-policy is ${policy}: Redis may evict job records and lose steps; set noeviction`);
  }
  return warnings;
}
