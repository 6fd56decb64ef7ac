/**
 * The stream hub's bookkeeping of its subscribers: which follow which key
 * live, what they hold in bytes, and the moves between states: delivered
 * live, paused (over a bound, detached, it reads again from what its
 * consumer took), failed (ended with an error after what it queued, or at
 * once), lost (its stream's data is gone), closed. The hub's readers
 * (catch-up pages, the live XREAD) call these; stream-hub.ts wires them.
 */
import { DataLossError } from "../queue/errors.js";
import type { LiveKey } from "./hub-live-reader.js";
import {
  addPending,
  batchBytes,
  type Buffers,
  dropQueue,
  enqueue,
  freshFor,
  type HubEntry,
  type Subscriber,
  unsentOf,
  wakeSubscriber,
} from "./hub-subscriber.js";

export interface SubscriberBounds {
  /** Entries one subscriber may hold before it is paused. */
  maxBuffered: number;
  /** Bytes one subscriber may hold (its queue plus its transport's unsent bytes) before it is paused. */
  maxStreamBytes: number;
  /** Bytes all subscribers together may hold before the ones that lag are paused. */
  maxTotalBytes: number;
}

export class HubSubscribers {
  /** Keys followed live, each with its attached subscribers. */
  readonly keys = new Map<string, LiveKey>();
  /** Every open subscription. */
  readonly all = new Set<Subscriber>();
  /** Bytes queued by every subscriber together. */
  readonly buffers: Buffers = { bytes: 0 };
  readonly counts = { pauses: 0, stalled: 0, lost: 0, retried: 0 };
  /** Told when a key stops being followed (the live reader re-reads its keys). */
  keysChanged: (now: boolean) => void = () => {};

  constructor(private readonly bounds: SubscriberBounds) {}

  detach(sub: Subscriber): void {
    const k = this.keys.get(sub.key);
    k?.subs.delete(sub);
    sub.live = false;
    if (k && k.subs.size === 0) {
      this.keys.delete(sub.key);
      this.keysChanged(false);
    }
  }

  /** Ends `sub` with `err` (after what it already queued, unless `drop`). */
  fail(sub: Subscriber, err: Error, drop = false): void {
    if (sub.failure || sub.closed) return;
    sub.failure = err;
    if (sub.live) this.detach(sub);
    if (drop) dropQueue(sub, this.buffers);
    wakeSubscriber(sub);
  }

  /** Ends `sub` because its stream lost what it read (Redis restarted without its data). */
  lose(sub: Subscriber): void {
    this.counts.lost++;
    this.fail(sub, sub.options.lost?.() ?? new DataLossError(`stream ${sub.key} lost its data (Redis restarted it empty)`));
  }

  /** Detaches a subscriber that fell behind and drops its queue; it reads again from what its consumer took. */
  pause(sub: Subscriber): void {
    this.detach(sub);
    dropQueue(sub, this.buffers);
    sub.paused = true;
    this.counts.pauses++;
  }

  /** Live entries for an attached subscriber; it is paused if it still holds its last delivery and is over a bound. */
  deliverLive(sub: Subscriber, entries: HubEntry[]): void {
    const fresh = freshFor(sub, entries);
    if (fresh.length === 0) return;
    const bytes = batchBytes(fresh);
    if (sub.queue.length > 0 && this.overBound(sub, fresh.length, bytes)) this.pause(sub);
    else enqueue(sub, fresh, bytes, this.buffers);
  }

  /** What the live reader read for one key, to each subscriber attached to it. */
  deliver(state: LiveKey, entries: HubEntry[]): void {
    for (const sub of state.subs) {
      if (!sub.pending) this.deliverLive(sub, entries);
      else {
        addPending(sub, entries, this.buffers);
        // Too much arrives while it closes its gap: it reads on by itself.
        if (sub.pendingBytes > this.bounds.maxStreamBytes) this.pause(sub);
      }
    }
  }

  close(sub: Subscriber): void {
    if (sub.closed) return;
    sub.closed = true;
    this.all.delete(sub);
    if (sub.live) this.detach(sub);
    dropQueue(sub, this.buffers);
    wakeSubscriber(sub);
  }

  /** Subscriptions open now, how many are paused, and the counts so far. */
  stats() {
    let paused = 0;
    for (const sub of this.all) if (sub.paused) paused++;
    return { subscriptions: this.all.size, paused, bufferedBytes: this.buffers.bytes, ...this.counts };
  }

  private overBound(sub: Subscriber, entries: number, bytes: number): boolean {
    const b = this.bounds;
    return (
      sub.entries + entries > b.maxBuffered ||
      sub.bytes + bytes + unsentOf(sub) > b.maxStreamBytes ||
      this.buffers.bytes + bytes > b.maxTotalBytes
    );
  }
}
