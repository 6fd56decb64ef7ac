/**
 * Errors that steer what the worker does with a failed attempt. Anything else
 * an engine throws counts as a retryable ENGINE_FAILED.
 */
import { StepErrorCode } from "../gen/stepq/v1/step_pb.js";

/** An attempt failed with a known code; `retryable` says if another attempt may help. */
export class StepFailure extends Error {
  override name = "StepFailure";
  constructor(
    readonly code: StepErrorCode,
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

/** The operation cannot run here (unknown model file, unsupported input); never retried. */
export class InvalidOperationError extends StepFailure {
  override name = "InvalidOperationError";
  constructor(message: string) {
    super(StepErrorCode.INVALID_OPERATION, message, false);
  }
}
