/**
 * The live workers (from the worker registry) and the tenants' names, read
 * at most every REFRESH_MS and shared by everything in a server that asks
 * who could claim a step: the unserved-route check and the queue-position
 * narration.
 */
import type { Queue } from "../queue/queue.js";
import { tenantNames } from "../queue/tenants.js";
import { listWorkers, type WorkerInfo } from "../queue/worker-registry.js";
import { cachedFor } from "./cached-read.js";

const REFRESH_MS = 1000;

export interface Fleet {
  workers: WorkerInfo[];
  /** Tenant names by number. */
  names: Map<number, string>;
}

export type LiveFleet = { get(): Promise<Fleet> };

export function createLiveFleet(queue: Queue): LiveFleet {
  return cachedFor(REFRESH_MS, async () => ({ workers: await listWorkers(queue.redis, queue.keys), names: await tenantNames(queue.redis, queue.keys) }));
}
