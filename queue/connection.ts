/**
 * Redis connections with the behaviour stepq needs when Redis goes away:
 * reconnect forever with a capped backoff, fail a command that cannot be
 * sent within about a second (so an RPC answers UNAVAILABLE instead of
 * hanging), and never time out blocking reads, which wait on purpose.
 */
import { Redis, type RedisOptions } from "ioredis";
import { asQueueError, UnavailableError } from "./errors.js";

export type ConnectionRole =
  /** Ordinary commands and scripts. */
  | "command"
  /** Blocking reads (BLPOP, XREAD BLOCK) and subscriptions: no command timeout. */
  | "blocking"
  /** Pub/sub subscriber. */
  | "subscriber";

export interface ConnectionOptions {
  /** Client name shown by CLIENT LIST, e.g. "stepq-server". */
  name?: string;
  /** Per-command timeout of command connections, ms. */
  commandTimeoutMs?: number;
  /**
   * Called on connection errors (refused, reset...). ioredis reports them as
   * events while it reconnects; commands that fail meanwhile reject anyway.
   */
  onError?: (err: Error) => void;
  /** PEM of the CA a `rediss://` Redis's certificate chains to (default: the system's CAs). */
  ca?: string;
}

/** The default Redis URL: `REDIS_URL`, else a local Redis on 6379. */
export function defaultRedisUrl(): string {
  return process.env.REDIS_URL || "redis://127.0.0.1:6379";
}

/** Opens a connection to `url` for `role`. */
export function createRedis(url: string, role: ConnectionRole, options: ConnectionOptions = {}): Redis {
  const base: RedisOptions = {
    connectionName: options.name ? `${options.name}:${role}` : undefined,
    connectTimeout: 2000,
    // Reconnect forever, 50 ms .. 1 s apart: a Redis restart is survived.
    retryStrategy: (times) => Math.min(50 * times, 1000),
    // A command issued while disconnected waits for one reconnect attempt,
    // then fails; callers map that to UNAVAILABLE.
    maxRetriesPerRequest: 1,
    enableReadyCheck: true,
    // rediss:// turns TLS on by itself; a private CA goes with it.
    ...(options.ca ? { tls: { ca: options.ca } } : {}),
  };
  const redis =
    role === "command"
      ? // A command cut by a disconnect fails (UNAVAILABLE) rather than being
        // resent: a resent submit could create a second job. Callers retry
        // with idempotency keys (clients) or sequence numbers (output).
        new Redis(url, {
          ...base,
          // Not auto-pipelined: each command is written as it is issued, so
          // Redis works on earlier calls while this process prepares later
          // ones. Auto-pipelining holds commands until the end of the tick and
          // turns many concurrent calls into a ping-pong of big batches
          // (measured: ~35% fewer submits/s with 64 in flight).
          enableAutoPipelining: false,
          autoResendUnfulfilledCommands: false,
          commandTimeout: options.commandTimeoutMs ?? 5000,
        })
      : // A blocking read cut by a disconnect fails (after one reconnect
        // attempt) instead of being resent or kept forever, so its loop
        // notices and reads again with fresh state.
        new Redis(url, { ...base, autoResendUnfulfilledCommands: false });
  redis.on("error", options.onError ?? (() => {}));
  return redis;
}

/** Resolves once `redis` is ready, or rejects after `timeoutMs`. */
export async function waitReady(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === "ready") return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis not ready after ${timeoutMs} ms (status ${redis.status})`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off("ready", onReady);
    };
    redis.on("ready", onReady);
  });
}

/**
 * Runs `command` on a connection that does not resend (every stepq
 * connection) and fails it as soon as the connection closes. ioredis drops
 * a command cut by a disconnect WITHOUT settling it when its first
 * reconnect succeeds (a Redis restarted within ~50 ms, measured: a BLPOP
 * and a CLIENT ID both stayed pending forever). Command connections have
 * a command timeout; blocking reads have none, so each goes through this,
 * or one quick Redis restart would stop a worker's claims or every stream
 * of a server.
 */
export function failOnClose<T>(redis: Redis, command: () => Promise<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    const onClose = () =>
      reject(new UnavailableError("the connection to Redis closed during a blocking command; it is retried"));
    redis.once("close", onClose);
    command().then(
      (reply) => {
        redis.off("close", onClose);
        resolve(reply);
      },
      (e: unknown) => {
        redis.off("close", onClose);
        reject(asQueueError(e));
      },
    );
  });
}

/** Calls `onMessage` with every message published on `channel` from now on; `subscriber` is a subscriber connection. */
export async function followChannel(subscriber: Redis, channel: string, onMessage: (message: string) => void): Promise<void> {
  subscriber.on("message", (from: string, message: string) => {
    if (from === channel) onMessage(message);
  });
  try {
    await subscriber.subscribe(channel);
  } catch (e) {
    throw asQueueError(e);
  }
}
