/**
 * The server's /metrics: one Registry per server (not prom-client's global
 * one) holding the queue's depth and step counters and histograms (the same
 * on every server of a queue), this server's streams, its Redis round trip
 * and errors, the old routes' usage, and Node's process metrics.
 * See docs/operations.md for every metric and where it comes from.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { Redis } from "ioredis";
import { collectDefaultMetrics, Registry } from "prom-client";
import { createRedis } from "../../queue/connection.js";
import { readLegacyUsage } from "../../queue/legacy-usage.js";
import type { Queue } from "../../queue/queue.js";
import { readRouteCounts } from "../../queue/queue-stats.js";
import type { StreamHub } from "../stream-hub.js";
import type { StreamSlots } from "../stream-limit.js";
import { answerMetrics, isMetricsRequest } from "./metrics-endpoint.js";
import { registerLegacyUsageMetrics } from "./legacy-usage-metrics.js";
import { registerQueueDepthMetrics } from "./queue-depth-metrics.js";
import { registerRedisMetrics } from "./redis-metrics.js";
import { startStepEventMetrics } from "./step-event-metrics.js";
import { registerStreamMetrics } from "./stream-metrics.js";

export interface ServerMetrics {
  readonly registry: Registry;
  /** Answers GET /metrics; true if `req` was one. */
  handle(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): boolean;
  /** Stops reading the events stream. */
  stop(): void;
}

export interface ServerMetricsDeps {
  queue: Queue;
  redisUrl: string;
  redisCa?: string;
  slots: StreamSlots;
  hub: StreamHub;
  /** Logs an unexpected error (a failed collection, the events reader's errors are counted and logged throttled). */
  log: (err: Error) => void;
  onRedisError: (err: Error) => void;
}

/** Builds the server's metrics and starts reading the events stream (its own blocking connection). */
export async function createServerMetrics(deps: ServerMetricsDeps): Promise<ServerMetrics> {
  const { queue } = deps;
  const redis: Redis = queue.redis;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "stepq_server_" });
  const redisMetrics = registerRedisMetrics(registry, redis);
  redisMetrics.watch(redis);
  registerQueueDepthMetrics(
    registry,
    async () => (await readRouteCounts(redis, queue.keys)).routes,
    () => redisMetrics.error("queue_depth"),
  );
  registerLegacyUsageMetrics(registry, () => readLegacyUsage(redis, queue.keys), () => redisMetrics.error("legacy_usage"));
  registerStreamMetrics(registry, deps.slots, deps.hub);
  const reader = createRedis(deps.redisUrl, "blocking", { name: "stepq-metrics", onError: deps.onRedisError, ca: deps.redisCa });
  redisMetrics.watch(reader);
  const events = await startStepEventMetrics(registry, {
    redis,
    reader,
    eventsKey: queue.keys.events,
    onError: (err) => {
      redisMetrics.error("events");
      deps.onRedisError(err);
    },
  });
  return {
    registry,
    handle(req, res) {
      if (!isMetricsRequest(req)) return false;
      void answerMetrics(registry, res, deps.log);
      return true;
    },
    stop: () => events.stop(),
  };
}
