/**
 * End-to-end throughput: small no-op steps submitted beforehand (stepq: the
 * echo engine with 0 tokens; BullMQ: `async () => {}`), then drained by
 * worker processes that were started and connected first and released
 * together, so start-up is not timed. The clock stops when the finished
 * count (stepq's done set, BullMQ's completed set) reaches N. Redis CPU per
 * step shows what each system costs the one resource they share.
 */
import type { Child } from "../lib/child.js";
import { type BenchContext, alternate, preload, scaled, withSide } from "../lib/context.js";
import { processCpuSeconds } from "../lib/machine.js";
import type { Side } from "../lib/sides.js";
import { perSecond } from "../lib/stats.js";

/** One drain: worker processes and their concurrency each. */
interface Setup {
  id: string;
  label: string;
  concurrency: number[];
}

const SETUPS: Setup[] = [
  { id: "e2e.c1", label: "1 worker process, concurrency 1", concurrency: [1] },
  { id: "e2e.c16", label: "1 worker process, concurrency 16", concurrency: [16] },
  { id: "e2e.c64", label: "1 worker process, concurrency 64", concurrency: [64] },
  { id: "e2e.p2c16", label: "2 worker processes, concurrency 16 each", concurrency: [16, 16] },
];

/** What one drain measured. */
export interface DrainFigures {
  stepsPerSecond: number;
  /** Redis CPU time per step, µs (both systems' cost on the shared resource). */
  redisUsPerStep: number;
  /** The worker processes' CPU time per step, µs (from /proc). */
  workerUsPerStep: number;
}

/**
 * Drains `n` steps already queued with fresh worker processes of the given
 * concurrency each. Finished steps are counted from what was finished when
 * the workers start: a worker being stopped finishes a few more steps, and
 * a later drain of the same queue must not count them.
 */
export async function drain(
  ctx: BenchContext,
  side: Side,
  n: number,
  concurrency: readonly number[],
  opts: { workerMetrics?: boolean; onWorkers?: (workers: readonly Child[]) => Promise<void>; onDrained?: () => Promise<void> } = {},
): Promise<DrainFigures> {
  const workers = await Promise.all(concurrency.map((c) => side.startWorker(c, undefined, opts.workerMetrics)));
  try {
    await opts.onWorkers?.(workers);
    const alreadyFinished = (await ctx.redis.count(side.finishedKey, side.finishedKind)) / side.finishedElements;
    const workerCpu = () => workers.reduce((sum, w) => sum + processCpuSeconds(w.pid), 0);
    const cpu0 = await ctx.redis.cpuSeconds();
    const workerCpu0 = workerCpu();
    const t0 = performance.now();
    for (const w of workers) w.send("go");
    const t1 = await ctx.redis.waitForCount(side.finishedKey, (alreadyFinished + n) * side.finishedElements, 600_000, 5, side.finishedKind);
    const cpu1 = await ctx.redis.cpuSeconds();
    const workerCpu1 = workerCpu();
    await opts.onDrained?.();
    return { stepsPerSecond: perSecond(n, t1 - t0), redisUsPerStep: ((cpu1 - cpu0) * 1e6) / n, workerUsPerStep: ((workerCpu1 - workerCpu0) * 1e6) / n };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}

/** Runs the end-to-end scenario. */
export async function runE2e(ctx: BenchContext): Promise<void> {
  const n = scaled(ctx, 20_000, 1000);
  const scenario = `end to end: ${n.toLocaleString("en-US")} no-op steps queued, then drained`;
  for (const s of SETUPS) {
    ctx.results.define({ id: s.id, scenario, label: s.label, unit: "steps/s", better: "higher" });
    ctx.results.define({ id: `${s.id}.redis`, scenario, label: "  Redis CPU per step", unit: "µs", better: "lower" });
  }
  for (const s of SETUPS) {
    await alternate(ctx, async (key, round) => {
      ctx.log(`end to end: ${s.label}, round ${round + 1}/${ctx.rounds}, ${key}`);
      await withSide(ctx, key, async (side) => {
        await preload(side, n);
        const d = await drain(ctx, side, n, s.concurrency);
        ctx.results.add(s.id, key, d.stepsPerSecond);
        ctx.results.add(`${s.id}.redis`, key, d.redisUsPerStep);
      });
    });
  }
}
