/**
 * Webhooks in Redis (docs/webhooks.md):
 *
 * - `webhooks`, a hash: id -> the webhook's record (JSON, its secret
 *   included: it signs every delivery), changed only through the API;
 * - `webhook-state`, a hash: `f:<id>` its failed attempts since its last
 *   success and `d:<id>` why it is disabled (absent: enabled), changed by
 *   the senders with single commands, so they never overwrite an API change;
 * - the `webhooks` consumer group on the events stream: every server reads
 *   new events through it, and an entry is acknowledged in the same MULTI
 *   that queues its deliveries, so a server that dies after reading an entry
 *   leaves it pending for another to claim: nothing is skipped;
 * - `wh:<id>:q`, a stream per webhook: its deliveries, in event order, each
 *   removed only once it was received (or the webhook deleted), so a server
 *   that dies mid-delivery leaves it for the next to send again;
 * - `wh:<id>:lease`: the server sending a webhook's deliveries (one at a
 *   time, so they arrive in order), renewed while it works;
 * - `wh:<id>:log`: its latest 100 attempts, newest first.
 */
import type { Redis } from "ioredis";
import type { StreamEntry } from "./stream-reads.js";
import type { QueueKeys } from "./keys.js";
import { redisCall } from "./queue-script.js";

/** A webhook as stored. */
export interface WebhookRecord {
  id: string;
  tenant: number;
  url: string;
  eventTypes: string[];
  routes: string[];
  jobLabels: Record<string, string>;
  legacyNames: boolean;
  progressIntervalMs: number;
  secret: string;
  createdAt: number;
}

/** What the senders keep of a webhook. */
export interface WebhookState {
  consecutiveFailures: number;
  /** Why it is disabled; undefined: enabled. */
  disabledReason?: string;
}

/** One delivery waiting in a webhook's queue. */
export interface QueuedDelivery {
  /** The stream id of its place in the queue. */
  entry: string;
  /** The delivery's id (the receiver de-duplicates by it) and its JSON body. */
  id: string;
  body: string;
  eventName: string;
}

export const EVENTS_GROUP = "webhooks";
/** Deliveries a webhook's queue keeps (while it is disabled, say); past it the oldest go, and the count says so. */
export const MAX_QUEUED_DELIVERIES = 100_000;
const LOG_LENGTH = 100;

const parse = (json: string | null) => (json === null ? undefined : (JSON.parse(json) as WebhookRecord));

export async function saveWebhook(redis: Redis, keys: QueueKeys, w: WebhookRecord): Promise<void> {
  await redisCall(() => redis.hset(keys.webhooks, w.id, JSON.stringify(w)));
}

export async function getWebhook(redis: Redis, keys: QueueKeys, id: string): Promise<WebhookRecord | undefined> {
  return parse(await redisCall(() => redis.hget(keys.webhooks, id)));
}

export async function listWebhooks(redis: Redis, keys: QueueKeys): Promise<WebhookRecord[]> {
  const all = await redisCall(() => redis.hvals(keys.webhooks));
  return all.map((j) => JSON.parse(j) as WebhookRecord).sort((a, b) => (a.id < b.id ? -1 : 1));
}

/** Removes the webhook, its state, queue, log and lease. */
export async function deleteWebhook(redis: Redis, keys: QueueKeys, id: string): Promise<boolean> {
  const [[, n] = []] = (await redisCall(() =>
    redis
      .multi()
      .hdel(keys.webhooks, id)
      .hdel(keys.webhookState, `f:${id}`, `d:${id}`)
      .del(keys.webhookQueue(id), keys.webhookLog(id), keys.webhookLease(id))
      .exec(),
  )) ?? [[]];
  return n === 1;
}

/** Every webhook's state (a webhook never failed: 0 failures, enabled). */
export async function readWebhookStates(redis: Redis, keys: QueueKeys): Promise<(id: string) => WebhookState> {
  const hash = await redisCall(() => redis.hgetall(keys.webhookState));
  return (id) => ({ consecutiveFailures: Number(hash[`f:${id}`] ?? 0), disabledReason: hash[`d:${id}`] });
}

/** Counts a failed attempt; at `disableAfter` in a row the webhook is disabled with `reason`. Returns the count. */
export async function webhookFailed(redis: Redis, keys: QueueKeys, id: string, disableAfter: number, reason: string): Promise<number> {
  const script =
    "local n = redis.call('HINCRBY', KEYS[1], 'f:' .. ARGV[1], 1) " +
    "if n >= tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], 'd:' .. ARGV[1], ARGV[3]) end return n";
  return Number(await redisCall(() => redis.eval(script, 1, keys.webhookState, id, disableAfter, reason)));
}

/** A received delivery: the failures in a row start again from 0. */
export async function webhookSucceeded(redis: Redis, keys: QueueKeys, id: string): Promise<void> {
  await redisCall(() => redis.hdel(keys.webhookState, `f:${id}`));
}

