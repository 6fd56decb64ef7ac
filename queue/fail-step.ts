import { type AttemptError, type Lease, type LeaseContext, leaseScript, NO_OUTPUT, type OutputBatch, packOutput } from "./leases.js";

/** Fails an attempt; the queue retries it or dead-letters the step. */
export async function failStep(
  ctx: LeaseContext,
  lease: Lease,
  error: AttemptError,
  trailing: OutputBatch = NO_OUTPUT,
): Promise<{ state: number; retryAt?: number }> {
  const reply = await leaseScript(
    ctx,
    "failStep",
    [
      lease.jobId,
      lease.index,
      lease.attempt,
      error.code,
      error.message.slice(0, 2000),
      error.retryable ? "1" : "0",
      Math.random(),
      trailing.firstSeq,
      packOutput(trailing.entries),
    ],
    lease.stepId,
    lease.jobId,
  );
  const retryAt = reply[2] as number;
  return { state: reply[1] as number, retryAt: retryAt > 0 ? retryAt : undefined };
}
