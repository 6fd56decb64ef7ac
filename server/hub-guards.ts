/**
 * The stream hub's two watchdogs over its subscribers: one ends readers
 * that stalled (output waits for them, queued or still to read, and they
 * take nothing for `stallMs`), the other, after the hub's Redis connection came back, ends
 * subscriptions whose stream lost what they read (Redis restarted without
 * its data). Neither polls streams: the first looks at the hub's own books,
 * the second runs once per reconnect.
 */
import type { Redis } from "ioredis";
import { ResourceExhaustedError } from "../queue/errors.js";
import { compareCursors } from "../queue/log-entry.js";
import { streamsMissing } from "../queue/stream-reads.js";
import type { Subscriber } from "./hub-subscriber.js";

/** Ends, through `end`, every subscriber whose consumer took nothing for `stallMs` (0: never) while output waited for it. Returns a stop function. */
export function startStallSweep(subs: Iterable<Subscriber>, stallMs: number, end: (sub: Subscriber, err: Error) => void): () => void {
  if (stallMs <= 0) return () => {};
  const sweep = () => {
    const now = Date.now();
    for (const sub of subs) {
      if (sub.closed || sub.failure || sub.wake || now - sub.lastRead < stallMs) continue;
      // Live with nothing queued: it is up to date, only waiting for output.
      // Otherwise output waits for it: queued, or still to read (catching up, or paused).
      if (sub.live && sub.queue.length === 0) continue;
      end(
        sub,
        new ResourceExhaustedError(
          `this stream's reader took nothing for ${Math.round(stallMs / 1000)} s while its output waited ` +
            "(past this server's max-stream-buffer-bytes), so the server ended it; " +
            "follow again with after_cursor set to the cursor of the last message you received",
        ),
      );
    }
  };
  const timer = setInterval(sweep, Math.max(50, Math.min(stallMs / 4, 5000)));
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * After every reconnect of `reader` (not its first connection), checks that
 * each followed stream still has the newest entry a subscriber saw in it,
 * and calls `lose` for the subscribers of streams that do not. Logs never
 * lose entries and the events stream only loses its oldest, so a missing
 * newest entry means Redis lost the stream's data. Retried while Redis
 * cannot answer.
 */
export function verifyOnReconnect(redis: Redis, reader: Redis, subs: Iterable<Subscriber>, lose: (sub: Subscriber) => void): void {
  let running = false;
  async function verify(): Promise<void> {
    if (running) return;
    running = true;
    try {
      const newest = new Map<string, string>();
      for (const sub of subs) {
        if (sub.closed || sub.failure || sub.anchor === undefined) continue;
        const seen = newest.get(sub.key);
        if (seen === undefined || compareCursors(sub.anchor, seen) > 0) newest.set(sub.key, sub.anchor);
      }
      const missing = await streamsMissing(redis, [...newest]);
      for (const sub of subs) if (missing.has(sub.key) && !sub.failure && !sub.closed) lose(sub);
    } catch {
      setTimeout(() => void verify(), 500).unref();
    } finally {
      running = false;
    }
  }
  let wasReady = reader.status === "ready";
  reader.on("ready", () => {
    if (wasReady) void verify();
    wasReady = true;
  });
}
