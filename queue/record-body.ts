/**
 * The part of a new one-step job's record that the client can write itself:
 * the step's spec and the cold map (see queue/scripts/lib/record.lua for the
 * whole layout). submitJobs.lua only puts the headers (id-dependent and
 * clock-dependent fields) in front, so a simple submit costs Redis no
 * decoding or encoding at all.
 */
import { FailurePolicy } from "../gen/stepq/v1/job_pb.js";
import { pack, type Packable } from "../wire/msgpack.js";

/** Step fields left out of the cold map when they hold these values (record.lua's DEFAULTS). */
export const STEP_DEFAULTS = { maxAttempts: 3, backoffInitialMs: 1000, backoffMaxMs: 60000 } as const;

/** What a one-step job's record body holds. */
export interface SimpleBody {
  name: string;
  route: string;
  operation: Uint8Array;
  timeoutMs: number;
  maxAttempts: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  idempotencyKey?: string;
  /** Labels as a flat key, value list. */
  labels: readonly string[];
  failurePolicy: FailurePolicy;
}

/** msgpack of an empty map. */
const EMPTY_MAP = Buffer.from([0x80]);

/** The step spec (SPEC in record.lua) followed by the cold map. */
export function encodeSimpleBody(b: SimpleBody): Buffer {
  const step: { [key: string]: Packable } = {};
  if (b.maxAttempts !== STEP_DEFAULTS.maxAttempts) step.ma = b.maxAttempts;
  if (b.backoffInitialMs !== STEP_DEFAULTS.backoffInitialMs) step.bi = b.backoffInitialMs;
  if (b.backoffMaxMs !== STEP_DEFAULTS.backoffMaxMs) step.bm = b.backoffMaxMs;
  const cold: { [key: string]: Packable } = {};
  if (b.idempotencyKey) cold.ik = b.idempotencyKey;
  if (b.labels.length > 0) cold.lb = b.labels;
  if (b.failurePolicy === FailurePolicy.CONTINUE) cold.fp = b.failurePolicy;
  if (Object.keys(step).length > 0) cold.s = [step];
  const coldBytes = Object.keys(cold).length === 0 ? EMPTY_MAP : pack(cold);
  const nameLen = Buffer.byteLength(b.name);
  const routeLen = Buffer.byteLength(b.route);
  if (nameLen > 255 || routeLen > 65535) throw new Error("step name or route too long for a record");
  const out = Buffer.allocUnsafe(1 + nameLen + 2 + routeLen + 4 + b.operation.length + 4 + coldBytes.length);
  let p = 0;
  out[p++] = nameLen;
  p += out.write(b.name, p, "utf8");
  p = out.writeUInt16LE(routeLen, p);
  p += out.write(b.route, p, "utf8");
  p = out.writeUInt32LE(b.operation.length, p);
  out.set(b.operation, p);
  p += b.operation.length;
  p = out.writeUInt32LE(b.timeoutMs, p);
  out.set(coldBytes, p);
  return out;
}
