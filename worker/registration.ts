/**
 * A worker's entry in the worker registry (queue/worker-registry.ts): it
 * writes its record at start, renews it every `everyMs` (with a time to
 * live of three intervals, so a worker that dies leaves the list within
 * about that), and removes it when it stops.
 */
import { hostname } from "node:os";
import type { Queue } from "../queue/queue.js";
import { heartbeat, unregisterWorker, type WorkerInfo } from "../queue/worker-registry.js";
import { VERSION } from "../runtime/version.js";

export interface Registration {
  /** Stops renewing and removes the record. */
  stop(): Promise<void>;
}

export interface RegistrationInfo {
  id: string;
  routes: string[];
  concurrency: number;
  /** Steps the worker holds now. */
  stepsInHand(): number;
}

/** Registers the worker; resolves once its first record is written. */
export async function register(queue: Queue, w: RegistrationInfo, everyMs: number, onError: (e: Error) => void): Promise<Registration> {
  const startedAt = Date.now();
  const info = (): WorkerInfo => ({
    id: w.id,
    routes: w.routes,
    concurrency: w.concurrency,
    stepsInHand: w.stepsInHand(),
    version: VERSION,
    host: hostname(),
    pid: process.pid,
    startedAt,
    heartbeatAt: Date.now(),
  });
  const beat = () => heartbeat(queue.redis, queue.keys, info(), 3 * everyMs).catch((e: unknown) => onError(e as Error));
  await beat();
  const timer = setInterval(() => void beat(), everyMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await unregisterWorker(queue.redis, queue.keys, w.id).catch(() => {});
    },
  };
}
