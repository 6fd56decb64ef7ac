/**
 * A private redis-server per test file (random port, temp folder), stopped
 * after the file. Tests never touch a Redis they did not start.
 */
import { afterAll } from "vitest";
import type { Redis } from "ioredis";
import { createRedis, waitReady } from "../../queue/connection.js";
import { type RedisProcess, type RedisProcessOptions, startRedisProcess } from "../../runtime/redis-process.js";

/** Starts a redis-server for this file; stopped in afterAll. */
export async function useRedis(options: RedisProcessOptions = {}): Promise<RedisProcess> {
  const proc = await startRedisProcess(options);
  afterAll(async () => {
    await proc.kill("SIGKILL").catch(() => {});
  });
  return proc;
}

/** A command connection to `url`, closed in afterAll. */
export async function connect(url: string): Promise<Redis> {
  const redis = createRedis(url, "command", { name: "stepq-test" });
  await waitReady(redis);
  afterAll(() => {
    redis.disconnect();
  });
  return redis;
}
