/**
 * What a finished attempt becomes: the result a completion stores (timings
 * and token rates computed here), or the error a failure records (a
 * timeout, an engine's StepFailure with its code, or any other error as
 * ENGINE_FAILED, retryable).
 */
import { StepErrorCode, StopReason } from "../gen/stepq/v1/step_pb.js";
import type { AttemptError } from "../queue/leases.js";
import { encodeStepResult } from "../wire/step-result.js";
import type { EngineResult, StopSignal } from "./engines/engine.js";
import type { RunningStep } from "./running-step.js";
import { StepFailure } from "./step-failure.js";

/** The StepResult (protobuf binary) of `r`, which its engine finished with `res`. */
export function resultOf(r: RunningStep, res: EngineResult): Uint8Array {
  const durationMs = Date.now() - r.startedAt;
  const completion = res.completionTokens ?? r.tokenCount;
  const genMs = durationMs - (res.timeToFirstTokenMs ?? 0);
  return encodeStepResult({
    text: res.text ?? "",
    embeddings: res.embeddings ?? [],
    promptTokens: res.promptTokens ?? 0,
    completionTokens: completion,
    timeToFirstTokenMs: res.timeToFirstTokenMs ?? 0,
    durationMs,
    tokensPerSecond: completion > 0 && genMs > 0 ? (completion * 1000) / genMs : 0,
    stopReason: res.stopReason ?? StopReason.END_OF_TEXT,
  });
}

/** The error an attempt that timed out (`stop`) or failed (`failure`) records. */
export function attemptErrorOf(stop: StopSignal | undefined, failure: Error | undefined): AttemptError {
  if (stop?.kind === "timeout") {
    return { code: StepErrorCode.TIMEOUT, message: `attempt ran past timeout_ms=${stop.timeoutMs}`, retryable: true };
  }
  if (failure instanceof StepFailure) return { code: failure.code, message: failure.message, retryable: failure.retryable };
  return { code: StepErrorCode.ENGINE_FAILED, message: failure?.message ?? "engine returned no result", retryable: true };
}
