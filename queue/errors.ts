/**
 * Typed errors of the queue domain. The server maps each class to one
 * Connect code (server/errors.ts); workers steer on them (a LeaseLostError
 * means "abandon this step"). Messages say what happened and what to do.
 */
import { ScriptCode } from "./script-codes.js";

/** Base class: every error the queue raises on purpose. */
export abstract class StepqError extends Error {
  abstract readonly kind:
    | "not_found"
    | "invalid_argument"
    | "failed_precondition"
    | "already_exists"
    | "resource_exhausted"
    | "aborted"
    | "unavailable"
    | "out_of_range"
    | "data_loss";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The job or step does not exist (never did, or its retention passed). */
export class NotFoundError extends StepqError {
  readonly kind = "not_found";
}

/** The caller sent something invalid; `field` names it (proto path). */
export class InvalidArgumentError extends StepqError {
  readonly kind = "invalid_argument";
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** The request is valid but the target's state forbids it now. */
export class FailedPreconditionError extends StepqError {
  readonly kind = "failed_precondition";
}

/** An idempotency key was reused with a different request. */
export class AlreadyExistsError extends StepqError {
  readonly kind = "already_exists";
}

/** A limit was reached: payload size, queued steps per route, streams. */
export class ResourceExhaustedError extends StepqError {
  readonly kind = "resource_exhausted";
}

/** A worker's lease is gone; the worker must abandon the step. */
export class LeaseLostError extends StepqError {
  readonly kind = "aborted";
}

/** A lease ended because its step was cancelled (a LeaseLostError that says why). */
export class StepCancelledError extends LeaseLostError {}

/** Redis cannot be reached; the call may be retried. */
export class UnavailableError extends StepqError {
  readonly kind = "unavailable";
}

/** A cursor points outside what its stream holds: before what is still retained, or past its end. */
export class OutOfRangeError extends StepqError {
  readonly kind = "out_of_range";
}

/** Data a stream was reading vanished under it: Redis restarted without its data. Not worth retrying as such. */
export class DataLossError extends StepqError {
  readonly kind = "data_loss";
}

/** Turns anything thrown into an Error, keeping Errors as they are. */
export function coerceError(e: unknown): Error {
  if (e instanceof Error) return e;
  return new Error(typeof e === "string" ? e : JSON.stringify(e));
}

const UNAVAILABLE_PATTERNS = [
  /Connection is closed/i,
  /Stream isn't writeable/i,
  /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND/,
  /max retries per request/i,
  /^LOADING\b/,
  /^MASTERDOWN\b/,
  /^TRYAGAIN\b/,
  /Command timed out/i,
  /^CLUSTERDOWN\b/,
];

/** Whether `e` means "Redis is unreachable right now" (retryable). */
export function isRedisUnavailable(e: unknown): boolean {
  if (e instanceof UnavailableError) return true;
  if (!(e instanceof Error)) return false;
  if (e.name === "MaxRetriesPerRequestError") return true;
  return UNAVAILABLE_PATTERNS.some((p) => p.test(e.message));
}

/**
 * Wraps Redis connectivity failures as UnavailableError; leaves everything
 * else as it is.
 */
export function asQueueError(e: unknown): Error {
  const err = coerceError(e);
  if (err instanceof StepqError) return err;
  if (isRedisUnavailable(err)) {
    return new UnavailableError(`Redis is unreachable (${err.message}); retry shortly`, { cause: err });
  }
  return err;
}

/** The typed error for a script's non-OK result code. */
export function scriptError(script: string, code: number, subject: string, detail = ""): Error {
  switch (code) {
    case ScriptCode.JOB_NOT_FOUND:
      return new NotFoundError(`job ${subject} not found (it never existed or its retention has passed)`);
    case ScriptCode.STEP_NOT_FOUND:
      return new NotFoundError(`step ${subject} not found (its job has no step with that index)`);
    case ScriptCode.LEASE_LOST:
      return new LeaseLostError(
        `${script}: the lease on step ${subject} is gone (expired, cancelled, or the step was re-claimed); abandon it`,
      );
    case ScriptCode.CANCELLED:
      return new StepCancelledError(`${script}: step ${subject} was cancelled; its lease has ended, stop working on it`);
    case ScriptCode.WRONG_STATE:
      return new FailedPreconditionError(`${subject} ${detail}`.trim());
    case ScriptCode.IDEMPOTENCY_CONFLICT:
      return new AlreadyExistsError(
        `${subject}: this idempotency key was already used with a different request; use a new key or resend the original request`,
      );
    case ScriptCode.QUEUE_FULL:
      return new ResourceExhaustedError(`${subject} ${detail}`.trim());
    default:
      return new Error(`${script}: unexpected result code ${code} for ${subject}`);
  }
}
