/**
 * What OpenTelemetry tracing costs a worker: the end-to-end drain at
 * concurrency 16 (60,000 steps), the worker exporting spans over OTLP/HTTP
 * to a sink in this process (it answers every export at once, so what is
 * measured is stepq's side), in three arms: tracing off; tracing on, jobs
 * submitted untraced (what a worker pays for steps its submitters did not
 * sample: nothing, since the claim hands over the stored context); tracing
 * on, every job submitted with a sampled traceparent (three spans per step
 * and their export). Arms alternate; each reports the worker's and Redis's
 * CPU per step.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { oneStepJob } from "../../queue/prepare-job.js";
import { type BenchContext, scaled } from "../lib/context.js";
import { createStepqSide, echoOperation } from "../lib/sides.js";
import { drain } from "./e2e.js";

/** A sampled W3C traceparent, as a traced submit stores it. */
const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

const ARMS = [
  { id: "tracing.off", label: "end to end c16, tracing off", tracing: false, traced: false },
  { id: "tracing.untraced", label: "end to end c16, tracing on, jobs submitted untraced", tracing: true, traced: false },
  { id: "tracing.traced", label: "end to end c16, tracing on, every job traced", tracing: true, traced: true },
] as const;

export async function runTracing(ctx: BenchContext): Promise<void> {
  const n = scaled(ctx, 60_000, 1000);
  const scenario = `tracing: ${n.toLocaleString("en-US")} no-op steps drained by a worker exporting spans over OTLP`;
  for (const a of ARMS) {
    ctx.results.define({ id: a.id, scenario, label: a.label, unit: "steps/s", better: "higher" });
    ctx.results.define({ id: `${a.id}.redis`, scenario, label: "  Redis CPU per step", unit: "µs", better: "lower" });
    ctx.results.define({ id: `${a.id}.worker`, scenario, label: "  worker process CPU per step", unit: "µs", better: "lower" });
  }
  // The collector stand-in: counts export requests and bytes, answers at once.
  let exports = 0;
  const sink = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      exports++;
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
  const endpoint = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/v1/traces`;
  const saved = process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  try {
    for (let round = 0; round < ctx.rounds; round++) {
      const order = round % 2 === 0 ? ARMS : [...ARMS].reverse();
      for (const a of order) {
        ctx.log(`tracing: ${a.label}, round ${round + 1}/${ctx.rounds}`);
        await ctx.redis.flush();
        // Worker processes inherit this process's environment (bench/lib/child.ts).
        if (a.tracing) process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = endpoint;
        else delete process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
        const side = createStepqSide(ctx.redis.url);
        try {
          const op = echoOperation();
          for (let done = 0; done < n; done += 1000) {
            const jobs = Array.from({ length: Math.min(1000, n - done) }, () =>
              side.queue.prepare({ ...oneStepJob({ operation: op }), traceparent: a.traced ? TRACEPARENT : undefined }),
            );
            await side.queue.submitAll(jobs);
          }
          const d = await drain(ctx, side, n, [16]);
          ctx.results.add(a.id, "stepq", d.stepsPerSecond);
          ctx.results.add(`${a.id}.redis`, "stepq", d.redisUsPerStep);
          ctx.results.add(`${a.id}.worker`, "stepq", d.workerUsPerStep);
        } finally {
          await side.close();
        }
      }
    }
  } finally {
    if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
    else process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = saved;
    sink.close();
  }
  if (exports === 0) throw new Error("the traced arms exported no spans: was tracing on in the worker?");
}
