import { scriptError } from "./errors.js";
import { encodeAppends, type OutputAppend } from "./lease-records.js";
import { type LeaseContext, leaseScript } from "./leases.js";

export type { OutputAppend };
import { ScriptCode } from "./script-codes.js";


/**
 * Writes buffered output of running steps (idempotent per batch), all in
 * one call; resolves with one outcome per append (undefined: written).
 */
export async function appendOutputs(ctx: LeaseContext, appends: readonly OutputAppend[]): Promise<(Error | undefined)[]> {
  const reply = await leaseScript(ctx, "appendOutput", [encodeAppends(appends)], "output");
  const codes = reply[1] as Buffer;
  return appends.map((a, i) => (codes[i] === ScriptCode.OK ? undefined : scriptError("appendOutput", codes[i] ?? -1, a.lease.stepId)));
}
