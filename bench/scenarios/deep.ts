/**
 * `--deep`: the same submit and end-to-end (concurrency 16) figures with
 * 1,000,000 steps already queued, to show whether a deep backlog slows the
 * queue down (the issue allows at most 10%). Each system fills the backlog
 * once, then runs every round on it (no alternation: refilling costs a
 * minute or more). Run after the normal scenarios, whose medians are the
 * baseline.
 */
import { type BenchContext, preload, scaled, withSide } from "../lib/context.js";
import type { SideKey } from "../lib/results.js";
import { perSecond, runInFlight } from "../lib/stats.js";
import { drain } from "./e2e.js";

/** Runs the deep-backlog figures. */
export async function runDeep(ctx: BenchContext): Promise<void> {
  const backlog = scaled(ctx, 1_000_000, 10_000);
  const submits = scaled(ctx, 50_000, 1000);
  const drained = scaled(ctx, 20_000, 1000);
  const scenario = `deep: ${backlog.toLocaleString("en-US")} steps queued beforehand`;
  ctx.results.define({ id: "deep.submit.lib.single", scenario, label: "submit, library, one at a time, 64 in flight", unit: "steps/s", better: "higher" });
  ctx.results.define({ id: "deep.e2e.c16", scenario, label: `drain ${drained.toLocaleString("en-US")}, 1 worker, concurrency 16`, unit: "steps/s", better: "higher" });
  for (const key of ["stepq", "bullmq"] as SideKey[]) {
    await ctx.redis.flush();
    await withSide(ctx, key, async (side) => {
      const t0 = performance.now();
      ctx.log(`deep: ${key}, queueing ${backlog} steps`);
      await preload(side, backlog);
      ctx.log(`deep: ${key}, queued in ${((performance.now() - t0) / 1000).toFixed(0)} s; measuring`);
      // The same untimed warm-up as the submit scenario's (the backlog went in as batches).
      await runInFlight(10_000, 64, async () => {
        await side.submitOne();
      });
      // Each round takes `drained` steps off the backlog and adds `submits`:
      // it stays about as deep, and filling it once keeps the run short.
      let finished = 0;
      for (let round = 0; round < ctx.rounds; round++) {
        const t1 = performance.now();
        await runInFlight(submits, 64, async () => {
          await side.submitOne();
        });
        ctx.results.add("deep.submit.lib.single", key, perSecond(submits, performance.now() - t1));
        ctx.results.add("deep.e2e.c16", key, (await drain(ctx, side, drained, [16], finished)).stepsPerSecond);
        finished += drained;
      }
    });
  }
  await ctx.redis.flush();
  const { figures } = ctx.results.summary();
  for (const [deepId, normalId] of [["deep.e2e.c16", "e2e.c16"], ["deep.submit.lib.single", "submit.lib.single"]] as const) {
    const deep = figures.find((f) => f.id === deepId);
    const normal = figures.find((f) => f.id === normalId);
    if (!deep?.bullmq || !normal?.bullmq) continue;
    const change = (a: number, b: number) => `${a >= b ? "+" : ""}${((a / b - 1) * 100).toFixed(1)}%`;
    ctx.results.note(
      `${deepId} vs ${normalId} median: stepq ${change(deep.stepq.median, normal.stepq.median)}, BullMQ ${change(deep.bullmq.median, normal.bullmq.median)}`,
    );
  }
}
