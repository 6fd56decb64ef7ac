/**
 * Issue 20, item 2: one trace from client to engine. The test process is
 * the client and the server (its spans captured by the SDK's in-memory
 * exporter); the worker is a separate process whose spans the SDK writes as
 * JSON lines (STEPQ_TRACES_FILE). A DAG job's spans form one trace: the
 * client's span, the server's SubmitJob span under it, and under that, per
 * step, its time in the queue and its run on the worker with the engine's
 * run (and its first token) inside.
 */
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { context, propagation, SpanKind, trace } from "@opentelemetry/api";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { afterAll, describe, expect, it } from "vitest";
import { JobState } from "../gen/stepq/v1/job_pb.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { oneStepJob } from "../queue/prepare-job.js";
import { createLogger } from "../runtime/logger.js";
import { spanJson, startTracing, tracingWanted } from "../runtime/tracing.js";
import { startProcess } from "./helpers/process.js";
import { echo, eventually, useStack } from "./helpers/stack.js";

const memory = new InMemorySpanExporter();
const tracing = await startTracing("stepq-server", { exporters: [memory] });
afterAll(() => tracing?.shutdown());
const stack = await useStack();
const root = join(import.meta.dirname, "..");
const file = join(mkdtempSync(join(tmpdir(), "stepq-traces-")), "worker-spans.jsonl");
const worker = startProcess(
  process.execPath,
  ["--import", "tsx", join(root, "worker/main.ts"), "--redis-url", stack.redis.url, "--engines", "echo", "--worker-id", "traced", "-c", "2"],
  { STEPQ_TRACES_FILE: file, OTEL_TRACES_EXPORTER: "" },
  root,
);
await worker.waitFor(/started/, 30_000);

type SpanLine = ReturnType<typeof spanJson>;

