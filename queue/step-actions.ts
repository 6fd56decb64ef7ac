/**
 * What a client may do to submitted work: cancel a step or a whole job,
 * retry a dead-lettered step, purge one from the dead-letter list. Each is
 * one script; a refusal becomes an error that says why and what can be done.
 */
import { JobState } from "../gen/stepq/v1/job_pb.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { FailedPreconditionError, NotFoundError, scriptError } from "./errors.js";
import { type QueueContext, queueScript } from "./queue-script.js";
import { ScriptCode } from "./script-codes.js";

/** Cancels step `stepIndex` of a job, or the whole job when it is undefined. */
export async function cancelSteps(ctx: QueueContext, jobId: string, stepIndex: number | undefined, reason: string): Promise<void> {
  const reply = await queueScript(ctx, "cancelSteps", [jobId, stepIndex === undefined ? "" : stepIndex, reason || "cancelled by a client"], jobId);
  const code = reply[0];
  const subject = stepIndex === undefined ? `job ${jobId}` : `step ${jobId}.${stepIndex}`;
  if (code === ScriptCode.WRONG_STATE) {
    const state = Number(reply[1]);
    const succeeded = stepIndex === undefined ? state === JobState.SUCCEEDED : state === StepState.SUCCEEDED;
    const what = succeeded ? "succeeded" : "failed";
    throw new FailedPreconditionError(`${subject} already ${what}; only unfinished work can be cancelled`);
  }
  if (code === ScriptCode.JOB_NOT_FOUND || code === ScriptCode.STEP_NOT_FOUND) {
    throw new NotFoundError(`${subject} not found (it never existed or its retention has passed)`);
  }
  if (code !== ScriptCode.OK) throw scriptError("cancelSteps", code, subject);
}

/** Queues a dead-lettered step again with fresh attempts (and what its failure cancelled). */
export async function retryStep(ctx: QueueContext, jobId: string, stepIndex: number): Promise<void> {
  const { keys } = ctx;
  const reply = await queueScript(ctx, "retryStep", [jobId, stepIndex], jobId);
  if (reply[0] === ScriptCode.WRONG_STATE) {
    const state = StepState[Number(reply[1])]?.toLowerCase() ?? String(reply[1]);
    throw new FailedPreconditionError(`step ${jobId}.${stepIndex} is ${state}; only FAILED (dead-lettered) steps can be retried`);
  }
  if (reply[0] !== ScriptCode.OK) throw scriptError("retryStep", reply[0], `${jobId}.${stepIndex}`);
}

/** Removes a FAILED step from the dead-letter list. */
export async function purgeStep(ctx: QueueContext, jobId: string, stepIndex: number): Promise<void> {
  const reply = await queueScript(ctx, "purgeStep", [jobId, stepIndex], jobId);
  if (reply[0] === ScriptCode.WRONG_STATE) {
    throw new FailedPreconditionError(
      `step ${jobId}.${stepIndex} is not in the dead-letter list (only FAILED steps are, until retried or purged)`,
    );
  }
  if (reply[0] !== ScriptCode.OK) throw scriptError("purgeStep", reply[0], `${jobId}.${stepIndex}`);
}
