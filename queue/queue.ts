/**
 * The queue: the one object servers, workers, tools and benchmarks use to
 * talk to Redis. It owns no state of its own; every change goes through one
 * of the Lua scripts, so any number of processes can share a queue.
 */
import type { Redis } from "ioredis";
import type { EventType } from "../gen/stepq/v1/events_pb.js";
import { appendOutputs, type OutputAppend } from "./append-outputs.js";
import { claimSteps } from "./claim-steps.js";
import { createCoalescer } from "./coalescer.js";
import { completeStep } from "./complete-step.js";
import { extendLeases } from "./extend-leases.js";
import { failStep } from "./fail-step.js";
import { registerScripts } from "./function-library.js";
import { createKeys, type QueueKeys } from "./keys.js";
import type { AttemptError, Lease, OutputBatch } from "./leases.js";
import { type LimitOverrides, resolveLimits } from "./limits.js";
import { loadJobs, recordSizes, tenantOf } from "./load-jobs.js";
import { eventsTrimmedAfter, lastEventCursor, openLog, readEvents, readLog, workerEvent } from "./logs.js";
import { sweepOnce } from "./maintenance.js";
import { type FieldPaths, type JobInput, type PreparedJob, prepareJob } from "./prepare-job.js";
import { publishLimits } from "./publish-limits.js";
import { type QueueContext, queueScript } from "./queue-script.js";
import { releaseSteps } from "./release-steps.js";
import { reportProgress } from "./report-progress.js";
import { settleSteps } from "./settle-steps.js";
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

const SINGLE_STEP_PATHS: FieldPaths = { job: "", step: () => "" };

/** Field paths of SubmitJob requests. */
export function jobFieldPaths(prefix = ""): FieldPaths {
  return { job: prefix, step: (i) => `${prefix}steps[${i}].` };
}

/** Field paths of SubmitStep requests (the step's fields are top-level). */
export function stepFieldPaths(prefix = ""): FieldPaths {
  return prefix === "" ? SINGLE_STEP_PATHS : { job: prefix, step: () => prefix };
}

export type Queue = ReturnType<typeof createQueue>;

/** Creates the queue API over `options.redis` and registers its scripts. */
export function createQueue(options: QueueOptions) {
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

    /** Validates a job and builds its stored spec (throws InvalidArgumentError naming the field). */
    prepare(input: JobInput, paths: FieldPaths = jobFieldPaths()): PreparedJob {
      return prepareJob(input, limits, paths);
    },

    /** Stores prepared jobs, all or none. */
    submit(jobs: readonly PreparedJob[]): Promise<SubmitResult[]> {
      return submitter.all(jobs);
    },

    /**
     * Stores one prepared job. Submits made while others are on their way
     * share a call to Redis; each is stored or refused on its own.
     */
    submitPrepared(job: PreparedJob): Promise<SubmitResult> {
      return submitter.one(job);
    },

    /** Validates and stores one job. */
    submitJob(input: JobInput): Promise<SubmitResult> {
      return submitter.one(prepareJob(input, limits, jobFieldPaths()));
    },

    /** Validates and stores a one-step job (step name "main"). */
    submitStep(input: Omit<JobInput, "steps"> & { step: Omit<JobInput["steps"][number], "name"> }): Promise<SubmitResult> {
      const { step, ...job } = input;
      return submitter.one(prepareJob({ ...job, steps: [{ ...step, name: "main" }] }, limits, stepFieldPaths()));
    },

    /** The job, or undefined when it does not exist (any more). */
    async getJob(jobId: string): Promise<JobView | undefined> {
      const [job] = await loadJobs(ctx, [jobId]);
      return job;
    },
    /** The tenant number of a job (its header alone is read), or undefined when it does not exist. */
    tenantOf: (jobId: string) => tenantOf(ctx, jobId),
    /** Several jobs in one round trip. */
    getJobs: (jobIds: readonly string[]) => loadJobs(ctx, jobIds),
    /** The stored size of each job's record, bytes (0: no such job), in one round trip; for loading records in bounded groups. */
    recordSizes: (jobIds: readonly string[]) => recordSizes(ctx, jobIds),
    /** Makes this process's size caps the queue's (see publish-limits.ts); a warning when another server's differed. */
    publishLimits: () => publishLimits(ctx, limits),

    // What clients do to submitted work (see step-actions.ts).
    /** Cancels step `stepIndex` of a job, or the whole job when it is undefined. */
    cancel: (jobId: string, stepIndex: number | undefined, reason: string) => cancelSteps(ctx, jobId, stepIndex, reason),
    retryStep: (jobId: string, stepIndex: number) => retryStep(ctx, jobId, stepIndex),
    purgeStep: (jobId: string, stepIndex: number) => purgeStep(ctx, jobId, stepIndex),

    // Logs and events (see logs.ts).
    openLog: (jobId: string) => openLog(ctx, jobId),
    readLog: (jobId: string, afterCursor: string, count: number) => readLog(ctx, jobId, afterCursor, count),
    readEvents: (afterCursor: string, count: number) => readEvents(ctx, afterCursor, count),
    workerEvent: (type: EventType.WORKER_JOINED | EventType.WORKER_LEFT, workerId: string, routes: readonly string[]) =>
      workerEvent(ctx, eventsMaxLen, type, workerId, routes),
    lastEventCursor: () => lastEventCursor(ctx),
    eventsTrimmedAfter: (cursor: string) => eventsTrimmedAfter(ctx, cursor),

    // The worker's side (see leases.ts).
    claim: (opts: { workerId: string; routes: readonly string[]; leaseMs: number; max: number }) => claimSteps(ctx, opts),
    extendLeases: (leases: readonly Lease[], leaseMs: number) => extendLeases(ctx, leases, leaseMs),
    /** Writes buffered output of a running step (idempotent per batch); concurrent appends share a call. */
    appendOutput: (lease: Lease, batch: OutputBatch): Promise<void> =>
      batch.entries.length === 0 ? Promise.resolve() : appender({ lease, batch }),
    reportProgress: (lease: Lease, progress: number, message?: string) => reportProgress(ctx, lease, progress, message),
    complete: (lease: Lease, result: Uint8Array, trailing?: OutputBatch) => completeStep(ctx, lease, result, trailing),
    settle: (opts: Parameters<typeof settleSteps>[1]) => settleSteps(ctx, opts),
    fail: (lease: Lease, error: AttemptError, trailing?: OutputBatch) => failStep(ctx, lease, error, trailing),
    release: (workerId: string, leases: readonly Lease[], why?: "stopping" | "busy") => releaseSteps(ctx, workerId, leases, why),

    /** One maintenance pass (see maintenance.ts); every server and worker runs it periodically (see createSweeper). */
    sweep: (limit?: number) => sweepOnce(ctx, eventsMaxLen, limit),
  };
}


