/**
 * Redis memory per step: `used_memory` after − before, divided by N, for N
 * small steps queued (submitted in batches, no worker) and then for the
 * same N after a worker drained them and they are kept as finished (stepq's
 * default 24 h retention; BullMQ's default of keeping completed jobs).
 * Both systems first submit a few steps, so fixed keys and loaded scripts
 * are not counted. The queue-wide events streams are capped (stepq 100,000
 * entries, BullMQ ~10,000), so their share per step depends on N: the
 * figures without them are shown too.
 */
import { type BenchContext, alternate, preload, scaled, withSide } from "../lib/context.js";
import type { FigureSpec } from "../lib/results.js";
import type { Side } from "../lib/sides.js";

function figures(n: number): FigureSpec[] {
  const scenario = `memory: Redis bytes per step, N = ${n.toLocaleString("en-US")}`;
  const bytes = { scenario, unit: "B/step", better: "lower" } as const;
  return [
    { id: "memory.queued", label: "queued step", ...bytes },
    { id: "memory.queued.noevents", label: "queued step, without the events stream", ...bytes },
    { id: "memory.finished", label: "retained finished step", ...bytes },
    { id: "memory.finished.noevents", label: "retained finished step, without the events stream", ...bytes },
  ];
}

async function keyBytes(ctx: BenchContext, key: string): Promise<number> {
  return Number((await ctx.redis.admin.call("MEMORY", "USAGE", key, "SAMPLES", "0")) ?? 0);
}

/** Memory of `n` queued, then `n` finished steps of `side`: [queued, queued without events, finished, finished without events]. */
async function measure(ctx: BenchContext, side: Side, n: number): Promise<number[]> {
  await side.submitBatch(10);
  const worker = await side.startWorker(64);
  try {
    const before = await ctx.redis.usedMemory();
    const eventsBefore = await keyBytes(ctx, side.eventsKey);
    await preload(side, n, 500);
    const queued = (await ctx.redis.usedMemory()) - before;
    const queuedEvents = (await keyBytes(ctx, side.eventsKey)) - eventsBefore;
    worker.send("go");
    await ctx.redis.waitForCount(side.finishedKey, (n + 10) * side.finishedElements, 600_000, 50, side.finishedKind);
    await worker.stop();
    const finished = (await ctx.redis.usedMemory()) - before;
    const finishedEvents = (await keyBytes(ctx, side.eventsKey)) - eventsBefore;
    return [queued / n, (queued - queuedEvents) / n, finished / n, (finished - finishedEvents) / n];
  } finally {
    await worker.stop();
  }
}

/** Runs the memory scenario. */
export async function runMemory(ctx: BenchContext): Promise<void> {
  const n = scaled(ctx, 50_000, 2000);
  const specs = figures(n);
  for (const f of specs) ctx.results.define(f);
  await alternate(ctx, async (key, round) => {
    ctx.log(`memory: round ${round + 1}/${ctx.rounds}, ${key}`);
    const values = await withSide(ctx, key, (side) => measure(ctx, side, n));
    specs.forEach((f, i) => ctx.results.add(f.id, key, values[i] as number));
  });
}
