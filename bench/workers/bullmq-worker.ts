/**
 * A BullMQ worker process for the benchmark, the peer of
 * `stepq-worker.ts`: a no-op processor (`async () => {}`), BullMQ's
 * defaults, and the same start gate (`ready`, then `go` on stdin). With
 * `--stamp` the processor records when each job starts; `dump` prints them.
 *
 *   node --import tsx bench/workers/bullmq-worker.ts --redis-url URL --queue Q --concurrency N [--stamp]
 */
import { Worker } from "bullmq";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { nowMs } from "../lib/stats.js";

const { values } = parseArgs({
  options: {
    "redis-url": { type: "string" },
    queue: { type: "string", default: "bench" },
    concurrency: { type: "string", default: "1" },
    stamp: { type: "boolean", default: false },
  },
});
if (!values["redis-url"]) {
  process.stderr.write("usage: bullmq-worker.ts --redis-url URL [--queue Q] [--concurrency N] [--stamp]\n");
  process.exit(2);
}

const stamps = new Map<string, number>();
const processor = values.stamp
  ? async (job: { id?: string }) => {
      stamps.set(job.id ?? "", nowMs());
    }
  : async () => {};
const worker = new Worker(values.queue as string, processor, {
  connection: { url: values["redis-url"] },
  concurrency: Number(values.concurrency),
  autorun: false,
});
worker.on("error", (err) => process.stderr.write(`bullmq worker error: ${err.message}\n`));
await worker.waitUntilReady();
let running = false;
createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "go" && !running) {
    running = true;
    void worker.run();
  } else if (line === "dump") process.stdout.write(`stamps ${JSON.stringify(Object.fromEntries(stamps))}\n`);
});
process.once("SIGTERM", () => {
  void worker.close(true).then(() => process.exit(0));
});
process.stdout.write("ready\n");
