/**
 * The real parts for end-to-end tests: a private Redis, a server on port 0,
 * a typed client over a real HTTP connection, and workers on demand.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { afterAll } from "vitest";
import { createStepqClient, type StepqClient } from "../../clients/node/client.js";
import { EchoOperationSchema, OperationSchema } from "../../gen/stepq/v1/operation_pb.js";
import { createLogger } from "../../runtime/logger.js";
import type { RedisProcess } from "../../runtime/redis-process.js";
import { type BuildServerOptions, buildServer, type StepqServer } from "../../server/main.js";
import { createEchoEngine } from "../../worker/engines/echo.js";
import type { Engine } from "../../worker/engines/engine.js";
import { createWorker, type Worker, type WorkerOptions } from "../../worker/worker.js";
import { useRedis } from "./redis.js";

export const quiet = createLogger("test", { level: process.env.STEPQ_TEST_LOG ? "debug" : "silent" });

export interface Stack {
  redis: RedisProcess;
  server: StepqServer;
  client: StepqClient;
  /** Starts a worker (stopped in afterAll). */
  worker(options?: Partial<WorkerOptions> & { engines?: Engine[] }): Promise<Worker>;
}

/** Redis + server + client for this file. */
export async function useStack(options: BuildServerOptions = {}): Promise<Stack> {
  const redis = await useRedis();
  const server = await buildServer({ redisUrl: redis.url, port: 0, logger: quiet, shutdownGraceMs: 500, ...options });
  const workers: Worker[] = [];
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop(200)));
    await server.close();
  });
  return {
    redis,
    server,
    client: createStepqClient({ baseUrl: server.url }),
    async worker(opts = {}) {
      const w = createWorker({
        redisUrl: redis.url,
        engines: opts.engines ?? [createEchoEngine()],
        logger: quiet,
        leaseMs: 5000,
        idleBlockMs: 1000,
        ...opts,
      });
      workers.push(w);
      await w.start();
      return w;
    },
  };
}

/** An echo operation. */
export function echo(value: MessageInitShape<typeof EchoOperationSchema> = {}) {
  return create(OperationSchema, { kind: { case: "echo", value } });
}

/** Resolves when `predicate` holds, polling every 20 ms (for asynchronous effects only). */
export async function eventually<T>(fn: () => Promise<T>, predicate: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (predicate(v)) return v;
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? String(x) : x))}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
