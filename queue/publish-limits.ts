/**
 * Makes a server's size caps (max-output-bytes, max-job-bytes,
 * max-operation-bytes) and its running-steps quota per tenant the queue's: the scripts and every worker enforce
 * what the queue's `limits` hash says. Servers call it when they start and
 * after every reconnect; the last one wins. The answer is a warning when it
 * changed caps another server had set, so mismatched flags are noticed.
 */
import type { SubmitLimits as Limits } from "./limits.js";
import { type QueueContext, redisCall } from "./queue-script.js";

export async function publishLimits(ctx: QueueContext, limits: Limits): Promise<string | undefined> {
  const want: Record<string, string> = {
    output: String(limits.maxOutputBytes),
    job: String(limits.maxJobBytes),
    operation: String(limits.maxOperationBytes),
    running: String(limits.maxRunningPerTenant),
  };
  const before = await redisCall(() => ctx.redis.hgetall(ctx.keys.limits));
  await redisCall(() => ctx.redis.hset(ctx.keys.limits, want));
  const changed = Object.keys(want).filter((k) => before[k] !== undefined && before[k] !== want[k]);
  if (changed.length === 0) return undefined;
  return (
    `this server changed the queue's size limits set by another server (${changed.map((k) => `${k}: ${before[k]} -> ${want[k]}`).join(", ")}); ` +
    "give every server the same --max-output-bytes, --max-job-bytes, --max-operation-bytes and --max-running-per-tenant"
  );
}
