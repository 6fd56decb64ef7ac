/**
 * Limits and defaults that apply to submissions, with the values a laptop
 * and a small production deployment can both live with. Every field can be
 * overridden (server flags / environment, see server/config.ts).
 */

/** Defaults for one kind of operation. */
export interface OperationDefaults {
  /** Total attempts (first run included). */
  maxAttempts: number;
  /** Execution time limit of one attempt, ms (0: none). */
  timeoutMs: number;
  /** How long a ready step may wait for a worker, ms (0: forever). */
  queueTimeoutMs: number;
}

export interface SubmitLimits {
  /** Most steps in one job. */
  maxStepsPerJob: number;
  /**
   * Largest encoded operation of one step, bytes: at submit, and again once
   * references to dependency outputs are resolved (a larger step fails with
   * OPERATION_TOO_LARGE instead of running).
   */
  maxOperationBytes: number;
  /**
   * Most output one attempt of a step may write to its job's log (token and
   * narration text), and the largest result it may store, bytes. Enforced by
   * the scripts: past it the step fails with OUTPUT_TOO_LARGE.
   */
  maxOutputBytes: number;
  /**
   * Largest stored job record (specs, results, errors, history), bytes: a
   * result that would take the record past it is refused like an output
   * past max_output_bytes. Bounds what GetJob and a listing page load.
   */
  maxJobBytes: number;
  /** Highest max_tokens an infer operation may ask for. */
  maxTokensLimit: number;
  /** max_tokens when a request leaves it 0. */
  defaultMaxTokens: number;
  /** Most queued (ready or scheduled) steps per route; 0: no limit. */
  maxQueuedPerRoute: number;
  /** Most jobs one tenant may submit per second (Redis's clock), across every server; 0: no limit. */
  maxSubmitsPerSecond: number;
  /** Most steps one tenant may have waiting to run (submitted, not running, not final); submits beyond are refused. 0: no limit. */
  maxQueuedPerTenant: number;
  /**
   * Most steps one tenant may have running (leased) at once, the queue's value (servers
   * publish it to Redis; workers' claims enforce it): its other steps wait. 0: no limit.
   */
  maxRunningPerTenant: number;
  /** How long finished jobs, their outputs and their logs are kept, ms. */
  retentionMs: number;
  /** How long an idempotency key is remembered, ms. */
  idempotencyTtlMs: number;
  /** Retry backoff defaults, ms. */
  backoffInitialMs: number;
  backoffMaxMs: number;
  operations: { infer: OperationDefaults; embed: OperationDefaults; echo: OperationDefaults };
}

export const DEFAULT_LIMITS: SubmitLimits = {
  maxStepsPerJob: 100,
  maxOperationBytes: 1024 * 1024,
  maxOutputBytes: 4 * 1024 * 1024,
  maxJobBytes: 16 * 1024 * 1024,
  maxTokensLimit: 32768,
  defaultMaxTokens: 256,
  maxQueuedPerRoute: 0,
  maxSubmitsPerSecond: 0,
  maxQueuedPerTenant: 0,
  maxRunningPerTenant: 0,
  retentionMs: 24 * 3600 * 1000,
  idempotencyTtlMs: 24 * 3600 * 1000,
  backoffInitialMs: 1000,
  backoffMaxMs: 60_000,
  operations: {
    infer: { maxAttempts: 3, timeoutMs: 10 * 60_000, queueTimeoutMs: 0 },
    embed: { maxAttempts: 3, timeoutMs: 60_000, queueTimeoutMs: 0 },
    echo: { maxAttempts: 3, timeoutMs: 0, queueTimeoutMs: 0 },
  },
};

/** `DEFAULT_LIMITS` with `overrides` applied (operation defaults merged per kind). */
export type LimitOverrides = Partial<Omit<SubmitLimits, "operations">> & {
  operations?: { [K in keyof SubmitLimits["operations"]]?: Partial<OperationDefaults> };
};

export function resolveLimits(overrides: LimitOverrides = {}): SubmitLimits {
  const ops = overrides.operations;
  return {
    ...DEFAULT_LIMITS,
    ...overrides,
    operations: {
      infer: { ...DEFAULT_LIMITS.operations.infer, ...ops?.infer },
      embed: { ...DEFAULT_LIMITS.operations.embed, ...ops?.embed },
      echo: { ...DEFAULT_LIMITS.operations.echo, ...ops?.echo },
    },
  };
}
