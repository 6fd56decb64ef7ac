/**
 * Every Redis key stepq uses, built in one place.
 *
 * All keys of a queue share the hash tag `{<queue>}` so every script touches
 * a single slot and is legal on Redis Cluster. The same templates generate
 * the Lua helpers the scripts use to build keys they discover at run time
 * (the route of a dependant step, for example), so TypeScript and Lua cannot
 * disagree on a key's name.
 */

/** Fixed keys: one per queue. */
const FIXED = {
  /** Sorted set: running steps, member `<stepId>|<attempt>`, score lease deadline (ms). */
  leases: "leases",
  /** Stream: the lifecycle log of the whole queue, capped. */
  events: "events",
  /** String: how many events the events stream's batch entries hold beyond one each (for the cap). */
  eventsExtra: "events:extra",
  /** Stream: one entry `j=<jobId>` per job, the index behind ListJobs. */
  jobIndex: "jobs",
  /** Set: the retention times (ms) that have an expiry list. */
  retentions: "retentions",
  /** Sorted set: dead-lettered steps (FAILED), score the time they failed. */
  dead: "dead",
  /** Sorted set: queued steps with a queue timeout, score the deadline. */
  queueDeadlines: "qdeadlines",
  /** String: the job sequence counter. */
  seq: "seq",
  /** Set: every route a step was ever submitted to. */
  routes: "routes",
  /** Hash: schema version and queue-wide facts. */
  meta: "meta",
  /**
   * Hash: the queue's size caps (`output`, `job`, `operation`, bytes) and each tenant's
   * running-steps quota (`running`), set by servers from their flags and read by the scripts
   * and workers (absent fields mean the defaults of queue/limits.ts); `quotas` = 1 once some
   * tenant has its own quota values (tenant-quotas.ts).
   */
  limits: "limits",
  /** Pub/sub channel: `<stepId>|<attempt>` of running steps that were cancelled. */
  cancelChannel: "cancel",
  /**
   * Pub/sub channel: a route with requirements that no step had before (submitJobs.lua); the
   * workers that meet them wake up and add it to the routes they claim from.
   */
  newRoutes: "new-routes",
  /** Hash: API key id -> the key's record (JSON: name, tenant, roles, times, and the SHA-256 of its secret). */
  apiKeys: "apikeys",
  /** Hash: SHA-256 (hex) of an API key's secret -> the key's id. Secrets themselves are never stored. */
  apiKeySecrets: "apikey-secrets",
  /** Pub/sub channel: the id of an API key that was revoked (servers drop it from their caches at once). */
  apiKeyRevocations: "apikey-revoked",
  /**
   * Hash: per tenant number `<n>`, `u:<n>` its steps not yet final and `r:<n>` its running steps
   * (leases held), kept by the scripts as steps move; its quotas count them.
   */
  load: "load",
  /**
   * Hash: `<letter>:<tenant number>:<route>` -> how many of the tenant's steps on the route are
   * in a state now (w waiting for dependencies, q queued, s scheduled, r running, d
   * dead-lettered), kept by the scripts as steps move (record-writes.lua); read by GetQueueStats.
   */
  counts: "counts",
  /** Hash: a tenant's own quota values, `waiting:<n>`, `running:<n>`, `rate:<n>`, replacing the defaults (0: none). */
  quotas: "quotas",
  /**
   * Hash: per old route or event name kept for the replaced systems' clients (docs/migration.md),
   * `<name>` its uses and `<name>@last` the Unix ms of its last use.
   */
  legacy: "legacy",
  /** Hash: webhook id -> its record (JSON, with its secret; queue/webhooks.ts). */
  webhooks: "webhooks",
  /** Hash: per webhook, `f:<id>` its failed attempts in a row and `d:<id>` why it is disabled. */
  webhookState: "webhook-state",
  /** Set: the ids of registered workers (worker-registry.ts); an id whose `worker:` record expired is dropped when listed. */
  workers: "workers",
  /** Hash: tenant name -> its number (records and events carry the number; see tenants.ts), and `#last` -> the last number given. */
  tenants: "tenants",
} as const;

