/**
 * Status names of the job-queue system stepq replaces, mapped both ways
 * (the table is in docs/migration.md):
 *
 *   stepq state            old status when read      old status in ?status=
 *   WAITING                pending                   pending -> WAITING
 *   QUEUED                 queued                    queued -> QUEUED
 *   SCHEDULED              queued (backoff, not_before)
 *   RUNNING                in_progress               assigned, accepted, in_progress -> RUNNING
 *   SUCCEEDED              completed                 completed -> SUCCEEDED
 *   FAILED (timed out)     timeout                   timeout -> FAILED, timed out
 *   FAILED (otherwise)     failed                    failed -> FAILED, not timed out
 *   CANCELLED              cancelled                 cancelled -> CANCELLED
 *
 * `unworkable` has no stepq state (a step no worker can serve stays queued)
 * and is refused as a filter, saying so.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { type Step, StepErrorCode, StepState } from "../../../gen/stepq/v1/step_pb.js";

const TIMED_OUT = new Set<StepErrorCode>([StepErrorCode.TIMEOUT, StepErrorCode.QUEUE_TIMEOUT]);

/** The old status of a step. */
export function oldStatusOf(step: Step): string {
  switch (step.state) {
    case StepState.WAITING:
      return "pending";
    case StepState.QUEUED:
    case StepState.SCHEDULED:
      return "queued";
    case StepState.RUNNING:
      return "in_progress";
    case StepState.SUCCEEDED:
      return "completed";
    case StepState.FAILED:
      return step.error && TIMED_OUT.has(step.error.code) ? "timeout" : "failed";
    case StepState.CANCELLED:
      return "cancelled";
    default:
      return "unknown";
  }
}

const FILTERS: Record<string, StepState> = {
  pending: StepState.WAITING,
  queued: StepState.QUEUED,
  assigned: StepState.RUNNING,
  accepted: StepState.RUNNING,
  in_progress: StepState.RUNNING,
  completed: StepState.SUCCEEDED,
  failed: StepState.FAILED,
  timeout: StepState.FAILED,
  cancelled: StepState.CANCELLED,
};

/** The stepq state to list for old status `status`, and the check the listed steps must pass. */
export function stateForOldStatus(status: string): { state: StepState; keep(step: Step): boolean } {
  if (status === "unworkable") {
    throw new ConnectError('status: "unworkable" has no stepq state: a step no worker can serve stays queued; filter by queued', Code.InvalidArgument);
  }
  const state = FILTERS[status];
  if (state === undefined) throw new ConnectError(`status: ${JSON.stringify(status)} is not a status; use one of ${Object.keys(FILTERS).join(", ")}`, Code.InvalidArgument);
  return { state, keep: state === StepState.FAILED ? (s) => oldStatusOf(s) === status : () => true };
}
