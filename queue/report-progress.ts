import { type Lease, type LeaseContext, leaseScript } from "./leases.js";

/** Records progress (0..1) and an optional one-line message. */
export async function reportProgress(ctx: LeaseContext, lease: Lease, progress: number, message = ""): Promise<void> {
  const args = [lease.jobId, lease.index, lease.attempt, Math.min(1, Math.max(0, progress)), message];
  await leaseScript(ctx, "reportProgress", args, lease.stepId, lease.jobId);
}
