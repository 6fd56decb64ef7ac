/**
 * Completes finished steps in batches and claims their replacements in the
 * same call (settleSteps): the worker's hot path.
 *
 * Up to three calls are in flight, each with at most a third of the
 * worker's slots, so Redis runs one batch while this process runs the steps
 * of another: the two processes overlap instead of waiting for each other,
 * and a third call absorbs the jitter between them (measured: two calls
 * left both processes ~30% idle on a 2-core machine, three ~10% faster).
 * Steps that finish meanwhile form the next batch.
 */
import { coerceError } from "../queue/errors.js";
import type { ClaimedStep } from "../queue/leases.js";
import type { Queue } from "../queue/queue.js";
import type { RunningStep } from "./running-step.js";

export interface SettlerOptions {
  queue(): Queue;
  workerId: string;
  /** The routes replacements are claimed from, and the worker's tenant filter (worker/claim-routes.ts). */
  claimFrom(): { routes: readonly string[]; tenantFilter: string };
  /** A settle reply's route count (ClaimRoutes.seen). */
  routeCount(n: number): void;
  leaseMs: number;
  /** Most steps in one call. */
  batchMax(): number;
  /**
   * How many replacements a settle call may claim now (and reserves them),
   * given how many completions are in settle calls, this one's included.
   */
  claimable(settling: number): number;
  /** Gives back `n` slots reserved by claimable(). */
  unreserve(n: number): void;
  /** Retries `fn` while Redis is unreachable, until `deadline`. */
  whileUnavailable<T>(fn: () => Promise<T>, deadline: number): Promise<T>;
  /** A step's completion took effect (err undefined) or not. */
  settled(r: RunningStep, err: Error | undefined): void;
  /** Steps claimed by a settle call. */
  claimed(steps: readonly ClaimedStep[]): void;
}

/** Settle calls in flight at most; each carries at most 1/SETTLE_CALLS of the worker's slots. */
export const SETTLE_CALLS = 3;

export type Settler = ReturnType<typeof createSettler>;

export function createSettler(o: SettlerOptions) {
  const waiting: RunningStep[] = [];
  let inFlight = 0;
  /** Completions in calls in flight. */
  let settling = 0;
  let scheduled = false;

  function schedule() {
    if (scheduled || inFlight >= SETTLE_CALLS || waiting.length === 0) return;
    scheduled = true;
    // After the current turn, so steps finishing in it join the batch.
    setImmediate(() => {
      scheduled = false;
      while (inFlight < SETTLE_CALLS && waiting.length > 0) void send();
    });
  }

  async function send(): Promise<void> {
    inFlight++;
    const batch = waiting.splice(0, o.batchMax());
    settling += batch.length;
    const claimMax = o.claimable(settling);
    let deadline = Infinity;
    for (const r of batch) deadline = Math.min(deadline, r.deadline);
    let res: Awaited<ReturnType<Queue["settle"]>> | undefined;
    let failure: Error | undefined;
    try {
      let max = claimMax;
      res = await o.whileUnavailable(() => {
        const call = o.queue().settle({
          workerId: o.workerId,
          ...o.claimFrom(),
          leaseMs: o.leaseMs,
          claimMax: max,
          completions: batch, // a RunningStep has its lease, result and trailing output
        });
        max = 0; // a retry after a lost reply only completes: claimed steps would be orphaned
        return call;
      }, deadline);
    } catch (e) {
      failure = coerceError(e);
    }
    inFlight--;
    settling -= batch.length;
    // The claimed steps take the reserved slots over at once (no await between).
    o.unreserve(claimMax);
    for (let i = 0; i < batch.length; i++) o.settled(batch[i] as RunningStep, res ? res.outcomes[i] : failure);
    if (res) {
      o.claimed(res.steps);
      o.routeCount(res.routeCount);
    }
    schedule();
  }

  return {
    /** Queues a succeeded step (its `result` and `trailing` set) for the next settle call. */
    add(r: RunningStep): void {
      waiting.push(r);
      schedule();
    },
    /** Steps waiting for a settle call or in one. */
    get busy(): boolean {
      return inFlight > 0 || waiting.length > 0;
    },
  };
}
