/**
 * The queue: the one object servers, workers, tools and benchmarks use to
 * talk to Redis. It owns no state of its own; every change goes through one
 * of the Lua scripts, so any number of processes can share a queue.
 */
import type { Redis } from "ioredis";
import type { EventType } from "../gen/stepq/v1/events_pb.js";
import { JobState } from "../gen/stepq/v1/job_pb.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { asQueueError, FailedPreconditionError, NotFoundError, scriptError } from "./errors.js";
import { createCoalescer } from "./coalescer.js";
import { createKeys, type QueueKeys } from "./keys.js";
import { appendOutputs, type OutputAppend } from "./append-outputs.js";
import { claimSteps } from "./claim-steps.js";
import { completeStep } from "./complete-step.js";
import { extendLeases } from "./extend-leases.js";
import { failStep } from "./fail-step.js";
import type { AttemptError, Lease, LeaseContext, OutputBatch } from "./leases.js";
import { releaseSteps } from "./release-steps.js";
import { reportProgress } from "./report-progress.js";
import { settleSteps } from "./settle-steps.js";
import { type LimitOverrides, resolveLimits } from "./limits.js";
import { compareCursors, eventsAfter, type LogEntry, parseEventCursor, parseLogEntry, type StreamEvent } from "./log-entry.js";
import { type FieldPaths, type JobInput, type PreparedJob, prepareJob } from "./prepare-job.js";
import { decodeJobRecord } from "./job-record.js";
import { ScriptCode } from "./script-codes.js";
import { registerScripts, runScript, type ScriptName } from "./function-library.js";
import { createSubmitter, type JobView, type SubmitResult, view } from "./submit.js";

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
  const ctx: LeaseContext = { redis, keys };

  async function script(name: ScriptName, keyList: string[], args: (string | Buffer | number)[]): Promise<[number, ...unknown[]]> {
    try {
      return (await runScript(redis, name, keyList, [keys.prefix, ...args])) as [number, ...unknown[]];
    } catch (e) {
      throw asQueueError(e);
    }
  }

  async function redisCall<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw asQueueError(e);
    }
  }

  async function loadJobs(jobIds: readonly string[]): Promise<(JobView | undefined)[]> {
    if (jobIds.length === 0) return [];
    const raws = await redisCall(() => Promise.all(jobIds.map((id) => redis.getBuffer(keys.job(id)))));
    return raws.map((raw, i) => (raw ? view(decodeJobRecord(jobIds[i] as string, raw)) : undefined));
  }

  /**
   * Caps the events stream at about `eventsMaxLen` events. Batch entries hold
   * many events each, so the cap in entries is the cap in events over the
   * average number of events per entry (XINFO's entries-added, and the
   * extra events the scripts count in eventsExtra).
   */
  async function trimEvents(): Promise<number> {
    const [info, extra] = await Promise.all([
      (redis.xinfo("STREAM", keys.events) as Promise<unknown[]>).catch((e: unknown) => {
        if (e instanceof Error && /no such key/i.test(e.message)) return undefined;
        throw e;
      }),
      redis.get(keys.eventsExtra),
    ]);
    if (!info) return 0;
    const added = Number(info[info.indexOf("entries-added") + 1]) || 1;
    const perEntry = (added + Number(extra ?? 0)) / added;
    return redis.xtrim(keys.events, "MAXLEN", "~", Math.max(1, Math.ceil(eventsMaxLen / perEntry)));
  }

  // Output is latency-bound: more calls in flight, so an append rarely
  // waits for one; and not spread, so a burst of tokens from many steps (a
  // batching engine's forward pass) lands in Redis in one call.
  const appender = createCoalescer<OutputAppend, undefined>({ send: (appends) => appendOutputs(ctx, appends), maxInFlight: 8, spread: false });

  const submitter = createSubmitter({
    limits,
    run: (args) => script("submitJobs", [keys.seq, keys.jobIndex, keys.events], args),
    loadJobs,
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
      const [view] = await loadJobs([jobId]);
      return view;
    },

    /** Several jobs in one round trip. */
    getJobs: loadJobs,

    /** The stored size of each job's record, bytes (0: no such job), in one round trip; for loading records in bounded groups. */
    async recordSizes(jobIds: readonly string[]): Promise<number[]> {
      if (jobIds.length === 0) return [];
      const pipeline = redis.pipeline();
      for (const id of jobIds) pipeline.strlen(keys.job(id));
      const replies = await redisCall(() => pipeline.exec());
      return (replies ?? []).map(([err, n]) => {
        if (err) throw asQueueError(err);
        return Number(n);
      });
    },

    /**
     * Makes this process's size caps (max-output-bytes, max-job-bytes,
     * max-operation-bytes) the queue's: the scripts and every worker enforce
     * what the K.limits hash says. Servers call it when they start; the last
     * one started wins. Returns a warning when it changed caps that another
     * server had set, so mismatched flags are noticed.
     */
    async publishLimits(): Promise<string | undefined> {
      const want: Record<string, string> = {
        output: String(limits.maxOutputBytes),
        job: String(limits.maxJobBytes),
        operation: String(limits.maxOperationBytes),
      };
      const before = await redisCall(() => redis.hgetall(keys.limits));
      await redisCall(() => redis.hset(keys.limits, want));
      const changed = Object.keys(want).filter((k) => before[k] !== undefined && before[k] !== want[k]);
      if (changed.length === 0) return undefined;
      return (
        `this server changed the queue's size limits set by another server (${changed.map((k) => `${k}: ${before[k]} -> ${want[k]}`).join(", ")}); ` +
        "give every server the same --max-output-bytes, --max-job-bytes and --max-operation-bytes"
      );
    },

    /**
     * Cancels step `stepIndex` of a job, or the whole job when it is
     * undefined. Returns the job's state after the cancel.
     */
    async cancel(jobId: string, stepIndex: number | undefined, reason: string): Promise<void> {
      const reply = await script("cancelSteps", [keys.job(jobId), keys.leases, keys.events], [
        jobId,
        stepIndex === undefined ? "" : stepIndex,
        reason || "cancelled by a client",
      ]);
      const code = reply[0];
      const subject = stepIndex === undefined ? `job ${jobId}` : `step ${jobId}.${stepIndex}`;
      if (code === ScriptCode.WRONG_STATE) {
        const state = Number(reply[1]);
        const succeeded = stepIndex === undefined ? state === JobState.SUCCEEDED : state === StepState.SUCCEEDED;
        const what = succeeded ? "succeeded" : "failed";
        throw new FailedPreconditionError(`${subject} already ${what}; only unfinished work can be cancelled`);
      }
      if (code === ScriptCode.JOB_NOT_FOUND || code === ScriptCode.STEP_NOT_FOUND) {
        throw new NotFoundError(`${subject} not found (it never existed or its retention has passed)`);
      }
      if (code !== ScriptCode.OK) throw scriptError("cancelSteps", code, subject);
    },

    /** Queues a dead-lettered step again with fresh attempts (and what its failure cancelled). */
    async retryStep(jobId: string, stepIndex: number): Promise<void> {
      const reply = await script("retryStep", [keys.job(jobId), keys.dead, keys.done, keys.events], [jobId, stepIndex]);
      if (reply[0] === ScriptCode.WRONG_STATE) {
        const state = StepState[Number(reply[1])]?.toLowerCase() ?? String(reply[1]);
        throw new FailedPreconditionError(`step ${jobId}.${stepIndex} is ${state}; only FAILED (dead-lettered) steps can be retried`);
      }
      if (reply[0] !== ScriptCode.OK) throw scriptError("retryStep", reply[0], `${jobId}.${stepIndex}`);
    },

    /** Removes a FAILED step from the dead-letter list. */
    async purgeStep(jobId: string, stepIndex: number): Promise<void> {
      const reply = await script("purgeStep", [keys.job(jobId), keys.dead], [jobId, stepIndex]);
      if (reply[0] === ScriptCode.WRONG_STATE) {
        throw new FailedPreconditionError(`step ${jobId}.${stepIndex} is not in the dead-letter list (only FAILED steps are, until retried or purged)`);
      }
      if (reply[0] !== ScriptCode.OK) throw scriptError("purgeStep", reply[0], `${jobId}.${stepIndex}`);
    },

    /** Creates the job's log if it does not exist yet (so a queued job can be followed). */
    async openLog(jobId: string): Promise<void> {
      const reply = await script("openLog", [keys.job(jobId)], [jobId]);
      if (reply[0] !== ScriptCode.OK) throw scriptError("openLog", reply[0], jobId);
    },

    /**
     * Up to `count` entries of the job's log after `afterCursor` ("" or "0-0":
     * from the start). A job that has no log yet gets one (from the history
     * kept in its record); an unknown job reads as empty.
     */
    async readLog(jobId: string, afterCursor: string, count: number): Promise<LogEntry[]> {
      if ((await redisCall(() => redis.exists(keys.log(jobId)))) === 0) {
        const reply = await script("openLog", [keys.job(jobId)], [jobId]);
        if (reply[0] !== ScriptCode.OK) return [];
      }
      const start = afterCursor && afterCursor !== "0-0" ? `(${afterCursor}` : "-";
      const rows = await redisCall(() => redis.xrange(keys.log(jobId), start, "+", "COUNT", count));
      return rows.map(([id, fields]) => parseLogEntry(id, fields));
    },

    /** The queue-wide events of up to `count` entries after `afterCursor` (an events-stream cursor). */
    async readEvents(afterCursor: string, count: number): Promise<StreamEvent[]> {
      const after = parseEventCursor(afterCursor);
      const start = !afterCursor ? "-" : after.index === undefined ? `(${after.id}` : after.id;
      const rows = await redisCall(() => redis.xrange(keys.events, start, "+", "COUNT", count));
      return rows.flatMap(([entry, fields]) => eventsAfter(entry, fields, after));
    },

    /** Records that a worker joined or left (one XADD: no record changes). */
    async workerEvent(type: EventType.WORKER_JOINED | EventType.WORKER_LEFT, workerId: string, routes: readonly string[]): Promise<void> {
      await redisCall(() =>
        redis.xadd(keys.events, "MAXLEN", "~", String(eventsMaxLen), "*", "t", String(type), "w", workerId, "m", routes.join(",")),
      );
    },

    /** Id of the newest queue-wide event, or "0-0". */
    async lastEventCursor(): Promise<string> {
      const rows = await redisCall(() => redis.xrevrange(keys.events, "+", "-", "COUNT", 1));
      return rows[0]?.[0] ?? "0-0";
    },

    /**
     * Whether events after `cursor` were trimmed away (the events stream is
     * capped), so a watcher resuming there would miss some.
     */
    async eventsTrimmedAfter(cursor: string): Promise<boolean> {
      const info = (await redisCall(() => redis.xinfo("STREAM", keys.events)).catch((e: unknown) => {
        if (e instanceof Error && /no such key/i.test(e.message)) return [];
        throw e;
      })) as unknown[];
      const i = info.indexOf("max-deleted-entry-id");
      const maxDeleted = i >= 0 ? String(info[i + 1]) : "0-0";
      return compareCursors(cursor, maxDeleted) < 0;
    },

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

    /**
     * One maintenance pass: recover expired leases, fail steps past their
     * queue timeout, promote due scheduled steps, delete expired jobs, cap
     * the events stream. Every
     * server and worker runs it periodically (see createSweeper).
     */
    async sweep(limit = 200): Promise<{ recovered: number; expired: number; promoted: number; purged: number }> {
      const [recovered, expired, promoted, purged] = await Promise.all([
        script("recoverLeases", [keys.leases, keys.events], [limit]),
        script("expireQueued", [keys.queueDeadlines, keys.events], [limit]),
        script("promoteScheduled", [keys.routes, keys.events], [limit]),
        script("purgeExpired", [keys.retentions, keys.jobIndex, keys.dead, keys.done], [limit]),
        // The events stream is capped here rather than on every append.
        redisCall(() => trimEvents()),
      ]);
      const n = (r: [number, ...unknown[]]) => Number(r[1] ?? 0);
      return { recovered: n(recovered), expired: n(expired), promoted: n(promoted), purged: n(purged) };
    },
  };
}


