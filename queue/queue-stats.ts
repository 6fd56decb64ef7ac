/**
 * The queue now and over the last minutes, for GetQueueStats and the
 * dashboard: each route's steps by state, and how many finished in each
 * 10-second bucket. Both are kept by the scripts as steps move
 * (record-writes.lua: the `counts` hash and the `tp:<second>` buckets), so a
 * read costs one HGETALL of the counts (fields: states x tenants x routes
 * with steps in that state), one SMEMBERS of the routes and one HGETALL per
 * bucket — never a scan of steps.
 */
import type { Redis } from "ioredis";
import type { QueueKeys } from "./keys.js";
import { redisCall } from "./queue-script.js";

/** A route's steps in each state now. */
export interface RouteCounts {
  route: string;
  waiting: number;
  queued: number;
  scheduled: number;
  running: number;
  deadLettered: number;
}

/**
 * What happened on a route since the queue began, over all tenants (the
 * scripts' `+<letter>:<route>` fields of the counts hash; record-writes.lua
 * addTotal). Only ever growing, like a Prometheus counter.
 */
export interface RouteTotals {
  route: string;
  submitted: number;
  claimed: number;
  succeeded: number;
  /** Failed attempts the queue tries again. */
  retried: number;
  /** Attempts that failed: retried, or ending the step. */
  failedAttempts: number;
  deadLettered: number;
  /** Attempts whose worker stopped renewing the lease. */
  leaseExpired: number;
  cancelled: number;
}

/** How many of a route's steps finished in one bucket. */
export interface RouteFinished {
  route: string;
  succeeded: number;
  failed: number;
}

export interface ThroughputBucket {
  /** Unix ms of the bucket's start, by Redis's clock. */
  start: number;
  /** Routes with finished steps in the bucket, by name. */
  routes: RouteFinished[];
}

export interface QueueStats {
  /** Every route a step was submitted to, by name (zeros included). */
  routes: RouteCounts[];
  /** Every bucket of the window, oldest first; the last is in progress. */
  throughput: ThroughputBucket[];
  /** Unix ms, by Redis's clock, when the counts were read. */
  now: number;
}

/** Length of a throughput bucket; the scripts' BUCKET_MS (record-writes.lua). */
export const BUCKET_SECONDS = 10;
/** Longest window: the buckets expire 16 minutes after their last write. */
export const MAX_WINDOW_MINUTES = 15;

const STATE_OF_LETTER = { w: "waiting", q: "queued", s: "scheduled", r: "running", d: "deadLettered" } as const;
const TOTAL_OF_LETTER = {
  s: "submitted",
  c: "claimed",
  k: "succeeded",
  r: "retried",
  f: "failedAttempts",
  d: "deadLettered",
  e: "leaseExpired",
  x: "cancelled",
} as const satisfies Record<string, keyof Omit<RouteTotals, "route">>;

/** Splits a field `<letter>:<tenant>:<route>`; undefined for one of another form. */
function parseField(field: string): { letter: string; tenant: number; route: string } | undefined {
  const a = field.indexOf(":");
  const b = field.indexOf(":", a + 1);
  if (a !== 1 || b < 0) return undefined;
  return { letter: field[0] as string, tenant: Number(field.slice(a + 1, b)), route: field.slice(b + 1) };
}

/** The fields of `hash` kept for `tenant` (undefined: every tenant's), as (letter, route, count). */
function* fieldsOf(hash: Record<string, string>, tenant: number | undefined): Generator<[string, string, number]> {
  for (const [field, value] of Object.entries(hash)) {
    const f = parseField(field);
    if (!f || (tenant !== undefined && f.tenant !== tenant)) continue;
    yield [f.letter, f.route, Number(value)];
  }
}

function emptyCounts(route: string): RouteCounts {
  return { route, waiting: 0, queued: 0, scheduled: 0, running: 0, deadLettered: 0 };
}

/** The names of RouteTotals' counts. */
export const TOTAL_NAMES = Object.values(TOTAL_OF_LETTER);

