/**
 * A span for every RPC (OpenTelemetry), continuing the caller's W3C
 * `traceparent`: the first interceptor of the chain, so a call refused by
 * auth or a limit is traced too. A streaming call's span lasts until its
 * stream ends. Added only when tracing is on (runtime/tracing.ts).
 */
import { context, propagation, SpanKind, SpanStatusCode, trace, type Span } from "@opentelemetry/api";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { VERSION } from "../runtime/version.js";

const fromHeaders = {
  keys: (h: Headers) => [...h.keys()],
  get: (h: Headers, key: string) => h.get(key) ?? undefined,
};

function failed(span: Span, e: unknown): void {
  const err = ConnectError.from(e);
  span.setAttribute("rpc.connect_rpc.error_code", Code[err.code] ?? String(err.code));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err.rawMessage });
}

/** Ends `span` when the stream `messages` ends (or fails, or its reader stops). */
async function* endingWith<T>(messages: AsyncIterable<T>, span: Span): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (e) {
    failed(span, e);
    throw e;
  } finally {
    span.end();
  }
}

export function traceInterceptor(): Interceptor {
  const tracer = trace.getTracer("stepq-server", VERSION);
  return (next) => (req) => {
    const parent = propagation.extract(context.active(), req.header, fromHeaders);
    const attributes = { "rpc.system": "connect_rpc", "rpc.service": req.service.typeName, "rpc.method": req.method.name };
    return tracer.startActiveSpan(`${req.service.typeName}/${req.method.name}`, { kind: SpanKind.SERVER, attributes }, parent, async (span) => {
      let res;
      try {
        res = await next(req);
      } catch (e) {
        failed(span, e);
        span.end();
        throw e;
      }
      if (!res.stream) {
        span.end();
        return res;
      }
      return { ...res, message: endingWith(res.message, span) };
    });
  };
}
