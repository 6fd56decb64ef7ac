/**
 * The server's /metrics: one Registry per server (not prom-client's global
 * one) holding the queue's depth and step counters (read at each scrape from
 * what the scripts keep; the same on every server of a queue), this server's
 * streams, its Redis round trip and errors, the old routes' usage, and
 * Node's process metrics. The step latency histograms are the workers'
 * (worker/metrics.ts). See docs/operations.md for every metric and where it
 * comes from.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { Redis } from "ioredis";
import { collectDefaultMetrics, Registry } from "prom-client";
import { readLegacyUsage } from "../../queue/legacy-usage.js";
import type { Queue } from "../../queue/queue.js";
import { readRouteCounts } from "../../queue/queue-stats.js";
import type { StreamHub } from "../stream-hub.js";
import type { StreamSlots } from "../stream-limit.js";
import { answerMetrics, isMetricsRequest } from "./metrics-endpoint.js";
import { registerLegacyUsageMetrics } from "./legacy-usage-metrics.js";
import { registerQueueDepthMetrics } from "./queue-depth-metrics.js";
import { registerRedisMetrics } from "./redis-metrics.js";
import { registerStepTotalsMetrics } from "./step-totals-metrics.js";
import { registerStreamMetrics } from "./stream-metrics.js";

export interface ServerMetrics {
  readonly registry: Registry;
  /** Answers GET /metrics; true if `req` was one. */
  handle(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): boolean;
}

export interface ServerMetricsDeps {
  queue: Queue;
  slots: StreamSlots;
  hub: StreamHub;
  /** Logs an unexpected error (a failed collection). */
  log: (err: Error) => void;
}

/**
 * One read shared by the collectors of a scrape: prom-client starts every
 * collect() of a scrape before awaiting any, so the depth gauge and the step
 * counters get the same reply of one MULTI. A failure calls `failed` once.
 */
function sharedRead<T>(read: () => Promise<T>, failed: () => void): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    if (!pending) {
      const p = read();
      pending = p;
      p.catch(failed).finally(() => {
        if (pending === p) pending = undefined;
      });
    }
    return pending;
  };
}

/** Builds the server's metrics. */
export function createServerMetrics(deps: ServerMetricsDeps): ServerMetrics {
  const { queue } = deps;
  const redis: Redis = queue.redis;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "stepq_server_" });
  const redisMetrics = registerRedisMetrics(registry, redis);
  redisMetrics.watch(redis);
  const counts = sharedRead(() => readRouteCounts(redis, queue.keys), () => redisMetrics.error("queue_counts"));
  registerQueueDepthMetrics(registry, async () => (await counts()).routes);
  registerStepTotalsMetrics(registry, async () => (await counts()).totals);
  registerLegacyUsageMetrics(registry, () => readLegacyUsage(redis, queue.keys), () => redisMetrics.error("legacy_usage"));
  registerStreamMetrics(registry, deps.slots, deps.hub);
  return {
    registry,
    handle(req, res) {
      if (!isMetricsRequest(req)) return false;
      void answerMetrics(registry, res, deps.log);
      return true;
    },
  };
}
