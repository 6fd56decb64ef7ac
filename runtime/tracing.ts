/**
 * OpenTelemetry traces, off unless the standard environment turns them on:
 *
 *   OTEL_TRACES_EXPORTER=otlp (or an OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT)  OTLP over HTTP
 *   OTEL_TRACES_EXPORTER=console                                           spans on stdout
 *   STEPQ_TRACES_FILE=path                                                 one JSON line per span
 *   OTEL_SDK_DISABLED=true, OTEL_TRACES_EXPORTER=none                      off
 *
 * with the rest of OTEL_* (endpoint, headers, OTEL_SERVICE_NAME,
 * OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG]) read by the SDK
 * itself. When off, the SDK is never loaded and nothing in stepq calls the
 * tracing API (the server adds no interceptor, the worker reads no trace
 * context), so tracing costs nothing.
 *
 * What it traces: every RPC (server/trace-interceptor.ts) continuing the
 * caller's `traceparent`; the submitting call's context stored with the job
 * (queue/prepare-job.ts), from which the worker continues the trace with
 * the step's time in the queue, its run, its engine and its first token
 * (worker/step-trace.ts). One trace shows client → server → queue → worker →
 * engine.
 */
import { appendFileSync } from "node:fs";
import { context, propagation, trace } from "@opentelemetry/api";
import type { ReadableSpan, SpanExporter, SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { VERSION } from "./version.js";

let on = false;

/** Whether tracing is on in this process. */
export function tracingOn(): boolean {
  return on;
}

/** Whether the environment asks for traces. */
export function tracingWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED === "true") return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  if (exporters.includes("none")) return false;
  return exporters.length > 0 || Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.STEPQ_TRACES_FILE);
}

export interface Tracing {
  /** Sends what is buffered (call before exiting). */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * Starts tracing for process `service` ("stepq-server", "stepq-worker")
 * when the environment asks for it (or `exporters` are given, as tests do);
 * returns undefined when off.
 */
export async function startTracing(service: string, options: { env?: NodeJS.ProcessEnv; exporters?: SpanExporter[] } = {}): Promise<Tracing | undefined> {
  const env = options.env ?? process.env;
  if (!options.exporters && !tracingWanted(env)) return undefined;
  const { NodeTracerProvider } = await import("@opentelemetry/sdk-trace-node");
  const { BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor } = await import("@opentelemetry/sdk-trace-base");
  const { defaultResource, detectResources, envDetector, resourceFromAttributes } = await import("@opentelemetry/resources");
  const processors: SpanProcessor[] = (options.exporters ?? []).map((e) => new SimpleSpanProcessor(e));
  const wanted = (env.OTEL_TRACES_EXPORTER ?? "").split(",").map((s) => s.trim());
  if (!options.exporters) {
    if (wanted.includes("otlp") || env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) {
      const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-http");
      processors.push(new BatchSpanProcessor(new OTLPTraceExporter()));
    }
    if (wanted.includes("console")) processors.push(new SimpleSpanProcessor(new ConsoleSpanExporter()));
    if (env.STEPQ_TRACES_FILE) processors.push(new SimpleSpanProcessor(new JsonLinesExporter(env.STEPQ_TRACES_FILE)));
  }
  const resource = defaultResource()
    .merge(resourceFromAttributes({ "service.name": service, "service.version": VERSION }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: processors });
  // The global provider, W3C trace-context propagation and async context.
  provider.register();
  on = true;
  return {
    flush: () => provider.forceFlush(),
    async shutdown() {
      await provider.shutdown();
      on = false;
    },
  };
}

/** The W3C traceparent of the active span, when it is sampled; undefined otherwise (or when tracing is off). */
export function activeTraceparent(): string | undefined {
  if (!on) return undefined;
  const span = trace.getActiveSpan();
  if (!span?.isRecording()) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent;
}

/**
 * Writes each finished span as one JSON line (its ids, parent, name, kind,
 * times in Unix ns, attributes, events, status and service): for a machine
 * without a collector, and for the tests, which read spans written by
 * another process.
 */
class JsonLinesExporter implements SpanExporter {
  constructor(private readonly path: string) {}

  export(spans: ReadableSpan[], done: (result: { code: number; error?: Error }) => void): void {
    try {
      appendFileSync(this.path, spans.map((s) => `${JSON.stringify(spanJson(s))}\n`).join(""));
      done({ code: 0 });
    } catch (e) {
      done({ code: 1, error: e as Error });
    }
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const ns = ([s, n]: [number, number]) => String(BigInt(s) * 1_000_000_000n + BigInt(n));

/** A span as plain JSON (what JsonLinesExporter writes and the tests compare). */
export function spanJson(s: ReadableSpan) {
  return {
    traceId: s.spanContext().traceId,
    spanId: s.spanContext().spanId,
    parentSpanId: s.parentSpanContext?.spanId,
    name: s.name,
    kind: s.kind,
    startNs: ns(s.startTime),
    endNs: ns(s.endTime),
    attributes: s.attributes,
    events: s.events.map((e) => ({ name: e.name, timeNs: ns(e.time), attributes: e.attributes })),
    status: s.status,
    service: s.resource.attributes["service.name"],
  };
}
