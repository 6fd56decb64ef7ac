/**
 * The two signals a worker waits on, besides its claims: a wake-up marker
 * on its routes (a submit or a due scheduled step pushes one; an idle worker
 * blocks on them instead of polling), and the channel that names running
 * steps that were cancelled. Both run on connections of their own.
 */
import type { Redis } from "ioredis";
import { failOnClose, followChannel } from "./connection.js";
import type { QueueKeys } from "./keys.js";

/**
 * Blocks on `routes`' wake-up markers for up to `waitMs` (whole seconds or a
 * fraction); returns when one is pushed or the time is up. Fails at once if
 * the connection closes (see failOnClose: ioredis would otherwise drop the
 * command unsettled after a quick reconnect, and the worker would sleep for good).
 */
export async function waitForWork(blocking: Redis, keys: QueueKeys, routes: readonly string[], waitMs: number): Promise<void> {
  const wakeKeys = routes.map((r) => keys.wake(r));
  await failOnClose(blocking, () => blocking.blpop(...wakeKeys, waitMs / 1000));
}

/** Calls `onCancelled(member)` (`<stepId>|<attempt>`) for every running step cancelled from now on. */
export function followCancellations(subscriber: Redis, keys: QueueKeys, onCancelled: (member: string) => void): Promise<void> {
  return followChannel(subscriber, keys.cancelChannel, onCancelled);
}
