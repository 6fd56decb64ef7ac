/**
 * `stepq tenants list|set`: each tenant's load against its quotas, and a
 * tenant's own quota values, straight in Redis (as `stepq keys`; over the
 * API it is TenantService). `list` prints one line per tenant on stdout;
 * what `set` did goes to stderr.
 */
import { type QuotaValues, listTenants, setTenantQuotas, type TenantLoad } from "../../queue/tenant-quotas.js";
import { type OptionSpec, OptionError, REDIS_OPTIONS } from "../../runtime/options.js";
import type { Io } from "./command.js";
import { EXIT } from "./exit-codes.js";
import { type RedisSub as Sub, type RedisSubcommand, runRedisSubcommand } from "./redis-command.js";

const SET: readonly OptionSpec[] = [
  ...REDIS_OPTIONS,
  { flag: "max-waiting", kind: "string", help: "Steps it may have waiting to run; 0: no quota, default: the servers' --max-queued-per-tenant." },
  { flag: "max-running", kind: "string", help: "Steps it may have running at once; 0: no quota, default: the servers' --max-running-per-tenant." },
  {
    flag: "max-submits-per-second",
    kind: "string",
    help: "Jobs it may submit per second; 0: no quota, default: the servers' --max-submits-per-second.",
  },
];

export const TENANTS_HELP = `Usage: stepq tenants list
       stepq tenants set TENANT [--max-waiting N|default] [--max-running N|default] [--max-submits-per-second N|default]

Each tenant's steps waiting and running now, and its own quota values. A quota's default is the
servers' flag; a tenant's own value replaces it (0: no quota). set replaces the tenant's own
values: a quota not given, or given as "default", follows the default again. It takes effect at
the next submit or claim, on every server and worker. Each subcommand takes --redis-url and --queue.
`;

/** A tenant's own value of a quota as the CLI shows it. */
const shown = (v: number | undefined) => (v === undefined ? "default" : v === 0 ? "none" : String(v));

function line(t: TenantLoad): string {
  const q = t.quotas;
  return `${t.name}  waiting ${t.waiting} (quota ${shown(q.waiting)})  running ${t.running} (quota ${shown(q.running)})  submits/s quota ${shown(q.rate)}\n`;
}

const list: Sub = async ({ redis, keys }, _v, _positionals, io) => {
  for (const t of await listTenants(redis, keys)) io.out.write(line(t));
  return EXIT.OK;
};

function quota(v: Record<string, unknown>, flag: string): number | undefined {
  const raw = v[flag] as string | undefined;
  if (raw === undefined || raw === "default") return undefined;
  if (!/^\d{1,10}$/.test(raw) || Number(raw) > 0xffffffff) {
    throw new OptionError(`--${flag}: ${JSON.stringify(raw)} is not a quota; give a whole number (0: no quota) or "default"`);
  }
  return Number(raw);
}

const set: Sub = async ({ redis, keys }, v, positionals, io) => {
  const [name, extra] = positionals;
  if (name === undefined || extra !== undefined) throw new OptionError("give exactly one tenant name (see stepq tenants list)");
  const values: QuotaValues = { waiting: quota(v, "max-waiting"), running: quota(v, "max-running"), rate: quota(v, "max-submits-per-second") };
  const t = await setTenantQuotas(redis, keys, name, values);
  io.err.write(`set the quotas of tenant ${t.name}: ${line(t)}`);
  return EXIT.OK;
};

const SUBCOMMANDS: Record<string, RedisSubcommand> = {
  list: { usage: "stepq tenants list", options: REDIS_OPTIONS, run: list },
  set: { usage: "stepq tenants set TENANT [--max-waiting N] [--max-running N] [--max-submits-per-second N]", options: SET, run: set },
};

/** Runs `stepq tenants <sub> ...`. */
export function runTenantsCommand(argv: readonly string[], io: Io): Promise<number> {
  return runRedisSubcommand("tenants", TENANTS_HELP, SUBCOMMANDS, argv, io);
}
