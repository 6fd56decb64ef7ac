/**
 * Submit throughput: small steps one at a time with 64 in flight, and in
 * batches of 500 (4 batches in flight), through the library call (stepq
 * `queue.submit` / `queue.submitAll`, BullMQ `add` / `addBulk`) and,
 * for stepq, through the Connect API of a real server process (SubmitStep,
 * SubmitSteps) over HTTP/1.1, the Node client's default.
 */
import { createStepqClient } from "../../clients/node/client.js";
import { type BenchContext, alternate, scaled, startStepqServer, withSide } from "../lib/context.js";
import type { FigureSpec } from "../lib/results.js";
import { echoOperation } from "../lib/sides.js";
import { perSecond, runInFlight } from "../lib/stats.js";

const IN_FLIGHT = 64;
const BATCH = 500;
const BATCHES_IN_FLIGHT = 4;

function figures(n: number): FigureSpec[] {
  const scenario = `submit: ${n.toLocaleString("en-US")} small steps`;
  const rate = { scenario, unit: "steps/s", better: "higher" } as const;
  return [
    { id: "submit.lib.single", label: "library, one at a time, 64 in flight", limit: "redis.evalsha", ...rate },
    { id: "submit.lib.single.redis", scenario, label: "  Redis CPU per step", unit: "µs", better: "lower" },
    { id: "submit.lib.batch", label: `library, batches of ${BATCH} (addBulk)`, ...rate },
    { id: "submit.api.single", label: "Connect SubmitStep, 64 in flight", limit: "connect.unary", peerOf: "submit.lib.single", ...rate },
    { id: "submit.api.batch", label: `Connect SubmitSteps, batches of ${BATCH}`, peerOf: "submit.lib.batch", ...rate },
  ];
}

/** Times `count` calls of `task`, `inFlight` at a time; returns calls per second × `perCall`. */
async function timed(count: number, inFlight: number, perCall: number, task: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await runInFlight(count, inFlight, async () => {
    await task();
  });
  return perSecond(count * perCall, performance.now() - t0);
}

/** Warms connections, scripts and the JIT with both kinds of call, then empties Redis. */
async function warmUp(ctx: BenchContext, one: () => Promise<unknown>, batch: () => Promise<unknown>): Promise<void> {
  await timed(10_000, IN_FLIGHT, 1, one);
  await timed(8, BATCHES_IN_FLIGHT, BATCH, batch);
  await ctx.redis.flush();
}

/** Runs the submit scenario. */
export async function runSubmit(ctx: BenchContext): Promise<void> {
  const n = scaled(ctx, 50_000, 1000);
  for (const f of figures(n)) ctx.results.define(f);
  const batches = Math.max(1, Math.round(n / BATCH));
  const server = await startStepqServer(ctx);
  try {
    const client = createStepqClient({ baseUrl: server.url });
    const operation = echoOperation();
    const requests = Array.from({ length: BATCH }, () => ({ operation }));
    await alternate(ctx, async (key, round) => {
      ctx.log(`submit: round ${round + 1}/${ctx.rounds}, ${key}, ${n} steps`);
      await withSide(ctx, key, async (side) => {
        await warmUp(ctx, () => side.submitOne(), () => side.submitBatch(BATCH));
        const cpu0 = await ctx.redis.cpuSeconds();
        ctx.results.add("submit.lib.single", key, await timed(n, IN_FLIGHT, 1, () => side.submitOne()));
        ctx.results.add("submit.lib.single.redis", key, (((await ctx.redis.cpuSeconds()) - cpu0) * 1e6) / n);
        await ctx.redis.flush();
        ctx.results.add("submit.lib.batch", key, await timed(batches, BATCHES_IN_FLIGHT, BATCH, () => side.submitBatch(BATCH)));
      });
      if (key !== "stepq") return;
      await warmUp(ctx, () => client.submit(operation), () => client.steps.submitSteps({ requests }));
      ctx.results.add("submit.api.single", "stepq", await timed(n, IN_FLIGHT, 1, () => client.submit(operation)));
      await ctx.redis.flush();
      ctx.results.add("submit.api.batch", "stepq", await timed(batches, BATCHES_IN_FLIGHT, BATCH, () => client.steps.submitSteps({ requests })));
    });
  } finally {
    await server.child.stop();
  }
}
