/**
 * The two systems under test behind one small interface, so every scenario
 * does the same thing to both: submit one small step, submit a batch, start
 * worker processes, and count finished work. Both use queue name "bench",
 * the same ~100-byte text payload, and each product's default connection
 * settings (neither auto-pipelines).
 */
import { create } from "@bufbuild/protobuf";
import { Queue as BullQueue } from "bullmq";
import { type Operation, OperationSchema } from "../../gen/stepq/v1/operation_pb.js";
import { createRedis } from "../../queue/connection.js";
import { oneStepJob, type PreparedJob, stepFieldPaths } from "../../queue/prepare-job.js";
import { createQueue, type Queue } from "../../queue/queue.js";
import { type Child, startChild } from "./child.js";

/** The queue name both systems use. */
export const QUEUE = "bench";

/** The payload of every small step: 100 bytes of text. */
export const TEXT = "benchmark payload: a small step of about one hundred bytes, the size of a typical short prompt...".padEnd(100, ".");

/** Which engine a stepq bench worker runs (see bench/workers/engines.ts). */
export type BenchEngine = "echo" | "stamp" | "pace";

/** What a scenario can do to either system. */
export interface Side {
  readonly name: "stepq" | "BullMQ";
  /** Submits one small step; resolves with its id (stepq step id, BullMQ job id). */
  submitOne(): Promise<string>;
  /** Submits `n` small steps in one call (stepq `submitAll`, BullMQ `addBulk`). */
  submitBatch(n: number): Promise<void>;
  /** The key whose length counts finished steps (stepq's expiry list, BullMQ's completed set). */
  readonly finishedKey: string;
  /** The type of `finishedKey`. */
  readonly finishedKind: "list" | "zset";
  /** Elements of `finishedKey` per finished step. */
  readonly finishedElements: number;
  /** The queue-wide, capped events stream (stepq's events, BullMQ's events). */
  readonly eventsKey: string;
  /** Starts a worker process and waits until it is connected; it claims nothing before `go`. */
  /** A worker process; `metrics`: stepq's serves its /metrics too (it prints `metrics url=<url>`). */
  startWorker(concurrency: number, engine?: BenchEngine, metrics?: boolean): Promise<Child>;
  close(): Promise<void>;
}

/** An echo operation: `text`, streaming nothing unless asked. */
export function echoOperation(fields: { text?: string; tokenCount?: number; tokenDelayMs?: number; delayMs?: number } = {}): Operation {
  return create(OperationSchema, { kind: { case: "echo", value: { text: TEXT, ...fields } } });
}

async function startReadyWorker(entry: string, args: string[], profile: boolean): Promise<Child> {
  const child = startChild(entry, args, { profile, env: { STEPQ_LOG_LEVEL: "warn" } });
  await child.waitFor(/^ready$/m);
  return child;
}

/** stepq through the library (`createQueue` on a command connection). */
export function createStepqSide(redisUrl: string): Side & { queue: Queue } {
  const redis = createRedis(redisUrl, "command", { name: "bench" });
  const queue = createQueue({ redis, queue: QUEUE });
  const op = echoOperation();
  const prepare = (): PreparedJob => queue.prepare(oneStepJob({ operation: op }), stepFieldPaths());
  return {
    name: "stepq",
    queue,
    async submitOne() {
      const r = await queue.submit(prepare());
      return `${r.jobId}.0`;
    },
    async submitBatch(n) {
      await queue.submitAll(Array.from({ length: n }, prepare));
    },
    // Every bench job has the default retention, so one expiry list holds them all.
    finishedKey: queue.keys.expiries(String(queue.limits.retentionMs)),
    finishedKind: "list",
    finishedElements: 2, // expiry time, job id
    eventsKey: queue.keys.events,
    startWorker: (concurrency, engine = "echo", metrics = false) =>
      startReadyWorker(
        "bench/workers/stepq-worker.ts",
        ["--redis-url", redisUrl, "--queue", QUEUE, "--concurrency", String(concurrency), "--engine", engine, ...(metrics ? ["--metrics"] : [])],
        true,
      ),
    async close() {
      await redis.quit();
    },
  };
}

/** BullMQ through its Queue class; jobs keep BullMQ's defaults (completed jobs are kept). */
export function createBullSide(redisUrl: string): Side & { queue: BullQueue } {
  const queue = new BullQueue(QUEUE, { connection: { url: redisUrl } });
  const data = { text: TEXT };
  return {
    name: "BullMQ",
    queue,
    async submitOne() {
      const job = await queue.add("step", data);
      return job.id ?? "";
    },
    async submitBatch(n) {
      await queue.addBulk(Array.from({ length: n }, () => ({ name: "step", data })));
    },
    finishedKey: `bull:${QUEUE}:completed`,
    finishedKind: "zset",
    finishedElements: 1,
    eventsKey: `bull:${QUEUE}:events`,
    startWorker: (concurrency, engine = "echo") =>
      startReadyWorker(
        "bench/workers/bullmq-worker.ts",
        ["--redis-url", redisUrl, "--queue", QUEUE, "--concurrency", String(concurrency), ...(engine === "stamp" ? ["--stamp"] : [])],
        false,
      ),
    async close() {
      await queue.close();
    },
  };
}
