/**
 * ListJobs and ListSteps. Jobs are listed newest first from the job index
 * (a stream, ~30 bytes per job); running and dead-lettered steps have their
 * own sets and are listed from those. A scan examines at most `scanBudget`
 * jobs per call, so a filter that matches little cannot make one call
 * expensive: the page may then be short, and the token continues the scan.
 */
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { asQueueError, InvalidArgumentError } from "./errors.js";
import { isIndexToken, parseStepId } from "./ids.js";
import type { JobView, Queue } from "./queue.js";
import type { StepRecord } from "./record.js";

export interface ListJobsOptions {
  /** `stepq.v1.JobState` number; 0 for any. */
  state: number;
  pageSize: number;
  pageToken: string;
  scanBudget?: number;
}

export interface ListStepsOptions {
  /** `stepq.v1.StepState` number; 0 for any. */
  state: number;
  /** Route to keep; "" for any. */
  route: string;
  pageSize: number;
  pageToken: string;
  scanBudget?: number;
}

const CHUNK = 100;

function badToken(rpc: string): never {
  throw new InvalidArgumentError("page_token", `is not a token returned by a previous ${rpc} response; omit it to start over`);
}

/**
 * Walks the job index newest first from `after` (exclusive; "" = newest),
 * calling `take` for each stored job until it returns false or the budget is
 * spent. Returns the index id to continue from, or "" at the end.
 */
async function scanIndex(
  queue: Queue,
  after: string,
  budget: number,
  take: (job: JobView) => boolean,
): Promise<string> {
  let cursor = after;
  let scanned = 0;
  for (;;) {
    const rows = await queue.redis
      .xrevrange(queue.keys.jobIndex, cursor ? `(${cursor}` : "+", "-", "COUNT", CHUNK)
      .catch((e: unknown) => {
        throw asQueueError(e);
      });
    if (rows.length === 0) return "";
    const ids = rows.map(([, fields]) => fields[1] ?? "");
    const jobs = await queue.getJobs(ids);
    for (let i = 0; i < rows.length; i++) {
      cursor = (rows[i] as [string, string[]])[0];
      scanned++;
      const job = jobs[i];
      if (job && !take(job)) return cursor;
      if (scanned >= budget) return cursor;
    }
    if (rows.length < CHUNK) return "";
  }
}

/** One page of jobs, newest first. */
export async function listJobs(queue: Queue, o: ListJobsOptions): Promise<{ jobs: JobView[]; nextPageToken: string }> {
  if (o.pageToken !== "" && !isIndexToken(o.pageToken)) badToken("ListJobs");
  const jobs: JobView[] = [];
  const next = await scanIndex(queue, o.pageToken, o.scanBudget ?? 2000, (job) => {
    if (o.state === 0 || job.state === o.state) jobs.push(job);
    return jobs.length < o.pageSize;
  });
  return { jobs, nextPageToken: next };
}

/** A step together with the job it belongs to. */
export interface ListedStep {
  job: JobView;
  step: StepRecord;
}

async function listFromSet(
  queue: Queue,
  o: ListStepsOptions,
  mode: "r" | "d",
  offset: number,
): Promise<{ steps: ListedStep[]; nextPageToken: string }> {
  const steps: ListedStep[] = [];
  let position = offset;
  for (;;) {
    const members = await (mode === "r"
      ? queue.redis.zrange(queue.keys.leases, String(position), String(position + CHUNK - 1))
      : queue.redis.zrevrange(queue.keys.dead, String(position), String(position + CHUNK - 1))
    ).catch((e: unknown) => {
      throw asQueueError(e);
    });
    const refs = members.map((m) => parseStepId(m.split("|")[0] ?? "")).filter((r) => r !== undefined);
    const jobs = await queue.getJobs([...new Set(refs.map((r) => r.jobId))]);
    const byId = new Map(jobs.filter((j) => j !== undefined).map((j) => [j.id, j]));
    for (const ref of refs) {
      position++;
      const job = byId.get(ref.jobId);
      const step = job?.steps[ref.index];
      if (job && step && step.state === o.state && (o.route === "" || step.route === o.route)) {
        steps.push({ job, step });
        if (steps.length >= o.pageSize) return { steps, nextPageToken: `${mode}:${position}` };
      }
    }
    if (members.length < CHUNK) return { steps, nextPageToken: "" };
  }
}

/** One page of steps: newest job first, or from the running / dead-letter sets. */
export async function listSteps(queue: Queue, o: ListStepsOptions): Promise<{ steps: ListedStep[]; nextPageToken: string }> {
  const m = /^([rdj]):(.+)$/.exec(o.pageToken);
  if (o.pageToken !== "" && !m) badToken("ListSteps");
  const [mode, rest] = m ? [m[1] as string, m[2] as string] : ["", ""];
  if (o.state === StepState.RUNNING || o.state === StepState.FAILED) {
    const want = o.state === StepState.RUNNING ? "r" : "d";
    if (mode !== "" && (mode !== want || !/^\d{1,9}$/.test(rest))) badToken("ListSteps");
    return listFromSet(queue, o, want, mode === "" ? 0 : Number(rest));
  }
  if (mode !== "" && (mode !== "j" || !isIndexToken(rest))) badToken("ListSteps");
  const steps: ListedStep[] = [];
  const next = await scanIndex(queue, rest, o.scanBudget ?? 2000, (job) => {
    for (const step of job.steps) {
      if ((o.state === 0 || step.state === o.state) && (o.route === "" || step.route === o.route)) steps.push({ job, step });
    }
    return steps.length < o.pageSize;
  });
  return { steps, nextPageToken: next ? `j:${next}` : "" };
}
