/**
 * The stream hub: one per server process. It follows every Redis stream
 * that some client stream needs with ONE blocking connection (XREAD over all
 * followed keys) and fans entries out to subscribers, so a thousand client
 * streams cost one Redis connection, not a thousand.
 *
 * A subscriber starts from its own cursor and catches up with XRANGE pages
 * on the shared command connection, one page ahead of its consumer. At the
 * end of the stream it attaches to its key and gets live entries as the
 * reader reads them; entries are de-duplicated by id, so there is no gap
 * and no repeat across the switch. A subscriber's cursor never moves the
 * reader: the reader starts a key at a position the stream really has (a
 * cursor past the stream's newest entry is refused, see `beyondEnd`).
 *
 * Memory is bounded in bytes. A live subscriber that has not taken its last
 * delivery when the next one comes is paused once its queue plus what its
 * HTTP response has not sent (`unsent`) passes `maxStreamBytes`, or once all
 * subscribers together pass `maxTotalBytes`: its queue is dropped, it is
 * detached from live delivery, and it reads again from what its consumer
 * took, page by page, when it asks. A subscriber that output waits for
 * (paused, queued, or still catching up) whose consumer takes nothing for
 * `stallMs` is ended (RESOURCE_EXHAUSTED; `onStall` lets the transport drop
 * the stream). Reads are sized in bytes too: a first read takes one entry,
 * and the COUNT of each later one follows the size of the entries seen, for
 * about `pageBytes` per read and key.
 *
 * When a key is added, the blocked XREAD is interrupted with CLIENT UNBLOCK
 * so the new key is read at once. When the reader reconnects, the hub checks
 * that every followed stream still has the newest entry it saw: a Redis that
 * restarted without its data ends those subscriptions (`lost`).
 */
import type { Redis } from "ioredis";
import { asQueueError, DataLossError, OutOfRangeError, UnavailableError } from "../queue/errors.js";
import { compareCursors } from "../queue/log-entry.js";
import { lastEntryId, readAfter, streamsMissing } from "../queue/stream-reads.js";
import { startStallSweep, verifyOnReconnect } from "./hub-guards.js";
import { type LiveKey, startLiveReader } from "./hub-live-reader.js";
import {
  addPending,
  batchBytes,
  type Buffers,
  consumerIterator,
  dropQueue,
  enqueue,
  freshFor,
  type HubEntry,
  newSubscriber,
  type SubscribeOptions,
  type Subscriber,
  takePending,
  unsentOf,
  wakeSubscriber,
} from "./hub-subscriber.js";

export type { HubEntry, SubscribeOptions };

/** A subscription: an async iterator of entry batches. */
export interface Subscription extends AsyncIterable<HubEntry[]> {
  /** Stops the subscription; pending and future reads end. */
  close(): void;
}

export interface StreamHubOptions {
  /** Shared command connection, for catch-up reads and CLIENT UNBLOCK. */
  redis: Redis;
  /** A dedicated connection for the blocking XREAD (see createRedis "blocking"). */
  reader: Redis;
  /** Entries one subscriber may hold before it is paused. Default 20,000. */
  maxBuffered?: number;
  /** Bytes one subscriber may hold (its queue plus its transport's unsent bytes) before it is paused. Default 1 MiB. */
  maxStreamBytes?: number;
  /** Bytes all subscribers together may hold before the ones that lag are paused. Default 64 MiB. */
  maxTotalBytes?: number;
  /** Bytes one read should bring per key (its COUNT follows the entries' size). Default 64 KiB. */
  pageBytes?: number;
  /** How long a subscriber's consumer may take nothing while output waits for it before the subscription is ended, ms (0: never). Default 5 min. */
  stallMs?: number;
  /** Most entries per key per read. Default 500. */
  batch?: number;
  /** Longest single block, ms; bounds recovery after a lost wake-up. Default 5,000. */
  blockMs?: number;
  /** How long a subscriber still catching up retries while Redis is away before it ends UNAVAILABLE, ms. Default 30,000. */
  unavailableMs?: number;
  /** Called when reading fails (Redis away); the hub retries by itself. */
  onError?: (err: Error) => void;
}

