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
import { DataLossError, UnavailableError } from "../queue/errors.js";
import { createCatchUp } from "./hub-catch-up.js";
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
  /**
   * How long a subscriber's consumer may take nothing while output waits for it before the
   * subscription is ended, ms (0: never). Default 5 min.
   */
  stallMs?: number;
  /** Most entries per key per read. Default 500. */
  batch?: number;
  /** Longest single block, ms; bounds recovery after a lost wake-up. Default 5,000. */
  blockMs?: number;
  /** How long a subscriber still catching up retries while Redis is away before it ends UNAVAILABLE, ms (30 s). */
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
      sub.entries + entries > maxBuffered ||
      sub.bytes + bytes + unsentOf(sub) > maxStreamBytes ||
      buffers.bytes + bytes > maxTotalBytes
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

  const catchUp = createCatchUp({
    redis,
    keys,
    buffers,
    counts,
    pageBytes,
    maxTotalBytes,
    unavailableMs,
    isClosed: () => closed,
    countFor,
    fail,
    lose,
    deliverLive,
    keysChanged: (now: boolean) => live.keysChanged(now),
  });
  const pull = (sub: Subscriber, asked: boolean) => catchUp.pull(sub, asked);

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
    const err = sub.options.lost?.() ?? new DataLossError(`stream ${sub.key} lost its data (Redis restarted it empty)`);
    fail(sub, err);
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

    /**
     * Subscriptions open now, how many are paused, and how many were paused, ended as stalled,
     * lost their data, or had a catch-up read retried (Redis away) so far.
     */
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
