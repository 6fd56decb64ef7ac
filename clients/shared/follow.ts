/**
 * Following a step's or a whole job's tokens and narration, resuming after
 * dropped connections: the stream (StreamJobOutput, one cursor for all of a
 * job's messages) is reopened from the cursor of the last message received,
 * so nothing is lost or repeated. Shared by the Node and the browser clients:
 * it needs only `@connectrpc/connect` and the generated types.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { NarrationLevel, Token } from "../../gen/stepq/v1/output_pb.js";
import type { JobState } from "../../gen/stepq/v1/job_pb.js";
import type { StreamJobOutputResponse } from "../../gen/stepq/v1/job_service_pb.js";
import type { StepError, StepState, StopReason, Usage } from "../../gen/stepq/v1/step_pb.js";

/** Opens StreamJobOutput (of one step of the job, with `stepId`); iterate the result for its messages. */
export type OpenJobOutput = (req: { jobId: string; afterCursor: string; stepId?: string }, signal: AbortSignal) => AsyncIterable<StreamJobOutputResponse>;

/** One thing that happened on a followed step (`stepId` says which, when following a job). */
export type FollowEvent =
  | { type: "tokens"; cursor: string; stepId: string; attempt: number; tokens: Token[] }
  | { type: "narration"; cursor: string; stepId: string; attempt: number; level: NarrationLevel; text: string; time: Date | undefined }
  | { type: "restart"; cursor: string; stepId: string; attempt: number }
  | { type: "end"; cursor: string; stepId: string; state: StepState; error?: StepError; usage?: Usage; stopReason: StopReason };

/** What following a job yields: its steps' events (a step's end is its `end`), then the job's end. */
export type JobFollowEvent = FollowEvent | { type: "jobEnd"; cursor: string; jobId: string; state: JobState };

export interface FollowOptions {
  /** Resume after this cursor (from an earlier FollowEvent). */
  afterCursor?: string;
  /** Stops following. */
  signal?: AbortSignal;
  /** Consecutive failed reconnects before giving up. Default 20. */
  maxReconnects?: number;
  /** Called before each reconnect, with the error that ended the stream. */
  onReconnect?: (err: ConnectError, attempt: number) => void;
}

/**
 * Codes after which reopening the stream may work: network trouble, a
 * server going away. CANCELED counts only when the caller did not cancel:
 * over HTTP/2 a dropped connection resets its streams with CANCEL.
 */
const TRANSIENT = new Set([
  Code.Unavailable,
  Code.Unknown,
  Code.Internal,
  Code.Aborted,
  Code.DeadlineExceeded,
  Code.ResourceExhausted,
  Code.Canceled,
]);

/** The event of one message, or undefined for a message with none. */
function eventOf(res: StreamJobOutputResponse): JobFollowEvent | undefined {
  const e = res.event;
  switch (e.case) {
    case "tokens":
      return { type: "tokens", cursor: e.value.cursor, stepId: e.value.stepId, attempt: e.value.attempt, tokens: e.value.tokens };
    case "narration": {
      const t = e.value.time;
      const time = t ? new Date(Number(t.seconds) * 1000 + t.nanos / 1e6) : undefined;
      return { type: "narration", cursor: e.value.cursor, stepId: e.value.stepId, attempt: e.value.attempt, level: e.value.level, text: e.value.text, time };
    }
    case "restart":
      return { type: "restart", cursor: e.value.cursor, stepId: e.value.stepId, attempt: e.value.attempt };
    case "stepEnd": {
      const v = e.value;
      return { type: "end", cursor: v.cursor, stepId: v.stepId, state: v.state, error: v.error, usage: v.usage, stopReason: v.stopReason };
    }
    case "jobEnd":
      return { type: "jobEnd", cursor: e.value.cursor, jobId: e.value.jobId, state: e.value.state };
    default:
      return undefined;
  }
}

/**
 * Yields the output of job `jobId` (only step `stepId`'s, ending with its
 * end, when given; else every step's, ending with the job's end), reopening
 * the stream after transient failures from the last cursor.
 */
async function* follow(open: OpenJobOutput, jobId: string, stepId: string | undefined, options: FollowOptions): AsyncGenerator<JobFollowEvent> {
  let cursor = options.afterCursor ?? "";
  let failures = 0;
  const max = options.maxReconnects ?? 20;
  for (;;) {
    // One controller per stream, tied to the caller's signal: leaving the
    // loop early closes the server stream and leaves no listener behind on
    // the caller's signal.
    const stop = new AbortController();
    const forward = () => stop.abort(options.signal?.reason);
    if (options.signal?.aborted) forward();
    options.signal?.addEventListener("abort", forward);
    try {
      for await (const res of open({ jobId, afterCursor: cursor, ...(stepId ? { stepId } : {}) }, stop.signal)) {
        failures = 0;
        const event = eventOf(res);
        if (!event) continue;
        cursor = event.cursor;
        yield event;
        if (event.type === "jobEnd" || (stepId !== undefined && event.type === "end")) return;
      }
      return; // resumed after the end: the server ended the stream at once
    } catch (e) {
      const err = ConnectError.from(e);
      if (options.signal?.aborted || !TRANSIENT.has(err.code) || ++failures > max) throw err;
      options.onReconnect?.(err, failures);
      await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** (failures - 1), 5000)));
    } finally {
      options.signal?.removeEventListener("abort", forward);
      stop.abort();
    }
  }
}

/** Yields step `stepId`'s output and ends with its `end` event. */
export function followStep(open: OpenJobOutput, stepId: string, options: FollowOptions = {}): AsyncGenerator<FollowEvent> {
  return follow(open, stepId.split(".")[0] ?? "", stepId, options) as AsyncGenerator<FollowEvent>;
}

/** Yields every step's output of job `jobId`, each step's `end`, then the job's `jobEnd`. */
export function followJob(open: OpenJobOutput, jobId: string, options: FollowOptions = {}): AsyncGenerator<JobFollowEvent> {
  return follow(open, jobId, undefined, options);
}
