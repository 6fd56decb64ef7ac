/**
 * One claimed step inside a worker: its lease, why it must stop (if it
 * must), and the context its engine runs with.
 *
 * A worker holds thousands of these per second when steps are short, so a
 * step costs one object: the abort signal and the output buffer an engine
 * may use are created only when the engine first touches them (most no-op
 * and short steps never stream or look at the signal).
 */
import type { StepTrace } from "./step-trace.js";
import { NarrationLevel } from "../gen/stepq/v1/output_pb.js";
import { isRedisTransient, LeaseLostError, OutputTooLargeError, StepCancelledError } from "../queue/errors.js";
import type { ClaimedStep, OutputBatch } from "../queue/leases.js";
import type { Logger } from "../runtime/logger.js";
import type { Queue } from "../queue/queue.js";
import type { EngineContext, StopSignal } from "./engines/engine.js";
import { createOutputBuffer, type OutputBuffer } from "./output-buffer.js";

/**
 * Why a refused write ends a step: "cancelled" when the queue says the step
 * was cancelled (the cancel message may arrive after the refusal),
 * "too-large" when the queue failed it for output past its size caps, else
 * "lease-lost".
 */
export function lostLeaseKind(err: Error): "cancelled" | "lease-lost" | "too-large" {
  if (err instanceof StepCancelledError) return "cancelled";
  return err instanceof OutputTooLargeError ? "too-large" : "lease-lost";
}

/** What every running step of one worker shares. */
export interface StepHost {
  queue(): Queue;
  readonly flushMs: number;
  readonly log: Logger;
}

const NO_OUTPUT: OutputBatch = { firstSeq: 0, entries: [] };

/** Least time between two progress writes of one step, ms. */
const PROGRESS_EVERY_MS = 250;

/** A claimed step while this worker holds it; also its engine's context. */
export class RunningStep implements EngineContext {
  /** Local estimate of the lease deadline (Date.now() scale). */
  deadline: number;
  /** Why the step must stop, once it must. */
  stopped: StopSignal | undefined;
  /** When the engine started, Date.now(). */
  startedAt = 0;
  /** The encoded result, once the step succeeded and waits for its completion call. */
  result: Uint8Array | undefined;
  /** Tokens generated and ms from the run's start to the first (engine's count), once the step succeeded: for step:completed. */
  yielded: { tokens: number; firstTokenMs?: number } | undefined;
  /** Output written with the completion. */
  trailing: OutputBatch = NO_OUTPUT;
  /** Its spans, when tracing is on (worker/step-trace.ts). */
  trace: StepTrace | undefined;
  private controller: AbortController | undefined;
  private buffer: OutputBuffer | undefined;
  private stepLog: Logger | undefined;
  private lastProgress = 0;
  private progressTimer: NodeJS.Timeout | undefined;
  private pendingProgress: { fraction: number; message: string } | undefined;

  /** When this process got the claim, Date.now(). */
  readonly claimedAt: number;
  /** From its job's submit to its claim, by Redis's clock (the claim set the lease to claim + leaseMs). */
  readonly claimedAfterSubmitMs: number;
  /** From the step becoming ready to its claim, by Redis's clock: its wait in the queue. */
  readonly queuedMs: number;
  /** When the claim was made, by Redis's clock (the claim set the lease to claim + leaseMs). */
  readonly claimedAtRedis: number;

  constructor(
    readonly step: ClaimedStep,
    private readonly host: StepHost,
    leaseMs: number,
  ) {
    this.claimedAt = Date.now();
    this.deadline = this.claimedAt + leaseMs;
    this.claimedAtRedis = step.leaseDeadline - leaseMs;
    this.claimedAfterSubmitMs = Math.max(0, this.claimedAtRedis - step.submittedAt);
    this.queuedMs = Math.max(0, this.claimedAtRedis - step.readyAt);
  }

  /** Since the claim, by this process's clock. */
  heldMs(): number {
    return Date.now() - this.claimedAt;
  }

  /** Aborted when the step must stop; created on first use. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.stopped) this.controller.abort(this.stopped);
    }
    return this.controller.signal;
  }

  get log(): Logger {
    // With tracing on, its lines carry the trace id of its job's trace (worker/step-trace.ts).
    const traced = this.trace ? { trace_id: this.trace.traceId } : {};
    this.stepLog ??= this.host.log.child("", { step: this.step.stepId, job: this.step.jobId, route: this.step.route, attempt: this.step.attempt, ...traced });
    return this.stepLog;
  }

  /** Tells the engine to stop (the first reason wins). */
  stop(reason: StopSignal): void {
    if (this.stopped) return;
    this.stopped = reason;
    this.controller?.abort(reason);
  }

  token(text: string): void {
    this.trace?.firstToken();
    this.output().token(text);
  }

  narrate(text: string, level: NarrationLevel = NarrationLevel.INFO): void {
    this.output().narrate(level, text);
  }

  /** Number of tokens the engine streamed. */
  get tokenCount(): number {
    return this.buffer?.tokenCount ?? 0;
  }

  progress(fraction: number, message = ""): void {
    this.pendingProgress = { fraction, message };
    if (this.progressTimer) return;
    const wait = this.lastProgress + PROGRESS_EVERY_MS - Date.now();
    this.progressTimer = setTimeout(() => this.sendProgress(), Math.max(0, wait));
  }

  /** Stops streaming; resolves with the output still to write (with the completion or failure). */
  async finishOutput(): Promise<OutputBatch> {
    if (this.progressTimer) clearTimeout(this.progressTimer);
    this.progressTimer = undefined;
    return this.buffer ? this.buffer.finish() : NO_OUTPUT;
  }

  private output(): OutputBuffer {
    this.buffer ??= createOutputBuffer({
      write: (batch) => this.host.queue().appendOutput(this.step, batch),
      flushMs: this.host.flushMs,
      isRetryable: isRedisTransient,
      // A write refused for good means the lease is gone (or the job was purged).
      onFatal: (err) => this.stop({ kind: lostLeaseKind(err) }),
    });
    return this.buffer;
  }

  private sendProgress(): void {
    this.progressTimer = undefined;
    const pending = this.pendingProgress;
    if (!pending || this.stopped) return;
    this.pendingProgress = undefined;
    this.lastProgress = Date.now();
    this.host
      .queue()
      .reportProgress(this.step, pending.fraction, pending.message)
      .catch((e: unknown) => {
        if (e instanceof LeaseLostError) this.stop({ kind: lostLeaseKind(e) });
      });
  }
}
