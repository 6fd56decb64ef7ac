/**
 * Following a job's log through the stream hub: the shared core of
 * StreamTokens, StreamNarration, WatchJob and StreamJobOutput.
 *
 * Streams see a job through its StreamView (queue/stream-view.ts), read
 * without loading the job's record: every follower reads it when it starts
 * and again at each final event, and a record holds every result.
 */
import { JobState } from "../gen/stepq/v1/job_pb.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { DataLossError, jobNotFound, OutOfRangeError, stepNotFound } from "../queue/errors.js";
import { compareCursors, type LogEntry, parseLogEntry } from "../queue/log-entry.js";
import type { JobView, Queue } from "../queue/queue.js";
import { readStreamView, type StreamView } from "../queue/stream-view.js";
import { type Scope, sees } from "./caller-scope.js";
import type { StreamHub } from "./stream-hub.js";
import type { StreamOutlet } from "./stream-outlet.js";

/**
 * The job, or NOT_FOUND (also when it belongs to a tenant `scope` does not
 * see); with `stepIndex`, the step must exist too (and the error names the step).
 */
export async function jobOrNotFound(queue: Queue, scope: Scope, jobId: string, stepIndex?: number): Promise<JobView> {
  return found(await queue.getJob(jobId), scope, jobId, stepIndex);
}

/** The job as its streams see it, or NOT_FOUND as jobOrNotFound says. */
export async function streamViewOrNotFound(queue: Queue, scope: Scope, jobId: string, stepIndex?: number): Promise<StreamView> {
  return found(await readStreamView(queue, jobId), scope, jobId, stepIndex);
}

function found<J extends { tenant: number; steps: readonly unknown[] }>(job: J | undefined, scope: Scope, jobId: string, stepIndex: number | undefined): J {
  if (!job || !sees(scope, job.tenant)) throw stepIndex === undefined ? jobNotFound(jobId) : stepNotFound(jobId, stepIndex, undefined);
  if (stepIndex !== undefined && !job.steps[stepIndex]) throw stepNotFound(jobId, stepIndex, job.steps.length);
  return job;
}

/**
 * Batches of the job's log entries after `afterCursor`, live until the
 * caller stops iterating or `signal` aborts (the client went away). A cursor
 * past the log's end is OUT_OF_RANGE; a log that vanishes (Redis restarted
 * without its data) ends the stream with DATA_LOSS. `outlet` is the HTTP
 * response the entries go to: its unsent bytes count against the stream's
 * buffer bound, and a reader that stalls is dropped through it.
 */
export async function* followLog(
  queue: Queue,
  hub: StreamHub,
  job: StreamView,
  afterCursor: string,
  signal: AbortSignal,
  outlet?: StreamOutlet,
): AsyncGenerator<LogEntry[]> {
  if (!job.hasLog) await queue.openLog(job.id);
  const sub = hub.subscribe(queue.keys.log(job.id), afterCursor || "0-0", {
    unsent: outlet?.unsent,
    onStall: outlet?.abandon,
    beyondEnd: (last) =>
      new OutOfRangeError(
        `after_cursor ${afterCursor} is beyond the end of job ${job.id}'s log (last entry ${last || "none"}); ` +
          "pass the cursor of a message you received, or leave it empty to read the log from its start",
      ),
    lost: () =>
      new DataLossError(
        `job ${job.id}'s data is gone: Redis lost it while this stream was open (it restarted without persistence); ` +
          "the job no longer exists, submit it again",
      ),
  });
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

/** Reads the job's stream view again to look at a final event; a purged job keeps the view we had. */
export async function refreshed(queue: Queue, job: StreamView): Promise<StreamView> {
  return (await readStreamView(queue, job.id)) ?? job;
}

/** The fields isLastFinalEvent reads (a StreamView or a JobView). */
type FinalStates = {
  state: number;
  finalCursor?: string;
  steps: readonly { state: number; finalCursor?: string }[];
};

/**
 * Whether the final event at `cursor` ends step `index` (or, without an
 * index, the job): the step must be final now and this must be its latest
 * final event. A dead-lettered step that was retried is not final any more,
 * so its old final event does not end a stream.
 */
export function isLastFinalEvent(job: FinalStates, index: number | undefined, cursor: string): boolean {
  if (index === undefined) {
    const final = job.state === JobState.SUCCEEDED || job.state === JobState.FAILED || job.state === JobState.CANCELLED;
    return final && (job.finalCursor === undefined || job.finalCursor === cursor);
  }
  const s = job.steps[index];
  if (!s) return true;
  const final = s.state === StepState.SUCCEEDED || s.state === StepState.FAILED || s.state === StepState.CANCELLED;
  return final && (s.finalCursor === undefined || s.finalCursor === cursor);
}

/**
 * Whether a stream resumed after `afterCursor` has nothing left to send: the
 * step `index` (without one, the job) is final and `afterCursor` is its last
 * final event, the end the client already received. Such a stream ends at
 * once, instead of waiting on a log that will not grow for it (EventSource
 * reconnects by itself after an end). A cursor past the log's end is still
 * refused by followLog (OUT_OF_RANGE).
 */
export function endedBy(job: FinalStates, index: number | undefined, afterCursor: string): boolean {
  if (afterCursor === "") return false;
  const at = index === undefined ? job : job.steps[index];
  if (!at || at.finalCursor === undefined) return false;
  return isLastFinalEvent(job, index, at.finalCursor) && compareCursors(afterCursor, at.finalCursor) === 0;
}
