/**
 * What every scenario gets: the private Redis, the results collector, the
 * run's settings, and the helpers that make stepq and BullMQ runs alternate
 * on an emptied Redis with fresh client objects.
 */
import type { BenchRedis } from "./bench-redis.js";
import { type Child, startChild } from "./child.js";
import type { Results, SideKey } from "./results.js";
import { createBullSide, createStepqSide, QUEUE, type Side } from "./sides.js";

/** The run's settings and shared parts. */
export interface BenchContext {
  redis: BenchRedis;
  results: Results;
  /** Rounds per scenario (alternating stepq and BullMQ). */
  rounds: number;
  /** Multiplies every step count; 1 is the full run. */
  scale: number;
  /** Prints a progress line (stderr). */
  log(line: string): void;
}

/** `n × scale`, at least `min`. */
export function scaled(ctx: BenchContext, n: number, min = 100): number {
  return Math.max(min, Math.round(n * ctx.scale));
}

/** Creates a fresh side of `key` over the bench Redis, runs `fn`, and closes it. */
export async function withSide<T>(ctx: BenchContext, key: SideKey, fn: (side: Side) => Promise<T>): Promise<T> {
  const side = key === "stepq" ? createStepqSide(ctx.redis.url) : createBullSide(ctx.redis.url);
  try {
    return await fn(side);
  } finally {
    await side.close();
  }
}

/**
 * Runs `fn` for both systems, `ctx.rounds` times, on an emptied Redis each
 * time; the order flips every round so neither always goes first.
 */
export async function alternate(ctx: BenchContext, fn: (key: SideKey, round: number) => Promise<void>): Promise<void> {
  for (let round = 0; round < ctx.rounds; round++) {
    const order: SideKey[] = round % 2 === 0 ? ["stepq", "bullmq"] : ["bullmq", "stepq"];
    for (const key of order) {
      await ctx.redis.flush();
      await fn(key, round);
    }
  }
}

/** Submits `n` steps in batches of `batch` (untimed set-up). */
export async function preload(side: Side, n: number, batch = 1000): Promise<void> {
  for (let done = 0; done < n; done += batch) await side.submitBatch(Math.min(batch, n - done));
}

/** A stepq server process on a free port over the bench Redis; resolves with its URL. */
export async function startStepqServer(ctx: BenchContext): Promise<{ url: string; child: Child }> {
  // The token scenario opens 1,000 followers from one address: above the per-client default.
  const child = startChild("server/main.ts", ["--redis-url", ctx.redis.url, "--port", "0", "--queue", QUEUE, "--max-connections-per-client", "4096"], {
    profile: true,
  });
  const m = await child.waitFor(/listening url=(\S+)/);
  return { url: m[1] as string, child };
}
