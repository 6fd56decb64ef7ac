/**
 * Stored records and log entries -> contract messages. The only place that
 * knows both shapes, so handlers stay thin.
 */
import { create, fromBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type Event, EventSchema } from "../gen/stepq/v1/events_pb.js";
import { type Job, JobSchema, JobState } from "../gen/stepq/v1/job_pb.js";
import { type Operation, OperationSchema } from "../gen/stepq/v1/operation_pb.js";
import {
  type Narration,
  NarrationSchema,
  type StepEnd,
  StepEndSchema,
  type StepRestart,
  StepRestartSchema,
  type TokenChunk,
  TokenChunkSchema,
} from "../gen/stepq/v1/output_pb.js";
import { RequirementsSchema, type Step, type StepError, StepErrorSchema, StepResultSchema, StepSchema, StepState } from "../gen/stepq/v1/step_pb.js";
import { stepIdOf } from "../queue/ids.js";
import { hasRequirements, requirementsOf } from "../queue/requirements.js";
import type { EventFields, LogEntry } from "../queue/log-entry.js";
import type { JobView } from "../queue/queue.js";
import type { ErrorRecord, StepRecord } from "../queue/job-record.js";
import { DEFAULT_LIMITS, type SubmitLimits } from "../queue/limits.js";
import { resolvedBytes, resolveReferences } from "../queue/references.js";

const ts = (ms: number | undefined) => (ms === undefined ? undefined : timestampFromMs(ms));

function stepError(e: ErrorRecord): StepError {
  return create(StepErrorSchema, {
    code: e.code,
    message: e.message,
    attempt: e.attempt,
    workerId: e.workerId,
    time: ts(e.time),
    retryable: e.retryable,
  });
}

function isFinalStep(state: number): boolean {
  return state === StepState.SUCCEEDED || state === StepState.FAILED || state === StepState.CANCELLED;
}

function resultText(s: StepRecord | undefined): string | undefined {
  return s?.result ? fromBinary(StepResultSchema, s.result).text : undefined;
}

/**
 * How far one reply may show operations with their references resolved:
 * each at most `maxOperationBytes` (a larger one failed instead of running),
 * and all together adding at most `left` bytes to the reply. A step past
 * either shows its operation as submitted. Without this, a small job whose
 * steps reference large outputs many times would make a reply many times
 * the size of anything stored.
 */
export interface ReplyBudget {
  readonly maxOperationBytes: number;
  left: number;
}

/** A budget for one reply: resolved operations may add up to `maxJobBytes` in all. */
export function replyBudget(limits: Pick<SubmitLimits, "maxOperationBytes" | "maxJobBytes"> = DEFAULT_LIMITS): ReplyBudget {
  return { maxOperationBytes: limits.maxOperationBytes, left: limits.maxJobBytes };
}

/** Step `s`'s operation, resolved when it has started and `budget` allows. */
function shownOperation(job: JobView, s: StepRecord, budget: ReplyBudget): Operation {
  const operation = fromBinary(OperationSchema, s.operation);
  if (s.state === StepState.WAITING || s.dependsOn.length === 0) return operation;
  const outputs = new Map<string, string>();
  for (const d of s.dependsOn) {
    const dep = job.steps[d];
    const text = resultText(dep);
    if (dep && text !== undefined) outputs.set(dep.name, text);
  }
  const bytes = resolvedBytes(operation, s.operation.length, outputs);
  const growth = bytes - s.operation.length;
  if (bytes > budget.maxOperationBytes || growth > budget.left) return operation;
  budget.left -= Math.max(0, growth);
  return resolveReferences(operation, outputs);
}

/** The Step message of step `index` of `job`. */
export function toStep(job: JobView, index: number, budget: ReplyBudget = replyBudget()): Step {
  const s = job.steps[index] as StepRecord;
  const operation = shownOperation(job, s, budget);
  const lastError = s.errors[s.errors.length - 1];
  const showError = lastError && (isFinalStep(s.state) ? s.state !== StepState.SUCCEEDED : true);
  return create(StepSchema, {
    id: stepIdOf(job.id, index),
    jobId: job.id,
    name: s.name,
    operation,
    state: s.state,
    route: s.route,
    priority: job.priority,
    attempt: s.attempt,
    maxAttempts: s.maxAttempts,
    progress: s.state === StepState.SUCCEEDED ? 1 : s.progress,
    progressMessage: s.progressMessage,
    dependsOn: s.dependsOn.map((d) => job.steps[d]?.name ?? ""),
    createdAt: ts(job.createdAt),
    startedAt: ts(s.startedAt),
    finishedAt: ts(s.finishedAt),
    scheduledAt: s.state === StepState.SCHEDULED ? ts(s.scheduledAt) : undefined,
    error: showError && lastError ? stepError(lastError) : undefined,
    errors: s.errors.map(stepError),
    result: s.result ? fromBinary(StepResultSchema, s.result) : undefined,
    workerId: s.workerId ?? "",
    leaseExpiresAt: ts(job.leaseDeadlines.get(index)),
    timeoutMs: s.timeoutMs,
    queueTimeoutMs: s.queueTimeoutMs,
    requirements: hasRequirements(s.route) ? create(RequirementsSchema, requirementsOf(s.route)) : undefined,
  });
}

