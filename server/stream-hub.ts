/**
 * The stream hub: one per server process. It follows every Redis stream
 * that some client stream needs with ONE blocking connection (XREAD over all
 * followed keys) and fans entries out to subscribers, so a thousand client
 * streams cost one Redis connection, not a thousand.
 *
 * A subscriber starts from a cursor. It first catches up with XRANGE on the
 * shared command connection while the hub buffers live entries for it, then
 * switches to live delivery; entries are de-duplicated by id, so there is
 * no gap and no repeat across the switch. A subscriber that falls more than
 * `maxBuffered` entries behind is detached (the hub never waits for a slow
 * client) and catches up again from its own cursor once it has drained.
 *
 * When a key is added, the blocked XREAD is interrupted with CLIENT UNBLOCK
 * so the new key is read at once.
 */
import type { Redis } from "ioredis";
import { asQueueError, UnavailableError } from "../queue/errors.js";
import { compareCursors } from "../queue/log-entry.js";

/** One stream entry: id and flat field list. */
export interface HubEntry {
  id: string;
  fields: string[];
}

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
  /** Entries buffered per subscriber before it is detached. Default 20,000. */
  maxBuffered?: number;
  /** Entries read per key per XREAD / per catch-up page. Default 500. */
  batch?: number;
  /** Longest single block, ms; bounds recovery after a lost wake-up. Default 5,000. */
  blockMs?: number;
  /** Called when reading fails (Redis away); the hub retries by itself. */
  onError?: (err: Error) => void;
}

interface Sub {
  key: string;
  /** Id of the last entry handed to the consumer's queue. */
  cursor: string;
  queue: HubEntry[][];
  queued: number;
  /** Catching up: live entries wait here until the catch-up read ends. */
  pending: HubEntry[] | undefined;
  attached: boolean;
  closed: boolean;
  failure: Error | undefined;
  wake: (() => void) | undefined;
}

interface KeyState {
  /** Last id the reader has read (undefined until a subscriber caught up). */
  pos: string | undefined;
  subs: Set<Sub>;
}

export type StreamHub = ReturnType<typeof createStreamHub>;

