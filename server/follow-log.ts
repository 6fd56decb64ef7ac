/**
 * Following a job's log through the stream hub: the shared core of
 * StreamTokens, StreamNarration, WatchJob and StreamJobOutput.
 */
import { JobState } from "../gen/stepq/v1/job_pb.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { jobNotFound, stepNotFound } from "../queue/errors.js";
import { type LogEntry, parseLogEntry } from "../queue/log-entry.js";
import type { JobView, Queue } from "../queue/queue.js";
import type { StreamHub } from "./stream-hub.js";

/** The job, or NOT_FOUND; with `stepIndex`, the step must exist too (and the error names the step). */
export async function jobOrNotFound(queue: Queue, jobId: string, stepIndex?: number): Promise<JobView> {
  const job = await queue.getJob(jobId);
  if (!job) throw stepIndex === undefined ? jobNotFound(jobId) : stepNotFound(jobId, stepIndex, undefined);
  if (stepIndex !== undefined && !job.steps[stepIndex]) throw stepNotFound(jobId, stepIndex, job.steps.length);
  return job;
}

/**
 * Batches of the job's log entries after `afterCursor`, live until the
 * caller stops iterating or `signal` aborts (the client went away).
 */
export async function* followLog(
  queue: Queue,
  hub: StreamHub,
  job: JobView,
  afterCursor: string,
  signal: AbortSignal,
): AsyncGenerator<LogEntry[]> {
  if (!job.hasLog) await queue.openLog(job.id);
  const sub = hub.subscribe(queue.keys.log(job.id), afterCursor || "0-0");
  const stop = () => sub.close();
  signal.addEventListener("abort", stop);
  // Aborted already (a deadline that passed while the stream was set up): no abort event will come.
  if (signal.aborted) stop();
  try {
    for await (const batch of sub) yield batch.map((e) => parseLogEntry(e.id, e.fields));
  } finally {
    signal.removeEventListener("abort", stop);
    sub.close();
  }
}

/** Re-reads the job to look at a final event; a purged job keeps the view we had. */
export async function refreshed(queue: Queue, job: JobView): Promise<JobView> {
  return (await queue.getJob(job.id)) ?? job;
}

/**
 * Whether the final event at `cursor` ends step `index` (or, without an
 * index, the job): the step must be final now and this must be its latest
 * final event. A dead-lettered step that was retried is not final any more,
 * so its old final event does not end a stream.
 */
export function isLastFinalEvent(job: JobView, index: number | undefined, cursor: string): boolean {
  if (index === undefined) {
    const final = job.state === JobState.SUCCEEDED || job.state === JobState.FAILED || job.state === JobState.CANCELLED;
    return final && (job.finalCursor === undefined || job.finalCursor === cursor);
  }
  const s = job.steps[index];
  if (!s) return true;
  const final = s.state === StepState.SUCCEEDED || s.state === StepState.FAILED || s.state === StepState.CANCELLED;
  return final && (s.finalCursor === undefined || s.finalCursor === cursor);
}
