/**
 * A step's part of its job's trace (runtime/tracing.ts), in the worker:
 * continuing the traceparent the submitting call stored with the job, a
 * `stepq.queue` span for the time the step waited to be claimed, a
 * `stepq.step` span from the claim to its outcome (succeeded, failed,
 * abandoned, handed back) and, inside it, a `stepq.engine` span for the
 * engine's run with a `first_token` event. Only when tracing is on, and only
 * for steps whose submit was traced: the claim hands over the stored context
 * (CLAIMED's traceparent), so a step costs no extra read.
 */
import { context, propagation, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { VERSION } from "../runtime/version.js";

export class StepTrace {
  private engineSpan: Span | undefined;
  private sawToken = false;

  private constructor(private readonly span: Span) {}

  /** The trace this step's spans belong to (its job's, when the submit was traced). */
  get traceId(): string {
    return this.span.spanContext().traceId;
  }

  /**
   * The step's spans, continuing the trace context its job's submit stored,
   * which the claim handed over with the step (`traceparent`); `claimedAt`
   * by Redis's clock. Undefined for a step whose submit was not traced (or
   * not sampled): the submitter's sampling decides, and such a step costs
   * the worker nothing.
   */
  static start(
    step: { jobId: string; stepId: string; attempt: number; route: string; readyAt: number; traceparent?: string },
    workerId: string,
    claimedAt: number,
  ): StepTrace | undefined {
    if (!step.traceparent) return undefined;
    const tracer = trace.getTracer("stepq-worker", VERSION);
    const parent = propagation.extract(ROOT_CONTEXT, { traceparent: step.traceparent });
    const attributes = {
      "stepq.step_id": step.stepId,
      "stepq.job_id": step.jobId,
      "stepq.route": step.route,
      "stepq.attempt": step.attempt,
      "stepq.worker_id": workerId,
    };
    // From when the claim says the step became ready (its submit, its dependencies' end, its retry or schedule due, a hand-back).
    tracer.startSpan("stepq.queue", { kind: SpanKind.CONSUMER, startTime: step.readyAt, attributes }, parent).end(claimedAt);
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
