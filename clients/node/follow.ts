/**
 * Following one step's tokens and narration, resuming after dropped
 * connections: the stream is reopened from the cursor of the last message
 * received, so nothing is lost or repeated.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { NarrationLevel, Token } from "../../gen/stepq/v1/output_pb.js";
import type { StepError, StepState, StopReason, Usage } from "../../gen/stepq/v1/step_pb.js";
import type { OpenJobOutput } from "./output-reader.js";

/** One thing that happened on a followed step. */
export type FollowEvent =
  | { type: "tokens"; cursor: string; attempt: number; tokens: Token[] }
  | { type: "narration"; cursor: string; attempt: number; level: NarrationLevel; text: string; time: Date | undefined }
  | { type: "restart"; cursor: string; attempt: number }
  | { type: "end"; cursor: string; state: StepState; error?: StepError; usage?: Usage; stopReason: StopReason };

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

/**
 * Yields the step's output and ends with its `end` event. Uses
 * StreamJobOutput (one cursor for both channels), opened by `open`, and
 * keeps the step's part.
 */
export async function* followStep(
  open: OpenJobOutput,
  stepId: string,
  options: FollowOptions = {},
): AsyncGenerator<FollowEvent> {
  const jobId = stepId.split(".")[0] ?? "";
  let cursor = options.afterCursor ?? "";
  let failures = 0;
  const max = options.maxReconnects ?? 20;
  for (;;) {
    // One controller per stream, tied to the caller's signal: leaving the
    // loop early (the step ended before its job) closes the server stream and
    // leaves no listener behind on the caller's signal.
    const stop = new AbortController();
    const forward = () => stop.abort(options.signal?.reason);
    if (options.signal?.aborted) forward();
    options.signal?.addEventListener("abort", forward);
    try {
      const stream = open({ jobId, afterCursor: cursor }, stop.signal);
      for await (const res of stream) {
        failures = 0;
        const e = res.event;
        if (e.case === undefined) continue;
        cursor = e.value.cursor;
        switch (e.case) {
          case "tokens":
            if (e.value.stepId === stepId) yield { type: "tokens", cursor, attempt: e.value.attempt, tokens: e.value.tokens };
            break;
          case "narration":
            if (e.value.stepId === stepId) {
              yield {
                type: "narration",
                cursor,
                attempt: e.value.attempt,
                level: e.value.level,
                text: e.value.text,
                time: e.value.time ? new Date(Number(e.value.time.seconds) * 1000 + e.value.time.nanos / 1e6) : undefined,
              };
            }
            break;
          case "restart":
            if (e.value.stepId === stepId) yield { type: "restart", cursor, attempt: e.value.attempt };
            break;
          case "stepEnd":
            if (e.value.stepId === stepId) {
              yield { type: "end", cursor, state: e.value.state, error: e.value.error, usage: e.value.usage, stopReason: e.value.stopReason };
              return;
            }
            break;
          case "jobEnd":
            return; // the job ended without an end for this step (it cannot happen for a valid step id)
        }
      }
      return;
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
