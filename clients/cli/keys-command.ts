/**
 * `stepq keys create|list|revoke`: API keys, managed straight in Redis.
 *
 * It talks to Redis, not to a server, on purpose: the first admin key has
 * to come from somewhere, and whoever can reach the queue's Redis already
 * holds everything a key could grant. The secret is printed once, on
 * stdout alone (so `$(stepq keys create …)` captures just it); what it is
 * goes to stderr.
 */
import { createApiKey, listApiKeys, revokeApiKey } from "../../queue/api-keys.js";
import { type OptionSpec, OptionError, REDIS_OPTIONS } from "../../runtime/options.js";
import type { Io } from "./command.js";
import { EXIT } from "./exit-codes.js";
import { type RedisSub as Sub, type RedisSubcommand, runRedisSubcommand } from "./redis-command.js";

const CREATE: readonly OptionSpec[] = [
  ...REDIS_OPTIONS,
  { flag: "name", kind: "string", help: "What the key is for, e.g. \"ci pipeline\" (required)." },
  { flag: "tenant", kind: "string", help: "The tenant its jobs belong to: 1-64 of [a-z0-9_-] (required)." },
  { flag: "role", kind: "list", help: "Its roles, comma-separated: submit, read, worker, admin (required)." },
  { flag: "expires", kind: "duration", help: "Expire after this long, e.g. 30d or 12h (default: never)." },
];

export const KEYS_HELP = `Usage: stepq keys create --name N --tenant T --role R[,R2] [--expires 30d]
       stepq keys list
       stepq keys revoke KEY_ID

API keys for servers run with --auth required (the default off loopback), each with a tenant and
roles (submit, read, worker, admin). The secret is printed once, by create; Redis keeps only its
hash. A revoked key stops working at once, and within a second on every server. Each subcommand
takes --redis-url and --queue.
`;

const create: Sub = async ({ redis, keys }, v, _positionals, io) => {
  if (!v.name || !v.tenant || !(v.role as string[] | undefined)?.length) {
    throw new OptionError("--name, --tenant and --role are required");
  }
  const expiresAt = v.expires ? Date.now() + (v.expires as number) : undefined;
  const roles = v.role as string[];
  const { key, secret } = await createApiKey(redis, keys, {
    name: v.name as string,
    tenant: v.tenant as string,
    roles,
    ...(expiresAt ? { expiresAt } : {}),
  });
  const until = expiresAt ? `, expires ${new Date(expiresAt).toISOString()}` : "";
  io.err.write(`created key ${key.id} "${key.name}" for tenant ${key.tenant} (${key.roles.join(", ")})${until}\n`);
  io.err.write("its secret, shown only now (servers take it as Authorization: Bearer <secret>):\n");
  io.out.write(`${secret}\n`);
  return EXIT.OK;
};

const list: Sub = async ({ redis, keys }, _v, _positionals, io) => {
  const all = await listApiKeys(redis, keys);
  if (all.length === 0) io.err.write("no API keys in this queue (stepq keys create makes one)\n");
  for (const k of all) {
    const expires = k.expiresAt ? new Date(k.expiresAt).toISOString() : "never";
    io.out.write(`${k.id}  ${k.tenant}  ${k.roles.join(",")}  expires ${expires}  ${k.name}\n`);
  }
  return EXIT.OK;
};

const revoke: Sub = async ({ redis, keys }, _v, positionals, io) => {
  const [id, extra] = positionals;
  if (id === undefined || extra !== undefined) throw new OptionError("give exactly one key id (see stepq keys list)");
  const k = await revokeApiKey(redis, keys, id);
  io.err.write(`revoked key ${k.id} "${k.name}" of tenant ${k.tenant}\n`);
  return EXIT.OK;
};

const SUBCOMMANDS: Record<string, RedisSubcommand> = {
  create: { usage: "stepq keys create --name N --tenant T --role R[,R2] [--expires D]", options: CREATE, run: create },
  list: { usage: "stepq keys list", options: REDIS_OPTIONS, run: list },
  revoke: { usage: "stepq keys revoke KEY_ID", options: REDIS_OPTIONS, run: revoke },
};

/** Runs `stepq keys <sub> ...`. */
export function runKeysCommand(argv: readonly string[], io: Io): Promise<number> {
  return runRedisSubcommand("keys", KEYS_HELP, SUBCOMMANDS, argv, io);
}
