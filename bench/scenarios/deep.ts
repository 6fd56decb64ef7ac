/**
 * `--deep`: submit and end-to-end (concurrency 16) figures with 1,000,000
 * steps already queued, to show whether a deep backlog slows the queue down
 * (the issue allows at most 10%). The backlog is filled once in the run's
 * Redis; a second private Redis, empty, holds the baseline. Each round
 * measures both, one right after the other (the order flips every round),
 * so a machine whose speed drifts over minutes (seen here: the same
 * ceiling 1.6× apart in two runs) moves both figures of a round alike
 * instead of showing up as an effect of the backlog.
 *
 * Redis resizes its key table incrementally once the key count passes a
 * power of two, and until it is done every command pays a share of the
 * move: here, a drain ran 20-30% slower with `dictRehash` and its hashing
 * ~11% of Redis's CPU (perf). A million-step backlog passes 2^20 keys in
 * the untimed first round, so the timed rounds wait until no resize is in
 * progress (`DEBUG HTSTATS`): they measure depth, not the transient, which
 * the notes report (how long it lasted, and the untimed drain during it).
 */
import { type BenchRedis, startBenchRedis } from "../lib/bench-redis.js";
import { type BenchContext, preload, scaled, withSide } from "../lib/context.js";
import type { SideKey } from "../lib/results.js";
import type { Side } from "../lib/sides.js";
import { perSecond, runInFlight } from "../lib/stats.js";
import { drain } from "./e2e.js";

/** Submits `n` steps one at a time, 64 in flight; steps/s. */
async function submitRate(side: Side, n: number): Promise<number> {
  const t0 = performance.now();
  await runInFlight(n, 64, async () => {
    await side.submitOne();
  });
  return perSecond(n, performance.now() - t0);
}

/** Waits until `redis` is not resizing its key table; the seconds waited (0: it was not resizing). */
async function untilResized(redis: BenchRedis): Promise<number> {
  if (!(await redis.resizing())) return 0;
  const t0 = performance.now();
  do await new Promise((r) => setTimeout(r, 250));
  while (await redis.resizing());
  return (performance.now() - t0) / 1000;
}

/** Runs the deep-backlog figures. */
export async function runDeep(ctx: BenchContext): Promise<void> {
  const backlog = scaled(ctx, 1_000_000, 10_000);
  const submits = scaled(ctx, 50_000, 1000);
  const drained = scaled(ctx, 20_000, 1000);
  const scenario = `deep: ${backlog.toLocaleString("en-US")} steps queued beforehand`;
  const drainLabel = `drain ${drained.toLocaleString("en-US")}, 1 worker, concurrency 16`;
  const rate = { scenario, unit: "steps/s", better: "higher" } as const;
  ctx.results.define({ id: "deep.base.submit", label: "submit, one at a time, 64 in flight: empty queue (baseline)", ...rate });
  ctx.results.define({ id: "deep.submit.lib.single", label: "  the same with the backlog", ...rate });
  ctx.results.define({ id: "deep.base.e2e.c16", label: `${drainLabel}: empty queue (baseline)`, ...rate });
  ctx.results.define({ id: "deep.e2e.c16", label: "  the same with the backlog", ...rate });
  const cpu = { scenario, unit: "µs", better: "lower" } as const;
  ctx.results.define({ id: "deep.base.e2e.c16.redis", label: "  Redis CPU per drained step: empty queue (baseline)", ...cpu });
  ctx.results.define({ id: "deep.e2e.c16.redis", label: "  the same with the backlog", ...cpu });
  const empty = await startBenchRedis();
  const baseCtx: BenchContext = { ...ctx, redis: empty };
  try {
    for (const key of ["stepq", "bullmq"] as SideKey[]) {
      await ctx.redis.flush();
      await empty.flush();
      await withSide(ctx, key, (deep) =>
        withSide(baseCtx, key, async (base) => {
          // The same untimed warm-up as the submit scenario's, on both.
          await submitRate(base, 10_000);
          await submitRate(deep, 10_000);
          await ctx.redis.flush();
          const t0 = performance.now();
          ctx.log(`deep: ${key}, queueing ${backlog} steps`);
          await preload(deep, backlog);
          ctx.log(`deep: ${key}, queued in ${((performance.now() - t0) / 1000).toFixed(0)} s; measuring`);
          // Each round takes `drained` steps off the backlog and adds
          // `submits`: it stays about as deep, and filling it once keeps the
          // run short. The first round is not timed: it passes 2^20 keys,
          // and Redis resizes its key table (see the header).
          await submitRate(deep, submits);
          const resizing = await ctx.redis.resizing();
          const during = await drain(ctx, deep, drained, [16]);
          const waited = await untilResized(ctx.redis);
          ctx.results.note(
            `${key}: untimed drain ${resizing ? "during a key table resize" : "(no key table resize)"}: ${during.stepsPerSecond.toFixed(0)} steps/s, Redis ${during.redisUsPerStep.toFixed(1)} µs/step; the timed rounds waited ${waited.toFixed(0)} s for the resize to end`,
          );
          const baseline = async () => {
            await empty.flush();
            await untilResized(empty);
            ctx.results.add("deep.base.submit", key, await submitRate(base, submits));
            await empty.flush();
            await preload(base, drained);
            await untilResized(empty);
            const d = await drain(baseCtx, base, drained, [16]);
            ctx.results.add("deep.base.e2e.c16", key, d.stepsPerSecond);
            ctx.results.add("deep.base.e2e.c16.redis", key, d.redisUsPerStep);
          };
          const resized = async () => {
            if ((await untilResized(ctx.redis)) > 0) ctx.results.note(`${key}: a timed round waited for another key table resize`);
          };
          const withBacklog = async () => {
            await resized();
            ctx.results.add("deep.submit.lib.single", key, await submitRate(deep, submits));
            await resized();
            const d = await drain(ctx, deep, drained, [16]);
            ctx.results.add("deep.e2e.c16", key, d.stepsPerSecond);
            ctx.results.add("deep.e2e.c16.redis", key, d.redisUsPerStep);
          };
          for (let round = 0; round < ctx.rounds; round++) {
            ctx.log(`deep: ${key}, round ${round + 1}/${ctx.rounds}`);
            for (const measure of round % 2 === 0 ? [baseline, withBacklog] : [withBacklog, baseline]) await measure();
          }
        }),
      );
    }
  } finally {
    await empty.stop();
  }
  await ctx.redis.flush();
  const { figures } = ctx.results.summary();
  for (const [deepId, baseId] of [["deep.e2e.c16", "deep.base.e2e.c16"], ["deep.submit.lib.single", "deep.base.submit"]] as const) {
    const deep = figures.find((f) => f.id === deepId);
    const base = figures.find((f) => f.id === baseId);
    if (!deep?.bullmq || !base?.bullmq) continue;
    const change = (a: number, b: number) => `${a >= b ? "+" : ""}${((a / b - 1) * 100).toFixed(1)}%`;
    ctx.results.note(
      `${deepId} vs ${baseId} median: stepq ${change(deep.stepq.median, base.stepq.median)}, BullMQ ${change(deep.bullmq.median, base.bullmq.median)}`,
    );
  }
}