/** Enables the webhook again, its failures back at 0. */
export async function enableWebhook(redis: Redis, keys: QueueKeys, id: string): Promise<void> {
  await redisCall(() => redis.hdel(keys.webhookState, `f:${id}`, `d:${id}`));
}

/** Creates the events stream's consumer group (from now) unless it exists. */
export async function ensureEventsGroup(redis: Redis, keys: QueueKeys): Promise<void> {
  try {
    await redisCall(() => redis.xgroup("CREATE", keys.events, EVENTS_GROUP, "$", "MKSTREAM"));
  } catch (e) {
    if (!/BUSYGROUP/.test((e as Error).message)) throw e;
  }
}

/**
 * With no webhook anywhere nobody wants the events: the group moves to the
 * stream's end instead of reading them (a webhook made now gets the events
 * from now on).
 */
export async function skipEventsForWebhooks(redis: Redis, keys: QueueKeys): Promise<void> {
  await redisCall(() => redis.xgroup("SETID", keys.events, EVENTS_GROUP, "$"));
}

/** New events for `consumer` (waiting up to `blockMs` for some; 0: not at all), and those another consumer left pending over `idleMs` (it died). */
export async function readEventsForWebhooks(redis: Redis, keys: QueueKeys, consumer: string, idleMs: number, blockMs: number): Promise<StreamEntry[]> {
  const [, claimed] = (await redisCall(() => redis.xautoclaim(keys.events, EVENTS_GROUP, consumer, idleMs, "0-0", "COUNT", 100))) as [string, [string, string[]][]];
  const stale = claimed.filter(([, fields]) => fields !== null).map(([id, fields]) => ({ id, fields }));
  if (stale.length > 0) return stale;
  const block = blockMs > 0 ? ["BLOCK", blockMs] : [];
  const reply = (await redisCall(() => redis.xreadgroup("GROUP", EVENTS_GROUP, consumer, "COUNT", 100, ...(block as ["BLOCK", number]), "STREAMS", keys.events, ">"))) as
    | [string, [string, string[]][]][]
    | null;
  return (reply?.[0]?.[1] ?? []).map(([id, fields]) => ({ id, fields }));
}

/** Queues the deliveries of events entry `entry` and acknowledges it, in one MULTI. */
export async function queueDeliveries(
  redis: Redis,
  keys: QueueKeys,
  entry: string,
  deliveries: readonly { webhook: string; id: string; body: string; eventName: string }[],
): Promise<void> {
  const multi = redis.multi();
  for (const d of deliveries) {
    multi.xadd(keys.webhookQueue(d.webhook), "MAXLEN", "~", MAX_QUEUED_DELIVERIES, "*", "id", d.id, "name", d.eventName, "body", d.body);
  }
  multi.xack(keys.events, EVENTS_GROUP, entry);
  await redisCall(() => multi.exec());
}

/** The first delivery waiting for webhook `id`, if any. */
export async function nextDelivery(redis: Redis, keys: QueueKeys, id: string): Promise<QueuedDelivery | undefined> {
  const [first] = (await redisCall(() => redis.xrange(keys.webhookQueue(id), "-", "+", "COUNT", 1))) as [string, string[]][];
  if (!first) return undefined;
  const [entry, fields] = first;
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i] as string, fields[i + 1] as string);
  return { entry, id: f.get("id") ?? "", body: f.get("body") ?? "", eventName: f.get("name") ?? "" };
}

/** Removes a delivery that was received. */
export async function deliveryDone(redis: Redis, keys: QueueKeys, id: string, entry: string): Promise<void> {
  await redisCall(() => redis.xdel(keys.webhookQueue(id), entry));
}

export async function pendingDeliveries(redis: Redis, keys: QueueKeys, id: string): Promise<number> {
  return redisCall(() => redis.xlen(keys.webhookQueue(id)));
}

/** Keeps an attempt in the webhook's log (its latest 100). */
export async function logAttempt(redis: Redis, keys: QueueKeys, id: string, attempt: object): Promise<void> {
  await redisCall(() => redis.multi().lpush(keys.webhookLog(id), JSON.stringify(attempt)).ltrim(keys.webhookLog(id), 0, LOG_LENGTH - 1).exec());
}

export async function readAttempts(redis: Redis, keys: QueueKeys, id: string, count: number): Promise<object[]> {
  const items = await redisCall(() => redis.lrange(keys.webhookLog(id), 0, count - 1));
  return items.map((j) => JSON.parse(j) as object);
}

/**
 * Takes or renews the lease on sending webhook `id`'s deliveries for
 * `holder`, for `ms`; false when another server holds it. One script, so a
 * lease that changed hands is never renewed by the old holder.
 */
export async function leaseWebhook(redis: Redis, keys: QueueKeys, id: string, holder: string, ms: number): Promise<boolean> {
  const script = "local v = redis.call('GET', KEYS[1]) if v == false or v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end return 0";
  return (await redisCall(() => redis.eval(script, 1, keys.webhookLease(id), holder, ms))) === 1;
}
