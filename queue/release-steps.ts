import { type Lease, type LeaseContext, leaseScript } from "./leases.js";

/**
 * Hands steps back to the queue without using an attempt: the worker is
 * stopping, or it claimed them ahead and stayed busy (`why`).
 */
export async function releaseSteps(
  ctx: LeaseContext,
  workerId: string,
  leases: readonly Lease[],
  why: "stopping" | "busy" = "stopping",
): Promise<number> {
  if (leases.length === 0) return 0;
  const args = [workerId, why, ...leases.map((l) => l.member)];
  const reply = await leaseScript(ctx, "releaseSteps", args, workerId);
  return reply[1] as number;
}
