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

/**
 * A worker's output or result went past the queue's size caps: the queue
 * failed the step itself (OUTPUT_TOO_LARGE), so the worker's lease has ended
 * (a LeaseLostError that says why).
 */
export class OutputTooLargeError extends LeaseLostError {}

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

/**
 * A client's value quoted in an error message, cut to 80 characters: the
 * message must say what was wrong without echoing a 170 KB field back (it
 * travels in a header for gRPC).
 */
export function quoted(value: string): string {
  return value.length <= 80 ? JSON.stringify(value) : `${JSON.stringify(value.slice(0, 80))}… (${value.length} characters)`;
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
 * Redis refused a write because it is full: used memory is over its
 * `maxmemory` and its policy (noeviction, as production needs) evicts
 * nothing. Nothing was changed; writes work again once memory is freed.
 */
export class RedisFullError extends ResourceExhaustedError {}

/** Whether `e` is Redis refusing a write for lack of memory ("OOM command not allowed ..."). */
export function isRedisOutOfMemory(e: unknown): boolean {
  return e instanceof RedisFullError || (e instanceof Error && /^OOM\b/.test(e.message));
}

/**
 * Whether a worker should retry a call that failed with `e`: Redis is
 * unreachable, or full (a write refused for memory may succeed once the
 * sweepers or an operator free some).
 */
export function isRedisTransient(e: unknown): boolean {
  return isRedisUnavailable(e) || isRedisOutOfMemory(e);
}

/**
 * Wraps Redis connectivity failures as UnavailableError and a full Redis as
 * RedisFullError (RESOURCE_EXHAUSTED); leaves everything else as it is.
 */
export function asQueueError(e: unknown): Error {
  const err = coerceError(e);
  if (err instanceof StepqError) return err;
  if (isRedisUnavailable(err)) {
    return new UnavailableError(`Redis is unreachable (${err.message}); retry shortly`, { cause: err });
  }
  if (isRedisOutOfMemory(err)) {
    return new RedisFullError(
      "Redis is out of memory (used memory is over its maxmemory and it evicts nothing), so nothing can be " +
        "written; retry later. Operators: free memory (shorter --retention, purge dead letters) or raise maxmemory",
      { cause: err },
    );
  }
  return err;
}

/** A job that does not exist (never did, or its retention passed). */
export function jobNotFound(jobId: string): NotFoundError {
  return new NotFoundError(`job ${jobId} not found (it never existed or its retention has passed)`);
}

/**
 * A step that does not exist, named as the step: its job does not exist
 * (`stepCount` undefined and `jobExists` false), or has `stepCount` steps.
 */
export function stepNotFound(jobId: string, index: number, stepCount: number | undefined, jobExists = stepCount !== undefined): NotFoundError {
  const step = `step ${jobId}.${index} not found`;
  if (!jobExists) return new NotFoundError(`${step}: its job ${jobId} does not exist (it never existed or its retention has passed)`);
  if (stepCount === undefined) return new NotFoundError(`${step}: job ${jobId} has no step with that index`);
  const which = stepCount === 1 ? "1 step (index 0)" : `${stepCount} steps (indexes 0 to ${stepCount - 1})`;
  return new NotFoundError(`${step}: job ${jobId} has ${which}`);
}

/** `subject` of a step script ("<jobId>.<index>") as its parts; undefined for a job id. */
function stepSubject(subject: string): { jobId: string; index: number } | undefined {
  const dot = subject.lastIndexOf(".");
  if (dot < 0) return undefined;
  const index = Number(subject.slice(dot + 1));
  return Number.isInteger(index) ? { jobId: subject.slice(0, dot), index } : undefined;
}

/** The typed error for a script's non-OK result code. */
export function scriptError(script: string, code: number, subject: string, detail = ""): Error {
  switch (code) {
    case ScriptCode.JOB_NOT_FOUND: {
      const step = stepSubject(subject);
      return step ? stepNotFound(step.jobId, step.index, undefined, false) : jobNotFound(subject);
    }
    case ScriptCode.STEP_NOT_FOUND: {
      const step = stepSubject(subject);
      return step ? stepNotFound(step.jobId, step.index, undefined, true) : new NotFoundError(`step ${subject} not found (its job has no step with that index)`);
    }
    case ScriptCode.LEASE_LOST:
      return new LeaseLostError(
        `${script}: the lease on step ${subject} is gone (expired, cancelled, or the step was re-claimed); abandon it`,
      );
    case ScriptCode.CANCELLED:
      return new StepCancelledError(`${script}: step ${subject} was cancelled; its lease has ended, stop working on it`);
    case ScriptCode.OUTPUT_TOO_LARGE:
      return new OutputTooLargeError(
        `${script}: step ${subject} produced more than the queue's size limits allow (max-output-bytes, max-job-bytes); ` +
          "the queue failed it with OUTPUT_TOO_LARGE, stop working on it",
      );
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
