/**
 * The signals a worker waits on, besides its claims: a wake-up marker on its
 * routes (a submit or a due scheduled step pushes one; an idle worker blocks
 * on them instead of polling) and on its own (wakeWorker), the channel that
 * names running steps that were cancelled, and the one that names new routes
 * with requirements. They run on connections of their own.
 */
import type { Redis } from "ioredis";
import { failOnClose, followChannel } from "./connection.js";
import type { QueueKeys } from "./keys.js";
import { redisCall } from "./queue-script.js";

/**
 * Blocks on `routes`' wake-up markers for up to `waitMs` (whole seconds or a
 * fraction); returns when one is pushed or the time is up. Fails at once if
 * the connection closes (see failOnClose: ioredis would otherwise drop the
 * command unsettled after a quick reconnect, and the worker would sleep for good).
 */
export async function waitForWork(blocking: Redis, keys: QueueKeys, routes: readonly string[], waitMs: number, workerId?: string): Promise<void> {
  const wakeKeys = routes.map((r) => keys.wake(r));
  if (workerId !== undefined) wakeKeys.push(keys.wake(`@${workerId}`));
  await failOnClose(blocking, () => blocking.blpop(...wakeKeys, waitMs / 1000));
}

/** Wakes worker `workerId` from waitForWork (its own marker, gone after a minute if it never waits again). */
export async function wakeWorker(redis: Redis, keys: QueueKeys, workerId: string): Promise<void> {
  const key = keys.wake(`@${workerId}`);
  await redisCall(() => redis.multi().rpush(key, "1").pexpire(key, 60_000).exec());
}

/** Calls `onRoute(route)` for every route with requirements that appears from now on. */
export function followNewRoutes(subscriber: Redis, keys: QueueKeys, onRoute: (route: string) => void): Promise<void> {
  return followChannel(subscriber, keys.newRoutes, onRoute);
}

/** Calls `onCancelled(member)` (`<stepId>|<attempt>`) for every running step cancelled from now on. */
export function followCancellations(subscriber: Redis, keys: QueueKeys, onCancelled: (member: string) => void): Promise<void> {
  return followChannel(subscriber, keys.cancelChannel, onCancelled);
}
