/**
 * GET /healthz: 200 when this server can reach Redis, 503 (with the reason)
 * when it cannot. Load balancers use it for readiness.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { Redis } from "ioredis";

export const HEALTH_PATH = "/healthz";

/** Answers a health request. */
export async function answerHealth(
  redis: Redis,
  res: ServerResponse | Http2ServerResponse,
  meta: { queue: string; version: string },
): Promise<void> {
  let body: Record<string, unknown>;
  let status = 200;
  try {
    const pong = await Promise.race([
      redis.ping(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error("PING timed out after 1 s")), 1000).unref()),
    ]);
    body = { status: "ok", redis: pong === "PONG" ? "ok" : String(pong), ...meta };
  } catch (e) {
    status = 503;
    body = { status: "unavailable", redis: (e as Error).message, ...meta };
  }
  const text = JSON.stringify(body);
  (res as ServerResponse).writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(text);
}

/** Whether `req` asks for the health check. */
export function isHealthRequest(req: IncomingMessage | Http2ServerRequest): boolean {
  return (req.method === "GET" || req.method === "HEAD") && (req.url ?? "").split("?")[0] === HEALTH_PATH;
}
