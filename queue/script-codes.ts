/**
 * Result codes of the Lua scripts. Every script returns `{code, ...}` with
 * one of these as its first element; the Lua side gets them as `CODE.*`
 * from the generated prelude, so both sides share these numbers.
 */
export enum ScriptCode {
  OK = 0,
  JOB_NOT_FOUND = 1,
  STEP_NOT_FOUND = 2,
  /** The caller's lease is gone: expired, recovered, cancelled or superseded. */
  LEASE_LOST = 3,
  /** The step or job is already in a final state that forbids the change. */
  WRONG_STATE = 4,
  /** An idempotency key was reused with a different request. */
  IDEMPOTENCY_CONFLICT = 5,
  /** A route holds as many queued steps as allowed. */
  QUEUE_FULL = 6,
  /**
   * The caller's lease is gone because the step was cancelled during the
   * caller's attempt (a LEASE_LOST that tells the worker why).
   */
  CANCELLED = 7,
  /**
   * The worker's output or result went past a size cap (max-output-bytes,
   * max-job-bytes): nothing past the cap was stored and the queue failed the
   * step (STEP_ERROR_CODE_OUTPUT_TOO_LARGE); the caller's lease has ended.
   */
  OUTPUT_TOO_LARGE = 8,
  /** A tenant has submitted as many jobs this second as its quota allows. */
  RATE_LIMITED = 9,
  /** A tenant has as many steps waiting to run as its quota allows. */
  TENANT_FULL = 10,
}
