/**
 * The worker's side of the queue, shared by its operations (one file each:
 * claim-steps, settle-steps, extend-leases, append-outputs, report-progress,
 * complete-step, fail-step, release-steps): what a lease is, the output a
 * running step writes, and the one way they call their scripts. Every write
 * after the claim carries the lease (step + attempt = fencing token) and is
 * refused with LeaseLostError once the lease is gone.
 */
import type { Operation } from "../gen/stepq/v1/operation_pb.js";
import type { StepResult } from "../gen/stepq/v1/step_pb.js";
import { scriptError } from "./errors.js";
import { stepIdOf } from "./ids.js";
import { type QueueContext, queueScript, type ScriptReply } from "./queue-script.js";
import { pack } from "../wire/msgpack.js";
import { ScriptCode } from "./script-codes.js";
import type { ScriptName } from "./function-library.js";

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
  /** Unix ms when its job was submitted, by Redis's clock. */
  readonly submittedAt: number;
  /** Unix ms when this attempt's step became ready to claim (submitted, dependencies met, retry or schedule due, handed back), by Redis's clock. */
  readonly readyAt: number;
  /** The W3C traceparent its job's submit stored (a traced submit), which the worker's spans continue. */
  readonly traceparent?: string;
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

export const NO_OUTPUT: OutputBatch = { firstSeq: 0, entries: [] };

/** A step error as a worker reports it. */
export interface AttemptError {
  /** `stepq.v1.StepErrorCode` number. */
  code: number;
  message: string;
  /** Whether another attempt may succeed. */
  retryable: boolean;
}

/** What the worker's operations need: the command connection and the queue's keys (the same as every queue operation). */
export type LeaseContext = QueueContext;

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

export type Reply = ScriptReply;

/**
 * Runs lease script `name` (its KEYS from queue/script-keys.ts; `jobId` for
 * those declaring the job's record) and returns its reply; a refusal (not
 * OK) throws the script's error naming `subject`.
 */
export async function leaseScript(
  ctx: LeaseContext,
  name: ScriptName,
  args: (string | Buffer | number)[],
  subject: string,
  jobId?: string,
): Promise<Reply> {
  const reply = await queueScript(ctx, name, args, jobId);
  if (reply[0] !== ScriptCode.OK) throw scriptError(name, reply[0], subject);
  return reply;
}
