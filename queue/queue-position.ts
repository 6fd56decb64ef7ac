/**
 * Where a queued step stands in its line (queuePosition.lua), computed on
 * read: nothing in Redis keeps it, so it costs nothing until asked.
 */
import type { StepState } from "../gen/stepq/v1/step_pb.js";
import { jobNotFound, scriptError, stepNotFound } from "./errors.js";
import { type QueueContext, queueScript } from "./queue-script.js";
import { ScriptCode } from "./script-codes.js";

export interface QueuePosition {
  state: StepState;
  route: string;
  /** 1-based place in its tenant's line of its route; 0 when not queued, -1 when further back than the scan reaches (100,000). */
  position: number;
  /** Tenants with ready steps on the route, taking turns (fair share). */
  tenants: number;
  /** The step's tenant's running-steps quota (0: none), and its running steps now. */
  quota: number;
  running: number;
}

export async function queuePosition(ctx: QueueContext, jobId: string, index: number): Promise<QueuePosition> {
  const reply = await queueScript(ctx, "queuePosition", [jobId, index], jobId);
  if (reply[0] === ScriptCode.JOB_NOT_FOUND) throw jobNotFound(jobId);
  if (reply[0] === ScriptCode.STEP_NOT_FOUND) throw stepNotFound(jobId, index, undefined);
  if (reply[0] !== ScriptCode.OK) throw scriptError("queuePosition", reply[0], `${jobId}.${index}`);
  return { state: Number(reply[1]) as StepState, route: String(reply[2]), position: Number(reply[3]), tenants: Number(reply[4]), quota: Number(reply[5]), running: Number(reply[6]) };
}
