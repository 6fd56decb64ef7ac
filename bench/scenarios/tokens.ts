/**
 * Token streaming (stepq only), through a real server and worker process:
 * - one echo step streaming 100,000 tokens as fast as the engine makes
 *   them, followed by one client: tokens/s and messages/s delivered (the
 *   messages against the bare Connect stream ceiling);
 * - 100 and 1,000 concurrent followers, each following its own running
 *   step that emits 100 tokens 20 ms apart (the bench `pace` engine puts
 *   each token's emit time into its text): tokens/s delivered in total and
 *   p50/p99 of engine-emit→client-receive latency, and for a median burst
 *   (the tokens of one engine tick) when its last append, its first receipt
 *   and its last receipt came, counted from its first emit; then the same
 *   with the client on HTTP/2 (`httpVersion: "2"`, one connection for every
 *   follower), its fewer figures against the HTTP/2 floor.
 * Steps wait `delay_ms` before their first token so every follower is
 * connected before it: no token is a replay. Worker processes are fresh, so
 * each first runs a short unmeasured wave (JIT warm-up).
 *
 * The followers' floor is measured in the same round (fanout-floor.ts).
 */
import { createStepqClient, type StepqClient } from "../../clients/node/client.js";
import { oneStepJob } from "../../queue/prepare-job.js";
import type { Child } from "../lib/child.js";
import { type BenchContext, scaled, startStepqServer } from "../lib/context.js";
import type { FigureSpec } from "../lib/results.js";
import { createStepqSide, echoOperation, TEXT } from "../lib/sides.js";
import { nowMs, percentile, perSecond } from "../lib/stats.js";
import { fanoutFloors, type Proto } from "./fanout-floor.js";

const PACE = { tokenCount: 100, tokenDelayMs: 20 };

function figures(single: number, followers: readonly number[]): FigureSpec[] {
  const scenario = "token streaming (stepq only)";
  const out: FigureSpec[] = [
    { id: "tokens.single", scenario, label: `1 step, ${single.toLocaleString("en-US")} tokens, 1 client`, unit: "tokens/s", better: "higher" },
    { id: "tokens.single.msgs", scenario, label: "  the same, messages delivered", unit: "msgs/s", better: "higher", limit: "connect.stream" },
  ];
  for (const proto of ["h1", "h2"] as const) for (const f of followers) out.push(...followerFigures(scenario, f, proto));
  return out;
}

/** The id prefix of the follower figures: `tokens.f100` over HTTP/1.1 (the client's default), `tokens.h2.f100` over HTTP/2. */
function followerKey(count: number, proto: Proto): string {
  return proto === "h1" ? `tokens.f${count}` : `tokens.h2.f${count}`;
}

/**
 * The figures of `f` followers with the client on `proto`, the latencies
 * against that protocol's fan-out floor; where a token's and a burst's
 * time goes is shown for the default transport only.
 */
function followerFigures(scenario: string, f: number, proto: Proto): FigureSpec[] {
  const k = followerKey(f, proto);
  const floor = `fanout.${proto}.f${f}`;
  const ms = { scenario, unit: "ms", better: "lower" } as const;
  const label = proto === "h1" ? `${f} followers, ${PACE.tokenCount} tokens at ${PACE.tokenDelayMs} ms each` : `${f} followers, the client on HTTP/2 (one connection)`;
  const detail: FigureSpec[] = [
    { id: `${k}.write.p50`, label: "    worker half: emit→appended p50", ...ms },
    { id: `${k}.write.p99`, label: "    worker half: emit→appended p99", ...ms },
    { id: `${k}.read.p50`, label: "    server half: appended→received p50", ...ms },
    { id: `${k}.read.p99`, label: "    server half: appended→received p99", ...ms },
    { id: `${k}.burst.appended`, label: "    a burst (median): last appended, after its first emit", ...ms },
    { id: `${k}.burst.first`, label: "    a burst (median): first follower received", ...ms },
  ];
  return [
    { id: k, scenario, label, unit: "tokens/s", better: "higher" },
    { id: `${k}.p50`, label: "  emit→receive p50", limit: `${floor}.p50`, ...ms },
    { id: `${k}.p99`, label: "  emit→receive p99", limit: `${floor}.p99`, ...ms },
    ...(proto === "h1" ? detail : []),
    { id: `${k}.burst.last`, label: "    a burst (median): last follower received", limit: `${floor}.last`, ...ms },
  ];
}

