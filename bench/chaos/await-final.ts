/**
 * The drain: after the chaos phase, give the system time to finish every
 * acknowledged job, and stop waiting once nothing has finished for a while
 * (what is still unfinished then counts as lost).
 */
import { JobState } from "../../gen/stepq/v1/job_pb.js";
import type { JobView, Queue } from "../../queue/queue.js";

/** Whether a job is in a final state. */
export function isFinalJob(job: JobView | undefined): boolean {
  return job !== undefined && (job.state === JobState.SUCCEEDED || job.state === JobState.FAILED || job.state === JobState.CANCELLED);
}

/** Reads jobs in batches (one round trip per batch). */
export async function readJobs(queue: Queue, jobIds: readonly string[], batch = 500): Promise<(JobView | undefined)[]> {
  const out: (JobView | undefined)[] = [];
  for (let i = 0; i < jobIds.length; i += batch) out.push(...(await queue.getJobs(jobIds.slice(i, i + batch))));
  return out;
}

/**
 * Polls until every job in `jobIds` is final, or none became final for
 * `stallMs`, or `maxMs` passed. Resolves with the number still unfinished.
 */
export async function awaitFinal(
  queue: Queue,
  jobIds: readonly string[],
  options: { stallMs: number; maxMs: number; log(line: string): void },
): Promise<number> {
  let open = [...jobIds];
  const started = Date.now();
  let lastProgress = started;
  let lastLog = started;
  while (open.length > 0) {
    const jobs = await readJobs(queue, open);
    const still = open.filter((_, i) => !isFinalJob(jobs[i]));
    const now = Date.now();
    if (still.length < open.length) lastProgress = now;
    open = still;
    if (now - lastLog >= 5000) {
      lastLog = now;
      options.log(`drain: ${jobIds.length - open.length}/${jobIds.length} jobs final`);
    }
    if (open.length === 0 || now - lastProgress > options.stallMs || now - started > options.maxMs) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return open.length;
}
