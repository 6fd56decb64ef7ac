/**
 * GET /healthz: 200 when this server can do its work, 503 (with the reason)
 * when Redis is unreachable or full (see queue/redis-health.ts). Load
 * balancers use it for readiness.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { Redis } from "ioredis";
import { checkRedis } from "../queue/redis-health.js";

export const HEALTH_PATH = "/healthz";

/** Answers a health request. */
export async function answerHealth(
  redis: Redis,
  res: ServerResponse | Http2ServerResponse,
  meta: { queue: string; version: string },
): Promise<void> {
  const health = await checkRedis(redis);
  const ok = health.status === "ok";
  const body = {
    status: ok ? "ok" : "unavailable",
    redis: ok ? "ok" : health.detail,
    ...(health.maxMemory ? { redisMemory: { used: health.usedMemory, max: health.maxMemory } } : {}),
    ...meta,
  };
  if (res.destroyed) return;
  (res as ServerResponse).writeHead(ok ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
}

/** Whether `req` asks for the health check. */
export function isHealthRequest(req: IncomingMessage | Http2ServerRequest): boolean {
  return (req.method === "GET" || req.method === "HEAD") && (req.url ?? "").split("?")[0] === HEALTH_PATH;
}
