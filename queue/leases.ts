/**
 * The worker's side of the queue: claim steps, renew leases, write output,
 * report progress, and finish (complete, fail, release). Every write after
 * the claim carries the lease (step + attempt = fencing token) and is
 * refused with LeaseLostError once the lease is gone.
 */
import { fromBinary } from "@bufbuild/protobuf";
import type { Redis } from "ioredis";
import { type Operation, OperationSchema } from "../gen/stepq/v1/operation_pb.js";
import { type StepResult, StepResultSchema } from "../gen/stepq/v1/step_pb.js";
import { asQueueError, type LeaseLostError, scriptError } from "./errors.js";
import { stepIdOf } from "./ids.js";
import type { QueueKeys } from "./keys.js";
import { pack, unpack, type Unpacked } from "../wire/msgpack.js";
import { resolvedBytes, resolveReferences } from "./references.js";
import { ScriptCode } from "./script-codes.js";
import { runScript } from "./function-library.js";

/** What identifies one attempt of one step: the worker's right to write. */
export interface Lease {
  readonly jobId: string;
  /** 0-based index of the step in its job. */
  readonly index: number;
  /** The attempt number, which is also the fencing token. */
  readonly attempt: number;
  readonly stepId: string;
  /** Member of the leases zset: `<stepId>|<attempt>`. */
  readonly member: string;
}

/** A step handed to a worker by claimSteps. */
export interface ClaimedStep extends Lease {
  readonly name: string;
  readonly route: string;
  /** The operation, with references to dependency outputs resolved. */
  readonly operation: Operation;
  /** Unix ms when the lease runs out unless renewed. */
  readonly leaseDeadline: number;
  /** Execution time limit of this attempt, ms (0: none). */
  readonly timeoutMs: number;
  readonly dependencies: readonly { name: string; result: StepResult }[];
  /**
   * Set when the operation, once its references are resolved, would be
   * larger than the queue's max-operation-bytes: `operation` is then left
   * unresolved, and the worker must fail the step (OPERATION_TOO_LARGE) with
   * this message instead of running it.
   */
  readonly tooLarge?: string;
}

/** Output waiting to be written: token chunks and narration lines, in order. */
export type OutputEntry = { kind: "tokens"; firstIndex: number; texts: string[] } | { kind: "narration"; level: number; text: string };

/**
 * Consecutive output entries of one attempt. `firstSeq` numbers the first
 * entry within the attempt's output (0, 1, 2, ...), which makes a resend of
 * the same batch harmless.
 */
export interface OutputBatch {
  firstSeq: number;
  entries: readonly OutputEntry[];
}

const NO_OUTPUT: OutputBatch = { firstSeq: 0, entries: [] };

/** A step error as a worker reports it. */
export interface AttemptError {
  /** `stepq.v1.StepErrorCode` number. */
  code: number;
  message: string;
  /** Whether another attempt may succeed. */
  retryable: boolean;
}

export interface LeaseContext {
  readonly redis: Redis;
  readonly keys: QueueKeys;
}

/** Builds the lease of (jobId, index, attempt). */
export function leaseOf(jobId: string, index: number, attempt: number): Lease {
  const stepId = stepIdOf(jobId, index);
  return { jobId, index, attempt, stepId, member: `${stepId}|${attempt}` };
}

const EMPTY = Buffer.alloc(0);

/** Encodes output entries for the scripts (empty when there are none). */
export function packOutput(entries: readonly OutputEntry[]): Buffer {
  if (entries.length === 0) return EMPTY;
  return pack(
    entries.map((e) =>
      e.kind === "tokens" ? { k: "t", i: e.firstIndex, x: JSON.stringify(e.texts) } : { k: "n", l: e.level, x: e.text },
    ),
  );
}

type Reply = [number, ...unknown[]];

