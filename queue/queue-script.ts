/**
 * How the client-side queue operations (submit, cancel, retry, purge, the
 * log, maintenance) call their scripts and Redis: every failure comes back
 * as a queue error (UNAVAILABLE when Redis is unreachable). The worker's
 * operations have their own, which also turns refusals into errors
 * (leaseScript in queue/leases.ts).
 */
import type { ChainableCommander, Redis } from "ioredis";
import { asQueueError } from "./errors.js";
import { runScript, type ScriptName } from "./function-library.js";
import type { QueueKeys } from "./keys.js";
import { scriptKeys } from "./script-keys.js";

/** What every queue operation needs: the command connection and the queue's keys. */
export interface QueueContext {
  redis: Redis;
  keys: QueueKeys;
}

export type ScriptReply = [number, ...unknown[]];

/**
 * Runs script `name` and returns its reply as is. Its KEYS are the ones
 * queue/script-keys.ts declares (`jobId` for scripts declaring the job's
 * record); the queue's prefix goes first in its arguments.
 */
export async function queueScript(
  ctx: QueueContext,
  name: ScriptName,
  args: (string | Buffer | number)[],
  jobId?: string,
): Promise<ScriptReply> {
  try {
    return (await runScript(ctx.redis, name, scriptKeys(ctx.keys, name, jobId), [ctx.keys.prefix, ...args])) as ScriptReply;
  } catch (e) {
    throw asQueueError(e);
  }
}

/** Runs a Redis call, with its failure as a queue error. */
export async function redisCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw asQueueError(e);
  }
}

/**
 * Runs a pipeline or MULTI and returns each command's reply. A command's
 * own error throws (as a queue error): `exec()` alone resolves with it
 * in its reply list, where it is easy to miss.
 */
export async function execAll(batch: ChainableCommander): Promise<unknown[]> {
  const replies = await redisCall(() => batch.exec());
  if (replies === null) throw asQueueError(new Error("a Redis transaction was aborted"));
  return replies.map(([err, reply]) => {
    if (err) throw asQueueError(err);
    return reply;
  });
}