/** COUNT of a first read: one entry, as large as entries may be; later reads follow the size of what came. */
const FIRST_PAGE = 1;
const SHUTDOWN = "the server is shutting down; reconnect with your last cursor";

export type StreamHub = ReturnType<typeof createStreamHub>;

/** Starts a hub; call close() to stop it. */
export function createStreamHub(options: StreamHubOptions) {
  const { redis, reader } = options;
  const maxBuffered = options.maxBuffered ?? 20_000;
  const maxStreamBytes = options.maxStreamBytes ?? 1024 * 1024;
  const maxTotalBytes = options.maxTotalBytes ?? 64 * 1024 * 1024;
  const pageBytes = options.pageBytes ?? 64 * 1024;
  const stallMs = options.stallMs ?? 5 * 60_000;
  const batch = options.batch ?? 500;
  const blockMs = options.blockMs ?? 5000;
  const unavailableMs = options.unavailableMs ?? 30_000;
  const keys = new Map<string, LiveKey>();
  const all = new Set<Subscriber>();
  const buffers: Buffers = { bytes: 0 };
  const counts = { pauses: 0, stalled: 0, lost: 0, retried: 0 };
  let closed = false;

  /** COUNT for entries of `avg` bytes: about pageBytes per read, within 1..batch, growing at most 4x a time. */
  function countFor(avg: number, previous: number): number {
    return Math.max(1, Math.min(batch, previous * 4, Math.floor(pageBytes / Math.max(1, avg))));
  }

  function detach(sub: Subscriber) {
    const k = keys.get(sub.key);
    k?.subs.delete(sub);
    sub.live = false;
    if (k && k.subs.size === 0) {
      keys.delete(sub.key);
      live.keysChanged(false);
    }
  }

  /** Ends `sub` with `err` (after what it already queued, unless `drop`). */
  function fail(sub: Subscriber, err: Error, drop = false) {
    if (sub.failure || sub.closed) return;
    sub.failure = err;
    if (sub.live) detach(sub);
    if (drop) dropQueue(sub, buffers);
    wakeSubscriber(sub);
  }

  /** Detaches a subscriber that fell behind and drops its queue; it reads again from what its consumer took. */
  function pause(sub: Subscriber) {
    detach(sub);
    dropQueue(sub, buffers);
    sub.paused = true;
    counts.pauses++;
  }

  function overBound(sub: Subscriber, entries: number, bytes: number): boolean {
    return (
      sub.entries + entries > maxBuffered || sub.bytes + bytes + unsentOf(sub) > maxStreamBytes || buffers.bytes + bytes > maxTotalBytes
    );
  }

  /** Live entries for an attached subscriber; it is paused if it still holds its last delivery and is over a bound. */
  function deliverLive(sub: Subscriber, entries: HubEntry[]) {
    const fresh = freshFor(sub, entries);
    if (fresh.length === 0) return;
    const bytes = batchBytes(fresh);
    if (sub.queue.length > 0 && overBound(sub, fresh.length, bytes)) pause(sub);
    else enqueue(sub, fresh, bytes, buffers);
  }

  function queuePage(sub: Subscriber, rows: HubEntry[]) {
    const fresh = freshFor(sub, rows);
    if (fresh.length > 0) enqueue(sub, fresh, batchBytes(fresh), buffers);
  }

  /** Adapts the subscriber's page COUNT to the page just read. */
  function adaptPage(sub: Subscriber, rows: HubEntry[]) {
    if (rows.length > 0) sub.pageCount = countFor(batchBytes(rows) / rows.length, sub.pageCount);
  }

  /** Whether `sub`'s cursor is past the stream's newest entry (it has then failed). */
  async function beyondEnd(sub: Subscriber): Promise<boolean> {
    const last = await lastEntryId(redis, sub.key);
    if (last) sub.anchor = last;
    if (compareCursors(sub.cursor, last || "0-0") <= 0) return false;
    const err = sub.options.beyondEnd?.(last) ?? new OutOfRangeError(`cursor ${sub.cursor} is beyond the end of ${sub.key} (last entry ${last || "none"})`);
    fail(sub, err);
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
    if (!asked && (unsentOf(sub) >= pageBytes / 4 || buffers.bytes >= maxTotalBytes)) return;
    sub.reading = true;
    let retry = false;
    try {
      // Back after Redis was away: what it read must still be there.
      if (sub.unavailableSince !== undefined && sub.anchor !== undefined) {
        if ((await streamsMissing(redis, [[sub.key, sub.anchor]])).size > 0) return lose(sub);
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
      retry = err instanceof UnavailableError && !sub.live && !closed && Date.now() - (sub.unavailableSince ??= Date.now()) < unavailableMs;
      if (retry) counts.retried++;
      else fail(sub, err);
    } finally {
      sub.reading = false;
    }
    if (retry) setTimeout(() => void pull(sub, true), 250).unref();
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
      live.keysChanged(true);
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
    if (pending.length > 0) deliverLive(sub, pending);
  }

  const live = startLiveReader({
    redis,
    reader,
    keys,
    firstCount: Math.min(FIRST_PAGE, batch),
    blockMs,
    countFor,
    deliver(state, entries) {
      for (const sub of state.subs) {
        if (!sub.pending) deliverLive(sub, entries);
        else {
          addPending(sub, entries, buffers);
          // Too much arrives while it closes its gap: it reads on by itself.
          if (sub.pendingBytes > maxStreamBytes) pause(sub);
        }
      }
    },
    onError: options.onError,
  });

  const stopSweep = startStallSweep(all, stallMs, (sub, err) => {
    counts.stalled++;
    fail(sub, err, true);
    sub.options.onStall?.(err);
  });

  /** Ends `sub` because its stream lost what it read (Redis restarted without its data). */
  function lose(sub: Subscriber) {
    counts.lost++;
    fail(sub, sub.options.lost?.() ?? new DataLossError(`stream ${sub.key} lost its data (Redis restarted without it)`));
  }

  verifyOnReconnect(redis, reader, all, lose);

  function closeSub(sub: Subscriber) {
    if (sub.closed) return;
    sub.closed = true;
    all.delete(sub);
    if (sub.live) detach(sub);
    dropQueue(sub, buffers);
    wakeSubscriber(sub);
  }

  return {
    /** Number of keys followed live now. */
    get size() {
      return keys.size;
    },

    /** Bytes all subscriptions hold in their queues now: the gauge bounded by maxTotalBytes. */
    get bufferedBytes() {
      return buffers.bytes;
    },

    /** Subscriptions open now, how many are paused, and how many were paused, ended as stalled, lost their data, or had a catch-up read retried (Redis away) so far. */
    stats() {
      let paused = 0;
      for (const sub of all) if (sub.paused) paused++;
      return { subscriptions: all.size, paused, bufferedBytes: buffers.bytes, ...counts };
    },

    /** Follows stream `key` from after `afterId` ("0-0": from the start). */
    subscribe(key: string, afterId: string, subscribeOptions: SubscribeOptions = {}): Subscription {
      const sub = newSubscriber(key, afterId || "0-0", subscribeOptions, Math.min(FIRST_PAGE, batch));
      if (closed) sub.failure = new UnavailableError(SHUTDOWN);
      else {
        all.add(sub);
        void pull(sub, true);
      }
      const hooks = { buffers, pull: (s: Subscriber, asked: boolean) => void pull(s, asked), close: closeSub };
      return {
        close: () => closeSub(sub),
        [Symbol.asyncIterator]: () => consumerIterator(sub, hooks),
      };
    },

    /** Ends every subscription with UNAVAILABLE (clients resume elsewhere) and stops reading. */
    close(): void {
      closed = true;
      stopSweep();
      for (const sub of all) fail(sub, new UnavailableError(SHUTDOWN));
      keys.clear();
      live.stop();
    },
  };
}
