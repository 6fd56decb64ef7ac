/**
 * Readiness and liveness over plain HTTP (gRPC clients ask
 * grpc.health.v1.Health: server/health-service.ts):
 *
 * - GET /readyz (and /healthz, its older name): 200 when this server can do
 *   its work, 503 with the reason when Redis is unreachable, full, or does
 *   not hold this version's Functions library (queue/redis-health.ts). Load
 *   balancers send clients elsewhere meanwhile.
 * - GET /livez: 200 while the process answers at all. A Redis outage is not
 *   a reason to restart the server (it recovers by itself), so liveness
 *   does not look at Redis.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { Redis } from "ioredis";
import { checkRedis } from "../queue/redis-health.js";

export const HEALTH_PATH = "/healthz";
const READY_PATHS = new Set([HEALTH_PATH, "/readyz"]);
const LIVE_PATH = "/livez";

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

/** Which check `req` asks for: readiness, liveness, or none. */
export function healthRequest(req: IncomingMessage | Http2ServerRequest): "ready" | "live" | undefined {
  if (req.method !== "GET" && req.method !== "HEAD") return undefined;
  const path = (req.url ?? "").split("?")[0] as string;
  if (READY_PATHS.has(path)) return "ready";
  return path === LIVE_PATH ? "live" : undefined;
}

/** Answers a liveness check: the process is here. */
export function answerLive(res: ServerResponse | Http2ServerResponse, meta: { version: string }): void {
  (res as ServerResponse).writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify({ status: "ok", ...meta }));
}
