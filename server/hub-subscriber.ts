/**
 * One subscriber of the stream hub (server/stream-hub.ts): the entries read
 * for it and not yet taken by its consumer, counted in entries and bytes,
 * and the consumer's side, an async iterator of batches. The hub decides
 * when to read and when to pause; this file keeps the books, so that what
 * the hub's gauge says is what its queues hold.
 */
import { compareCursors } from "../queue/log-entry.js";
import type { StreamEntry } from "../queue/stream-reads.js";

/** One stream entry: id and flat field list. */
export type HubEntry = StreamEntry;

/** How a subscription meets the transport that serves it, and the errors it ends with. */
export interface SubscribeOptions {
  /** Bytes its consumer took and has not sent yet (an HTTP response's unsent bytes), counted against the stream's bound. */
  unsent?: () => number;
  /** Called once when the hub ends the subscription because its reader stalled: drop the stream. */
  onStall?: (err: Error) => void;
  /** The error for a cursor past the stream's newest entry (`last`: its id, "" when the stream is empty). */
  beyondEnd?: (last: string) => Error;
  /** The error when the stream's data vanished under the subscription. */
  lost?: () => Error;
}

/** A batch in a subscriber's queue, with the bytes it is counted for. */
interface Batch {
  entries: HubEntry[];
  bytes: number;
}

/** Bytes buffered by all subscribers of one hub: the hub's gauge. */
export interface Buffers {
  bytes: number;
}

/** What the hub knows about one subscriber. */
export interface Subscriber {
  readonly key: string;
  readonly options: SubscribeOptions;
  /** Id of the last entry queued for it (its read position). */
  cursor: string;
  /** Id of the last entry its consumer took: where it resumes when its queue is dropped. */
  taken: string;
  /** Id of an entry known to be in the stream (the newest seen), to notice the stream's data vanishing. */
  anchor: string | undefined;
  queue: Batch[];
  entries: number;
  bytes: number;
  /** Live entries that arrived while a catch-up read closes the gap to the live reader. */
  pending: HubEntry[] | undefined;
  pendingBytes: number;
  /** Attached to its key: live entries are delivered as they are read. */
  live: boolean;
  /** Detached because it fell behind; resumes from `cursor` once its consumer reads again. */
  paused: boolean;
  /** A catch-up read is in flight. */
  reading: boolean;
  /** The first catch-up read is done (it checks the cursor against the stream's end). */
  started: boolean;
  /** Since when its catch-up reads fail because Redis is away (Date.now()); it retries until `unavailableMs`. */
  unavailableSince: number | undefined;
  /** COUNT of its next catch-up read, adapted to the entries' size. */
  pageCount: number;
  closed: boolean;
  failure: Error | undefined;
  /** Set while its consumer waits in next(). */
  wake: (() => void) | undefined;
  /** When its consumer last asked for a batch (Date.now()). */
  lastRead: number;
}

/** Rough memory of one entry: its strings, plus object and array overhead. */
export function entryBytes(e: HubEntry): number {
  let n = 64 + e.id.length;
  for (const f of e.fields) n += 16 + f.length;
  return n;
}

/** The sum of entryBytes over `entries`. */
export function batchBytes(entries: readonly HubEntry[]): number {
  let n = 0;
  for (const e of entries) n += entryBytes(e);
  return n;
}

export function newSubscriber(key: string, after: string, options: SubscribeOptions, pageCount: number): Subscriber {
  return {
    key,
    options,
    cursor: after,
    taken: after,
    anchor: undefined,
    queue: [],
    entries: 0,
    bytes: 0,
    pending: undefined,
    pendingBytes: 0,
    live: false,
    paused: false,
    reading: false,
    started: false,
    unavailableSince: undefined,
    pageCount,
    closed: false,
    failure: undefined,
    wake: undefined,
    lastRead: Date.now(),
  };
}

/** The entries of `entries` (in id order) after the subscriber's cursor: the hub never delivers an entry twice. */
export function freshFor(sub: Subscriber, entries: HubEntry[]): HubEntry[] {
  let first = 0;
  while (first < entries.length && compareCursors((entries[first] as HubEntry).id, sub.cursor) <= 0) first++;
  return first === 0 ? entries : entries.slice(first);
}

/** Bytes its consumer has taken and not sent on yet. */
export function unsentOf(sub: Subscriber): number {
  return sub.options.unsent?.() ?? 0;
}

/** Resolves its consumer's wait, if it waits. */
export function wakeSubscriber(sub: Subscriber): void {
  const w = sub.wake;
  sub.wake = undefined;
  w?.();
}

/** Queues fresh `entries` (counted as `bytes`) for its consumer. */
export function enqueue(sub: Subscriber, entries: HubEntry[], bytes: number, buffers: Buffers): void {
  sub.queue.push({ entries, bytes });
  sub.entries += entries.length;
  sub.bytes += bytes;
  buffers.bytes += bytes;
  const last = (entries[entries.length - 1] as HubEntry).id;
  sub.cursor = last;
  sub.anchor = last;
  wakeSubscriber(sub);
}

/** Adds live entries that arrived during a gap-closing read. */
export function addPending(sub: Subscriber, entries: HubEntry[], buffers: Buffers): void {
  const bytes = batchBytes(entries);
  (sub.pending as HubEntry[]).push(...entries);
  sub.pendingBytes += bytes;
  buffers.bytes += bytes;
}

/** Takes the pending entries out (uncounted). */
export function takePending(sub: Subscriber, buffers: Buffers): HubEntry[] {
  const p = sub.pending ?? [];
  buffers.bytes -= sub.pendingBytes;
  sub.pending = undefined;
  sub.pendingBytes = 0;
  return p;
}

/**
 * Drops everything queued and not taken, and moves the read position back
 * to what the consumer took: the entries are read again from Redis when it
 * asks for them. This is what makes a paused reader cost (almost) nothing.
 */
export function dropQueue(sub: Subscriber, buffers: Buffers): void {
  buffers.bytes -= sub.bytes;
  sub.queue = [];
  sub.entries = 0;
  sub.bytes = 0;
  sub.cursor = sub.taken;
  takePending(sub, buffers);
}

/** Hub actions the consumer's side needs. */
export interface ConsumerHooks {
  buffers: Buffers;
  /** Reads on for a subscriber that is not live; `asked`: its consumer is waiting for it. */
  pull(sub: Subscriber, asked: boolean): void;
  close(sub: Subscriber): void;
}

/** The consumer's side: batches in order, then the subscriber's failure, or the end once closed. */
export function consumerIterator(sub: Subscriber, hooks: ConsumerHooks): AsyncIterator<HubEntry[]> {
  return {
    async next(): Promise<IteratorResult<HubEntry[]>> {
      sub.lastRead = Date.now();
      for (;;) {
        const head = sub.queue.shift();
        if (head) {
          sub.entries -= head.entries.length;
          sub.bytes -= head.bytes;
          hooks.buffers.bytes -= head.bytes;
          sub.taken = (head.entries[head.entries.length - 1] as HubEntry).id;
          // Read the next page while the consumer works on this one.
          if (!sub.live) hooks.pull(sub, false);
          return { value: head.entries, done: false };
        }
        if (sub.failure) throw sub.failure;
        if (sub.closed) return { value: undefined, done: true };
        if (!sub.live) hooks.pull(sub, true);
        await new Promise<void>((resolve) => {
          sub.wake = resolve;
        });
        sub.lastRead = Date.now();
      }
    },
    async return(): Promise<IteratorResult<HubEntry[]>> {
      hooks.close(sub);
      return { value: undefined, done: true };
    },
  };
}