/** Starts a hub; call close() to stop it. */
export function createStreamHub(options: StreamHubOptions) {
  const { redis, reader } = options;
  const maxBuffered = options.maxBuffered ?? 20_000;
  const batch = options.batch ?? 500;
  const blockMs = options.blockMs ?? 5000;
  const keys = new Map<string, KeyState>();
  let readerId: number | undefined;
  let blocked = false;
  let closed = false;
  let idle: (() => void) | undefined;

  reader.on("close", () => {
    readerId = undefined;
  });

  function wakeSub(sub: Sub) {
    const w = sub.wake;
    sub.wake = undefined;
    w?.();
  }

  function deliver(sub: Sub, entries: HubEntry[]) {
    // Entries are in id order: skip the prefix the subscriber already has.
    let first = 0;
    while (first < entries.length && compareCursors((entries[first] as HubEntry).id, sub.cursor) <= 0) first++;
    const fresh = first === 0 ? entries : entries.slice(first);
    if (fresh.length === 0) return;
    sub.queue.push(fresh);
    sub.queued += fresh.length;
    sub.cursor = (fresh[fresh.length - 1] as HubEntry).id;
    if (sub.queued > maxBuffered) detach(sub);
    wakeSub(sub);
  }

  function detach(sub: Sub) {
    keys.get(sub.key)?.subs.delete(sub);
    sub.attached = false;
    dropKeyIfUnused(sub.key);
  }

  function dropKeyIfUnused(key: string) {
    const k = keys.get(key);
    if (k && k.subs.size === 0) {
      keys.delete(key);
      readArgs = undefined;
    }
  }

  /**
   * The XREAD arguments: rebuilt only when the set of keys read changes,
   * with each key's position updated in place after a read (a server
   * following a thousand logs would otherwise build two thousand arguments
   * per read).
   */
  let readArgs: (string | number)[] | undefined;
  const posSlot = new Map<string, number>();

  function argsForRead(): (string | number)[] | undefined {
    if (readArgs) return readArgs;
    const active = [...keys.entries()].filter(([, s]) => s.pos !== undefined && s.subs.size > 0);
    if (active.length === 0) return undefined;
    const args: (string | number)[] = ["COUNT", batch, "BLOCK", blockMs, "STREAMS"];
    for (const [k] of active) args.push(k);
    posSlot.clear();
    for (const [k, s] of active) {
      posSlot.set(k, args.length);
      args.push(s.pos as string);
    }
    readArgs = args;
    return args;
  }

  function interrupt() {
    if (idle) {
      const w = idle;
      idle = undefined;
      w();
      return;
    }
    if (blocked && readerId !== undefined) {
      redis.client("UNBLOCK", readerId).catch(() => {});
    }
  }

  async function catchUp(sub: Sub): Promise<void> {
    let state = keys.get(sub.key);
    if (!state) {
      state = { pos: undefined, subs: new Set() };
      keys.set(sub.key, state);
    }
    sub.pending = [];
    sub.attached = true;
    state.subs.add(sub);
    try {
      for (;;) {
        const rows = await redis.xrange(sub.key, `(${sub.cursor}`, "+", "COUNT", batch);
        if (sub.closed) return;
        if (rows.length > 0) deliver(sub, rows.map(([id, fields]) => ({ id, fields })));
        if (rows.length < batch) break;
        if (!sub.attached) return; // fell behind while catching up; resumes when drained
      }
    } catch (e) {
      sub.failure = asQueueError(e);
      wakeSub(sub);
      return;
    }
    const pending = sub.pending;
    sub.pending = undefined;
    if (pending && pending.length > 0) deliver(sub, pending);
    if (state.pos === undefined) {
      state.pos = sub.cursor;
      readArgs = undefined;
      interrupt();
    }
  }

  async function readLoop() {
    while (!closed) {
      const args = argsForRead();
      if (!args) {
        await new Promise<void>((resolve) => {
          idle = resolve;
          setTimeout(resolve, blockMs).unref();
        });
        idle = undefined;
        continue;
      }
      try {
        if (readerId === undefined) readerId = (await reader.client("ID")) as number;
        blocked = true;
        const reply = (await (reader.xread as (...a: (string | number)[]) => Promise<unknown>)(...args)) as
          | [string, [string, string[]][]][]
          | null;
        blocked = false;
        if (!reply) continue;
        for (const [key, rows] of reply) {
          const state = keys.get(key);
          if (!state || rows.length === 0) continue;
          const entries = rows.map(([id, fields]) => ({ id, fields }));
          state.pos = (entries[entries.length - 1] as HubEntry).id;
          const slot = posSlot.get(key);
          if (readArgs === args && slot !== undefined) args[slot] = state.pos;
          for (const sub of state.subs) {
            if (sub.pending) sub.pending.push(...entries);
            else deliver(sub, entries);
          }
        }
      } catch (e) {
        blocked = false;
        if (closed) return;
        options.onError?.(asQueueError(e));
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  void readLoop();

  return {
    /** Number of keys followed now. */
    get size() {
      return keys.size;
    },

    /** Follows stream `key` from after `afterId` ("0-0": from the start). */
    subscribe(key: string, afterId: string): Subscription {
      const sub: Sub = {
        key,
        cursor: afterId || "0-0",
        queue: [],
        queued: 0,
        pending: undefined,
        attached: false,
        closed: false,
        failure: undefined,
        wake: undefined,
      };
      if (closed) sub.failure = new UnavailableError("the server is shutting down; reconnect with your last cursor");
      else void catchUp(sub);
      const close = () => {
        if (sub.closed) return;
        sub.closed = true;
        if (sub.attached) detach(sub);
        wakeSub(sub);
      };
      return {
        close,
        [Symbol.asyncIterator]() {
          return {
            async next(): Promise<IteratorResult<HubEntry[]>> {
              for (;;) {
                const head = sub.queue.shift();
                if (head) {
                  sub.queued -= head.length;
                  // Drained after a detach: catch up again from our cursor.
                  if (!sub.attached && !sub.closed && sub.queue.length === 0) void catchUp(sub);
                  return { value: head, done: false };
                }
                if (sub.failure) throw sub.failure;
                if (sub.closed) return { value: undefined, done: true };
                await new Promise<void>((resolve) => {
                  sub.wake = resolve;
                });
              }
            },
            async return(): Promise<IteratorResult<HubEntry[]>> {
              close();
              return { value: undefined, done: true };
            },
          };
        },
      };
    },

    /** Ends every subscription with UNAVAILABLE (clients resume elsewhere) and stops reading. */
    close(): void {
      closed = true;
      for (const state of keys.values()) {
        for (const sub of state.subs) {
          sub.failure = new UnavailableError("the server is shutting down; reconnect with your last cursor");
          wakeSub(sub);
        }
      }
      keys.clear();
      readArgs = undefined;
      interrupt();
    },
  };
}
