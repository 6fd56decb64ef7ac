/**
 * The worker registry: every running worker keeps a record of itself in
 * Redis (`worker:<id>`, JSON) that expires unless renewed, so a worker that
 * dies leaves the list by itself within its time to live, measured by
 * Redis's clock (no clock skew between hosts). The `workers` set lists the
 * ids; a listing drops the ids whose record has expired. A worker that
 * stops cleanly removes its own. Each heartbeat also renews the worker in the
 * live-worker set of every route it claims from (`rw:<route>`), which a
 * claim reads to leave a step that failed on one worker for another
 * (registerWorker.lua).
 */
import type { Redis } from "ioredis";
import type { QueueKeys } from "./keys.js";
import { queueScript, redisCall } from "./queue-script.js";

/** What a worker says of itself. */
export interface WorkerInfo {
  id: string;
  routes: string[];
  concurrency: number;
  /** Steps it holds now: running, or claimed ahead. */
  stepsInHand: number;
  version: string;
  host: string;
  pid: number;
  /** Unix ms, by the worker's clock. */
  startedAt: number;
  /** Unix ms of this heartbeat, by the worker's clock. */
  heartbeatAt: number;
  /** Its engines (absent in records of stepq before capability routing). */
  engines?: string[];
  /** "key=value" (--tag). */
  tags?: string[];
  /** The memory it advertises, MiB (--memory). */
  memoryMb?: number;
  /** The only tenants whose steps it claims (--tenants), by name. */
  tenants?: string[];
  /** Tenants whose steps it never claims (--exclude-tenants), by name. */
  excludedTenants?: string[];
  /** The routes it claims from now: its routes and the requirement routes it meets. */
  claimRoutes?: string[];
}

const ID = /^[A-Za-z0-9._:@-]{1,128}$/;

/** Checks a worker id, which names its registry key: a worker with a bad one does not start. */
export function checkWorkerId(id: string): void {
  if (!ID.test(id)) throw new Error(`worker id ${JSON.stringify(id)} must be 1-128 characters of [A-Za-z0-9._:@-] (--worker-id)`);
}

/**
 * Writes (or renews) worker `info.id`'s record (its id checked by
 * checkWorkerId) for `ttlMs`, and its place among the live workers of each
 * of its claim routes; returns how many routes the queue has seen (a
 * worker refreshes its requirement routes when that changes).
 */
export async function heartbeat(redis: Redis, keys: QueueKeys, info: WorkerInfo, ttlMs: number): Promise<number> {
  const reply = await queueScript({ redis, keys }, "registerWorker", [info.id, ttlMs, JSON.stringify(info), ...(info.claimRoutes ?? info.routes)]);
  return Number(reply[1]);
}

/** Removes worker `id`'s record and route memberships (it is stopping). */
export async function unregisterWorker(redis: Redis, keys: QueueKeys, id: string, claimRoutes: readonly string[]): Promise<void> {
  await queueScript({ redis, keys }, "registerWorker", [id, 0, "", ...claimRoutes]);
}

/** The workers alive now (their record has not expired), by id; the expired ones leave the set. */
export async function listWorkers(redis: Redis, keys: QueueKeys): Promise<WorkerInfo[]> {
  const ids = (await redisCall(() => redis.smembers(keys.workers))).sort();
  if (ids.length === 0) return [];
  const records = await redisCall(() => redis.mget(ids.map((id) => keys.worker(id))));
  const gone = ids.filter((_, i) => records[i] === null);
  if (gone.length > 0) await redisCall(() => redis.srem(keys.workers, ...gone));
  return records.flatMap((r) => (r === null ? [] : [JSON.parse(r) as WorkerInfo]));
}

/** Every route steps were ever submitted to (the `routes` set): a worker picks the requirement routes it meets from them. */
export async function usedRoutes(redis: Redis, keys: QueueKeys): Promise<string[]> {
  return redisCall(() => redis.smembers(keys.routes));
}
