/**
 * Carries many small calls to Redis in few round trips: calls made while
 * earlier ones are on their way wait and go together in the next one, at
 * most `maxInFlight` round trips at a time. A call made when nothing is in
 * flight goes out at once (at the end of the event loop's turn, so calls
 * made in the same turn share it). Each call still gets its own outcome.
 *
 * This is what lets a server answering many SubmitStep calls, or a worker
 * streaming tokens of many steps, cost Redis one script run per batch
 * rather than per call.
 */

export interface CoalescerOptions<T, R> {
  /** Runs one batch; resolves with one outcome per item (an Error refuses that item alone). */
  send(items: T[]): Promise<(R | Error)[]>;
  /** Round trips at a time. Default 2: Redis works on one while this process prepares the next. */
  maxInFlight?: number;
  /** Most items in one round trip. Default 500. */
  maxBatch?: number;
  /**
   * Split what waits evenly between the free round trips (default), so all
   * stay busy; false fills one round trip before the next. Filling suits
   * latency-bound work whose batches arrive in bursts: the whole burst lands
   * in Redis at once instead of in a string of smaller calls.
   */
  spread?: boolean;
}

export type Coalescer<T, R> = (item: T) => Promise<R>;

export function createCoalescer<T, R>(o: CoalescerOptions<T, R>): Coalescer<T, R> {
  const maxInFlight = o.maxInFlight ?? 2;
  const maxBatch = o.maxBatch ?? 500;
  const waiting: { item: T; resolve: (r: R) => void; reject: (e: Error) => void }[] = [];
  let inFlight = 0;
  let scheduled = false;

  function schedule() {
    if (scheduled || inFlight >= maxInFlight || waiting.length === 0) return;
    scheduled = true;
    // After this turn of the event loop: every call made by the callbacks of
    // this turn (timers that fired together, requests read together) shares
    // the round trip.
    setImmediate(() => {
      scheduled = false;
      while (inFlight < maxInFlight && waiting.length > 0) {
        const n = o.spread === false ? maxBatch : Math.min(maxBatch, Math.ceil(waiting.length / (maxInFlight - inFlight)));
        void run(waiting.splice(0, n));
      }
    });
  }

  async function run(batch: typeof waiting): Promise<void> {
    inFlight++;
    try {
      const outcomes = await o.send(batch.map((w) => w.item));
      batch.forEach((w, i) => {
        const r = outcomes[i];
        if (r instanceof Error) w.reject(r);
        else w.resolve(r as R);
      });
    } catch (e) {
      for (const w of batch) w.reject(e as Error);
    } finally {
      inFlight--;
      schedule();
    }
  }

  return (item) =>
    new Promise<R>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      schedule();
    });
}
