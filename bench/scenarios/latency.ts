/**
 * Latency with an idle worker: steps submitted one at a time, each waited
 * for before the next. submit→start is measured where the work begins (the
 * worker process stamps each start with the machine clock: stepq's `stamp`
 * engine, BullMQ's processor); submit→completion is when the client sees
 * the completion (stepq: a WatchSteps stream through the server; BullMQ:
 * QueueEvents). The library variants compare like with like; the Connect
 * variant (stepq only) adds the HTTP hop and waits with `client.wait()`.
 */
import { QueueEvents } from "bullmq";
import { createStepqClient, type StepqClient } from "../../clients/node/client.js";
import { EventType } from "../../gen/stepq/v1/events_pb.js";
import type { Child } from "../lib/child.js";
import { type BenchContext, alternate, scaled, startStepqServer, withSide } from "../lib/context.js";
import type { FigureSpec, SideKey } from "../lib/results.js";
import { echoOperation, QUEUE, type Side } from "../lib/sides.js";
import { nowMs, percentile } from "../lib/stats.js";

const WARM_UP = 20;

function figures(n: number): FigureSpec[] {
  const scenario = `latency: idle worker, ${n.toLocaleString("en-US")} steps one at a time`;
  const ms = { scenario, unit: "ms", better: "lower" } as const;
  return [
    { id: "latency.start.p50", label: "submit→start p50 (library submit)", limit: "redis.rtt", ...ms },
    { id: "latency.start.p99", label: "submit→start p99 (library submit)", ...ms },
    { id: "latency.done.p50", label: "submit→completion seen by client p50", ...ms },
    { id: "latency.done.p99", label: "submit→completion seen by client p99", ...ms },
    { id: "latency.api.start.p50", label: "Connect SubmitStep→start p50", limit: "http.rtt", ...ms },
    { id: "latency.api.start.p99", label: "Connect SubmitStep→start p99", ...ms },
    { id: "latency.api.done.p50", label: "Connect SubmitStep→client.wait() p50", ...ms },
    { id: "latency.api.done.p99", label: "Connect SubmitStep→client.wait() p99", ...ms },
  ];
}

/** Completion times by id, from a stream of completion events; `wait(id)` resolves with the time seen. */
function completions() {
  const seen = new Map<string, number>();
  const waiting = new Map<string, (t: number) => void>();
  return {
    saw(id: string) {
      const t = nowMs();
      const w = waiting.get(id);
      if (w) {
        waiting.delete(id);
        w(t);
      } else seen.set(id, t);
    },
    wait(id: string): Promise<number> {
      const t = seen.get(id);
      if (t !== undefined) return Promise.resolve(t);
      return new Promise((resolve) => waiting.set(id, resolve));
    },
  };
}

/** `p`'s value, or undefined if it takes longer than `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Asks the worker for its start stamps. */
async function stamps(worker: Child): Promise<Record<string, number>> {
  const from = worker.outputLength();
  worker.send("dump");
  return JSON.parse((await worker.waitFor(/^stamps (.*)$/m, 30_000, from))[1] as string) as Record<string, number>;
}

/** Submits `n` steps one at a time with `submit`, waiting for each; returns submit→start and submit→done samples. */
async function measure(
  worker: Child,
  n: number,
  submit: () => Promise<string>,
  done: (id: string) => Promise<number>,
): Promise<{ start: number[]; done: number[] }> {
  const sent = new Map<string, number>();
  const total: number[] = [];
  // Warm-up, which also makes sure the completion stream is live: a stream
  // opened a moment ago may not see the first completions yet.
  for (let i = 0, live = 0; live < WARM_UP; i++) {
    if (i > WARM_UP * 10) throw new Error("completion events never arrived");
    if ((await within(done(await submit()), 2000)) !== undefined) live++;
  }
  for (let i = 0; i < n; i++) {
    const t0 = nowMs();
    const id = await submit();
    const t1 = await within(done(id), 30_000);
    if (t1 === undefined) throw new Error(`no completion seen for ${id} within 30 s`);
    sent.set(id, t0);
    total.push(t1 - t0);
  }
  const started = await stamps(worker);
  return { start: [...sent].map(([id, t0]) => (started[id] as number) - t0), done: total };
}

function record(ctx: BenchContext, key: SideKey, prefix: string, s: { start: number[]; done: number[] }): void {
  ctx.results.add(`${prefix}.start.p50`, key, percentile(s.start, 50));
  ctx.results.add(`${prefix}.start.p99`, key, percentile(s.start, 99));
  ctx.results.add(`${prefix}.done.p50`, key, percentile(s.done, 50));
  ctx.results.add(`${prefix}.done.p99`, key, percentile(s.done, 99));
}

async function stepqRound(ctx: BenchContext, side: Side, client: StepqClient, n: number): Promise<void> {
  const worker = await side.startWorker(1, "stamp");
  const seen = completions();
  const abort = new AbortController();
  const watching = (async () => {
    for await (const res of client.steps.watchSteps({ types: [EventType.STEP_SUCCEEDED] }, { signal: abort.signal })) {
      if (res.event) seen.saw(res.event.stepId);
    }
  })().catch(() => {});
  try {
    worker.send("go");
    record(ctx, "stepq", "latency", await measure(worker, n, () => side.submitOne(), (id) => seen.wait(id)));
    const operation = echoOperation();
    const api = await measure(worker, n, async () => (await client.submit(operation)).id, async (id) => {
      await client.wait(id);
      return nowMs();
    });
    record(ctx, "stepq", "latency.api", api);
  } finally {
    abort.abort();
    await watching;
    await worker.stop();
  }
}

async function bullRound(ctx: BenchContext, side: Side, n: number): Promise<void> {
  const worker = await side.startWorker(1, "stamp");
  const events = new QueueEvents(QUEUE, { connection: { url: ctx.redis.url } });
  const seen = completions();
  events.on("completed", ({ jobId }) => seen.saw(jobId));
  try {
    await events.waitUntilReady();
    worker.send("go");
    record(ctx, "bullmq", "latency", await measure(worker, n, () => side.submitOne(), (id) => seen.wait(id)));
  } finally {
    await events.close();
    await worker.stop();
  }
}

/** Runs the latency scenario. */
export async function runLatency(ctx: BenchContext): Promise<void> {
  const n = scaled(ctx, 2000, 200);
  for (const f of figures(n)) ctx.results.define(f);
  const server = await startStepqServer(ctx);
  try {
    const client = createStepqClient({ baseUrl: server.url });
    await alternate(ctx, async (key, round) => {
      ctx.log(`latency: round ${round + 1}/${ctx.rounds}, ${key}`);
      await withSide(ctx, key, (side) => (key === "stepq" ? stepqRound(ctx, side, client, n) : bullRound(ctx, side, n)));
    });
  } finally {
    await server.child.stop();
  }
}
