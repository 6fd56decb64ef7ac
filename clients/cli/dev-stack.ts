/**
 * The whole of stepq in one process tree, for a laptop: a private
 * redis-server (AOF on, data in the given folder) unless REDIS_URL points
 * elsewhere, the API server, and one worker. Used by `stepq dev` and
 * `stepq demo`.
 */
import { join } from "node:path";
import type { Logger } from "../../runtime/logger.js";
import { RedisNotInstalledError, type RedisProcess, redisServerAvailable, startRedisProcess } from "../../runtime/redis-process.js";
import { buildServer, type StepqServer } from "../../server/main.js";
import type { Engine } from "../../worker/engines/engine.js";
import { createWorker, type Worker } from "../../worker/worker.js";

export interface DevStackOptions {
  /** Folder for Redis data (and models); created if missing. */
  dataDir: string;
  /** Use this Redis instead of starting one. */
  redisUrl?: string;
  /** API port (0: any free port). */
  port: number;
  engines: Engine[];
  concurrency: number;
  logger: Logger;
}

export interface DevStack {
  server: StepqServer;
  worker: Worker;
  redisUrl: string;
  /** The redis-server this stack started, if any. */
  redis?: RedisProcess;
  /** Stops worker, server and Redis, in that order. */
  stop(): Promise<void>;
}

export async function startDevStack(o: DevStackOptions): Promise<DevStack> {
  let redis: RedisProcess | undefined;
  let redisUrl = o.redisUrl;
  if (!redisUrl) {
    if (!redisServerAvailable()) throw new RedisNotInstalledError("redis-server");
    const dir = join(o.dataDir, "redis");
    redis = await startRedisProcess({ dir, appendFsync: "everysec", pidFile: join(dir, "redis.pid") });
    redisUrl = redis.url;
  }
  let server: StepqServer | undefined;
  try {
    server = await buildServer({ redisUrl, port: o.port, logger: o.logger.child("server"), shutdownGraceMs: 2000 });
    const worker = createWorker({
      redisUrl,
      engines: o.engines,
      concurrency: o.concurrency,
      logger: o.logger.child("worker"),
      shutdownGraceMs: 5000,
    });
    await worker.start();
    const running = worker.runForever();
    const srv = server;
    let stopping: Promise<void> | undefined;
    return {
      server: srv,
      worker,
      redisUrl,
      redis,
      stop() {
        stopping ??= (async () => {
          await worker.stop();
          await running;
          await srv.close();
          await redis?.stop();
        })();
        return stopping;
      },
    };
  } catch (e) {
    await server?.close().catch(() => {});
    await redis?.stop().catch(() => {});
    if (e instanceof Error && /EADDRINUSE/.test(e.message)) {
      throw new Error(`port ${o.port} is in use; pass --port with another port, or --port 0 for any free one`);
    }
    throw e;
  }
}
