/**
 * ListJobs and ListSteps. Jobs are listed newest first from the job index
 * (a stream, ~30 bytes per job); running and dead-lettered steps have their
 * own sets and are listed from those. A scan examines at most `scanBudget`
 * jobs (or set members) per call, so a filter that matches little cannot
 * make one call expensive: the page may then be short, and the token
 * continues the scan.
 *
 * Pages are bounded in bytes too: records are loaded in groups of at most
 * `pageBytes` (by their stored size, read first), and a page ends once the
 * records it shows reach `pageBytes` — so a page of large jobs is short,
 * never a page of fifty 16 MiB records in memory at once.
 */
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { asQueueError, InvalidArgumentError } from "./errors.js";
import { isIndexToken, parseStepId } from "./ids.js";
import type { JobView, Queue } from "./queue.js";
import type { StepRecord } from "./job-record.js";

export interface ListJobsOptions {
  /** `stepq.v1.JobState` number; 0 for any. */
  state: number;
  pageSize: number;
  pageToken: string;
  scanBudget?: number;
  /** Bytes of records one page may load and show (at least one record). Default 16 MiB. */
  pageBytes?: number;
  /** Only this tenant's jobs (its number); undefined: every tenant's. */
  tenant?: number;
}

export interface ListStepsOptions {
  /** `stepq.v1.StepState` number; 0 for any. */
  state: number;
  /** Route to keep; "" for any. */
  route: string;
  pageSize: number;
  pageToken: string;
  scanBudget?: number;
  /** As for ListJobs. */
  pageBytes?: number;
  tenant?: number;
}

const CHUNK = 100;
const PAGE_BYTES = 16 * 1024 * 1024;
const SCAN_BUDGET = 2000;

/**
 * Loads the jobs `ids` in groups whose records add up to at most `maxBytes`
 * (a larger record alone), calling `visit` with each (undefined: gone) and
 * its stored size, in order, until it returns false. Returns how many ids
 * were visited.
 */
async function visitJobs(
  queue: Queue,
  ids: readonly string[],
  maxBytes: number,
  visit: (job: JobView | undefined, bytes: number) => boolean,
): Promise<number> {
  const sizes = await queue.recordSizes(ids);
  let i = 0;
  while (i < ids.length) {
    let j = i;
    let bytes = 0;
    while (j < ids.length && (j === i || bytes + (sizes[j] as number) <= maxBytes)) bytes += sizes[j++] as number;
    const jobs = await queue.getJobs(ids.slice(i, j));
    for (let k = i; k < j; k++) {
      if (!visit(jobs[k - i], sizes[k] as number)) return k + 1;
    }
    i = j;
  }
  return ids.length;
}

function badToken(rpc: string): never {
  throw new InvalidArgumentError("page_token", `is not a token returned by a previous ${rpc} response; omit it to start over`);
}

/**
 * Walks the job index newest first from `after` (exclusive; "" = newest),
 * calling `take` for each stored job (with its record's size) until it
 * returns false or the budget is spent. Returns the index id to continue
 * from, or "" at the end.
 */
async function scanIndex(
  queue: Queue,
  after: string,
  o: { scanBudget?: number; pageBytes?: number },
  take: (job: JobView, bytes: number) => boolean,
): Promise<string> {
  const budget = o.scanBudget ?? SCAN_BUDGET;
  let cursor = after;
  let scanned = 0;
  for (;;) {
    // Nothing comes before the smallest id (and Redis refuses "(0-0" as an end).
    if (cursor === "0-0") return "";
    const rows = await queue.redis
      .xrevrange(queue.keys.jobIndex, cursor ? `(${cursor}` : "+", "-", "COUNT", Math.min(CHUNK, budget - scanned))
      .catch((e: unknown) => {
        throw asQueueError(e);
      });
    if (rows.length === 0) return "";
    let stopped = false;
    const visited = await visitJobs(queue, rows.map(([, fields]) => fields[1] ?? ""), o.pageBytes ?? PAGE_BYTES, (job, bytes) => {
      scanned++;
      if (job && !take(job, bytes)) stopped = true;
      return !stopped;
    });
    cursor = (rows[visited - 1] as [string, string[]])[0];
    if (stopped || scanned >= budget) return cursor;
    if (rows.length < CHUNK) return "";
  }
}

/** One page of jobs, newest first. */
export async function listJobs(queue: Queue, o: ListJobsOptions): Promise<{ jobs: JobView[]; nextPageToken: string }> {
  if (o.pageToken !== "" && !isIndexToken(o.pageToken)) badToken("ListJobs");
  const jobs: JobView[] = [];
  let bytes = 0;
  const maxBytes = o.pageBytes ?? PAGE_BYTES;
  const next = await scanIndex(queue, o.pageToken, o, (job, size) => {
    if ((o.state === 0 || job.state === o.state) && (o.tenant === undefined || job.tenant === o.tenant)) {
      jobs.push(job);
      bytes += size;
    }
    return jobs.length < o.pageSize && bytes < maxBytes;
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
  const budget = o.scanBudget ?? SCAN_BUDGET;
  const maxBytes = o.pageBytes ?? PAGE_BYTES;
  const steps: ListedStep[] = [];
  let bytes = 0;
  let position = offset;
  for (;;) {
    const count = Math.min(CHUNK, offset + budget - position);
    const members = await (mode === "r"
      ? queue.redis.zrange(queue.keys.leases, String(position), String(position + count - 1))
      : queue.redis.zrevrange(queue.keys.dead, String(position), String(position + count - 1))
    ).catch((e: unknown) => {
      throw asQueueError(e);
    });
    const refs = members.map((m) => parseStepId(m.split("|")[0] ?? ""));
    let full = false;
    // One load per member, in order (a job with several listed steps is read
    // once for each), so every group stays bounded in bytes.
    let k = 0;
    await visitJobs(queue, refs.map((r) => r?.jobId ?? ""), maxBytes, (job, size) => {
      const ref = refs[k++];
      position++;
      const step = ref && job?.steps[ref.index];
      const visible = job && (o.tenant === undefined || job.tenant === o.tenant);
      if (visible && step && step.state === o.state && (o.route === "" || step.route === o.route)) {
        steps.push({ job, step });
        bytes += size;
        full = steps.length >= o.pageSize || bytes >= maxBytes;
      }
      return !full;
    });
    if (full || position - offset >= budget) return { steps, nextPageToken: `${mode}:${position}` };
    if (members.length < count) return { steps, nextPageToken: "" };
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
  let bytes = 0;
  const maxBytes = o.pageBytes ?? PAGE_BYTES;
  const next = await scanIndex(queue, rest, o, (job, size) => {
    const before = steps.length;
    for (const step of job.steps) {
      const visible = o.tenant === undefined || job.tenant === o.tenant;
      if (visible && (o.state === 0 || step.state === o.state) && (o.route === "" || step.route === o.route)) steps.push({ job, step });
    }
    if (steps.length > before) bytes += size;
    return steps.length < o.pageSize && bytes < maxBytes;
  });
  return { steps, nextPageToken: next ? `j:${next}` : "" };
}
