/**
 * The records a worker's writes send to their scripts, little-endian, back
 * to back: APPEND (appendOutput.lua) and COMPLETION (settleSteps.lua). Both
 * start with the lease's head: job id (B length + bytes), 0-based step
 * index (H), attempt (I4), sequence number of the first output entry (I4).
 */
import { type Lease, type OutputBatch, packOutput } from "./leases.js";

/** A finished step to complete in a settle call. */
export interface Completion {
  /** The step's lease. */
  readonly step: Lease;
  /** `stepq.v1.StepResult` in protobuf binary (set: a step without a result cannot complete). */
  readonly result: Uint8Array | undefined;
  /** Output not written yet. */
  trailing: OutputBatch;
}

/**
 * Bytes of the head that APPEND and COMPLETION records start with: job id
 * (B length + bytes), 0-based step index (H), attempt (I4), sequence number
 * of the first output entry (I4).
 */
export function leaseHeadSize(lease: Lease): number {
  return 1 + lease.jobId.length + 2 + 4 + 4;
}

/** Writes that head at `p`; returns the position after it. */
export function writeLeaseHead(b: Buffer, p: number, lease: Lease, firstSeq: number): number {
  b[p] = lease.jobId.length;
  p = 1 + p + b.write(lease.jobId, p + 1, "latin1");
  p = b.writeUInt16LE(lease.index, p);
  p = b.writeUInt32LE(lease.attempt, p);
  return b.writeUInt32LE(firstSeq, p);
}

/** Writes `bytes` with their length (I4) at `p`; returns the position after them. */
export function writeSized(b: Buffer, p: number, bytes: Uint8Array): number {
  p = b.writeUInt32LE(bytes.length, p);
  b.set(bytes, p);
  return p + bytes.length;
}

/** The COMPLETION records of settleSteps.lua, back to back. */
export function encodeCompletions(completions: readonly Completion[]): Buffer {
  const outputs = completions.map((c) => packOutput(c.trailing.entries));
  let size = 0;
  completions.forEach((c, i) => {
    if (!c.result) throw new Error(`settleSteps: step ${c.step.stepId} has no result to complete with`);
    size += leaseHeadSize(c.step) + 4 + c.result.length + 4 + (outputs[i] as Buffer).length;
  });
  const b = Buffer.allocUnsafe(size);
  let p = 0;
  completions.forEach((c, i) => {
    p = writeLeaseHead(b, p, c.step, c.trailing.firstSeq);
    p = writeSized(b, p, c.result as Uint8Array);
    p = writeSized(b, p, outputs[i] as Buffer);
  });
  return b;
}