/** Keys derived from an id or a route. `%` is replaced by the argument. */
const DERIVED = {
  /** String: a job and its steps, msgpack-encoded (see queue/job-record.ts). */
  job: "j:%",
  /** Stream: a job's log (lifecycle events, tokens, narration), created on first use. */
  log: "j:%:log",
  /** Hash: per step, `<attempt>:<next output sequence>`; makes output appends idempotent. */
  outputSeq: "j:%:oseq",
  /**
   * List: fresh default-priority steps of a lane, in submission order. A lane is one tenant's
   * share of a route: `<route>` for tenant 0, `<route>#<tenant number>` for the others.
   */
  readyList: "q:%",
  /** Sorted set: every other ready step of a lane, by priority then job age. */
  readyZset: "z:%",
  /**
   * Sorted set: the tenants with ready steps on a route (member: tenant number), score the
   * claims each has been given (its virtual time); claims serve the lowest (fair share).
   */
  fair: "f:%",
  /** Sorted set: scheduled steps of a route (not_before, retry backoff), score due time. */
  delayed: "d:%",
  /** List: wake-up marker of a route; idle workers block on it. */
  wake: "w:%",
  /**
   * Sorted set: the live workers claiming from a route (member: worker id), score when its
   * registration runs out (Redis ms); renewed with each heartbeat (registerWorker.lua). A claim
   * reads it to leave a step for another worker after it failed on this one.
   */
  routeWorkers: "rw:%",
  /** String: a running worker's record (JSON: routes, concurrency, steps in hand, version, times), expiring unless renewed. */
  worker: "worker:%",
  /**
   * Hash: the steps that finished in one 10-second bucket (`%` = its start, Unix seconds):
   * `s:<tenant number>:<route>` succeeded, `f:<tenant number>:<route>` failed for good; expires
   * 16 minutes after its last write.
   */
  throughput: "tp:%",
  /** Stream: a webhook's deliveries waiting to be received, in event order (fields id, name, body). */
  webhookQueue: "wh:%:q",
  /** List: a webhook's latest 100 delivery attempts (JSON), newest first. */
  webhookLog: "wh:%:log",
  /** String: the id of the server sending a webhook's deliveries, expiring unless renewed. */
  webhookLease: "wh:%:lease",
  /** String: `<tenant number>:<idempotency key>` -> `<jobId>|<request digest>`. */
  idempotency: "idem:%",
  /** String: jobs tenant `<number>` submitted in Unix second `<second>` (`%` = `<number>:<second>`), for its quota; gone after 2 s. */
  submitRate: "rate:%",
  /**
   * List: jobs that finished with retention `%` ms, two elements each (the
   * time it expires, then the job id), in the order they finished (so in
   * the order they expire).
   */
  expiries: "x:%",
} as const;

export type FixedKeyName = keyof typeof FIXED;
export type DerivedKeyName = keyof typeof DERIVED;

/** The keys of one queue. */
export type QueueKeys = { readonly prefix: string; readonly queue: string } & {
  readonly [K in FixedKeyName]: string;
} & { readonly [K in DerivedKeyName]: (arg: string) => string };

const QUEUE_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** Builds the keys of queue `queue` (default "default"). */
export function createKeys(queue = "default"): QueueKeys {
  if (!QUEUE_NAME.test(queue)) {
    throw new Error(`queue name must be 1-64 characters of [A-Za-z0-9_.-], got ${JSON.stringify(queue)}`);
  }
  const prefix = `stepq:{${queue}}:`;
  const keys: Record<string, unknown> = { prefix, queue };
  for (const [name, suffix] of Object.entries(FIXED)) keys[name] = prefix + suffix;
  for (const [name, template] of Object.entries(DERIVED)) {
    const [head, tail] = template.split("%") as [string, string];
    keys[name] = (arg: string) => prefix + head + arg + tail;
  }
  return keys as QueueKeys;
}

/**
 * Lua source defining `P` (the queue's key prefix), table `K` with one entry
 * per key, and `usePrefix(p)`, which each transition calls first with its
 * ARGV[1]: fixed keys are recomputed only when the prefix changes.
 */
export function luaKeyHelpers(): string {
  const lines = ["local P", "local K = {}"];
  for (const [name, template] of Object.entries(DERIVED)) {
    const [head, tail] = template.split("%") as [string, string];
    lines.push(`K.${name} = function(a) return P .. '${head}' .. a .. '${tail}' end`);
  }
  lines.push("local function usePrefix(p)", "  if p == P then return end", "  P = p");
  for (const [name, suffix] of Object.entries(FIXED)) lines.push(`  K.${name} = p .. '${suffix}'`);
  lines.push("end");
  return lines.join("\n");
}
