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
import { cachedFor } from "../cached-read.js";
import type { StreamHub } from "../stream-hub.js";
import type { StreamSlots } from "../stream-limit.js";
import { answerMetrics, isMetricsRequest } from "./metrics-endpoint.js";
import { registerLegacyUsageMetrics } from "./legacy-usage-metrics.js";
import { registerQueueDepthMetrics } from "./queue-depth-metrics.js";
import { registerRedisMetrics } from "./redis-metrics.js";
import { registerStepTotalsMetrics } from "./step-totals-metrics.js";
import { registerStreamMetrics } from "./stream-metrics.js";

/** How long one read of the counts serves: the collectors of one scrape (they start together). */
const SCRAPE_READ_MS = 100;

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

/** Builds the server's metrics. */
export function createServerMetrics(deps: ServerMetricsDeps): ServerMetrics {
  const { queue } = deps;
  const redis: Redis = queue.redis;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "stepq_server_" });
  const redisMetrics = registerRedisMetrics(registry, redis);
  redisMetrics.watch(redis);
  // One read for the depth gauge and the step counters of a scrape (a failed one is counted once).
  const counts = cachedFor(SCRAPE_READ_MS, () =>
    readRouteCounts(redis, queue.keys).catch((e: unknown) => {
      redisMetrics.error("queue_counts");
      throw e;
    }),
  );
  registerQueueDepthMetrics(registry, async () => (await counts.get()).routes);
  registerStepTotalsMetrics(registry, async () => (await counts.get()).totals);
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
