/**
 * The records a worker's writes send to their scripts, back to back: APPEND
 * (appendOutput.lua) and COMPLETION (settleSteps.lua), declared in
 * wire/layouts.ts and held to it by test/layouts.test.ts. Both start with
 * the lease's head: job id, 0-based step index, attempt, sequence number of
 * the first output entry.
 */
import { LAYOUTS, overheadOf } from "../wire/layouts.js";
import { type Lease, type OutputBatch, packOutput } from "./leases.js";

/** A running step's buffered output, on its way to its job's log. */
export interface OutputAppend {
  lease: Lease;
  batch: OutputBatch;
}

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
function leaseHeadSize(lease: Lease): number {
  return LEASE_HEAD_OVERHEAD + lease.jobId.length;
}
const LEASE_HEAD_OVERHEAD = overheadOf(LAYOUTS.APPEND) - 4;

/** Writes that head at `p`; returns the position after it. */
function writeLeaseHead(b: Buffer, p: number, lease: Lease, firstSeq: number): number {
  b[p] = lease.jobId.length;
  p = 1 + p + b.write(lease.jobId, p + 1, "latin1");
  p = b.writeUInt16LE(lease.index, p);
  p = b.writeUInt32LE(lease.attempt, p);
  return b.writeUInt32LE(firstSeq, p);
}

/** Writes `bytes` with their length (I4) at `p`; returns the position after them. */
function writeSized(b: Buffer, p: number, bytes: Uint8Array): number {
  p = b.writeUInt32LE(bytes.length, p);
  b.set(bytes, p);
  return p + bytes.length;
}

/** The APPEND records of appendOutput.lua, back to back. */
export function encodeAppends(appends: readonly OutputAppend[]): Buffer {
  const packed = appends.map((a) => packOutput(a.batch.entries));
  let size = 0;
  appends.forEach((a, i) => (size += leaseHeadSize(a.lease) + 4 + (packed[i] as Buffer).length));
  const b = Buffer.allocUnsafe(size);
  let p = 0;
  appends.forEach(({ lease, batch }, i) => {
    p = writeLeaseHead(b, p, lease, batch.firstSeq);
    p = writeSized(b, p, packed[i] as Buffer);
  });
  return b;
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
