/**
 * The stream hub's catch-up reader: a subscriber that is not live (new,
 * paused, or resuming) reads its stream page by page from its own cursor
 * on the hub's command connection, one page ahead of its consumer, and
 * attaches to the live reader at the stream's end, closing the gap to the
 * live reader's position with bounded XRANGE reads while live entries wait.
 * A first read checks the cursor against the stream's end (OUT_OF_RANGE
 * past it); a read that fails because Redis is away is retried for a while,
 * and on its return what the subscriber read must still be there.
 */
import type { Redis } from "ioredis";
import { asQueueError, OutOfRangeError, UnavailableError } from "../queue/errors.js";
import { compareCursors } from "../queue/log-entry.js";
import { lastEntryId, readAfter, streamsMissing } from "../queue/stream-reads.js";
import type { LiveKey } from "./hub-live-reader.js";
import {
  batchBytes,
  type Buffers,
  enqueue,
  freshFor,
  type HubEntry,
  type Subscriber,
  takePending,
  unsentOf,
} from "./hub-subscriber.js";

/** What the catch-up reader shares with the hub. */
export interface CatchUpDeps {
  redis: Redis;
  keys: Map<string, LiveKey>;
  buffers: Buffers;
  counts: { retried: number };
  /** Bytes one read should bring per key. */
  pageBytes: number;
  /** Bytes all subscribers together may hold. */
  maxTotalBytes: number;
  /** How long a read is retried while Redis is away, ms. */
  unavailableMs: number;
  isClosed(): boolean;
  countFor(avg: number, previous: number): number;
  fail(sub: Subscriber, err: Error): void;
  lose(sub: Subscriber): void;
  deliverLive(sub: Subscriber, entries: HubEntry[]): void;
  /** The set of live keys or a key's start changed; `now`: read the new ones at once. */
  keysChanged(now: boolean): void;
}

/** Between the retries of a catch-up read while Redis is away. */
const RETRY_MS = 250;

export function createCatchUp(d: CatchUpDeps): { pull(sub: Subscriber, asked: boolean): Promise<void> } {
  const { redis, keys, buffers } = d;

  function queuePage(sub: Subscriber, rows: HubEntry[]) {
    const fresh = freshFor(sub, rows);
    if (fresh.length > 0) enqueue(sub, fresh, batchBytes(fresh), buffers);
  }

  /** Adapts the subscriber's page COUNT to the page just read. */
  function adaptPage(sub: Subscriber, rows: HubEntry[]) {
    if (rows.length > 0) sub.pageCount = d.countFor(batchBytes(rows) / rows.length, sub.pageCount);
  }

  /** Whether `sub`'s cursor is past the stream's newest entry (it has then failed). */
  async function beyondEnd(sub: Subscriber): Promise<boolean> {
    const last = await lastEntryId(redis, sub.key);
    if (last) sub.anchor = last;
    if (compareCursors(sub.cursor, last || "0-0") <= 0) return false;
    const err =
      sub.options.beyondEnd?.(last) ??
      new OutOfRangeError(`cursor ${sub.cursor} is beyond the end of ${sub.key} (last entry ${last || "none"})`);
    d.fail(sub, err);
    return true;
  }

  /**
   * Reads on for a subscriber that is not live: one page, queued for its
   * consumer; at the stream's end it attaches. Without `asked` it is a read
   * ahead, made only while its response has sent nearly everything (a
   * reader that stops reading gets no second page) and the server is under
   * its total.
   */
  async function pull(sub: Subscriber, asked: boolean): Promise<void> {
    if (sub.live || sub.reading || sub.closed || sub.failure || sub.queue.length > 0) return;
    if (!asked && (unsentOf(sub) >= d.pageBytes / 4 || buffers.bytes >= d.maxTotalBytes)) return;
    sub.reading = true;
    let retry = false;
    try {
      // Back after Redis was away: what it read must still be there.
      if (sub.unavailableSince !== undefined && sub.anchor !== undefined) {
        if ((await streamsMissing(redis, [[sub.key, sub.anchor]])).size > 0) return d.lose(sub);
      }
      const count = sub.pageCount;
      const rows = await readAfter(redis, sub.key, sub.cursor, count);
      sub.unavailableSince = undefined;
      if (sub.closed || sub.failure) return;
      adaptPage(sub, rows);
      if (!sub.started) {
        if (rows.length === 0 && (await beyondEnd(sub))) return;
        sub.started = true;
      }
      queuePage(sub, rows);
      if (rows.length < count) await attach(sub);
    } catch (e) {
      const err = asQueueError(e);
      // Redis away while it catches up: read again shortly, as the live reader does, for up to unavailableMs.
      const since = (sub.unavailableSince ??= Date.now());
      retry = err instanceof UnavailableError && !sub.live && !d.isClosed() && Date.now() - since < d.unavailableMs;
      if (retry) d.counts.retried++;
      else d.fail(sub, err);
    } finally {
      sub.reading = false;
    }
    if (retry) setTimeout(() => void pull(sub, true), RETRY_MS).unref();
    // Detached again while closing the gap, with its consumer waiting: read on.
    else if (!sub.live && sub.wake && sub.queue.length === 0) void pull(sub, true);
  }

  /**
   * Attaches a subscriber that read to the stream's end. If the reader is
   * already past that point, the entries in between are read with XRANGE
   * while live ones wait in `pending`, then delivered in order.
   */
  async function attach(sub: Subscriber): Promise<void> {
    let state = keys.get(sub.key);
    if (!state) {
      state = { pos: undefined, subs: new Set() };
      keys.set(sub.key, state);
    }
    sub.live = true;
    sub.paused = false;
    state.subs.add(sub);
    if (state.pos === undefined) {
      // The subscriber read to the end just now: a position the stream has.
      state.pos = sub.cursor;
      d.keysChanged(true);
      return;
    }
    const through = state.pos;
    if (compareCursors(through, sub.cursor) <= 0) return;
    sub.pending = [];
    while (compareCursors(sub.cursor, through) < 0) {
      const count = sub.pageCount;
      const rows = await readAfter(redis, sub.key, sub.cursor, count, through);
      if (sub.closed || sub.failure || !sub.live) return;
      adaptPage(sub, rows);
      queuePage(sub, rows);
      if (rows.length < count) break;
    }
    const pending = takePending(sub, buffers);
    if (pending.length > 0) d.deliverLive(sub, pending);
  }

  return { pull };
}
