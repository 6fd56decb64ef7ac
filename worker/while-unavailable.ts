/**
 * A worker's writes after an attempt (complete, fail) outlive a Redis that
 * is away or full: they are retried until the lease's deadline, so a step
 * that ran while Redis restarted or filled up still finishes once it is
 * back, without losing its attempt. Past the deadline the queue's lease
 * recovery requeues the step instead.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { isRedisTransient } from "../queue/errors.js";

/** Retries `fn` while Redis is unreachable or full, until `deadline` (Date.now() scale). */
export async function whileUnavailable<T>(fn: () => Promise<T>, deadline: number): Promise<T> {
  for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
    try {
      return await fn();
    } catch (e) {
      if (!isRedisTransient(e) || Date.now() + delay > deadline) throw e;
      await sleep(delay);
    }
  }
}
