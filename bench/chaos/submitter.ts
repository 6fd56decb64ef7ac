/**
 * Submits the planned jobs through the real server at a steady pace, one
 * SubmitSteps call per run of single-step jobs and one SubmitJob per DAG.
 * Every job carries its idempotency key, so a call retried after
 * UNAVAILABLE (Redis down) or a dropped connection (the reply lost, maybe
 * after the jobs were stored) cannot create a second job. A job counts as
 * submitted only once the server acknowledged it.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { StepqClient } from "../../clients/node/client.js";
import { FailurePolicy } from "../../gen/stepq/v1/job_pb.js";
import { type PlannedJob, type PlannedStep, RETRY_BACKOFF, ZONE_TAG } from "./job-plan.js";

/** What submitting went like. */
export interface SubmitStats {
  /** Calls repeated after UNAVAILABLE. */
  unavailableRetries: number;
  /** Calls repeated after their connection was cut (connect-node reports ABORTED, or CANCELED over HTTP/2). */
  droppedRetries: number;
  /** Jobs the server answered as deduplicated (an earlier, unacknowledged attempt had stored them). */
  deduplicated: number;
  /** Jobs never acknowledged, with the reason. */
  rejected: { index: number; message: string }[];
}

/** How submitting is paced. */
export interface SubmitOptions {
  /** Submissions are spread evenly over this long. */
  durationMs: number;
  /** Called once per acknowledged job. */
  onAcknowledged(job: PlannedJob, jobId: string): void;
}

/** Most single-step jobs per SubmitSteps call. */
const BATCH = 20;
/** How long one call is retried before its jobs count as not acknowledged. */
const RETRY_FOR_MS = 60_000;
/** Most calls in flight at once (submits wait while Redis is down). */
const MAX_IN_FLIGHT = 16;

function operation(step: PlannedStep) {
  return { kind: { case: "echo" as const, value: step.echo } };
}

function requirements(step: PlannedStep) {
  return step.zoned ? { tags: [ZONE_TAG] } : undefined;
}

function retry(step: PlannedStep) {
  return { maxAttempts: step.maxAttempts, ...RETRY_BACKOFF };
}

/** Consecutive single-step jobs grouped into batches; every DAG alone. */
function batches(jobs: readonly PlannedJob[]): PlannedJob[][] {
  const out: PlannedJob[][] = [];
  for (const job of jobs) {
    const last = out[out.length - 1];
    if (job.shape === "single" && last?.[0]?.shape === "single" && last.length < BATCH) last.push(job);
    else out.push([job]);
  }
  return out;
}

/** Submits every job (or gives up on some: see `rejected`); resolves when all calls are answered. */
export async function submitPlan(client: StepqClient, jobs: readonly PlannedJob[], options: SubmitOptions): Promise<SubmitStats> {
  const stats: SubmitStats = { unavailableRetries: 0, droppedRetries: 0, deduplicated: 0, rejected: [] };

  /** One call, repeated after UNAVAILABLE or a cut connection; returns [job id, deduplicated] per job. */
  async function call(group: readonly PlannedJob[]): Promise<[string, boolean][]> {
    const until = Date.now() + RETRY_FOR_MS;
    for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
      try {
        const first = group[0] as PlannedJob;
        if (first.shape === "dag") {
          const res = await client.jobs.submitJob({
            steps: first.steps.map((s) => ({ name: s.name, operation: operation(s), dependsOn: s.dependsOn, retry: retry(s), requirements: requirements(s) })),
            idempotencyKey: first.idempotencyKey,
            failurePolicy: FailurePolicy.FAIL_FAST,
          });
          return [[res.job?.id ?? "", res.deduplicated]];
        }
        const res = await client.steps.submitSteps({
          requests: group.map((job) => {
            const step = job.steps[0] as PlannedStep;
            return { operation: operation(step), retry: retry(step), idempotencyKey: job.idempotencyKey, requirements: requirements(step) };
          }),
        });
        return res.responses.map((r) => [r.step?.jobId ?? "", r.deduplicated]);
      } catch (e) {
        const err = ConnectError.from(e);
        // A cut connection: ABORTED over HTTP/1.1, CANCELED over HTTP/2 (its
        // streams are reset with CANCEL; nothing here cancels a call).
        const retryable = err.code === Code.Unavailable || err.code === Code.Aborted || err.code === Code.Canceled;
        if (!retryable || Date.now() + delay > until) throw err;
        if (err.code === Code.Unavailable) stats.unavailableRetries++;
        else stats.droppedRetries++;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  const started = Date.now();
  const inFlight = new Set<Promise<void>>();
  for (const group of batches(jobs)) {
    const at = started + ((group[0] as PlannedJob).index / jobs.length) * options.durationMs;
    if (at > Date.now()) await new Promise((r) => setTimeout(r, at - Date.now()));
    while (inFlight.size >= MAX_IN_FLIGHT) await Promise.race(inFlight);
    const p = call(group)
      .then((answers) =>
        group.forEach((job, i) => {
          const [jobId, dedup] = answers[i] ?? ["", false];
          if (!jobId) stats.rejected.push({ index: job.index, message: "the response named no job" });
          else {
            if (dedup) stats.deduplicated++;
            options.onAcknowledged(job, jobId);
          }
        }),
      )
      .catch((e: unknown) => {
        for (const job of group) stats.rejected.push({ index: job.index, message: ConnectError.from(e).message });
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  await Promise.all(inFlight);
  return stats;
}
