/**
 * The server's policy for a step no live worker could claim
 * (--unserved-routes): `wait` (the default) queues it until such a worker
 * appears (its followers are told why it waits: server/queue-position.ts);
 * `reject` refuses the submit at once (FAILED_PRECONDITION naming the route,
 * and what the live workers serve or which requirement each misses), for
 * fleets where a route without a worker is a mistake, not a worker still
 * starting. A worker could claim a step when it serves the step's base
 * route, meets its requirements (queue/requirements.ts) and takes the
 * step's tenant. The live workers come from the worker registry
 * (server/live-fleet.ts, read at most every second).
 */
import { FailedPreconditionError } from "../queue/errors.js";
import { baseRoute, unmetRequirement } from "../queue/requirements.js";
import type { WorkerInfo } from "../queue/worker-registry.js";
import type { LiveFleet } from "./live-fleet.js";

/** Throws when `routes` has one no live worker could claim for tenant `tenant` (`field` names the request's part). */
export type UnservedCheck = (routes: readonly string[], field: string, tenant: number) => Promise<void>;

/** Why `w` would not claim a step of `route` from tenant `tenantName`; undefined when it would. */
export function whyNot(w: WorkerInfo, route: string, tenantName: string): string | undefined {
  const unmet = unmetRequirement(route, { id: w.id, routes: w.routes, tags: w.tags ?? [], memoryMb: w.memoryMb ?? 0 });
  if (unmet !== undefined) return unmet;
  if ((w.tenants ?? []).length > 0 && !w.tenants?.includes(tenantName)) return `takes only tenants ${w.tenants?.join(", ")}`;
  if (w.excludedTenants?.includes(tenantName)) return `excludes tenant ${tenantName}`;
  return undefined;
}

export function createUnservedCheck(live: LiveFleet, policy: "wait" | "reject"): UnservedCheck | undefined {
  if (policy === "wait") return undefined;
  return async (wanted, field, tenant) => {
    const { workers, names } = await live.get();
    const tenantName = names.get(tenant) ?? String(tenant);
    for (const route of new Set(wanted)) {
      if (workers.some((w) => whyNot(w, route, tenantName) === undefined)) continue;
      const base = baseRoute(route);
      const serving = workers.filter((w) => w.routes.includes(base));
      if (serving.length === 0) {
        const list = [...new Set(workers.flatMap((w) => w.routes))].sort().join(", ") || "none: no worker is alive";
        throw new FailedPreconditionError(
          `${field}no live worker serves route "${route}" (the live workers serve: ${list}); start a worker for it, or use a server with --unserved-routes wait, where steps wait for one`,
        );
      }
      const reasons = serving.slice(0, 5).map((w) => `${w.id} ${whyNot(w, route, tenantName)}`);
      if (serving.length > 5) reasons.push(`and ${serving.length - 5} more`);
      throw new FailedPreconditionError(
        `${field}no live worker could claim a step of route "${route}" for tenant ${tenantName}: of the workers serving ${base}, ${reasons.join("; ")}; ` +
          "relax the step's requirements, start a worker that meets them, or use a server with --unserved-routes wait",
      );
    }
  };
}
