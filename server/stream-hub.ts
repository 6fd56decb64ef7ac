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
import { UnavailableError } from "../queue/errors.js";
import { createCatchUp } from "./hub-catch-up.js";
import { startStallSweep, verifyOnReconnect } from "./hub-guards.js";
import { startLiveReader } from "./hub-live-reader.js";
import { consumerIterator, type HubEntry, newSubscriber, type SubscribeOptions, type Subscriber } from "./hub-subscriber.js";
import { HubSubscribers } from "./hub-subscribers.js";

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
  const batch = options.batch ?? 500;
  const pageBytes = options.pageBytes ?? 64 * 1024;
  const maxTotalBytes = options.maxTotalBytes ?? 64 * 1024 * 1024;
  const subs = new HubSubscribers({
    maxBuffered: options.maxBuffered ?? 20_000,
    maxStreamBytes: options.maxStreamBytes ?? 1024 * 1024,
    maxTotalBytes,
  });
  let closed = false;

  /** COUNT for entries of `avg` bytes: about pageBytes per read, within 1..batch, growing at most 4x a time. */
  const countFor = (avg: number, previous: number): number =>
    Math.max(1, Math.min(batch, previous * 4, Math.floor(pageBytes / Math.max(1, avg))));

  const catchUp = createCatchUp({
    redis,
    keys: subs.keys,
    buffers: subs.buffers,
    counts: subs.counts,
    pageBytes,
    maxTotalBytes,
    unavailableMs: options.unavailableMs ?? 30_000,
    isClosed: () => closed,
    countFor,
    fail: (sub, err) => subs.fail(sub, err),
    lose: (sub) => subs.lose(sub),
    deliverLive: (sub, entries) => subs.deliverLive(sub, entries),
    keysChanged: (now: boolean) => live.keysChanged(now),
  });
  const pull = (sub: Subscriber, asked: boolean) => catchUp.pull(sub, asked);

  const live = startLiveReader({
    redis,
    reader,
    keys: subs.keys,
    firstCount: Math.min(FIRST_PAGE, batch),
    blockMs: options.blockMs ?? 5000,
    countFor,
    deliver: (state, entries) => subs.deliver(state, entries),
    onError: options.onError,
  });
  subs.keysChanged = (now) => live.keysChanged(now);

  const stopSweep = startStallSweep(subs.all, options.stallMs ?? 5 * 60_000, (sub, err) => {
    subs.counts.stalled++;
    subs.fail(sub, err, true);
    sub.options.onStall?.(err);
  });
  verifyOnReconnect(redis, reader, subs.all, (sub) => subs.lose(sub));

  return {
    /** Number of keys followed live now. */
    get size() {
      return subs.keys.size;
    },

    /** Bytes all subscriptions hold in their queues now: the gauge bounded by maxTotalBytes. */
    get bufferedBytes() {
      return subs.buffers.bytes;
    },

    /**
     * Subscriptions open now, how many are paused, and how many were paused, ended as stalled,
     * lost their data, or had a catch-up read retried (Redis away) so far.
     */
    stats() {
      return subs.stats();
    },

    /** Follows stream `key` from after `afterId` ("0-0": from the start). */
    subscribe(key: string, afterId: string, subscribeOptions: SubscribeOptions = {}): Subscription {
      const sub = newSubscriber(key, afterId || "0-0", subscribeOptions, Math.min(FIRST_PAGE, batch));
      if (closed) sub.failure = new UnavailableError(SHUTDOWN);
      else {
        subs.all.add(sub);
        void pull(sub, true);
      }
      const hooks = { buffers: subs.buffers, pull: (s: Subscriber, asked: boolean) => void pull(s, asked), close: (s: Subscriber) => subs.close(s) };
      return {
        close: () => subs.close(sub),
        [Symbol.asyncIterator]: () => consumerIterator(sub, hooks),
      };
    },

    /** Ends every subscription with UNAVAILABLE (clients resume elsewhere) and stops reading. */
    close(): void {
      closed = true;
      stopSweep();
      for (const sub of subs.all) subs.fail(sub, new UnavailableError(SHUTDOWN));
      subs.keys.clear();
      live.stop();
    },
  };
}