async function call(ctx: LeaseContext, name: Parameters<typeof runScript>[1], keys: string[], args: (string | Buffer | number)[]) {
  try {
    return (await runScript(ctx.redis, name, keys, [ctx.keys.prefix, ...args])) as Reply;
  } catch (e) {
    throw asQueueError(e);
  }
}

function check(reply: Reply, script: string, subject: string): Reply {
  if (reply[0] !== ScriptCode.OK) throw scriptError(script, reply[0], subject);
  return reply;
}

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
function decodeClaimed(blob: Buffer, count: number, maxOperationBytes: number): ClaimedStep[] {
  const steps: ClaimedStep[] = [];
  let p = 0;
  for (let k = 0; k < count; k++) {
    const idLen = blob[p] as number;
    const jobId = blob.toString("latin1", p + 1, p + 1 + idLen);
    p += 1 + idLen;
    const index = blob.readUInt16LE(p);
    const attempt = blob.readUInt32LE(p + 2);
    const leaseDeadline = blob.readIntLE(p + 6, 6);
    const nameLen = blob[p + 12] as number;
    const name = blob.toString("latin1", p + 13, p + 13 + nameLen);
    p += 13 + nameLen;
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
      steps.push({ jobId, index, attempt, stepId, member: `${stepId}|${attempt}`, name, route, operation: op, leaseDeadline, timeoutMs, dependencies });
    } else {
      const { operation, tooLarge } = resolved(op, opLen, dependencies, maxOperationBytes);
      steps.push({ jobId, index, attempt, stepId, member: `${stepId}|${attempt}`, name, route, operation, leaseDeadline, timeoutMs, dependencies, tooLarge });
    }
  }
  return steps;
}

/** The next due time in a reply (-1: none). */
function dueAt(v: unknown): number | undefined {
  const n = Number(v);
  return n >= 0 ? n : undefined;
}

/**
 * Claims up to `max` steps of `routes` for `workerId`; also returns when the
 * next scheduled step of those routes is due, by Redis's clock (`redisNow`).
 */
