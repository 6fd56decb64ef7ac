/**
 * The server's Redis side: the two connections (commands, and the hub's
 * blocking reads), the queue, the stream hub and the sweeper, with the size
 * limits published to Redis now and after every reconnect. `buildServer`
 * puts the HTTP side in front of it.
 */
import type { Redis } from "ioredis";
import { createRedis } from "../queue/connection.js";
import { createQueue, type Queue } from "../queue/queue.js";
import { redisSafetyWarnings } from "../queue/redis-safety.js";
import { startSweeper } from "../queue/sweeper.js";
import type { Logger } from "../runtime/logger.js";
import { isLoopback, type ServerConfig } from "./config.js";
import { createStreamHub, type StreamHub } from "./stream-hub.js";
import type { WebhookDeps } from "./webhook-service.js";
import { createWebhookDirectory } from "./webhooks/webhook-directory.js";
import { startFanOut } from "./webhooks/webhook-fanout.js";
import { startSenders } from "./webhooks/webhook-sender.js";
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";

export interface ServerBackend {
  readonly redis: Redis;
  readonly queue: Queue;
  readonly hub: StreamHub;
  /** The webhook deliveries' view of the webhooks, and the attempt timeout (WebhookService). */
  readonly webhooks: WebhookDeps;
  /** Logs a Redis connection error, at most once per 5 s. */
  readonly onRedisError: (err: Error) => void;
  /** Ends the hub's readers (streams end) and stops the sweeper; Redis stays open for requests still finishing. */
  stop(): void;
  /** Closes both connections. */
  close(): Promise<void>;
}

/** Connects to Redis and starts the queue, hub and sweeper. */
export async function openServerBackend(config: ServerConfig, log: Logger): Promise<ServerBackend> {
  const onRedisError = throttled((err: Error) => log.warn("redis connection error", { error: err.message }), 5000);
  const redis: Redis = createRedis(config.redisUrl, "command", { name: "stepq-server", onError: onRedisError, ca: config.redisCa });
  const reader: Redis = createRedis(config.redisUrl, "blocking", { name: "stepq-hub", onError: onRedisError, ca: config.redisCa });

  const queue = createQueue({ redis, queue: config.queue, limits: config.limits, eventsMaxLen: config.eventsMaxLen });
  const hub = createStreamHub({
    redis,
    reader,
    maxStreamBytes: config.maxStreamBufferBytes,
    maxTotalBytes: config.maxStreamBuffersBytes,
    stallMs: config.streamStallTimeoutMs,
    onError: onRedisError,
  });
  const sweeper = startSweeper(queue, { intervalMs: config.sweepIntervalMs, onError: (err) => onRedisError(err) });
  // Webhooks: this server's share of the events (fan-out) and of the deliveries (senders).
  const directory = createWebhookDirectory(queue);
  const instance = `${hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`;
  const fanOut = startFanOut(queue, directory, instance, onRedisError);
  // Private addresses are webhook targets only when asked for, or for a server on loopback (webhooks/webhook-targets.ts).
  const post = { timeoutMs: config.webhookTimeoutMs, privateTargets: config.webhookTargets === "any" || (config.webhookTargets === "" && isLoopback(config.host)) };
  const senders = startSenders(queue, directory, { holder: instance, post, disableAfter: config.webhookDisableAfter, log: onRedisError });
  void redisSafetyWarnings(redis).then((warnings) => {
    for (const w of warnings) log.warn(w);
  });
  // The size caps the scripts and workers enforce are the queue's, in Redis:
  // set now, and again after every reconnect (a Redis restarted without its
  // data has lost them).
  const publishLimits = () =>
    queue.publishLimits().then(
      (warning) => warning && log.warn(warning),
      (e: unknown) => log.warn("could not set the queue's size limits in Redis; its scripts use the defaults until a server can", { error: (e as Error).message }),
    );
  redis.on("ready", () => void publishLimits());
  await publishLimits();

  return {
    redis,
    queue,
    hub,
    webhooks: { directory, post },
    onRedisError,
    stop() {
      sweeper.stop();
      hub.close();
    },
    async close() {
      await Promise.all([fanOut.stop(), senders.stop()]);
      reader.disconnect();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

function throttled(fn: (err: Error) => void, everyMs: number): (err: Error) => void {
  let last = 0;
  return (err) => {
    const now = Date.now();
    if (now - last >= everyMs) {
      last = now;
      fn(err);
    }
  };
}
