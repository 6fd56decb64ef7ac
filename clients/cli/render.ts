/**
 * How the CLI prints steps, jobs and followed output: short lines for
 * people, JSON (--json) for scripts.
 */
import { toJsonString } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { type Job, JobState } from "../../gen/stepq/v1/job_pb.js";
import { type Step, StepSchema, StepState, StopReason } from "../../gen/stepq/v1/step_pb.js";

export function stepStateName(s: StepState): string {
  return (StepState[s] ?? String(s)).toLowerCase();
}

export function jobStateName(s: JobState): string {
  return (JobState[s] ?? String(s)).toLowerCase();
}

function time(t: Timestamp | undefined): string {
  return t ? new Date(Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6)).toISOString() : "-";
}

/** A multi-line description of a step. */
export function describeStep(step: Step): string {
  const lines = [
    `step      ${step.id}  (job ${step.jobId}, "${step.name}")`,
    `state     ${stepStateName(step.state)}${step.progressMessage ? ` — ${step.progressMessage}` : ""}`,
    `route     ${step.route}   priority ${step.priority}   attempt ${step.attempt}/${step.maxAttempts}`,
    `created   ${time(step.createdAt)}   started ${time(step.startedAt)}   finished ${time(step.finishedAt)}`,
  ];
  if (step.workerId) lines.push(`worker    ${step.workerId}`);
  if (step.error) lines.push(`error     ${step.error.message}`);
  const r = step.result;
  if (r) {
    const u = r.usage;
    if (u) {
      lines.push(
        `usage     ${u.promptTokens} prompt + ${u.completionTokens} completion tokens, first token ${u.timeToFirstTokenMs} ms, ` +
          `${u.tokensPerSecond.toFixed(1)} tok/s, ${u.durationMs} ms, stop: ${(StopReason[r.stopReason] ?? "").toLowerCase()}`,
      );
    }
    if (r.embeddings.length > 0) lines.push(`result    ${r.embeddings.length} embedding(s) of ${r.embeddings[0]?.values.length} values`);
    else lines.push(`result    ${JSON.stringify(r.text.length > 400 ? `${r.text.slice(0, 400)}…` : r.text)}`);
  }
  return lines.join("\n");
}

/** One line per step, for `stepq list`. */
export function stepRow(step: Step): string {
  return `${step.id.padEnd(20)} ${stepStateName(step.state).padEnd(10)} ${step.route.padEnd(24)} attempt ${step.attempt}/${step.maxAttempts}  ${time(step.createdAt)}`;
}

/** One line per job. */
export function jobRow(job: Job): string {
  return `${job.id.padEnd(18)} ${jobStateName(job.state).padEnd(10)} ${job.steps.length} step(s)  ${time(job.createdAt)}`;
}

export function stepJson(step: Step): string {
  return toJsonString(StepSchema, step, { prettySpaces: 2 });
}