describe("tracing", () => {
  it("is off unless the OTEL_* environment asks for it", () => {
    expect(tracingWanted({})).toBe(false);
    expect(tracingWanted({ OTEL_TRACES_EXPORTER: "otlp" })).toBe(true);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" })).toBe(true);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_SDK_DISABLED: "true" })).toBe(false);
    expect(tracingWanted({ OTEL_TRACES_EXPORTER: "none" })).toBe(false);
  });

  it("a DAG job's spans form one trace across the client, the server and the worker process", async () => {
    const tracer = trace.getTracer("test-client");
    const clientSpan = tracer.startSpan("client: submit the job", { kind: SpanKind.CLIENT });
    const job = await context.with(trace.setSpan(context.active(), clientSpan), () =>
      stack.client.jobs.submitJob({
        steps: [
          { name: "a", operation: echo({ text: "first", tokenCount: 3 }) },
          { name: "b", operation: echo({ text: "second", tokenCount: 2 }), dependsOn: ["a"] },
          { name: "c", operation: echo({ text: "third" }), dependsOn: ["a"] },
        ],
      }),
    );
    clientSpan.end();
    const jobId = job.job?.id as string;
    await eventually(() => stack.client.jobs.getJob({ jobId }), (r) => r.job?.state === JobState.SUCCEEDED);

    const traceId = clientSpan.spanContext().traceId;
    const server = memory.getFinishedSpans().map(spanJson);
    const submit = server.find((s) => s.name === "stepq.v1.JobService/SubmitJob" && s.traceId === traceId);
    expect(submit?.parentSpanId).toBe(clientSpan.spanContext().spanId);
    expect(submit?.service).toBe("stepq-server");
    expect(submit?.attributes).toMatchObject({ "rpc.system": "connect_rpc", "rpc.service": "stepq.v1.JobService", "rpc.method": "SubmitJob" });

    // The worker writes each span as it ends; the last, c's step span, ends with its completion call.
    const workerSpans = await eventually(
      async () => (existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as SpanLine) : []),
      (spans) => spans.filter((s) => s.name === "stepq.step" && s.attributes["stepq.outcome"] === "succeeded").length >= 3,
    );
    for (const s of workerSpans) {
      expect(s.traceId, s.name).toBe(traceId);
      expect(s.service).toBe("stepq-worker");
    }
    for (const name of ["a", "b", "c"]) {
      const index = { a: 0, b: 1, c: 2 }[name] as number;
      const mine = workerSpans.filter((s) => s.attributes["stepq.step_id"] === `${jobId}.${index}`);
      const queued = mine.find((s) => s.name === "stepq.queue");
      const step = mine.find((s) => s.name === "stepq.step");
      expect(queued?.parentSpanId, name).toBe(submit?.spanId);
      expect(step?.parentSpanId, name).toBe(submit?.spanId);
      expect(step?.attributes).toMatchObject({ "stepq.route": "echo", "stepq.attempt": 1, "stepq.worker_id": "traced", "stepq.outcome": "succeeded" });
      // The queue span ends where the step span begins: at the claim.
      expect(BigInt(queued?.endNs ?? 0)).toBeLessThanOrEqual(BigInt(step?.startNs ?? 0) + 1_000_000n);
      const engine = workerSpans.find((s) => s.name === "stepq.engine" && s.parentSpanId === step?.spanId);
      expect(engine?.attributes["stepq.engine"]).toBe("echo");
      expect(engine?.events.map((e) => e.name)).toEqual(name === "c" ? [] : ["first_token"]);
    }
    // b and c waited in the queue for a: they became ready when a ended.
    const aEnd = BigInt(workerSpans.find((s) => s.name === "stepq.step" && s.attributes["stepq.step_id"] === `${jobId}.0`)?.endNs ?? 0);
    const bQueued = workerSpans.find((s) => s.name === "stepq.queue" && s.attributes["stepq.step_id"] === `${jobId}.1`);
    expect(BigInt(bQueued?.startNs ?? 0)).toBeLessThanOrEqual(aEnd);
    expect(BigInt(bQueued?.startNs ?? 0)).toBeGreaterThan(BigInt(submit?.endNs ?? 0));
  });

  it("a one-step submit (the fast path, whose record the server writes) carries the trace too", async () => {
    const tracer = trace.getTracer("test-client");
    const clientSpan = tracer.startSpan("client: submit one step", { kind: SpanKind.CLIENT });
    const step = await context.with(trace.setSpan(context.active(), clientSpan), () => stack.client.submit(echo({ text: "one" })));
    clientSpan.end();
    await stack.client.wait(step.id);
    const submit = memory.getFinishedSpans().map(spanJson).find((s) => s.name === "stepq.v1.StepService/SubmitStep" && s.traceId === clientSpan.spanContext().traceId);
    expect(submit?.parentSpanId).toBe(clientSpan.spanContext().spanId);
    const run = await eventually(
      async () => readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as SpanLine).find((s) => s.name === "stepq.step" && s.attributes["stepq.step_id"] === step.id),
      (s) => s !== undefined,
    );
    expect(run?.traceId).toBe(clientSpan.spanContext().traceId);
    expect(run?.parentSpanId).toBe(submit?.spanId);
  });

  it("a step whose submit stored no trace context gets no spans from the worker (and costs it no read)", async () => {
    // Submitted past the server (no traced call): its job holds no traceparent.
    const { queue } = stack.server;
    const untraced = await queue.submit(queue.prepare(oneStepJob({ operation: echo({ text: "untraced" }) })));
    expect((await stack.client.wait(`${untraced.jobId}.0`)).state).toBe(StepState.SUCCEEDED);
    // A traced step after it: once its span is written, the untraced one's would have been.
    const clientSpan = trace.getTracer("test-client").startSpan("client: after the untraced one", { kind: SpanKind.CLIENT });
    const after = await context.with(trace.setSpan(context.active(), clientSpan), () => stack.client.submit(echo({ text: "traced" })));
    clientSpan.end();
    const spans = await eventually(
      async () => readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as SpanLine),
      (all) => all.some((s) => s.name === "stepq.step" && s.attributes["stepq.step_id"] === after.id),
    );
    expect(spans.filter((s) => s.attributes["stepq.job_id"] === untraced.jobId)).toEqual([]);
  });

  it("a log line written inside a traced call carries its trace id; outside one, none", () => {
    const lines: string[] = [];
    const log = createLogger("server", { write: (l) => lines.push(l) });
    const span = trace.getTracer("test").startSpan("some call");
    context.with(trace.setSpan(context.active(), span), () => log.warn("inside"));
    span.end();
    log.warn("outside");
    const [inside, outside] = lines.map((l) => JSON.parse(l) as { msg: string; trace_id?: string });
    expect(inside).toMatchObject({ msg: "inside", trace_id: span.spanContext().traceId });
    expect(outside?.msg).toBe("outside");
    expect(outside?.trace_id).toBeUndefined();
  });

  it("a call without trace context starts its own trace, and a refused call's span says why", async () => {
    const err = await stack.client.jobs.getJob({ jobId: "nope" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    // The last GetJob span (the DAG test polled GetJob before).
    const span = memory.getFinishedSpans().map(spanJson).filter((s) => s.name === "stepq.v1.JobService/GetJob").at(-1);
    expect(span?.parentSpanId).toBeUndefined();
    expect(span?.attributes["rpc.connect_rpc.error_code"]).toBe("InvalidArgument");
    expect(span?.status).toEqual({ code: 2, message: 'job_id: "nope" is not a job id; job ids are 16 characters of [0-9a-z]' }); // ERROR
    // The W3C propagator is what the server reads and the client writes.
    expect(propagation.fields()).toContain("traceparent");
  });
});