/** One step of `n` tokens from the echo engine, followed by one client: tokens/s and messages/s. */
async function singleStream(ctx: BenchContext, client: StepqClient, n: number): Promise<{ tokens: number; messages: number }> {
  const step = await client.submit(echoOperation({ text: TEXT, tokenCount: n }));
  let tokens = 0;
  let messages = 0;
  let first = 0;
  for await (const e of client.follow(step.id)) {
    if (e.type !== "tokens") continue;
    first ||= performance.now();
    tokens += e.tokens.length;
    messages++;
  }
  const ms = performance.now() - first;
  if (tokens !== n) ctx.results.note(`single stream delivered ${tokens} of ${n} tokens`);
  return { tokens: perSecond(tokens, ms), messages: perSecond(messages, ms) };
}

/** What the followers saw: tokens/s in total, and per token its latency and the two halves of it (ms). */
interface FollowerFigures {
  tokensPerSecond: number;
  latencies: number[];
  writes: number[];
  reads: number[];
  /** Per token: [emitted, appended, received] (ms). */
  times: [number, number, number][];
}

/** `count` steps emitting `tokens` paced tokens, each followed by its own client. */
async function followers(ctx: BenchContext, client: StepqClient, count: number, tokens: number): Promise<FollowerFigures> {
  const side = createStepqSide(ctx.redis.url);
  const operation = echoOperation({ tokenCount: tokens, tokenDelayMs: PACE.tokenDelayMs, delayMs: count >= 1000 ? 5000 : 1500 });
  const prepared = Array.from({ length: count }, () => side.queue.prepare(oneStepJob({ operation })));
  const ids = (await side.queue.submitAll(prepared)).map((r) => `${r.jobId}.0`);
  await side.close();
  const m: FollowerFigures = { tokensPerSecond: 0, latencies: [], writes: [], reads: [], times: [] };
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  await Promise.all(
    ids.map(async (id) => {
      for await (const e of client.follow(id)) {
        if (e.type !== "tokens") continue;
        const now = nowMs();
        first = Math.min(first, now);
        last = now;
        // The log entry id is the Redis time (ms) of the append: it splits a
        // token's latency into the worker's half and the server's half.
        const appended = Number.parseInt(e.cursor, 10) + 0.5;
        for (const t of e.tokens) {
          const emitted = Number.parseFloat(t.text);
          m.latencies.push(now - emitted);
          m.writes.push(appended - emitted);
          m.reads.push(now - appended);
          m.times.push([emitted, appended, now]);
        }
      }
    }),
  );
  const expected = count * tokens;
  if (m.latencies.length !== expected) ctx.results.note(`${count} followers received ${m.latencies.length} of ${expected} tokens`);
  m.tokensPerSecond = perSecond(m.latencies.length, last - first);
  return m;
}

/**
 * The tokens grouped by the engine tick that emitted them (the pace engine
 * emits on a shared clock, so a tick's tokens are emitted within a few ms);
 * per tick: [first emit, last append, first receive, last receive].
 */
