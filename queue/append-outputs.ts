import { scriptError } from "./errors.js";
import { leaseHeadSize, writeLeaseHead, writeSized } from "./lease-records.js";
import { type Lease, type LeaseContext, leaseScript, type OutputBatch, packOutput } from "./leases.js";
import { ScriptCode } from "./script-codes.js";

/** A running step's buffered output, on its way to its job's log. */
export interface OutputAppend {
  lease: Lease;
  batch: OutputBatch;
}

/**
 * Writes buffered output of running steps (idempotent per batch), all in
 * one call; resolves with one outcome per append (undefined: written).
 */
export async function appendOutputs(ctx: LeaseContext, appends: readonly OutputAppend[]): Promise<(Error | undefined)[]> {
  const packed = appends.map((a) => packOutput(a.batch.entries));
  let size = 0;
  appends.forEach((a, i) => (size += leaseHeadSize(a.lease) + 4 + (packed[i] as Buffer).length));
  const b = Buffer.allocUnsafe(size);
  let p = 0;
  appends.forEach(({ lease, batch }, i) => {
    p = writeLeaseHead(b, p, lease, batch.firstSeq);
    p = writeSized(b, p, packed[i] as Buffer);
  });
  const reply = await leaseScript(ctx, "appendOutput", [ctx.keys.leases], [b], "output");
  const codes = reply[1] as Buffer;
  return appends.map((a, i) => (codes[i] === ScriptCode.OK ? undefined : scriptError("appendOutput", codes[i] ?? -1, a.lease.stepId)));
}
