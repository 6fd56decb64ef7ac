/**
 * A worker's three Redis connections: commands (claims, writes), one that
 * blocks on the routes' wake-up markers, and a subscriber for cancellations.
 * Starting waits for Redis as long as it takes (logging every 5 s), so
 * workers can start before Redis does.
 */
import type { Redis } from "ioredis";
import { createRedis, waitReady } from "../queue/connection.js";
import type { Logger } from "../runtime/logger.js";

export interface WorkerConnections {
  commands: Redis;
  blocking: Redis;
  subscriber: Redis;
  close(): Promise<void>;
}

export async function connectWorker(redisUrl: string, log: Logger, ca?: string): Promise<WorkerConnections> {
  const onError = (err: Error) => log.debug("redis connection error", { error: err.message });
  const commands = createRedis(redisUrl, "command", { name: "stepq-worker", onError, ca });
  const blocking = createRedis(redisUrl, "blocking", { name: "stepq-worker", onError, ca });
  const subscriber = createRedis(redisUrl, "subscriber", { name: "stepq-worker", onError, ca });
  for (let waited = 0; ; waited += 5) {
    try {
      await waitReady(commands, 5000);
      break;
    } catch {
      log.warn("waiting for Redis", { redis: redisUrl.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@"), waitedS: waited + 5 });
    }
  }
  return {
    commands,
    blocking,
    subscriber,
    async close() {
      blocking.disconnect();
      subscriber.disconnect();
      await commands.quit().catch(() => commands.disconnect());
    },
  };
}
