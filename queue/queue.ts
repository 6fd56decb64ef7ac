/**
 * The queue: the one object servers, workers, tools and benchmarks use to
 * talk to Redis. It owns no state of its own; every change goes through one
 * of the Lua scripts, so any number of processes can share a queue.
 */
import type { Redis } from "ioredis";
import type { EventType } from "../gen/stepq/v1/events_pb.js";
import { appendOutputs, type OutputAppend } from "./append-outputs.js";
import { type ClaimOptions, type Claimed, claimSteps } from "./claim-steps.js";
import { createCoalescer } from "./coalescer.js";
import { completeStep } from "./complete-step.js";
import type { LeaseLostError } from "./errors.js";
import { extendLeases } from "./extend-leases.js";
import { failStep } from "./fail-step.js";
import { registerScripts } from "./function-library.js";
import { createKeys, type QueueKeys } from "./keys.js";
import type { AttemptError, Lease, OutputBatch } from "./leases.js";
import { type LimitOverrides, resolveLimits, type SubmitLimits } from "./limits.js";
import { loadJobs, recordSizes, tenantOf } from "./load-jobs.js";
import type { LogEntry, StreamEvent } from "./log-entry.js";
import { eventsTrimmedAfter, lastEventCursor, openLog, readEvents, readLog, webhookDisabledEvent, workerEvent } from "./logs.js";
import { type SweepCounts, sweepOnce } from "./maintenance.js";
import { type FieldPaths, type JobInput, jobFieldPaths, type PreparedJob, prepareJob } from "./prepare-job.js";
import { publishLimits } from "./publish-limits.js";
import { type QueueContext, queueScript } from "./queue-script.js";
import { releaseSteps } from "./release-steps.js";
import { reportProgress } from "./report-progress.js";
import { type SettleOptions, type Settled, settleSteps } from "./settle-steps.js";
import { cancelSteps, purgeStep, retryStep } from "./step-actions.js";
import { createSubmitter, type JobView, type SubmitResult } from "./submit.js";

export type { JobView, SubmitResult };

export interface QueueOptions {
  /** A command connection (see createRedis). */
  redis: Redis;
  /** Queue name; all its keys share the hash tag `{name}`. Default "default". */
  queue?: string;
  limits?: LimitOverrides;
  /** Approximate cap of the queue-wide events stream. Default 100,000. */
  eventsMaxLen?: number;
}

/**
 * What the queue offers. Submitting is two moves: `prepare` validates a job
 * in this process (a one-step job is shaped by oneStepJob first), then
 * `submit` stores one prepared job, or `submitAll` many, all or none. Each
 * operation is a file of queue/, named in its comment.
 */
export interface Queue {
  /** The queue's Redis keys (keys.ts). */
  readonly keys: QueueKeys;
  /** The size caps and step defaults this process applies (limits.ts). */
  readonly limits: SubmitLimits;
  /** The command connection the queue was created over. */
  readonly redis: Redis;

  // Jobs.
  /** Validates a job and builds its stored spec; throws InvalidArgumentError naming the field by `paths` (default: as SubmitJob) (prepare-job.ts). */
  prepare(input: JobInput, paths?: FieldPaths): PreparedJob;
  /** Stores one prepared job; submits made together share a call to Redis, each stored or refused on its own (submit.ts). */
  submit(job: PreparedJob): Promise<SubmitResult>;
  /** Stores prepared jobs, all or none (submit.ts). */
  submitAll(jobs: readonly PreparedJob[]): Promise<SubmitResult[]>;
  /** The job, or undefined when it does not exist or no longer does (load-jobs.ts). */
  getJob(jobId: string): Promise<JobView | undefined>;
  /** The tenant number of a job (only its header is read), or undefined when it does not exist (load-jobs.ts). */
  tenantOf(jobId: string): Promise<number | undefined>;
  /** Several jobs in one round trip (load-jobs.ts). */
  getJobs(jobIds: readonly string[]): Promise<(JobView | undefined)[]>;
  /** Each job's stored record size in bytes (0: no such job), in one round trip, to load records in bounded groups (load-jobs.ts). */
  recordSizes(jobIds: readonly string[]): Promise<number[]>;
  /** Makes this process's size caps the queue's; a warning when another server's differed (publish-limits.ts). */
  publishLimits(): Promise<string | undefined>;

  // What clients do to submitted work (step-actions.ts).
  /** Cancels step `stepIndex` of a job, or the whole job when it is undefined. */
  cancel(jobId: string, stepIndex: number | undefined, reason: string): Promise<void>;
  /** Queues a dead-lettered (FAILED) step again with fresh attempts, and what its failure cancelled. */
  retryStep(jobId: string, stepIndex: number): Promise<void>;
  /** Removes a FAILED step from the dead-letter list. */
  purgeStep(jobId: string, stepIndex: number): Promise<void>;

  // Logs and events (logs.ts).
  /** Creates the job's log if it does not exist yet (so a queued job can be followed). */
  openLog(jobId: string): Promise<void>;
  /** Up to `count` entries of the job's log after `afterCursor` ("" or "0-0": from the start); an unknown job reads as empty. */
  readLog(jobId: string, afterCursor: string, count: number): Promise<LogEntry[]>;
  /** The queue-wide events of up to `count` stream entries after `afterCursor` (an events cursor; "": from the start). */
  readEvents(afterCursor: string, count: number): Promise<StreamEvent[]>;
  /** Records on the events stream that a worker joined or left. */
  workerEvent(type: EventType.WORKER_JOINED | EventType.WORKER_LEFT, workerId: string, routes: readonly string[]): Promise<void>;
  /** Records that a webhook was disabled (an event its tenant's feeds see). */
  webhookDisabledEvent(tenant: number, webhookId: string, reason: string): Promise<void>;
  /** Id of the newest queue-wide event, or "0-0". */
  lastEventCursor(): Promise<string>;
  /** Whether events after `cursor` were trimmed away (the stream is capped), so a watcher resuming there would miss some. */
  eventsTrimmedAfter(cursor: string): Promise<boolean>;

