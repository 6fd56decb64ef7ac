/**
 * The Redis reads behind the server's stream hub (server/stream-hub.ts):
 * pages of a stream after a cursor, its newest entry, the one blocking XREAD
 * over every followed stream, and the check that followed streams still
 * hold what was read from them. Kept here so that Redis commands stay in
 * queue/; every failure comes back as a queue error (UNAVAILABLE when Redis
 * is unreachable).
 */
import type { Redis } from "ioredis";
import { failOnClose } from "./connection.js";
import { execAll, redisCall } from "./queue-script.js";

/** One stream entry: its id and its flat field list. */
export interface StreamEntry {
  id: string;
  fields: string[];
}

/** The largest stream id: nothing can come after it (and Redis refuses a range starting after it). */
export const MAX_STREAM_ID = "18446744073709551615-18446744073709551615";

const entries = (rows: [string, string[]][]): StreamEntry[] => rows.map(([id, fields]) => ({ id, fields }));

/** Up to `count` entries of `key` after `after` (exclusive), up to `through` (inclusive) when given. */
export async function readAfter(redis: Redis, key: string, after: string, count: number, through = "+"): Promise<StreamEntry[]> {
  if (after === MAX_STREAM_ID) return [];
  return entries(await redisCall(() => redis.xrange(key, `(${after}`, through, "COUNT", count)));
}

/** The id of the newest entry of `key`, or "" when it has none (or does not exist). */
export async function lastEntryId(redis: Redis, key: string): Promise<string> {
  const rows = await redisCall(() => redis.xrevrange(key, "+", "-", "COUNT", 1));
  return rows[0]?.[0] ?? "";
}

/**
 * The blocking read over every followed stream: `args` is
 * `COUNT n BLOCK ms STREAMS key... id...`. Null when the block timed out or
 * was interrupted (CLIENT UNBLOCK).
 */
export async function readLive(reader: Redis, args: readonly (string | number)[]): Promise<[string, StreamEntry[]][] | null> {
  const xread = reader.xread as (...a: (string | number)[]) => Promise<[string, [string, string[]][]][] | null>;
  const reply = await failOnClose(reader, () => xread.apply(reader, [...args]));
  return reply ? reply.map(([key, rows]) => [key, entries(rows)]) : null;
}

/** The connection id of `reader`, for interrupting its blocking read (guarded like the read: it runs on the same connection). */
export async function connectionId(reader: Redis): Promise<number> {
  return (await failOnClose(reader, () => reader.client("ID"))) as number;
}

/** Ends the blocking read of connection `id` at once (it returns null). */
export async function interruptRead(redis: Redis, id: number): Promise<void> {
  await redisCall(() => redis.client("UNBLOCK", id));
}

/**
 * The keys of `anchors` (stream key, id of an entry read from it) whose
 * entry is gone, in one round trip. Logs never lose entries and the events
 * stream is only trimmed from its old end, so the newest entry a reader saw
 * is gone only when the stream's data is: Redis restarted without it.
 */
export async function streamsMissing(redis: Redis, anchors: readonly (readonly [string, string])[]): Promise<Set<string>> {
  if (anchors.length === 0) return new Set();
  const pipeline = redis.pipeline();
  for (const [key, id] of anchors) pipeline.xrange(key, id, id, "COUNT", 1);
  const replies = await execAll(pipeline);
  const missing = new Set<string>();
  replies.forEach((rows, i) => {
    if ((rows as unknown[]).length === 0) missing.add((anchors[i] as readonly [string, string])[0]);
  });
  return missing;
}
