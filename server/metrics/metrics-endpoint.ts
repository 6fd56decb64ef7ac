/**
 * GET /metrics in the Prometheus text format, shared by the server (on its
 * API port, next to /healthz) and the worker (its --metrics-port listener).
 * Every process has its own prom-client Registry, never the global default
 * one, so several servers and workers in one process (tests, `stepq dev`)
 * each report their own numbers.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { Registry } from "prom-client";

export const METRICS_PATH = "/metrics";

/** Whether `req` asks for the metrics (GET or HEAD /metrics, any query). */
export function isMetricsRequest(req: IncomingMessage | Http2ServerRequest): boolean {
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  return (req.url ?? "").split("?")[0] === METRICS_PATH;
}

/**
 * Answers with `registry`'s metrics. A collector that fails (Redis away)
 * leaves its series out and counts the error instead of failing the scrape
 * (see queue-depth-metrics.ts), so a 500 here means a bug, and is logged.
 */
export async function answerMetrics(registry: Registry, res: ServerResponse | Http2ServerResponse, log: (err: Error) => void): Promise<void> {
  let body: string;
  try {
    body = await registry.metrics();
  } catch (e) {
    log(e as Error);
    if (!res.headersSent && !res.destroyed) {
      (res as ServerResponse).writeHead(500, { "content-type": "text/plain" });
      res.end("metrics collection failed; the process log has the details\n");
    }
    return;
  }
  if (res.destroyed) return;
  (res as ServerResponse).writeHead(200, { "content-type": registry.contentType, "cache-control": "no-store" });
  res.end(body);
}