  // The worker's side (leases.ts; each operation its own file).
  /** Claims up to `max` steps of `routes` for a worker (claim-steps.ts). */
  claim(opts: ClaimOptions): Promise<Claimed>;
  /** Renews leases by `leaseMs`: per lease, its new deadline or why it is gone (a LeaseLostError or StepCancelledError) (extend-leases.ts). */
  extendLeases(leases: readonly Lease[], leaseMs: number): Promise<(number | LeaseLostError)[]>;
  /** Writes buffered output of a running step (idempotent per batch); concurrent appends share a call (append-outputs.ts). */
  appendOutput(lease: Lease, batch: OutputBatch): Promise<void>;
  /** Records a running step's progress (0..1) and an optional one-line message (report-progress.ts). */
  reportProgress(lease: Lease, progress: number, message?: string): Promise<void>;
  /** Completes a step with its result, after writing `trailing` output; returns the job's state (complete-step.ts). */
  complete(lease: Lease, result: Uint8Array, trailing?: OutputBatch): Promise<number>;
  /** Completes a batch of finished steps and claims replacements, in one call (settle-steps.ts). */
  settle(opts: SettleOptions): Promise<Settled>;
  /** Fails an attempt; the queue retries it or dead-letters the step (fail-step.ts). */
  fail(lease: Lease, error: AttemptError, trailing?: OutputBatch): Promise<{ state: number; retryAt?: number }>;
  /** Hands steps back without using an attempt (the worker is stopping, or busy); returns how many (release-steps.ts). */
  release(workerId: string, leases: readonly Lease[], why?: "stopping" | "busy"): Promise<number>;

  // Maintenance.
  /** One maintenance pass; every server and worker runs it periodically, see createSweeper (maintenance.ts). */
  sweep(limit?: number): Promise<SweepCounts>;
}

/** Creates the queue API over `options.redis` and registers its scripts. */
export function createQueue(options: QueueOptions): Queue {
  const redis = options.redis;
  const keys: QueueKeys = createKeys(options.queue);
  const limits = resolveLimits(options.limits);
  const eventsMaxLen = options.eventsMaxLen ?? 100_000;
  registerScripts(redis);
  const ctx: QueueContext = { redis, keys };

  // Output is latency-bound: more calls in flight, so an append rarely
  // waits for one; and not spread, so a burst of tokens from many steps (a
  // batching engine's forward pass) lands in Redis in one call.
  const appender = createCoalescer<OutputAppend, undefined>({ send: (appends) => appendOutputs(ctx, appends), maxInFlight: 8, spread: false });

  const submitter = createSubmitter({
    limits,
    run: (args) => queueScript(ctx, "submitJobs", args),
    loadJobs: (ids) => loadJobs(ctx, ids),
  });

  return {
    keys,
    limits,
    redis,

    prepare: (input, paths = jobFieldPaths()) => prepareJob(input, limits, paths),
    submit: submitter.one,
    submitAll: (jobs) => submitter.all(jobs),
    async getJob(jobId) {
      const [job] = await loadJobs(ctx, [jobId]);
      return job;
    },
    tenantOf: (jobId) => tenantOf(ctx, jobId),
    getJobs: (jobIds) => loadJobs(ctx, jobIds),
    recordSizes: (jobIds) => recordSizes(ctx, jobIds),
    publishLimits: () => publishLimits(ctx, limits),

    cancel: (jobId, stepIndex, reason) => cancelSteps(ctx, jobId, stepIndex, reason),
    retryStep: (jobId, stepIndex) => retryStep(ctx, jobId, stepIndex),
    purgeStep: (jobId, stepIndex) => purgeStep(ctx, jobId, stepIndex),

    openLog: (jobId) => openLog(ctx, jobId),
    readLog: (jobId, afterCursor, count) => readLog(ctx, jobId, afterCursor, count),
    readEvents: (afterCursor, count) => readEvents(ctx, afterCursor, count),
    workerEvent: (type, workerId, routes) => workerEvent(ctx, eventsMaxLen, type, workerId, routes),
    webhookDisabledEvent: (tenant, webhookId, reason) => webhookDisabledEvent(ctx, eventsMaxLen, tenant, webhookId, reason),
    lastEventCursor: () => lastEventCursor(ctx),
    eventsTrimmedAfter: (cursor) => eventsTrimmedAfter(ctx, cursor),

    claim: (opts) => claimSteps(ctx, opts),
    extendLeases: (leases, leaseMs) => extendLeases(ctx, leases, leaseMs),
    appendOutput: (lease, batch) => (batch.entries.length === 0 ? Promise.resolve() : appender({ lease, batch })),
    reportProgress: (lease, progress, message) => reportProgress(ctx, lease, progress, message),
    complete: (lease, result, trailing) => completeStep(ctx, lease, result, trailing),
    settle: (opts) => settleSteps(ctx, opts),
    fail: (lease, error, trailing) => failStep(ctx, lease, error, trailing),
    release: (workerId, leases, why) => releaseSteps(ctx, workerId, leases, why),

    sweep: (limit) => sweepOnce(ctx, eventsMaxLen, limit),
  };
}
