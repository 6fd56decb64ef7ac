/**
 * The server's policy for a step no live worker serves (--unserved-routes):
 * `wait` (the default) queues it until a worker for its route appears;
 * `reject` refuses the submit at once (FAILED_PRECONDITION naming the route
 * and the routes the live workers serve), for fleets where a route without
 * a worker is a mistake, not a worker still starting. The live workers'
 * routes come from the worker registry, read at most every REFRESH_MS.
 */
import { FailedPreconditionError } from "../queue/errors.js";
import type { Queue } from "../queue/queue.js";
import { listWorkers } from "../queue/worker-registry.js";

const REFRESH_MS = 1000;

/** Throws when `routes` has one no live worker serves (`field` names the request's part). */
export type UnservedCheck = (routes: readonly string[], field: string) => Promise<void>;

export function createUnservedCheck(queue: Queue, policy: "wait" | "reject"): UnservedCheck | undefined {
  if (policy === "wait") return undefined;
  let at = 0;
  let served: Promise<Set<string>> | undefined;
  const routes = () => {
    if (!served || Date.now() - at > REFRESH_MS) {
      at = Date.now();
      served = listWorkers(queue.redis, queue.keys).then((ws) => new Set(ws.flatMap((w) => w.routes)));
      served.catch(() => (at = 0));
    }
    return served;
  };
  return async (wanted, field) => {
    const live = await routes();
    const missing = wanted.find((r) => !live.has(r));
    if (missing === undefined) return;
    const list = [...live].sort().join(", ") || "none: no worker is alive";
    throw new FailedPreconditionError(
      `${field}no live worker serves route "${missing}" (the live workers serve: ${list}); start a worker for it, or use a server with --unserved-routes wait, where steps wait for one`,
    );
  };
}
