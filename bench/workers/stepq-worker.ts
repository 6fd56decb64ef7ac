/**
 * A stepq worker process for the benchmark: the same `createWorker` runtime
 * and defaults as `worker/main.ts` (lease 30 s, flush 2 ms), plus a start
 * gate. It connects, prints `ready`, and claims nothing until it reads `go`
 * on stdin, so process start-up (and the skew between two processes) is not
 * part of a timed drain. `dump` prints the start stamps of the `stamp` engine.
 *
 *   node --import tsx bench/workers/stepq-worker.ts --redis-url URL --queue Q --concurrency N --engine echo|stamp|pace
 */
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { createEchoEngine } from "../../worker/engines/echo.js";
import type { Engine } from "../../worker/engines/engine.js";
import { createWorker } from "../../worker/worker.js";
import { createPaceEngine, createStampEngine } from "./engines.js";

const { values } = parseArgs({
  options: {
    "redis-url": { type: "string" },
    queue: { type: "string", default: "default" },
    concurrency: { type: "string", default: "1" },
    engine: { type: "string", default: "echo" },
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

const worker = createWorker({
  redisUrl: values["redis-url"],
  queue: values.queue,
  concurrency: Number(values.concurrency),
  engines: [make()],
});
await worker.start();
let running: Promise<void> | undefined;
createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "go") running ??= worker.runForever();
  else if (line === "dump") process.stdout.write(`stamps ${JSON.stringify(Object.fromEntries(stamps))}\n`);
});
process.once("SIGTERM", () => {
  void worker.stop(1000).then(() => process.exit(0));
});
process.stdout.write("ready\n");
