import { decodeClaimed, dueAt } from "./claimed-steps.js";
import { scriptError } from "./errors.js";
import { type Completion, encodeCompletions } from "./lease-records.js";
import { type ClaimedStep, type LeaseContext, leaseScript } from "./leases.js";
import { ScriptCode } from "./script-codes.js";

/** The answer to a settle call. */
export interface Settled {
  /** Per completion: undefined when it took effect, else why not (a LeaseLostError, ...). */
  outcomes: (Error | undefined)[];
  steps: ClaimedStep[];
  nextDueAt?: number;
  redisNow: number;
  /** How many routes the queue has seen (it changes when steps with new requirements arrive). */
  routeCount: number;
}

/** What a worker settles: its finished steps (`completions`), and up to `claimMax` replacements to claim. */
export interface SettleOptions {
  workerId: string;
  routes: readonly string[];
  /** The worker's tenant filter (ClaimOptions.tenantFilter). */
  tenantFilter?: string;
  leaseMs: number;
  claimMax: number;
  completions: readonly Completion[];
}

/**
 * Completes a batch of a worker's finished steps and claims up to `claimMax`
 * replacements, in one call: the worker's hot path.
 */
export async function settleSteps(
  ctx: LeaseContext,
  opts: SettleOptions,
): Promise<Settled> {
  const args = [opts.workerId, opts.leaseMs, opts.claimMax, encodeCompletions(opts.completions), opts.tenantFilter ?? "", ...opts.routes];
  const reply = await leaseScript(ctx, "settleSteps", args, opts.workerId);
  const codes = reply[3] as Buffer;
  const outcomes = opts.completions.map((c, i) => {
    const code = codes[i] as number;
    return code === ScriptCode.OK ? undefined : scriptError("settleSteps", code, c.step.stepId);
  });
  return {
    outcomes,
    steps: decodeClaimed(reply[5] as Buffer, Number(reply[4]), Number(reply[6])),
    nextDueAt: dueAt(reply[2]),
    redisNow: Number(reply[1]),
    routeCount: Number(reply[7]),
  };
}