export async function claimSteps(
  ctx: LeaseContext,
  opts: { workerId: string; routes: readonly string[]; leaseMs: number; max: number },
): Promise<{ steps: ClaimedStep[]; nextDueAt?: number; redisNow: number }> {
  const reply = check(
    await call(ctx, "claimSteps", [ctx.keys.leases, ctx.keys.events], [opts.workerId, opts.leaseMs, opts.max, ...opts.routes]),
    "claimSteps",
    opts.workerId,
  );
  return {
    steps: decodeClaimed(reply[4] as Buffer, Number(reply[3]), Number(reply[5])),
    nextDueAt: dueAt(reply[2]),
    redisNow: Number(reply[1]),
  };
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

/** The answer to a settle call. */
export interface Settled {
  /** Per completion: undefined when it took effect, else why not (a LeaseLostError, ...). */
  outcomes: (Error | undefined)[];
  steps: ClaimedStep[];
  nextDueAt?: number;
  redisNow: number;
}

/**
 * Completes a batch of a worker's finished steps and claims up to `claimMax`
 * replacements, in one call: the worker's hot path.
 */
export async function settleSteps(
  ctx: LeaseContext,
  opts: { workerId: string; routes: readonly string[]; leaseMs: number; claimMax: number; completions: readonly Completion[] },
): Promise<Settled> {
  const reply = check(
    await call(ctx, "settleSteps", [ctx.keys.leases, ctx.keys.events], [
      opts.workerId,
      opts.leaseMs,
      opts.claimMax,
      encodeCompletions(opts.completions),
      ...opts.routes,
    ]),
    "settleSteps",
    opts.workerId,
  );
  const codes = reply[3] as Buffer;
  const outcomes = opts.completions.map((c, i) => {
    const code = codes[i] as number;
    return code === ScriptCode.OK ? undefined : scriptError("settleSteps", code, c.step.stepId);
  });
  return {
    outcomes,
    steps: decodeClaimed(reply[5] as Buffer, Number(reply[4]), Number(reply[6])),
    nextDueAt: dueAt(reply[2]),
    redisNow: Number(reply[1]),
  };
}

/**
 * Bytes of the head that APPEND and COMPLETION records start with: job id
 * (B length + bytes), 0-based step index (H), attempt (I4), sequence number
 * of the first output entry (I4).
 */
function leaseHeadSize(lease: Lease): number {
  return 1 + lease.jobId.length + 2 + 4 + 4;
}

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

/** The COMPLETION records of settleSteps.lua, back to back. */
function encodeCompletions(completions: readonly Completion[]): Buffer {
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

/**
 * Renews `leases`; returns, per lease, its new deadline, or why it is gone:
 * a StepCancelledError (the step was cancelled) or a LeaseLostError.
 */
export async function extendLeases(ctx: LeaseContext, leases: readonly Lease[], leaseMs: number): Promise<(number | LeaseLostError)[]> {
  if (leases.length === 0) return [];
  const reply = check(
    await call(ctx, "extendLeases", [ctx.keys.leases], [leaseMs, ...leases.map((l) => l.member)]),
    "extendLeases",
    "leases",
  );
  const held = reply[1] as number[];
  const deadlines = reply[2] as number[];
  return leases.map((l, i) =>
    held[i] === 1
      ? (deadlines[i] as number)
      : (scriptError("extendLeases", held[i] === 2 ? ScriptCode.CANCELLED : ScriptCode.LEASE_LOST, l.stepId) as LeaseLostError),
  );
}

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
  const reply = check(await call(ctx, "appendOutput", [ctx.keys.leases], [b]), "appendOutput", "output");
  const codes = reply[1] as Buffer;
  return appends.map((a, i) => (codes[i] === ScriptCode.OK ? undefined : scriptError("appendOutput", codes[i] ?? -1, a.lease.stepId)));
}

/** Records progress (0..1) and an optional one-line message. */
export async function reportProgress(ctx: LeaseContext, lease: Lease, progress: number, message = ""): Promise<void> {
  check(
    await call(
      ctx,
      "reportProgress",
      [ctx.keys.job(lease.jobId), ctx.keys.leases, ctx.keys.events],
      [lease.jobId, lease.index, lease.attempt, Math.min(1, Math.max(0, progress)), message],
    ),
    "reportProgress",
    lease.stepId,
  );
}

/** Completes a step with its result, after writing `trailing` output. Returns the job's state. */
export async function completeStep(
  ctx: LeaseContext,
  lease: Lease,
  result: Uint8Array,
  trailing: OutputBatch = NO_OUTPUT,
): Promise<number> {
  const reply = check(
    await call(
      ctx,
      "completeStep",
      [ctx.keys.job(lease.jobId), ctx.keys.leases, ctx.keys.events],
      [lease.jobId, lease.index, lease.attempt, Buffer.from(result), trailing.firstSeq, packOutput(trailing.entries)],
    ),
    "completeStep",
    lease.stepId,
  );
  return reply[1] as number;
}

/** Fails an attempt; the queue retries it or dead-letters the step. */
export async function failStep(
  ctx: LeaseContext,
  lease: Lease,
  error: AttemptError,
  trailing: OutputBatch = NO_OUTPUT,
): Promise<{ state: number; retryAt?: number }> {
  const reply = check(
    await call(
      ctx,
      "failStep",
      [ctx.keys.job(lease.jobId), ctx.keys.leases, ctx.keys.events],
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
    ),
    "failStep",
    lease.stepId,
  );
  const retryAt = reply[2] as number;
  return { state: reply[1] as number, retryAt: retryAt > 0 ? retryAt : undefined };
}

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
  const reply = check(
    await call(ctx, "releaseSteps", [ctx.keys.leases, ctx.keys.events], [workerId, why, ...leases.map((l) => l.member)]),
    "releaseSteps",
    workerId,
  );
  return reply[1] as number;
}
