/**
 * A step's part of its job's trace (runtime/tracing.ts), in the worker:
 * continuing the traceparent the submitting call stored with the job, a
 * `stepq.queue` span for the time the step waited to be claimed, a
 * `stepq.step` span from the claim to its outcome (succeeded, failed,
 * abandoned, handed back) and, inside it, a `stepq.engine` span for the
 * engine's run with a `first_token` event. Only when tracing is on: reading
 * the job's stored context costs one record read per step.
 */
import { context, propagation, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Queue } from "../queue/queue.js";
import { VERSION } from "../runtime/version.js";

export class StepTrace {
  private engineSpan: Span | undefined;
  private sawToken = false;

  private constructor(private readonly span: Span) {}

  /** The trace this step's spans belong to (its job's, when the submit was traced). */
  get traceId(): string {
    return this.span.spanContext().traceId;
  }

  /** The step's spans, continuing its job's stored trace context (a new trace when it has none). */
  static async start(
    queue: Queue,
    step: { jobId: string; index: number; stepId: string; attempt: number; route: string; readyAt: number },
    workerId: string,
  ): Promise<StepTrace> {
    const tracer = trace.getTracer("stepq-worker", VERSION);
    const job = await queue.getJob(step.jobId).catch(() => undefined);
    const parent = job?.traceparent ? propagation.extract(ROOT_CONTEXT, { traceparent: job.traceparent }) : ROOT_CONTEXT;
    const attributes = {
      "stepq.step_id": step.stepId,
      "stepq.job_id": step.jobId,
      "stepq.route": step.route,
      "stepq.attempt": step.attempt,
      "stepq.worker_id": workerId,
    };
    const claimedAt = job?.steps[step.index]?.startedAt ?? Date.now();
    if (job) {
      // From when the claim says the step became ready (its submit, its dependencies' end, its retry or schedule due, a hand-back).
      tracer.startSpan("stepq.queue", { kind: SpanKind.CONSUMER, startTime: step.readyAt, attributes }, parent).end(claimedAt);
    }
    return new StepTrace(tracer.startSpan("stepq.step", { kind: SpanKind.CONSUMER, startTime: claimedAt, attributes }, parent));
  }

  engineStarted(engine: string): void {
    const tracer = trace.getTracer("stepq-worker", VERSION);
    this.engineSpan = tracer.startSpan("stepq.engine", { attributes: { "stepq.engine": engine } }, trace.setSpan(context.active(), this.span));
  }

  firstToken(): void {
    if (this.sawToken) return;
    this.sawToken = true;
    this.engineSpan?.addEvent("first_token");
  }

  engineEnded(failure: Error | undefined): void {
    if (failure) this.engineSpan?.setStatus({ code: SpanStatusCode.ERROR, message: failure.message });
    this.engineSpan?.end();
  }

  /** The step's outcome on this worker: "succeeded", "failed", "retrying", "abandoned: <why>", "released". */
  ended(outcome: string, error?: { message: string }): void {
    this.span.setAttribute("stepq.outcome", outcome);
    if (error) this.span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    this.span.end();
  }
}
