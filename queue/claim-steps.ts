import { decodeClaimed, dueAt } from "./claimed-steps.js";
import { type ClaimedStep, type LeaseContext, leaseScript } from "./leases.js";

/** What a worker claims: up to `max` steps of `routes`, leased for `leaseMs`. */
export interface ClaimOptions {
  workerId: string;
  routes: readonly string[];
  leaseMs: number;
  max: number;
}

/** What a claim returns: the steps, and when the next scheduled one is due (`nextDueAt`, by Redis's clock `redisNow`). */
export interface Claimed {
  steps: ClaimedStep[];
  nextDueAt?: number;
  redisNow: number;
}

/**
 * Claims up to `max` steps of `routes` for `workerId`; also returns when the
 * next scheduled step of those routes is due, by Redis's clock (`redisNow`).
 */
export async function claimSteps(
  ctx: LeaseContext,
  opts: ClaimOptions,
): Promise<Claimed> {
  const args = [opts.workerId, opts.leaseMs, opts.max, ...opts.routes];
  const reply = await leaseScript(ctx, "claimSteps", args, opts.workerId);
  return {
    steps: decodeClaimed(reply[4] as Buffer, Number(reply[3]), Number(reply[5])),
    nextDueAt: dueAt(reply[2]),
    redisNow: Number(reply[1]),
  };
}
