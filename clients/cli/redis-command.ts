/**
 * CLI commands that work straight on the queue's Redis (`stepq keys`,
 * `stepq tenants`): picks the subcommand, parses its flags (--redis-url,
 * --queue, --redis-ca and its own), connects, runs it, and maps errors to
 * exit codes (UNAVAILABLE, NOT_FOUND, bad input, other).
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

/** A subcommand: its usage line, its flags and what it does. */
export interface RedisSubcommand {
  usage: string;
  options: readonly OptionSpec[];
  run: RedisSub;
}

/**
 * Runs `stepq <command> <sub> ...`: `help` is the command's help (its second
 * paragraph describes every subcommand); no subcommand prints it and is a
 * usage error.
 */
export function runRedisSubcommand(
  command: string,
  help: string,
  subcommands: Readonly<Record<string, RedisSubcommand>>,
  argv: readonly string[],
  io: Io,
): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h") {
    io.out.write(help);
    return Promise.resolve(sub === undefined ? EXIT.USAGE : EXIT.OK);
  }
  const chosen = subcommands[sub];
  if (!chosen) {
    const names = Object.keys(subcommands);
    io.err.write(`stepq ${command}: unknown subcommand "${sub}"; use ${names.slice(0, -1).join(", ")} or ${names[names.length - 1]}\n`);
    return Promise.resolve(EXIT.USAGE);
  }
  const description = help.split("\n\n")[1]?.replace(/\n/g, " ") ?? "";
  return runRedisCommand(`${command} ${sub}`, { usage: chosen.usage, description, options: chosen.options }, rest, io, chosen.run);
}
