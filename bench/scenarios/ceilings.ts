/**
 * The same run's raw limits, so every figure can be read as a share of what
 * the machine allows: simple Redis commands and a trivial EVALSHA through
 * ioredis (64 in flight, plain and auto-pipelined), redis-benchmark when it
 * is installed, a bare node:http round trip, and a bare Connect unary call
 * and server stream with nothing behind them.
 */
import { spawnSync } from "node:child_process";
import { Agent, request } from "node:http";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Redis } from "ioredis";
import { StepService } from "../../gen/stepq/v1/step_service_pb.js";
import { startChild } from "../lib/child.js";
import { type BenchContext, scaled } from "../lib/context.js";
import { echoOperation, TEXT } from "../lib/sides.js";
import { nowMs, percentile, perSecond, runInFlight } from "../lib/stats.js";

const IN_FLIGHT = 64;

/** Operations per second of `task` at 64 in flight, after a warm-up of a tenth as many. */
async function rate(n: number, task: (i: number) => Promise<unknown>): Promise<number> {
  await runInFlight(Math.max(2000, n / 10), IN_FLIGHT, async (i) => {
    await task(i);
  });
  const t0 = performance.now();
  await runInFlight(n, IN_FLIGHT, async (i) => {
    await task(i);
  });
  return perSecond(n, performance.now() - t0);
}

async function rttP50(n: number, task: () => Promise<unknown>): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = nowMs();
    await task();
    samples.push(nowMs() - t0);
  }
  return percentile(samples, 50);
}

async function redisCeilings(ctx: BenchContext, n: number): Promise<void> {
  const plain = new Redis(ctx.redis.url);
  const piped = new Redis(ctx.redis.url, { enableAutoPipelining: true });
  try {
    const sha = (await plain.script("LOAD", "return 1")) as string;
    const r = ctx.results;
    r.ceiling("redis.ping", "Redis PING, ioredis, 64 in flight", "ops/s", await rate(n, () => plain.ping()));
    r.ceiling("redis.set", "Redis SET 100 B, ioredis, 64 in flight", "ops/s", await rate(n, (i) => plain.set(`c:${i % 1000}`, TEXT)));
    r.ceiling("redis.evalsha", "Redis EVALSHA 'return 1', ioredis, 64 in flight", "ops/s", await rate(n, () => plain.evalsha(sha, 0)));
    r.ceiling("redis.evalsha.piped", "Redis EVALSHA, auto-pipelined, 64 in flight", "ops/s", await rate(n, () => piped.evalsha(sha, 0)));
    r.ceiling("redis.rtt", "Redis PING round trip, 1 in flight, p50", "ms", await rttP50(2000, () => plain.ping()));
  } finally {
    plain.disconnect();
    piped.disconnect();
  }
  const port = new URL(ctx.redis.url).port;
  const rb = spawnSync("redis-benchmark", ["-p", port, "-q", "-n", String(n), "-t", "ping,set", "-P", "1"], { encoding: "utf8" });
  if (rb.error) {
    ctx.results.note("redis-benchmark is not installed; its ceilings are missing");
    return;
  }
  for (const m of rb.stdout.matchAll(/([A-Z_]+): ([\d.]+) requests per second/g)) {
    ctx.results.ceiling(`rb.${(m[1] as string).toLowerCase()}`, `redis-benchmark ${m[1]} (50 clients)`, "ops/s", Number(m[2]));
  }
  await ctx.redis.flush();
}

async function httpCeilings(ctx: BenchContext, n: number): Promise<void> {
  const server = startChild("bench/workers/ceiling-server.ts", []);
  const agent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
  try {
    const port = Number((await server.waitFor(/listening (\d+)/))[1]);
    const post = () =>
      new Promise<void>((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port, path: "/rt", method: "POST", agent }, (res) => {
          res.resume();
          res.on("end", resolve);
        });
        req.on("error", reject);
        req.end(TEXT);
      });
    const r = ctx.results;
    r.ceiling("http.rt", "bare node:http round trip, 64 in flight", "req/s", await rate(n, post));
    r.ceiling("http.rtt", "bare node:http round trip, 1 in flight, p50", "ms", await rttP50(2000, post));

    const steps = createClient(StepService, createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1" }));
    const operation = echoOperation();
    r.ceiling("connect.unary", "bare Connect unary (SubmitStep stub), 64 in flight", "req/s", await rate(n, () => steps.submitStep({ operation })));
    let got = 0;
    for await (const _ of steps.streamTokens({ stepId: "0.0", afterCursor: "2000" })) got++; // warm-up
    const t0 = performance.now();
    got = 0;
    for await (const _ of steps.streamTokens({ stepId: "0.0", afterCursor: String(n * 2) })) got++;
    r.ceiling("connect.stream", "bare Connect server stream, 1 stream", "msgs/s", perSecond(got, performance.now() - t0));
  } finally {
    agent.destroy();
    await server.stop();
  }
}

/** Measures the ceilings once per round. */
export async function runCeilings(ctx: BenchContext): Promise<void> {
  const n = scaled(ctx, 100_000, 20_000);
  for (let round = 0; round < ctx.rounds; round++) {
    ctx.log(`ceilings: round ${round + 1}/${ctx.rounds}`);
    await redisCeilings(ctx, n);
    await httpCeilings(ctx, Math.max(5000, Math.round(n / 4)));
  }
}
