/**
 * Whether Redis can take this server's work right now: reachable (an
 * answer within a second), holding this version's Functions library, and not full (used memory under `maxmemory`, past which a
 * noeviction Redis refuses every write, so submits and completions fail).
 * The readiness check (/healthz) reports it; load balancers then send
 * clients elsewhere instead of to a server whose every submit fails.
 */
import type { Redis } from "ioredis";
import { functionsLoaded } from "./function-library.js";
import { redisCall } from "./queue-script.js";

export interface RedisHealth {
  /** "ok", "unreachable", "full", or "no_functions" (this version's Functions library is not loaded yet). */
  status: "ok" | "unreachable" | "full" | "no_functions";
  /** What an operator reads: the error, or the memory figures. */
  detail: string;
  /** Used memory and its limit, bytes (maxmemory 0: no limit), when known. */
  usedMemory?: number;
  maxMemory?: number;
}

/** Checks `redis`, answering within about `timeoutMs`. */
export async function checkRedis(redis: Redis, timeoutMs = 1000): Promise<RedisHealth> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const info = await Promise.race([redis.info("memory"), timeout]);
    const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, "m").exec(info)?.[1] ?? NaN);
    const usedMemory = field("used_memory");
    const maxMemory = field("maxmemory");
    const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1] ?? "unknown";
    if (maxMemory > 0 && usedMemory >= maxMemory && policy === "noeviction") {
      return {
        status: "full",
        detail: `out of memory: ${usedMemory} bytes used of maxmemory ${maxMemory} (noeviction): every write is refused until memory is freed`,
        usedMemory,
        maxMemory,
      };
    }
    if (!(await Promise.race([functionsLoaded(redis), timeout]))) {
      return { status: "no_functions", detail: "the stepq Functions library is not loaded in Redis yet (it loads on connect)", usedMemory, maxMemory };
    }
    return { status: "ok", detail: "ok", usedMemory, maxMemory };
  } catch (e) {
    return { status: "unreachable", detail: (e as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

/** Seconds one PING took (the round trip /metrics reports); throws when Redis does not answer. */
export async function pingRedis(redis: Redis): Promise<number> {
  const t0 = performance.now();
  await redisCall(() => redis.ping());
  return (performance.now() - t0) / 1000;
}