function burstsOf(times: readonly [number, number, number][]): [number, number, number, number][] {
  const origin = Math.min(...times.map((t) => t[0]));
  const ticks = new Map<number, [number, number, number, number]>();
  for (const [emitted, appended, received] of times) {
    const tick = Math.round((emitted - origin) / PACE.tokenDelayMs);
    const b = ticks.get(tick);
    if (!b) ticks.set(tick, [emitted, appended, received, received]);
    else {
      b[0] = Math.min(b[0], emitted);
      b[1] = Math.max(b[1], appended);
      b[2] = Math.min(b[2], received);
      b[3] = Math.max(b[3], received);
    }
  }
  return [...ticks.values()];
}

/** Records the figures of `count` followers with the client on `proto` (see followerFigures). */
function recordFollowers(ctx: BenchContext, count: number, proto: Proto, m: FollowerFigures): void {
  const k = followerKey(count, proto);
  ctx.results.add(k, "stepq", m.tokensPerSecond);
  const split = proto === "h1" ? ([[".write", m.writes], [".read", m.reads]] as const) : [];
  for (const [suffix, samples] of [["", m.latencies] as const, ...split]) {
    ctx.results.add(`${k}${suffix}.p50`, "stepq", percentile(samples, 50));
    ctx.results.add(`${k}${suffix}.p99`, "stepq", percentile(samples, 99));
  }
  // Where a burst's time goes: each moment measured from the burst's first emit.
  const bursts = burstsOf(m.times);
  if (proto === "h1") {
    ctx.results.add(`${k}.burst.appended`, "stepq", percentile(bursts.map((b) => b[1] - b[0]), 50));
    ctx.results.add(`${k}.burst.first`, "stepq", percentile(bursts.map((b) => b[2] - b[0]), 50));
  }
  ctx.results.add(`${k}.burst.last`, "stepq", percentile(bursts.map((b) => b[3] - b[0]), 50));
}

async function withWorker(ctx: BenchContext, concurrency: number, engine: "echo" | "pace", fn: () => Promise<void>): Promise<void> {
  const side = createStepqSide(ctx.redis.url);
  let worker: Child | undefined;
  try {
    worker = await side.startWorker(concurrency, engine);
    worker.send("go");
    await fn();
  } finally {
    await worker?.stop();
    await side.close();
  }
}

/** Runs the token streaming scenario. */
export async function runTokens(ctx: BenchContext): Promise<void> {
  const single = scaled(ctx, 100_000, 10_000);
  const counts = ctx.scale >= 0.5 ? [100, 1000] : [100, 200];
  for (const f of figures(single, counts)) ctx.results.define(f);
  const server = await startStepqServer(ctx);
  try {
    const client = createStepqClient({ baseUrl: server.url });
    const h2Client = createStepqClient({ baseUrl: server.url, httpVersion: "2" });
    for (let round = 0; round < ctx.rounds; round++) {
      ctx.log(`tokens: round ${round + 1}/${ctx.rounds}`);
      await ctx.redis.flush();
      // Each worker process is fresh: a short unmeasured run first, so the
      // figures are steady state rather than JIT warm-up.
      await withWorker(ctx, 1, "echo", async () => {
        await singleStream(ctx, client, 10_000);
        const m = await singleStream(ctx, client, single);
        ctx.results.add("tokens.single", "stepq", m.tokens);
        ctx.results.add("tokens.single.msgs", "stepq", m.messages);
      });
      await fanoutFloors(ctx, counts, PACE);
      await withWorker(ctx, Math.max(...counts), "pace", async () => {
        // HTTP/1.1 first, so its figures stay comparable with runs before the HTTP/2 waves.
        for (const [proto, c] of [["h1", client], ["h2", h2Client]] as const) {
          for (const count of counts) {
            // An unmeasured wave of the same shape first: measured right
            // after a shorter one of another shape, the p99 came out 2-4×
            // the steady figure of later waves (JIT, heap sizing).
            await followers(ctx, c, count, 20);
            await ctx.redis.flush();
            recordFollowers(ctx, count, proto, await followers(ctx, c, count, PACE.tokenCount));
          }
        }
      });
    }
  } finally {
    await server.child.stop();
  }
}
