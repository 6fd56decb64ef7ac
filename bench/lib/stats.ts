/**
 * The few statistics the benchmark reports: percentiles of latency samples,
 * and median with min–max over rounds (three rounds are too few for a mean
 * or a standard deviation to say anything).
 */

/** The median and range of one figure over the rounds. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  /** Every round's value, in round order. */
  runs: number[];
}

/** The `p`-th percentile (0–100) of `samples`, nearest-rank; NaN when empty. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

/** Median, min and max of the rounds' values. */
export function spread(runs: readonly number[]): Spread {
  if (runs.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, runs: [] };
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, min: sorted[0] as number, max: sorted[sorted.length - 1] as number, runs: [...runs] };
}

/** A wall-clock timestamp in ms with sub-ms resolution, comparable across processes of one machine. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Runs `task` for `total` items with at most `inFlight` at once; resolves when all are done. */
export async function runInFlight(total: number, inFlight: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < total) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, total) }, lane));
}

/** Operations per second for `count` operations that took `ms`. */
export function perSecond(count: number, ms: number): number {
  return ms > 0 ? (count * 1000) / ms : Number.NaN;
}
