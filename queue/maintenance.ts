/**
 * One maintenance pass over the queue, which every server and worker runs
 * periodically (queue/sweeper.ts): recover expired leases, fail steps past
 * their queue timeout, promote due scheduled steps, delete expired jobs, and
 * cap the events stream. Each is one script (or one XTRIM), bounded by
 * `limit` items, so a pass never blocks Redis for long.
 */
import { trimEvents } from "./logs.js";
import { type QueueContext, queueScript, redisCall, type ScriptReply } from "./queue-script.js";

export interface SweepCounts {
  recovered: number;
  expired: number;
  promoted: number;
  purged: number;
}

export async function sweepOnce(ctx: QueueContext, eventsMaxLen: number, limit = 200): Promise<SweepCounts> {
  const { keys } = ctx;
  const [recovered, expired, promoted, purged] = await Promise.all([
    queueScript(ctx, "recoverLeases", [limit]),
    queueScript(ctx, "expireQueued", [limit]),
    queueScript(ctx, "promoteScheduled", [limit]),
    queueScript(ctx, "purgeExpired", [limit]),
    // The events stream is capped here rather than on every append.
    redisCall(() => trimEvents(ctx, eventsMaxLen)),
  ]);
  const n = (r: ScriptReply) => Number(r[1] ?? 0);
  return { recovered: n(recovered), expired: n(expired), promoted: n(promoted), purged: n(purged) };
}
