/**
 * The benchmark's own Redis: a private redis-server without persistence (so
 * neither system pays for fsync), emptied between runs, with the few
 * measurements the scenarios need (memory, counts, command statistics).
 */
import type { Redis } from "ioredis";
import { createRedis, waitReady } from "../../queue/connection.js";
import { type RedisProcess, startRedisProcess } from "../../runtime/redis-process.js";

/** The private Redis and an admin connection to it. */
export interface BenchRedis {
  readonly url: string;
  readonly admin: Redis;
  /** Redis's version string. */
  readonly version: string;
  /** Empties every database and returns freed memory to the allocator. */
  flush(): Promise<void>;
  /** `used_memory` in bytes. */
  usedMemory(): Promise<number>;
  /** Resolves once `ZCARD key` (or `LLEN key`) ≥ `n`, polling every `everyMs`; returns the time it was seen (ms, performance.now scale). */
  waitForCount(key: string, n: number, timeoutMs: number, everyMs?: number, kind?: "zset" | "list"): Promise<number>;
  /** `ZCARD key` (or `LLEN key`) now. */
  count(key: string, kind?: "zset" | "list"): Promise<number>;
  /** CPU seconds Redis has used so far (user + system). */
  cpuSeconds(): Promise<number>;
  /** `INFO commandstats` as `{ command: { calls, usec_per_call } }`. */
  commandStats(): Promise<Record<string, { calls: number; usecPerCall: number }>>;
  /**
   * Whether Redis is resizing its main key dictionary now (it does so
   * incrementally after the key count passes a power of two, and every
   * command pays a share until it is done); read with `DEBUG HTSTATS`.
   */
  resizing(): Promise<boolean>;
  stop(): Promise<void>;
}

/** Starts a private redis-server (no AOF, no RDB snapshots; DEBUG allowed from loopback, for `resizing`). */
export async function startBenchRedis(): Promise<BenchRedis> {
  const proc: RedisProcess = await startRedisProcess({ extraArgs: ["--enable-debug-command", "local"] });
  const admin = createRedis(proc.url, "blocking", { name: "bench-admin" });
  await waitReady(admin);
  const version = /redis_version:(\S+)/.exec(await admin.info("server"))?.[1] ?? "?";
  const count = (key: string, kind: "zset" | "list" = "zset") => (kind === "list" ? admin.llen(key) : admin.zcard(key));
  const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await admin.info("memory"))?.[1]);
  return {
    url: proc.url,
    admin,
    version,
    usedMemory,
    async flush() {
      await admin.flushall("SYNC");
      await admin.call("MEMORY", "PURGE");
      await admin.call("CONFIG", "RESETSTAT");
    },
    count,
    async waitForCount(key, n, timeoutMs, everyMs = 5, kind = "zset") {
      const until = performance.now() + timeoutMs;
      for (;;) {
        if ((await count(key, kind)) >= n) return performance.now();
        if (performance.now() > until) throw new Error(`${key} did not reach ${n} within ${timeoutMs} ms (at ${await count(key, kind)})`);
        await new Promise((r) => setTimeout(r, everyMs));
      }
    },
    async cpuSeconds() {
      const info = await admin.info("cpu");
      return Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1]);
    },
    async commandStats() {
      const out: Record<string, { calls: number; usecPerCall: number }> = {};
      for (const m of (await admin.info("commandstats")).matchAll(/cmdstat_(\S+):calls=(\d+),usec=\d+,usec_per_call=([\d.]+)/g)) {
        out[m[1] as string] = { calls: Number(m[2]), usecPerCall: Number(m[3]) };
      }
      return out;
    },
    async resizing() {
      // The key table's section only: the expiry table is small and resizes on its own.
      const stats = String(await admin.call("DEBUG", "HTSTATS", "0"));
      return /rehashing target/.test(stats.split("[Expires HT]")[0] as string);
    },
    async stop() {
      admin.disconnect();
      await proc.stop();
    },
  };
}
