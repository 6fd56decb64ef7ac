/**
 * The stream check: the tokens a follower received for a step's final
 * attempt must be exactly the tokens the worker emitted, indexes 0..n-1,
 * each once, in order, equal to the echo operation's deterministic output.
 */
import { StepErrorCode, StepState } from "../../gen/stepq/v1/step_pb.js";
import type { StepRecord } from "../../queue/job-record.js";
import type { FollowRecord } from "./follower.js";
import { expectedTokens } from "./job-plan.js";

/** The verdict on one followed step. */
export type StreamVerdict =
  | { kind: "verified" }
  /** Gaps, repeats, wrong text or a wrong end: a real defect. */
  | { kind: "defect"; why: string }
  /** The final attempt did not run to its end (cancelled, lease expired): its output is partial by design. */
  | { kind: "unverifiable" }
  /** The stream never reached its end. */
  | { kind: "unfinished"; why: string };

/** Whether the final attempt of `step` emitted all its tokens: it succeeded, or failed in the engine after streaming. */
function ranToTheEnd(step: StepRecord): boolean {
  if (step.state === StepState.SUCCEEDED) return true;
  const last = step.errors[step.errors.length - 1];
  return step.state === StepState.FAILED && last?.code === StepErrorCode.ENGINE_FAILED && last.attempt === step.attempt;
}

/** Checks what `record` received against the plan and the stored step. */
export function checkStream(record: FollowRecord, stored: StepRecord | undefined): StreamVerdict {
  if (!record.end) return { kind: "unfinished", why: record.error ?? "the stream ended without a step end" };
  if (!stored) return { kind: "defect", why: "the followed step is not stored" };
  if (record.end.state !== stored.state) return { kind: "defect", why: `stream ended ${record.end.state}, step is ${stored.state}` };
  if (!ranToTheEnd(stored)) return { kind: "unverifiable" };

  const finalAttempt = stored.attempt;
  if (finalAttempt > 1 && !record.restarts.includes(finalAttempt)) return { kind: "defect", why: `no restart message for attempt ${finalAttempt}` };
  const later = record.tokens.find((t) => t.attempt > finalAttempt);
  if (later) return { kind: "defect", why: `token of attempt ${later.attempt} after the final attempt ${finalAttempt}` };
  const got = record.tokens.filter((t) => t.attempt === finalAttempt);
  const want = expectedTokens(record.planned.echo);
  for (let i = 0; i < Math.max(got.length, want.length); i++) {
    const t = got[i];
    if (!t) return { kind: "defect", why: `gap: ${want.length} tokens expected, ${got.length} received` };
    if (t.index !== i) return { kind: "defect", why: `${t.index < i ? "repeat" : "gap"}: token index ${t.index} arrived in position ${i}` };
    if (i >= want.length) return { kind: "defect", why: `extra token ${i} (${want.length} expected)` };
    if (t.text !== want[i]) return { kind: "defect", why: `token ${i} is ${JSON.stringify(t.text)}, expected ${JSON.stringify(want[i])}` };
  }
  return { kind: "verified" };
}
