import { decodeClaimed, dueAt } from "./claimed-steps.js";
import { type ClaimedStep, type LeaseContext, leaseScript } from "./leases.js";

/** What a worker claims: up to `max` steps of `routes`, leased for `leaseMs`. */
export interface ClaimOptions {
  workerId: string;
  routes: readonly string[];
  /**
   * Which tenants' steps it claims: "" (all), "+<n>,<n>" (only these tenant
   * numbers) or "-<n>,<n>" (all but these); see tenantFilterArg.
   */
  tenantFilter?: string;
  leaseMs: number;
  max: number;
}

/** The claim argument for a worker serving only tenants `only` (numbers), or all but `except`. */
export function tenantFilterArg(only: readonly number[], except: readonly number[]): string {
  if (only.length > 0) return `+${only.join(",")}`;
  if (except.length > 0) return `-${except.join(",")}`;
  return "";
}

/** What a claim returns: the steps, and when the next scheduled one is due (`nextDueAt`, by Redis's clock `redisNow`). */
export interface Claimed {
  steps: ClaimedStep[];
  nextDueAt?: number;
  redisNow: number;
  /** How many routes the queue has seen (it changes when steps with new requirements arrive). */
  routeCount: number;
}

/**
 * Claims up to `max` steps of `routes` for `workerId`; also returns when the
 * next scheduled step of those routes is due, by Redis's clock (`redisNow`).
 */
export async function claimSteps(
  ctx: LeaseContext,
  opts: ClaimOptions,
): Promise<Claimed> {
  const args = [opts.workerId, opts.leaseMs, opts.max, opts.tenantFilter ?? "", ...opts.routes];
  const reply = await leaseScript(ctx, "claimSteps", args, opts.workerId);
  return {
    steps: decodeClaimed(reply[4] as Buffer, Number(reply[3]), Number(reply[5])),
    nextDueAt: dueAt(reply[2]),
    redisNow: Number(reply[1]),
    routeCount: Number(reply[6]),
  };
}
