/**
 * The interface every engine implements. The worker runtime owns leases,
 * batching and retries; an engine only turns one claimed step into output
 * and a result, and stops promptly when its signal aborts.
 */
import type { NarrationLevel } from "../../gen/stepq/v1/output_pb.js";
import type { StopReason } from "../../gen/stepq/v1/step_pb.js";
import type { ClaimedStep } from "../../queue/leases.js";
import type { Logger } from "../../runtime/logger.js";

/** What an engine can do while it runs a step. */
export interface EngineContext {
  /**
   * Aborted when the step must stop: cancelled, lease lost, timed out, or the
   * worker is shutting down. `signal.reason` is a StopSignal.
   */
  readonly signal: AbortSignal;
  /** Streams one token (batched by the runtime, written in order). */
  token(text: string): void;
  /** Writes one human-readable progress line. */
  narrate(text: string, level?: NarrationLevel): void;
  /** Reports progress in [0, 1] with an optional one-line message (throttled). */
  progress(fraction: number, message?: string): void;
  readonly log: Logger;
}

/** Why the runtime aborted a step; carried as the AbortSignal's reason. */
export type StopSignal =
  | { kind: "cancelled" }
  | { kind: "lease-lost" }
  /** The queue failed the step: its output went past max-output-bytes / max-job-bytes. */
  | { kind: "too-large" }
  | { kind: "timeout"; timeoutMs: number }
  | { kind: "shutdown" };

/** What an engine returns for a successful step. */
export interface EngineResult {
  /** Full text output; defaults to the concatenated tokens. */
  text?: string;
  embeddings?: number[][];
  promptTokens?: number;
  completionTokens?: number;
  /** From the start of the attempt to the first token, ms. */
  timeToFirstTokenMs?: number;
  stopReason?: StopReason;
}

/** A backend that runs operations: echo, llama, an OpenAI-compatible server... */
export interface Engine {
  /** Short name used in flags and logs. */
  readonly name: string;
  /** The routes this engine serves ("echo", "infer:<model>", "embed:<model>"). */
  routes(): readonly string[];
  /** Loads what the engine needs before the worker starts claiming. */
  start?(): Promise<void>;
  /** Runs one step. Throw StepFailure (or any error) to fail the attempt. */
  run(step: ClaimedStep, ctx: EngineContext): Promise<EngineResult>;
  /** Frees resources (models, sockets). */
  close?(): Promise<void>;
}
