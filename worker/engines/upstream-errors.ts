/**
 * What an OpenAI-compatible upstream's errors mean for a step (the openai
 * engine): rate limits (429), server errors (5xx), timeouts and dropped
 * connections are worth trying again, after the upstream's Retry-After when
 * it gave one; any other 4xx will fail the same way again, so the step fails
 * for good, with the upstream's own message.
 */
import { APIConnectionError, APIError } from "openai";
import { StepErrorCode } from "../../gen/stepq/v1/step_pb.js";
import { StepFailure } from "../step-failure.js";

export interface UpstreamVerdict {
  retry: boolean;
  /** How long the upstream asked to wait (Retry-After), ms. */
  retryAfterMs?: number;
  failure: StepFailure;
}

/** The Retry-After of an error's headers, in ms (seconds or an HTTP date). */
function retryAfterMs(headers: Headers | undefined): number | undefined {
  const value = headers?.get("retry-after");
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

export function judgeUpstreamError(e: unknown, upstream: string): UpstreamVerdict {
  if (e instanceof APIError && e.status !== undefined) {
    const message = `upstream ${upstream} answered ${e.status}: ${e.error && typeof e.error === "object" && "message" in e.error ? String((e.error as { message: unknown }).message) : e.message}`;
    const retry = e.status === 429 || e.status >= 500 || e.status === 408;
    return { retry, retryAfterMs: retryAfterMs(e.headers as Headers | undefined), failure: new StepFailure(retry ? StepErrorCode.ENGINE_FAILED : StepErrorCode.INVALID_OPERATION, message, retry) };
  }
  if (e instanceof APIConnectionError) {
    return { retry: true, failure: new StepFailure(StepErrorCode.ENGINE_FAILED, `upstream ${upstream} could not be reached: ${e.message}`, true) };
  }
  return { retry: false, failure: new StepFailure(StepErrorCode.ENGINE_FAILED, `upstream ${upstream}: ${(e as Error).message}`, true) };
}
