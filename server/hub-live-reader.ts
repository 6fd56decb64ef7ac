/**
 * The stream hub's live reader: ONE blocking XREAD over every key that has
 * live subscribers, from each key's read position, on a dedicated
 * connection. Its argument list is rebuilt only when the set of keys
 * changes, with each key's position updated in place after a read (a server
 * following a thousand logs would otherwise build two thousand arguments
 * per read). A new key interrupts the blocked read (CLIENT UNBLOCK) so that
 * it is read at once. The COUNT of each read follows the size of the
 * entries read, for about one page of bytes per key.
 */
import type { Redis } from "ioredis";
import { asQueueError } from "../queue/errors.js";
import { connectionId, interruptRead, readLive } from "../queue/stream-reads.js";
import { batchBytes, type HubEntry, type Subscriber } from "./hub-subscriber.js";

/** A key followed live: where the reader is, and who gets what it reads. */
export interface LiveKey {
  /** Last id read (undefined until a subscriber attached at a position the stream has). */
  pos: string | undefined;
  subs: Set<Subscriber>;
}

export interface LiveReaderOptions {
  /** Command connection, for CLIENT UNBLOCK. */
  redis: Redis;
  /** The dedicated connection that blocks. */
  reader: Redis;
  keys: Map<string, LiveKey>;
  /** COUNT of the first read. */
  firstCount: number;
  /** Longest single block, ms. */
  blockMs: number;
  /** COUNT for entries of `avg` bytes, given the previous COUNT. */
  countFor(avg: number, previous: number): number;
  /** Called with what one read brought for a key (its position already advanced). */
  deliver(state: LiveKey, entries: HubEntry[]): void;
  onError?: (err: Error) => void;
}

export interface LiveReader {
  /** The set of keys or a key's start changed: rebuild the arguments, and read the new ones at once. */
  keysChanged(interrupt: boolean): void;
  stop(): void;
}

export function startLiveReader(o: LiveReaderOptions): LiveReader {
  const { redis, reader, keys } = o;
  let readerId: number | undefined;
  let blocked = false;
  let stopped = false;
  let idle: (() => void) | undefined;
  let count = o.firstCount;
  let readArgs: (string | number)[] | undefined;
  const posSlot = new Map<string, number>();

  reader.on("close", () => {
    readerId = undefined;
  });

  function argsForRead(): (string | number)[] | undefined {
    if (readArgs) return readArgs;
    const active = [...keys.entries()].filter(([, s]) => s.pos !== undefined && s.subs.size > 0);
    if (active.length === 0) return undefined;
    const args: (string | number)[] = ["COUNT", count, "BLOCK", o.blockMs, "STREAMS"];
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
    if (blocked && readerId !== undefined) interruptRead(redis, readerId).catch(() => {});
  }

  function fanOut(args: (string | number)[], reply: [string, HubEntry[]][]) {
    for (const [key, entries] of reply) {
      const state = keys.get(key);
      if (!state || entries.length === 0) continue;
      state.pos = (entries[entries.length - 1] as HubEntry).id;
      const slot = posSlot.get(key);
      if (readArgs === args && slot !== undefined) args[slot] = state.pos;
      const next = o.countFor(batchBytes(entries) / entries.length, count);
      if (next !== count && readArgs === args) args[1] = next;
      count = next;
      o.deliver(state, entries);
    }
  }

  async function loop() {
    while (!stopped) {
      const args = argsForRead();
      if (!args) {
        await new Promise<void>((resolve) => {
          idle = resolve;
          setTimeout(resolve, o.blockMs).unref();
        });
        idle = undefined;
        continue;
      }
      try {
        if (readerId === undefined) readerId = await connectionId(reader);
        blocked = true;
        const reply = await readLive(reader, args);
        blocked = false;
        if (reply) fanOut(args, reply);
      } catch (e) {
        blocked = false;
        if (stopped) return;
        o.onError?.(asQueueError(e));
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
  void loop();

  return {
    keysChanged(now) {
      readArgs = undefined;
      if (now) interrupt();
    },
    stop() {
      stopped = true;
      readArgs = undefined;
      interrupt();
    },
  };
}
