/**
 * What a job's streams need to know about it, read without loading its
 * record: states, names, final-event cursors, last errors, and each
 * result's usage and stop reason, never the results' text or the
 * operations (queue/scripts/streamView.lua walks the record in place).
 *
 * Every follower reads this when it starts and again when a step or the
 * job ends, to tell a step's latest final event from one that a retry has
 * superseded; with the whole record (up to max-job-bytes, results included)
 * twenty followers of a large job took gigabytes of server and Redis memory.
 */
import type { Queue } from "./queue.js";
import type { ErrorRecord } from "./job-record.js";
import { ScriptCode } from "./script-codes.js";
import { queueScript } from "./queue-script.js";

/** One step, as its streams see it. */
export interface StreamStep {
  name: string;
  /** `stepq.v1.StepState` number. */
  state: number;
  /** Log cursor of the step's latest final event (undefined: it has none, or the job has no log). */
  finalCursor?: string;
  /** The step's last error, if any (only the last: what a StepEnd shows). */
  errors: ErrorRecord[];
  /** `stepq.v1.StepResult` with only its usage and stop reason, once SUCCEEDED. */
  result?: Uint8Array;
}

/** A job, as its streams see it. */
export interface StreamView {
  id: string;
  /** The number of its tenant (queue/tenants.ts). */
  tenant: number;
  /** `stepq.v1.JobState` number. */
  state: number;
  hasLog: boolean;
  finalCursor?: string;
  steps: StreamStep[];
}

const PER_STEP = 11;

const text = (v: unknown): string => (Buffer.isBuffer(v) ? v.toString("utf8") : String(v ?? ""));

/** The job's stream view, or undefined when the job does not exist. */
export async function readStreamView(queue: Queue, jobId: string): Promise<StreamView | undefined> {
  const reply: unknown[] = await queueScript(queue, "streamView", [jobId], jobId);
  if (reply[0] !== ScriptCode.OK) return undefined;
  const finalCursor = text(reply[3]);
  const count = Number(reply[4]);
  const steps: StreamStep[] = [];
  for (let i = 0; i < count; i++) {
    const f = reply.slice(5 + i * PER_STEP, 5 + (i + 1) * PER_STEP);
    const code = Number(f[3]);
    const cursor = text(f[2]);
    const usage = f[10] as Buffer;
    steps.push({
      name: text(f[0]),
      state: Number(f[1]),
      finalCursor: cursor === "" ? undefined : cursor,
      errors:
        code < 0
          ? []
          : [
              {
                code,
                message: text(f[4]),
                attempt: Number(f[5]),
                workerId: text(f[6]),
                time: Number(f[7]),
                retryable: Number(f[8]) === 1,
                causeIndex: Number(f[9]) > 0 ? Number(f[9]) - 1 : undefined,
              },
            ],
      result: usage.length > 0 ? new Uint8Array(usage) : undefined,
    });
  }
  return {
    id: jobId,
    tenant: Number(reply[5 + count * PER_STEP]),
    state: Number(reply[1]),
    hasLog: Number(reply[2]) === 1,
    finalCursor: finalCursor === "" ? undefined : finalCursor,
    steps,
  };
}
