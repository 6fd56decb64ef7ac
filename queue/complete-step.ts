import { type Lease, type LeaseContext, leaseScript, NO_OUTPUT, type OutputBatch, packOutput } from "./leases.js";

/** Completes a step with its result, after writing `trailing` output. Returns the job's state. */
export async function completeStep(
  ctx: LeaseContext,
  lease: Lease,
  result: Uint8Array,
  trailing: OutputBatch = NO_OUTPUT,
): Promise<number> {
  const args = [lease.jobId, lease.index, lease.attempt, Buffer.from(result), trailing.firstSeq, packOutput(trailing.entries)];
  const reply = await leaseScript(ctx, "completeStep", args, lease.stepId, lease.jobId);
  return reply[1] as number;
}
