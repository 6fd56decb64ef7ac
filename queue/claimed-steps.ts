/**
 * Decodes the CLAIMED records a claim or settle reply carries (layout in
 * queue/scripts/lib/claim.lua): each claimed step with its lease, operation
 * and dependencies' results, the operation's references resolved when the
 * result fits the queue's max-operation-bytes.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { type Operation, OperationSchema } from "../gen/stepq/v1/operation_pb.js";
import { StepResultSchema } from "../gen/stepq/v1/step_pb.js";
import { unpack, type Unpacked } from "../wire/msgpack.js";
import type { ClaimedStep } from "./leases.js";
import { resolvedBytes, resolveReferences } from "./references.js";

function items(v: Unpacked | undefined): Unpacked[] {
  return Array.isArray(v) ? v : v !== null && typeof v === "object" && !(v instanceof Uint8Array) ? Object.values(v) : [];
}

const NO_BYTES = new Uint8Array();
const NO_DEPENDENCIES: ClaimedStep["dependencies"] = Object.freeze([]);
const RS_KEY = new Set(["rs"]);

/**
 * The operation a claimed step runs: `op` with its references resolved, or
 * `op` itself and why not when resolving would exceed `maxBytes`.
 */
function resolved(
  op: Operation,
  opBytes: number,
  dependencies: ClaimedStep["dependencies"],
  maxBytes: number,
): { operation: Operation; tooLarge?: string } {
  // References may only name dependencies: a step without any has none.
  if (dependencies.length === 0) return { operation: op };
  const outputs = new Map(dependencies.map((d) => [d.name, d.result.text]));
  const bytes = resolvedBytes(op, opBytes, outputs);
  if (bytes > maxBytes) {
    return {
      operation: op,
      tooLarge:
        `the operation is about ${bytes} bytes once the dependency outputs it references are put in, ` +
        `over the queue's max-operation-bytes of ${maxBytes}; reference smaller outputs, or fewer times`,
    };
  }
  return { operation: resolveReferences(op, outputs) };
}

/**
 * The `count` CLAIMED records in `blob` (see queue/scripts/lib/claim.lua);
 * `maxOperationBytes` is the queue's cap, which the claim reply carries.
 */
export function decodeClaimed(blob: Buffer, count: number, maxOperationBytes: number): ClaimedStep[] {
  const steps: ClaimedStep[] = [];
  let p = 0;
  for (let k = 0; k < count; k++) {
    const idLen = blob[p] as number;
    const jobId = blob.toString("latin1", p + 1, p + 1 + idLen);
    p += 1 + idLen;
    const index = blob.readUInt16LE(p);
    const attempt = blob.readUInt32LE(p + 2);
    const leaseDeadline = blob.readIntLE(p + 6, 6);
    const submittedAt = blob.readIntLE(p + 12, 6);
    const readyAt = blob.readIntLE(p + 18, 6);
    const tpLen = blob[p + 24] as number;
    const traceparent = tpLen === 0 ? undefined : blob.toString("latin1", p + 25, p + 25 + tpLen);
    p += 25 + tpLen;
    const nameLen = blob[p] as number;
    const name = blob.toString("latin1", p + 1, p + 1 + nameLen);
    p += 1 + nameLen;
    const routeLen = blob.readUInt16LE(p);
    const route = blob.toString("utf8", p + 2, p + 2 + routeLen);
    p += 2 + routeLen;
    const opLen = blob.readUInt32LE(p);
    const op = fromBinary(OperationSchema, blob.subarray(p + 4, p + 4 + opLen));
    p += 4 + opLen;
    const timeoutMs = blob.readUInt32LE(p);
    p += 4;
    const depsLen = blob.readUInt32LE(p);
    const dependencies =
      depsLen === 0
        ? NO_DEPENDENCIES
        : items(unpack(blob.subarray(p + 4, p + 4 + depsLen), RS_KEY)).map((d) => {
            const dt = d as { n?: Unpacked; rs?: Unpacked };
            return { name: String(dt.n), result: fromBinary(StepResultSchema, dt.rs instanceof Uint8Array ? dt.rs : NO_BYTES) };
          });
    p += 4 + depsLen;
    // The lease fields are spelled out, not spread from leaseOf(): a spread
    // here gave these objects a slower shape and doubled the worker's CPU
    // per step in a drain (measured: ~9.5 → ~18.8 µs).
    const stepId = `${jobId}.${index}`;
    if (dependencies.length === 0) {
      steps.push({ jobId, index, attempt, stepId, member: `${stepId}|${attempt}`, name, route, operation: op, leaseDeadline, submittedAt, readyAt, traceparent, timeoutMs, dependencies });
    } else {
      const { operation, tooLarge } = resolved(op, opLen, dependencies, maxOperationBytes);
      steps.push({ jobId, index, attempt, stepId, member: `${stepId}|${attempt}`, name, route, operation, leaseDeadline, submittedAt, readyAt, traceparent, timeoutMs, dependencies, tooLarge });
    }
  }
  return steps;
}

/** The next due time in a reply (-1: none). */
export function dueAt(v: unknown): number | undefined {
  const n = Number(v);
  return n >= 0 ? n : undefined;
}
