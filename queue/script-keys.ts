/**
 * The keys of every script, declared once: the fixed keys it touches,
 * passed as KEYS in this order (so Redis Cluster can route the call), and
 * the kinds of keys it derives at run time from what it reads (a step's
 * route, a job id popped from a list). Derived keys cannot be declared up
 * front; like every key of a queue they start with its prefix
 * `stepq:{<queue>}:`, whose `{<queue>}` hash tag puts them in the same slot
 * as the declared ones. Each script's header lists the same, and
 * test/script-keys.test.ts holds the headers, the call sites and what a
 * workload's scripts touch (MONITOR) to this table.
 *
 * The scripts address their keys through the generated `K.<name>` helpers
 * (the same strings as KEYS[i]); the first KEYS are also read positionally
 * where a script did so before (`leasesKey = KEYS[1]`).
 */
import type { ScriptName } from "./function-library.js";
import type { DerivedKeyName, FixedKeyName, QueueKeys } from "./keys.js";

/** A declared key: a fixed key of the queue, or `job`, the record of the job the call is about. */
export type DeclaredKey = FixedKeyName | "job";

export interface ScriptKeys {
  readonly keys: readonly DeclaredKey[];
  readonly derived: readonly DerivedKeyName[];
}

/** Keys every transition that emits events may touch when it flushes them (record-writes.lua). */
const EVENTS = ["events", "eventsExtra"] as const;
/** Keys a step reaching a final state may touch (finishing.lua, record-writes.lua). */
const FINISHING = ["dead", "retentions", "queueDeadlines"] as const;
/** Keys of the routes a step is queued on or woken from, and their tenants' lanes and rotations (queueing.lua). */
const ROUTE_KEYS = ["readyList", "readyZset", "fair", "delayed", "wake"] as const;
/** Keys of jobs found while the script runs. */
const JOB_KEYS = ["job", "log", "outputSeq", "expiries"] as const;

export const SCRIPT_KEYS = {
  submitJobs: { keys: ["seq", "jobIndex", ...EVENTS, "routes", "queueDeadlines", "load", "quotas", "limits", "counts"], derived: ["job", ...ROUTE_KEYS, "idempotency", "submitRate"] },
  claimSteps: { keys: ["leases", ...EVENTS, ...FINISHING, "limits", "load", "quotas", "counts", "routes"], derived: [...JOB_KEYS, ...ROUTE_KEYS, "throughput", "routeWorkers"] },
  extendLeases: { keys: ["leases"], derived: ["job"] },
  appendOutput: { keys: ["leases", "limits", ...EVENTS, ...FINISHING, "load", "counts"], derived: [...JOB_KEYS, ...ROUTE_KEYS, "throughput"] },
  reportProgress: { keys: ["job", "leases", ...EVENTS], derived: ["log"] },
  completeStep: { keys: ["job", "leases", ...EVENTS, ...FINISHING, "limits", "load", "counts"], derived: [...JOB_KEYS, ...ROUTE_KEYS, "throughput"] },
  failStep: { keys: ["job", "leases", ...EVENTS, ...FINISHING, "limits", "load", "counts"], derived: [...JOB_KEYS, ...ROUTE_KEYS, "throughput"] },
  cancelSteps: { keys: ["job", "leases", ...EVENTS, ...FINISHING, "load", "counts"], derived: [...JOB_KEYS, ...ROUTE_KEYS] },
  releaseSteps: { keys: ["leases", ...EVENTS, "queueDeadlines", "load", "counts"], derived: ["job", "log", ...ROUTE_KEYS] },
  recoverLeases: { keys: ["leases", ...EVENTS, ...FINISHING, "load", "counts"], derived: [...JOB_KEYS, ...ROUTE_KEYS, "throughput"] },
  expireQueued: { keys: ["queueDeadlines", ...EVENTS, "leases", "dead", "retentions", "load", "counts"], derived: [...JOB_KEYS, ...ROUTE_KEYS, "throughput"] },
  promoteScheduled: { keys: ["routes", ...EVENTS, "queueDeadlines", "counts"], derived: ["job", "log", ...ROUTE_KEYS] },
  purgeExpired: { keys: ["retentions", "jobIndex", "dead", "counts"], derived: ["job", "log", "outputSeq", "expiries", "idempotency"] },
  openLog: { keys: ["job"], derived: ["log"] },
  retryStep: { keys: ["job", "dead", ...EVENTS, "queueDeadlines", "load", "counts"], derived: ["log", ...ROUTE_KEYS] },
  purgeStep: { keys: ["job", "dead", "counts"], derived: [] },
  settleSteps: { keys: ["leases", ...EVENTS, ...FINISHING, "limits", "load", "quotas", "counts", "routes"], derived: [...JOB_KEYS, ...ROUTE_KEYS, "throughput", "routeWorkers"] },
  queuePosition: { keys: ["job", "limits", "load", "quotas"], derived: ["readyList", "readyZset", "fair"] },
  registerWorker: { keys: ["workers", "routes"], derived: ["worker", "routeWorkers"] },
  streamView: { keys: ["job"], derived: [] },
} as const satisfies Record<ScriptName, ScriptKeys>;

/** The KEYS of a call of script `name`; `jobId` for scripts that declare the job's record. */
export function scriptKeys(keys: QueueKeys, name: ScriptName, jobId?: string): string[] {
  return SCRIPT_KEYS[name].keys.map((k) => {
    if (k !== "job") return keys[k];
    if (jobId === undefined) throw new Error(`${name} declares the job's record: pass the job id`);
    return keys.job(jobId);
  });
}
