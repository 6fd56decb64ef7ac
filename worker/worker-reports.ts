/**
 * How a worker reports what happens to it: to its listeners
 * (`worker.on(...)`) and its log.
 */
import type { Logger } from "../runtime/logger.js";
import type { StopSignal } from "./engines/engine.js";
import type { RunningStep } from "./running-step.js";
import { WorkerListeners } from "./worker-listeners.js";

export class WorkerReports {
  readonly listeners = new WorkerListeners();

  constructor(private readonly log: Logger) {}

  /** Something went wrong outside a step (Redis away...); the worker carries on. */
  error(error: Error): void {
    this.log.warn("error", { error: error.message });
    this.listeners.emit("worker:error", { error });
  }

  /** The worker let go of a step it no longer owns. */
  abandoned(r: RunningStep, reason: StopSignal["kind"]): void {
    this.log.info("step abandoned", { step: r.step.stepId, job: r.step.jobId, route: r.step.route, attempt: r.step.attempt, reason });
    this.listeners.emit("step:abandoned", { stepId: r.step.stepId, attempt: r.step.attempt, route: r.step.route, reason });
  }
}
