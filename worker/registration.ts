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
import type { ClaimRoutes } from "./claim-routes.js";

export interface Registration {
  /** Renews the record now (the claim routes changed). */
  renew(): void;
  /** Stops renewing and removes the record. */
  stop(): Promise<void>;
}

export interface RegistrationInfo {
  id: string;
  routes: string[];
  concurrency: number;
  /** Steps the worker holds now. */
  stepsInHand(): number;
  engines: string[];
  /** Its capabilities, tenant choice and the routes it claims from now. */
  claimRoutes: ClaimRoutes;
  /** A heartbeat's reply: how many routes the queue has seen. */
  routeCount(n: number): void;
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
    engines: w.engines,
    tags: [...w.claimRoutes.capabilities.tags],
    memoryMb: w.claimRoutes.capabilities.memoryMb,
    tenants: [...w.claimRoutes.tenants.only],
    excludedTenants: [...w.claimRoutes.tenants.except],
    claimRoutes: [...w.claimRoutes.current],
  });
  const beat = () =>
    heartbeat(queue.redis, queue.keys, info(), 3 * everyMs).then(
      (n) => w.routeCount(n),
      (e: unknown) => onError(e as Error),
    );
  await beat();
  const timer = setInterval(() => void beat(), everyMs);
  timer.unref();
  return {
    renew: () => void beat(),
    async stop() {
      clearInterval(timer);
      await unregisterWorker(queue.redis, queue.keys, w.id, w.claimRoutes.current).catch(() => {});
    },
  };
}
