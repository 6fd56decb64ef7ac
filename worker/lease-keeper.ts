/**
 * Renews the leases of every step a worker holds, in one batched call every
 * third of the lease. A step whose lease is gone (cancelled, or expired and
 * taken back) is stopped; if Redis does not answer, steps whose lease
 * deadline passed are stopped too (the queue will requeue them), the others
 * keep running and are renewed on the next beat.
 */
import { coerceError } from "../queue/errors.js";
import type { Lease } from "../queue/leases.js";
import type { Queue } from "../queue/queue.js";
import { lostLeaseKind, type RunningStep } from "./running-step.js";

export interface LeaseKeeperOptions {
  queue: Queue;
  leaseMs: number;
  /** The steps held now. */
  steps(): RunningStep[];
  onError(err: Error): void;
  /** After each beat (the worker lets go of stopped steps that had not started). */
  after(): void;
}

export interface LeaseKeeper {
  /** One renewal now. */
  renew(): Promise<void>;
  stop(): void;
}

export function startLeaseKeeper(o: LeaseKeeperOptions): LeaseKeeper {
  async function renew(): Promise<void> {
    const all = o.steps();
    if (all.length === 0) return;
    try {
      const renewed = await o.queue.extendLeases(
        all.map((r) => r.step as Lease),
        o.leaseMs,
      );
      const now = Date.now();
      all.forEach((r, i) => {
        const outcome = renewed[i] as number | Error;
        if (typeof outcome === "number") r.deadline = now + o.leaseMs;
        else r.stop({ kind: lostLeaseKind(outcome) });
      });
    } catch (e) {
      o.onError(coerceError(e));
      const now = Date.now();
      for (const r of all) if (now >= r.deadline) r.stop({ kind: "lease-lost" });
    }
    o.after();
  }
  const beat = setInterval(() => void renew(), Math.max(100, Math.floor(o.leaseMs / 3)));
  beat.unref();
  return { renew, stop: () => clearInterval(beat) };
}
