/**
 * What follows a settle call for each step it carried: the step is let go,
 * and the worker reports it completed, abandoned (its lease was lost or it
 * was cancelled while finishing) or, when Redis stayed away past the lease,
 * an error (recovery requeues the step).
 */
import { LeaseLostError } from "../queue/errors.js";
import { lostLeaseKind, type RunningStep } from "./running-step.js";
import type { WorkerReports } from "./worker-reports.js";

/** Reports step `r` settled, completed (`err` undefined) or not, after `release` let go of it. */
export function settled(r: RunningStep, err: Error | undefined, release: (r: RunningStep) => void, reports: WorkerReports): void {
  release(r);
  r.trace?.ended(err ? (err instanceof LeaseLostError ? `abandoned: ${lostLeaseKind(err)}` : "unreported") : "succeeded", err);
  if (!err) {
    if (reports.listeners.has("step:completed")) {
      const heldMs = r.heldMs();
      reports.listeners.emit("step:completed", {
        stepId: r.step.stepId,
        attempt: r.step.attempt,
        route: r.step.route,
        durationMs: Date.now() - r.startedAt,
        heldMs,
        submitToDoneMs: r.claimedAfterSubmitMs + heldMs,
        tokens: r.yielded?.tokens ?? 0,
        firstTokenMs: r.yielded?.firstTokenMs,
        submitToFirstTokenMs: r.yielded?.firstTokenMs === undefined ? undefined : r.claimedAfterSubmitMs + (r.startedAt - r.claimedAt) + r.yielded.firstTokenMs,
      });
    }
  } else if (err instanceof LeaseLostError) {
    // Expired or cancelled while finishing (or a lost reply to our own
    // completion): the queue's state is authoritative either way.
    reports.abandoned(r, lostLeaseKind(err));
  } else {
    // Redis stayed away past the lease: recovery will requeue the step.
    reports.error(err);
  }
}
