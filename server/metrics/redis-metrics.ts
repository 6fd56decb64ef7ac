/**
 * Redis as this process sees it: the round-trip time of one PING per scrape
 * (no timer, so a process nobody scrapes sends nothing) and the errors of
 * its connections (ioredis "error" events) and of the reads the metrics
 * themselves make.
 */
import { Counter, Histogram, type Registry } from "prom-client";
import type { Redis } from "ioredis";
import { pingRedis } from "../../queue/redis-health.js";

export interface RedisMetrics {
  /** Counts one Redis error of kind `kind` (connection, ping, queue_counts, legacy_usage). */
  error(kind: string): void;
  /** Counts the "error" events of `connection` as kind "connection". */
  watch(connection: Redis): void;
}

/** Registers stepq_redis_ping_seconds and stepq_redis_errors_total; `redis` is pinged on each scrape. */
export function registerRedisMetrics(registry: Registry, redis: Redis): RedisMetrics {
  const errors = new Counter({
    name: "stepq_redis_errors_total",
    help: "Redis errors seen by this process: connection errors, and failed reads of the metrics (kind).",
    labelNames: ["kind"] as const,
    registers: [registry],
  });
  new Histogram({
    name: "stepq_redis_ping_seconds",
    help: "Round-trip time of a Redis PING, one per scrape of this process's /metrics.",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [registry],
    async collect() {
      try {
        this.observe(await pingRedis(redis));
      } catch {
        errors.inc({ kind: "ping" });
      }
    },
  });
  return {
    error: (kind) => errors.inc({ kind }),
    watch(connection) {
      connection.on("error", () => errors.inc({ kind: "connection" }));
    },
  };
}
