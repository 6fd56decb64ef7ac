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
import { cachedFor } from "./cached-read.js";

const REFRESH_MS = 1000;

/** Throws when `routes` has one no live worker serves (`field` names the request's part). */
export type UnservedCheck = (routes: readonly string[], field: string) => Promise<void>;

export function createUnservedCheck(queue: Queue, policy: "wait" | "reject"): UnservedCheck | undefined {
  if (policy === "wait") return undefined;
  const served = cachedFor(REFRESH_MS, async () => new Set((await listWorkers(queue.redis, queue.keys)).flatMap((w) => w.routes)));
  return async (wanted, field) => {
    const live = await served.get();
    const missing = wanted.find((r) => !live.has(r));
    if (missing === undefined) return;
    const list = [...live].sort().join(", ") || "none: no worker is alive";
    throw new FailedPreconditionError(
      `${field}no live worker serves route "${missing}" (the live workers serve: ${list}); start a worker for it, or use a server with --unserved-routes wait, where steps wait for one`,
    );
  };
}
