/**
 * Runs a CLI subcommand that works straight on the queue's Redis (`stepq
 * keys`, `stepq tenants`): parses its flags (--redis-url, --queue,
 * --redis-ca and its own), connects, runs it, and maps errors to exit codes
 * (UNAVAILABLE, NOT_FOUND, bad input, other).
 */
import type { Redis } from "ioredis";
import { createRedis, waitReady } from "../../queue/connection.js";
import { InvalidArgumentError, NotFoundError, UnavailableError, asQueueError } from "../../queue/errors.js";
import { createKeys, type QueueKeys } from "../../queue/keys.js";
import { type OptionSpec, redisCaOption } from "../../runtime/options.js";
import { type Io, runCommand } from "./command.js";
import { EXIT } from "./exit-codes.js";

/** The queue's Redis and keys, as a subcommand gets them. */
export type Connected = { redis: Redis; keys: QueueKeys };

export type RedisSub = (c: Connected, v: Record<string, unknown>, positionals: string[], io: Io) => Promise<number>;

export function runRedisCommand(
  name: string,
  spec: { usage: string; description: string; options: readonly OptionSpec[] },
  argv: readonly string[],
  io: Io,
  run: RedisSub,
): Promise<number> {
  return runCommand(
    name,
    spec,
    argv,
    io,
    async (v, positionals) => {
      const keys = createKeys(v.queue as string);
      const ca = redisCaOption(v["redis-ca"] as string, v["redis-url"] as string);
      const redis = createRedis(v["redis-url"] as string, "command", { name: `stepq-${name.split(" ")[0]}`, ca });
      try {
        await waitReady(redis, 5000).catch((e: unknown) => {
          throw new UnavailableError(`cannot reach Redis at ${v["redis-url"] as string} (${(e as Error).message})`);
        });
        return await run({ redis, keys }, v, positionals, io);
      } finally {
        redis.disconnect();
      }
    },
    (e) => {
      const err = asQueueError(e);
      if (err instanceof UnavailableError) return { code: EXIT.UNAVAILABLE, message: err.message };
      if (err instanceof NotFoundError) return { code: EXIT.NOT_FOUND, message: err.message };
      if (err instanceof InvalidArgumentError) return { code: EXIT.USAGE, message: err.message };
      return { code: EXIT.FAILED, message: err.message };
    },
  );
}
