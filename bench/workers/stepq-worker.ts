/**
 * A stepq worker process for the benchmark: the same `createWorker` runtime
 * and defaults as `worker/main.ts` (lease 30 s, flush 2 ms), plus a start
 * gate. It connects, prints `ready`, and claims nothing until it reads `go`
 * on stdin, so process start-up (and the skew between two processes) is not
 * part of a timed drain. `dump` prints the start stamps of the `stamp` engine.
 *
 * Traced as worker/main.ts is, when the environment asks (runtime/tracing.ts).
 * With --metrics, it also serves its /metrics (worker/metrics.ts) on a free
 * port and prints `metrics url=<url>` before `ready`.
 *
 *   node --import tsx bench/workers/stepq-worker.ts --redis-url URL --queue Q --concurrency N --engine echo|stamp|pace [--metrics]
 */
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { createEchoEngine } from "../../worker/engines/echo.js";
import type { Engine } from "../../worker/engines/engine.js";
import { startTracing } from "../../runtime/tracing.js";
import { createWorkerMetrics, listenForMetrics } from "../../worker/metrics.js";
import { createWorker } from "../../worker/worker.js";
import { createPaceEngine, createStampEngine } from "./engines.js";

const { values } = parseArgs({
  options: {
    "redis-url": { type: "string" },
    queue: { type: "string", default: "default" },
    concurrency: { type: "string", default: "1" },
    engine: { type: "string", default: "echo" },
    metrics: { type: "boolean", default: false },
  },
});
const stamps = new Map<string, number>();
const engines: Record<string, () => Engine> = {
  echo: createEchoEngine,
  stamp: () => createStampEngine(stamps),
  pace: createPaceEngine,
};
const make = engines[values.engine as string];
if (!make || !values["redis-url"]) {
  process.stderr.write("usage: stepq-worker.ts --redis-url URL [--queue Q] [--concurrency N] [--engine echo|stamp|pace]\n");
  process.exit(2);
}

// As worker/main.ts: traced only when OTEL_* or STEPQ_TRACES_FILE asks (e.g. to measure tracing's cost).
await startTracing("stepq-worker");
const worker = createWorker({
  redisUrl: values["redis-url"],
  queue: values.queue,
  concurrency: Number(values.concurrency),
  engines: [make()],
});
await worker.start();
if (values.metrics) {
  const listener = await listenForMetrics(createWorkerMetrics(worker), 0, "127.0.0.1", (e) => process.stderr.write(`${e.message}\n`));
  process.stdout.write(`metrics url=http://127.0.0.1:${listener.port}/metrics\n`);
}
let running: Promise<void> | undefined;
createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "go") running ??= worker.runForever();
  else if (line === "dump") process.stdout.write(`stamps ${JSON.stringify(Object.fromEntries(stamps))}\n`);
});
process.once("SIGTERM", () => {
  void worker.stop(1000).then(() => process.exit(0));
});
process.stdout.write("ready\n");
