/**
 * One step's run, from its engine to its outcome: the engine runs under the
 * step's timeout; then the step completes (through the next settle call),
 * fails (retried or dead-lettered by the queue), or is let go (cancelled,
 * lease lost, too large, or handed back by a stopping worker).
 */
import { StepErrorCode } from "../gen/stepq/v1/step_pb.js";
import { coerceError, LeaseLostError } from "../queue/errors.js";
import type { Queue } from "../queue/queue.js";
import type { Engine, EngineResult } from "./engines/engine.js";
import { lostLeaseKind, type RunningStep } from "./running-step.js";
import { StepFailure } from "./step-failure.js";
import { attemptErrorOf, resultOf } from "./step-outcome.js";
import { whileUnavailable } from "./while-unavailable.js";
import { StepTrace } from "./step-trace.js";
import { tracingOn } from "../runtime/tracing.js";
import type { WorkerReports } from "./worker-reports.js";

export interface StepRunHost {
  workerId: string;
  queue(): Queue;
  engineFor(route: string): Engine | undefined;
  reports: WorkerReports;
  /** The engine is done: its slot is free for the next step (`ms`: how long it ran). */
  slotFreed(ms: number): void;
  /** Hands a successful step to the next settle call. */
  settle(r: RunningStep): void;
  /** The step is no longer this worker's. */
  release(r: RunningStep): void;
}

/** Runs `r` on its engine and completes, fails or lets go of it. */
export async function runStep(r: RunningStep, host: StepRunHost): Promise<void> {
  const { step } = r;
  const engine = host.engineFor(step.route);
  if (tracingOn()) r.trace = StepTrace.start(step, host.workerId, r.claimedAtRedis);
  r.startedAt = Date.now();
  const t0 = performance.now();
  const timeout = step.timeoutMs > 0 ? setTimeout(() => r.stop({ kind: "timeout", timeoutMs: step.timeoutMs }), step.timeoutMs) : undefined;
  let result: EngineResult | undefined;
  let failure: Error | undefined;
  try {
    if (!engine) throw new StepFailure(StepErrorCode.INVALID_OPERATION, `worker ${host.workerId} has no engine for route ${step.route}`, false);
    if (step.tooLarge) throw new StepFailure(StepErrorCode.OPERATION_TOO_LARGE, step.tooLarge, false);
    r.trace?.engineStarted(engine.name);
    result = await engine.run(step, r);
  } catch (e) {
    failure = coerceError(e);
  } finally {
    if (timeout) clearTimeout(timeout);
    r.trace?.engineEnded(failure);
  }
  // The slot is free for the next step; this one keeps its lease until it is completed.
  host.slotFreed(performance.now() - t0);
  r.trailing = await r.finishOutput();
  const stop = r.stopped;

  // ─── THIS SECTION MUST COMPLETE, FAIL OR LET GO OF THE STEP ───────────
  // Cancelled / lease lost / too large (the queue failed the step for
  // output past its caps): the queue has already moved on; writing now
  // would be refused by the fencing token, so there is nothing to do.
  // Shutdown: stop() hands the lease back in one batch.
  if (stop?.kind === "cancelled" || stop?.kind === "lease-lost" || stop?.kind === "too-large" || stop?.kind === "shutdown") {
    if (stop.kind !== "shutdown") host.reports.abandoned(r, stop.kind);
    r.trace?.ended(stop.kind === "shutdown" ? "released" : `abandoned: ${stop.kind}`);
    host.release(r);
    return;
  }
  if (stop?.kind !== "timeout" && !failure && result) {
    // Completed by the next settle call, which also claims a replacement.
    r.result = resultOf(r, result);
    r.yielded = { tokens: result.completionTokens ?? r.tokenCount, firstTokenMs: result.timeToFirstTokenMs };
    host.settle(r);
    return;
  }
  const error = attemptErrorOf(stop, failure);
  try {
    const res = await whileUnavailable(() => host.queue().fail(step, error, r.trailing), r.deadline);
    const heldMs = r.heldMs();
    host.reports.listeners.emit("step:failed", {
      stepId: step.stepId,
      attempt: step.attempt,
      route: step.route,
      message: error.message,
      retryAt: res.retryAt,
      heldMs,
      submitToDoneMs: res.retryAt === undefined ? r.claimedAfterSubmitMs + heldMs : undefined,
    });
    r.trace?.ended(res.retryAt ? "retrying" : "failed", error);
  } catch (e) {
    if (e instanceof LeaseLostError) host.reports.abandoned(r, lostLeaseKind(e));
    else host.reports.error(coerceError(e)); // Redis stayed away past the lease: recovery will requeue the step
    r.trace?.ended(e instanceof LeaseLostError ? `abandoned: ${lostLeaseKind(e)}` : "unreported", error);
  }
  host.release(r);
}