/** The Job message of `job`, with its steps. */
export function toJob(job: JobView, budget: ReplyBudget = replyBudget()): Job {
  const steps = job.steps.map((_, i) => toStep(job, i, budget));
  const dependedOn = new Set(job.steps.flatMap((s) => s.dependsOn));
  const progress =
    job.steps.reduce((sum, s) => sum + (isFinalStep(s.state) ? 1 : s.progress), 0) / Math.max(1, job.steps.length);
  return create(JobSchema, {
    id: job.id,
    state: job.state,
    steps,
    priority: job.priority,
    failurePolicy: job.failurePolicy,
    labels: job.labels,
    createdAt: ts(job.createdAt),
    startedAt: ts(job.startedAt),
    finishedAt: ts(job.finishedAt),
    progress,
    outputs: steps
      .filter((s, i) => !dependedOn.has(i) && s.state === StepState.SUCCEEDED)
      .map((s) => ({ stepName: s.name, stepId: s.id, result: s.result })),
    idempotencyKey: job.idempotencyKey ?? "",
    expiresAt: ts(job.expiresAt),
  });
}

/** The Event message of a lifecycle event. */
export function toEvent(cursor: string, time: number, e: EventFields): Event {
  return create(EventSchema, {
    cursor,
    type: e.type,
    time: ts(time),
    jobId: e.jobId,
    stepId: e.stepIndex === undefined ? "" : stepIdOf(e.jobId, e.stepIndex),
    stepName: e.stepName ?? "",
    route: e.route ?? "",
    attempt: e.attempt,
    workerId: e.workerId ?? "",
    stepState: e.stepState ?? StepState.UNSPECIFIED,
    jobState: e.jobState ?? JobState.UNSPECIFIED,
    progress: e.progress ?? 0,
    message: e.message ?? "",
    error: e.error
      ? create(StepErrorSchema, {
          code: e.error.code,
          message: e.error.message,
          retryable: e.error.retryable,
          attempt: e.attempt,
          workerId: e.workerId ?? "",
          time: ts(time),
        })
      : undefined,
  });
}

type Entry<K extends LogEntry["kind"]> = Extract<LogEntry, { kind: K }>;

/** What stream messages need of a job: its id and its steps' names (a JobView, or a stream's StreamView). */
export type NamedJob = { readonly id: string; readonly steps: readonly { readonly name: string }[] };

/** What a StepEnd needs of a job: names, and each step's last error and result (usage and stop reason). */
export type EndedJob = {
  readonly id: string;
  readonly steps: readonly { readonly name: string; readonly errors: readonly ErrorRecord[]; readonly result?: Uint8Array }[];
};

export function toTokenChunk(job: NamedJob, e: Entry<"tokens">): TokenChunk {
  return create(TokenChunkSchema, {
    cursor: e.cursor,
    stepId: stepIdOf(job.id, e.stepIndex),
    stepName: job.steps[e.stepIndex]?.name ?? "",
    attempt: e.attempt,
    tokens: e.texts.map((text, i) => ({ index: e.firstIndex + i, text })),
  });
}

export function toNarration(job: NamedJob, e: Entry<"narration">): Narration {
  return create(NarrationSchema, {
    cursor: e.cursor,
    stepId: stepIdOf(job.id, e.stepIndex),
    stepName: job.steps[e.stepIndex]?.name ?? "",
    attempt: e.attempt,
    level: e.level,
    text: e.text,
    time: ts(e.time),
  });
}

export function toRestart(job: NamedJob, e: Entry<"event">): StepRestart {
  const index = e.event.stepIndex ?? 0;
  return create(StepRestartSchema, {
    cursor: e.cursor,
    stepId: stepIdOf(job.id, index),
    stepName: job.steps[index]?.name ?? "",
    attempt: e.event.attempt,
  });
}

/** The StepEnd for a step's final event; usage comes from the (final, immutable) record. */
export function toStepEnd(job: EndedJob, e: Entry<"event">): StepEnd {
  const index = e.event.stepIndex ?? 0;
  const s = job.steps[index];
  const result = s?.result ? fromBinary(StepResultSchema, s.result) : undefined;
  const lastError = s?.errors[s.errors.length - 1];
  return create(StepEndSchema, {
    cursor: e.cursor,
    stepId: stepIdOf(job.id, index),
    stepName: s?.name ?? "",
    state: e.event.stepState ?? StepState.UNSPECIFIED,
    error: e.event.stepState !== StepState.SUCCEEDED && lastError ? stepError(lastError) : undefined,
    usage: result?.usage,
    stopReason: result?.stopReason,
  });
}
