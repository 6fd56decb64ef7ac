/**
 * Claiming ahead (prefetch): how many steps beyond its concurrency a worker
 * holds, so that short steps do not wait a Redis round trip each.
 *
 * A step that takes 20 µs to run would otherwise leave its slot idle for the
 * round trip that completes it and claims the next (~100 µs or more), however
 * fast the queue is. Holding a few more steps than it runs keeps the slots
 * busy. The amount adapts to how long steps take: a worker holds at most
 * `horizonMs` of expected work per slot beyond what it runs, so steps that
 * take seconds (inference) are never claimed ahead, while no-op and tiny
 * steps are, up to `max`. If the worker then stays busy (a step ran long),
 * the steps it claimed ahead are handed back (see worker.ts).
 */

export interface PrefetchOptions {
  concurrency: number;
  /** Expected work per slot to claim ahead, ms; 0 turns claiming ahead off. */
  horizonMs: number;
  /** Most steps to claim ahead. */
  max: number;
}

/** Weight of the newest step in the running average of step times. */
const ALPHA = 0.2;

export type Prefetch = ReturnType<typeof createPrefetch>;

export function createPrefetch(o: PrefetchOptions) {
  /** Running average of how long a step runs, ms; undefined until measured. */
  let avgMs: number | undefined;
  return {
    /** Records how long one step ran, ms. */
    record(ms: number): void {
      avgMs = avgMs === undefined ? ms : avgMs + ALPHA * (ms - avgMs);
    },
    /** Forgets the average (a step ran far longer than it predicted): claim nothing ahead until measured again. */
    reset(): void {
      avgMs = undefined;
    },
    /** How many steps to hold beyond the concurrency now. */
    get extra(): number {
      if (o.horizonMs <= 0 || avgMs === undefined) return 0;
      return Math.min(o.max, Math.floor((o.horizonMs * o.concurrency) / Math.max(avgMs, 0.001)));
    },
  };
}
