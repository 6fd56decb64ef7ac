/**
 * Reading what happened: a job's log (lifecycle events, tokens, narration)
 * and the queue-wide events stream, which is capped (so a reader can ask
 * whether what it wanted was trimmed), plus the workers' join/leave events.
 */
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { scriptError } from "./errors.js";
import { compareCursors, eventsAfter, type LogEntry, parseEventCursor, parseLogEntry, type StreamEvent } from "./log-entry.js";
import { type QueueContext, queueScript, redisCall } from "./queue-script.js";
import { ScriptCode } from "./script-codes.js";

/** Creates the job's log if it does not exist yet (so a queued job can be followed). */
export async function openLog(ctx: QueueContext, jobId: string): Promise<void> {
  const reply = await queueScript(ctx, "openLog", [jobId], jobId);
  if (reply[0] !== ScriptCode.OK) throw scriptError("openLog", reply[0], jobId);
}

/**
 * Up to `count` entries of the job's log after `afterCursor` ("" or "0-0":
 * from the start). A job that has no log yet gets one (from the history
 * kept in its record); an unknown job reads as empty.
 */
export async function readLog(ctx: QueueContext, jobId: string, afterCursor: string, count: number): Promise<LogEntry[]> {
  const { redis, keys } = ctx;
  if ((await redisCall(() => redis.exists(keys.log(jobId)))) === 0) {
    const reply = await queueScript(ctx, "openLog", [jobId], jobId);
    if (reply[0] !== ScriptCode.OK) return [];
  }
  const start = afterCursor && afterCursor !== "0-0" ? `(${afterCursor}` : "-";
  const rows = await redisCall(() => redis.xrange(keys.log(jobId), start, "+", "COUNT", count));
  return rows.map(([id, fields]) => parseLogEntry(id, fields));
}

/** The queue-wide events of up to `count` entries after `afterCursor` (an events-stream cursor). */
export async function readEvents(ctx: QueueContext, afterCursor: string, count: number): Promise<StreamEvent[]> {
  const after = parseEventCursor(afterCursor);
  const start = !afterCursor ? "-" : after.index === undefined ? `(${after.id}` : after.id;
  const rows = await redisCall(() => ctx.redis.xrange(ctx.keys.events, start, "+", "COUNT", count));
  return rows.flatMap(([entry, fields]) => eventsAfter(entry, fields, after));
}

/** Records that a worker joined or left (one XADD: no record changes). */
export async function workerEvent(
  ctx: QueueContext,
  eventsMaxLen: number,
  type: EventType.WORKER_JOINED | EventType.WORKER_LEFT,
  workerId: string,
  routes: readonly string[],
): Promise<void> {
  await redisCall(() =>
    ctx.redis.xadd(ctx.keys.events, "MAXLEN", "~", String(eventsMaxLen), "*", "t", String(type), "w", workerId, "m", routes.join(",")),
  );
}

/** Records that webhook `webhookId` of tenant `tenant` was disabled, and why (one XADD). */
export async function webhookDisabledEvent(ctx: QueueContext, eventsMaxLen: number, tenant: number, webhookId: string, reason: string): Promise<void> {
  const fields = ["t", String(EventType.WEBHOOK_DISABLED), "m", `webhook ${webhookId} disabled: ${reason}`];
  if (tenant !== 0) fields.push("tn", String(tenant));
  await redisCall(() => ctx.redis.xadd(ctx.keys.events, "MAXLEN", "~", String(eventsMaxLen), "*", ...fields));
}

/** Id of the newest queue-wide event, or "0-0". */
export async function lastEventCursor(ctx: QueueContext): Promise<string> {
  const rows = await redisCall(() => ctx.redis.xrevrange(ctx.keys.events, "+", "-", "COUNT", 1));
  return rows[0]?.[0] ?? "0-0";
}

/** XINFO STREAM of the events stream, or undefined while it does not exist. */
async function eventsInfo(ctx: QueueContext): Promise<unknown[] | undefined> {
  try {
    return (await ctx.redis.xinfo("STREAM", ctx.keys.events)) as unknown[];
  } catch (e) {
    if (e instanceof Error && /no such key/i.test(e.message)) return undefined;
    return redisCall(() => Promise.reject(e));
  }
}

/** Whether events after `cursor` were trimmed away (the stream is capped), so a watcher resuming there would miss some. */
export async function eventsTrimmedAfter(ctx: QueueContext, cursor: string): Promise<boolean> {
  const info = (await eventsInfo(ctx)) ?? [];
  const i = info.indexOf("max-deleted-entry-id");
  const maxDeleted = i >= 0 ? String(info[i + 1]) : "0-0";
  return compareCursors(cursor, maxDeleted) < 0;
}

/**
 * Caps the events stream at about `eventsMaxLen` events. Batch entries hold
 * many events each, so the cap in entries is the cap in events over the
 * average number of events per entry (XINFO's entries-added, and the extra
 * events the scripts count in eventsExtra).
 */
export async function trimEvents(ctx: QueueContext, eventsMaxLen: number): Promise<number> {
  const [info, extra] = await Promise.all([eventsInfo(ctx), redisCall(() => ctx.redis.get(ctx.keys.eventsExtra))]);
  if (!info) return 0;
  const added = Number(info[info.indexOf("entries-added") + 1]) || 1;
  const perEntry = (added + Number(extra ?? 0)) / added;
  return redisCall(() => ctx.redis.xtrim(ctx.keys.events, "MAXLEN", "~", Math.max(1, Math.ceil(eventsMaxLen / perEntry))));
}