/** A route's totals, all 0. */
export function emptyTotals(route: string): RouteTotals {
  return { route, submitted: 0, claimed: 0, succeeded: 0, retried: 0, failedAttempts: 0, deadLettered: 0, leaseExpired: 0, cancelled: 0 };
}

/** The route totals among the fields of the counts hash (`+<letter>:<route>`), by route name. */
function totalsOf(hash: Record<string, string>): RouteTotals[] {
  const rows = new Map<string, RouteTotals>();
  for (const [field, value] of Object.entries(hash)) {
    if (field[0] !== "+" || field[2] !== ":") continue;
    const name = TOTAL_OF_LETTER[field[1] as keyof typeof TOTAL_OF_LETTER];
    if (!name) continue;
    const route = field.slice(3);
    let row = rows.get(route);
    if (!row) rows.set(route, (row = emptyTotals(route)));
    row[name] += Number(value);
  }
  return [...rows.values()].sort((a, b) => (a.route < b.route ? -1 : a.route > b.route ? 1 : 0));
}

/**
 * Reads the stats of the queue, or of `tenant`'s steps only, with
 * `windowMinutes` (1..MAX_WINDOW_MINUTES) of throughput.
 */
export async function readQueueStats(redis: Redis, keys: QueueKeys, windowMinutes: number, tenant?: number): Promise<QueueStats> {
  const { routes, now } = await readRouteCounts(redis, keys, tenant);
  const last = Math.floor(now / 1000 / BUCKET_SECONDS) * BUCKET_SECONDS;
  const n = (windowMinutes * 60) / BUCKET_SECONDS;
  const starts = Array.from({ length: n }, (_, i) => last - (n - 1 - i) * BUCKET_SECONDS);
  const buckets = await redisCall(async () => {
    const pipeline = redis.pipeline();
    for (const s of starts) pipeline.hgetall(keys.throughput(String(s)));
    return ((await pipeline.exec()) ?? []).map(([err, value]) => {
      if (err) throw err;
      return value as Record<string, string>;
    });
  });
  const throughput = starts.map((s, i) => ({ start: s * 1000, routes: finishedOf(buckets[i] ?? {}, tenant) }));
  return { routes, throughput, now };
}

/**
 * Every route's steps by state now, of the queue or of `tenant` only, and
 * the queue's route totals (over all tenants): one MULTI of TIME, SMEMBERS
 * routes and HGETALL counts (also what /metrics reads for its queue-depth
 * gauge and step counters on each scrape).
 */
export async function readRouteCounts(redis: Redis, keys: QueueKeys, tenant?: number): Promise<{ routes: RouteCounts[]; totals: RouteTotals[]; now: number }> {
  const [time, routes, counts] = await redisCall(async () => {
    const replies = (await redis.multi().time().smembers(keys.routes).hgetall(keys.counts).exec()) ?? [];
    return replies.map(([err, value]) => {
      if (err) throw err;
      return value;
    }) as [[string, string], string[], Record<string, string>];
  });
  const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
  const byRoute = new Map(routes.sort().map((r) => [r, emptyCounts(r)]));
  for (const [letter, route, n] of fieldsOf(counts, tenant)) {
    const state = STATE_OF_LETTER[letter as keyof typeof STATE_OF_LETTER];
    if (!state) continue;
    let row = byRoute.get(route);
    if (!row) byRoute.set(route, (row = emptyCounts(route)));
    row[state] += n;
  }
  return { routes: [...byRoute.values()], totals: totalsOf(counts), now };
}

/** A bucket's hash as one row per route, by name. */
function finishedOf(hash: Record<string, string>, tenant: number | undefined): RouteFinished[] {
  const rows = new Map<string, RouteFinished>();
  for (const [letter, route, n] of fieldsOf(hash, tenant)) {
    let row = rows.get(route);
    if (!row) rows.set(route, (row = { route, succeeded: 0, failed: 0 }));
    if (letter === "s") row.succeeded += n;
    else if (letter === "f") row.failed += n;
  }
  return [...rows.values()].sort((a, b) => (a.route < b.route ? -1 : a.route > b.route ? 1 : 0));
}
