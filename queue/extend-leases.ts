import { type LeaseLostError, scriptError } from "./errors.js";
import { type Lease, type LeaseContext, leaseScript } from "./leases.js";
import { ScriptCode } from "./script-codes.js";

/**
 * Renews `leases`; returns, per lease, its new deadline, or why it is gone:
 * a StepCancelledError (the step was cancelled) or a LeaseLostError.
 */
export async function extendLeases(ctx: LeaseContext, leases: readonly Lease[], leaseMs: number): Promise<(number | LeaseLostError)[]> {
  if (leases.length === 0) return [];
  const reply = await leaseScript(ctx, "extendLeases", [leaseMs, ...leases.map((l) => l.member)], "leases");
  const held = reply[1] as number[];
  const deadlines = reply[2] as number[];
  return leases.map((l, i) =>
    held[i] === 1
      ? (deadlines[i] as number)
      : (scriptError("extendLeases", held[i] === 2 ? ScriptCode.CANCELLED : ScriptCode.LEASE_LOST, l.stepId) as LeaseLostError),
  );
}
