/**
 * Storing prepared jobs (submitJobs.lua): a batch that must be stored all
 * or none, or single submits, which are carried to Redis together
 * (coalescer.ts): one round trip and one script run for many jobs, each
 * still stored or refused on its own.
 */
import { JobState } from "../gen/stepq/v1/job_pb.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { LAYOUTS, overheadOf } from "../wire/layouts.js";
import { AlreadyExistsError, ResourceExhaustedError, scriptError } from "./errors.js";
import { createCoalescer } from "./coalescer.js";
import type { SubmitLimits } from "./limits.js";
import type { PreparedJob } from "./prepare-job.js";
import { jobSeqOf } from "./ids.js";
import { decodeJobRecord, type JobRecord, labelsOf } from "./job-record.js";
import { ScriptCode } from "./script-codes.js";

/** A job as read from its record, with the lease deadlines of its running steps. */
export interface JobView extends JobRecord {
  /** Lease deadline (Unix ms) per running step index. */
  leaseDeadlines: Map<number, number>;
}

/** The answer to one submitted job. */
export interface SubmitResult {
  jobId: string;
  /** True when an idempotency key matched an earlier submit. */
  deduplicated: boolean;
  /** The job as stored by the submit (absent if a deduplicated job is gone). */
  job: JobView | undefined;
}

/** A record decoded, with its running steps' lease deadlines. */
export function view(record: JobRecord): JobView {
  const leaseDeadlines = new Map<number, number>();
  for (const s of record.steps) {
    if (s.state === StepState.RUNNING && s.leaseDeadline !== undefined) leaseDeadlines.set(s.index, s.leaseDeadline);
  }
  return { ...record, leaseDeadlines };
}

export interface SubmitterOptions {
  limits: SubmitLimits;
  /** Runs submitJobs.lua with its ARGV after the key prefix. */
  run(args: (string | Buffer | number)[]): Promise<unknown[]>;
  /** Reads jobs again (a deduplicated job may have moved on since). */
  loadJobs(ids: readonly string[]): Promise<(JobView | undefined)[]>;
}

/** One job's outcome in a reply: a result, or why it was refused. */
type Outcome = { ok: SubmitResult } | { error: Error };

const JOB_SPEC_OVERHEAD = overheadOf(LAYOUTS.JOB_SPEC);

/** The JOB_SPEC records of submitJobs.lua, back to back (held to wire/layouts.ts by test/layouts.test.ts). */
export function encodeJobs(jobs: readonly PreparedJob[]): Buffer {
  let size = 0;
  for (const j of jobs) {
    size += JOB_SPEC_OVERHEAD + j.x.length + (j.idempotencyKey?.length ?? 0) + (j.digest?.length ?? 0) + j.body.length;
  }
  const b = Buffer.allocUnsafe(size);
  let p = 0;
  const short = (s: string | undefined) => {
    const n = s ? b.write(s, p + 1, "latin1") : 0;
    b[p] = n;
    p += 1 + n;
  };
  for (const j of jobs) {
    b[p++] = j.kind;
    p = b.writeUInt16LE(j.tenant, p);
    short(j.x);
    short(j.idempotencyKey);
    short(j.digest);
    p = b.writeIntLE(j.retentionMs, p, 6);
    p = b.writeUInt32LE(j.body.length, p);
    b.set(j.body, p);
    p += j.body.length;
  }
  return b;
}

/** The record of a new SIMPLE job right after submitJobs.lua stored it. */
function simpleView(job: PreparedJob, jobId: string, createdAt: number): JobView {
  const s = job.simple;
  if (!s) throw new Error("simpleView: not a simple job");
  return {
    id: jobId,
    seq: jobSeqOf(jobId),
    tenant: job.tenant,
    priority: 0,
    failurePolicy: s.failurePolicy,
    state: JobState.QUEUED,
    createdAt,
    startedAt: undefined,
    finishedAt: undefined,
    expiresAt: undefined,
    idempotencyKey: s.idempotencyKey,
    labels: labelsOf(s.labels),
    notBefore: undefined,
    hasLog: false,
    finalCursor: undefined,
    steps: [
      {
        index: 0,
        name: s.name,
        operation: s.operation,
        route: s.route,
        state: StepState.QUEUED,
        attempt: 0,
        released: 0,
        maxAttempts: s.maxAttempts,
        backoffInitialMs: s.backoffInitialMs,
        backoffMaxMs: s.backoffMaxMs,
        timeoutMs: s.timeoutMs,
        queueTimeoutMs: 0,
        dependsOn: [],
        startedAt: undefined,
        finishedAt: undefined,
        scheduledAt: undefined,
        readyAt: undefined,
        workerId: undefined,
        leaseDeadline: undefined,
        progress: 0,
        progressMessage: "",
        errors: [],
        result: undefined,
        finalCursor: undefined,
      },
    ],
    leaseDeadlines: new Map(),
  };
}

function conflictError(path: string): AlreadyExistsError {
  return new AlreadyExistsError(
    `${path}idempotency_key: already used with a different request; use a new key, or resend the original request to get its job`,
  );
}

function rateLimitedError(max: number, nth: number): ResourceExhaustedError {
  return new ResourceExhaustedError(
    `your tenant's quota is ${max} submitted jobs per second (max_submits_per_second) and this would be job ${nth} ` +
      "of this second; retry in a second, or ask the operator for a higher quota",
  );
}

function tenantFullError(waiting: number, adding: number, max: number): ResourceExhaustedError {
  return new ResourceExhaustedError(
    `your tenant's quota is ${max} steps waiting to run (max_queued_per_tenant); it has ${waiting} and this job ` +
      `would add ${adding}; wait for some to run, or ask the operator for a higher quota`,
  );
}

function queueFullError(route: string, queued: number, max: number): ResourceExhaustedError {
  return new ResourceExhaustedError(
    `route '${route}' already holds ${queued} queued steps and its limit is ${max} ` +
      "(max_queued_per_route); retry later or add workers for this route",
  );
}

export type Submitter = ReturnType<typeof createSubmitter>;

export function createSubmitter(o: SubmitterOptions) {
  async function call(jobs: readonly PreparedJob[], mode: "atomic" | "each"): Promise<unknown[]> {
    const l = o.limits;
    return o.run([mode, l.maxQueuedPerRoute, l.idempotencyTtlMs, encodeJobs(jobs), l.maxSubmitsPerSecond, l.maxQueuedPerTenant]);
  }

  /** The outcome of each job of an 'each' or successful 'atomic' reply (OUTCOME records, see submitJobs.lua). */
  async function outcomes(jobs: readonly PreparedJob[], reply: unknown[]): Promise<Outcome[]> {
    const createdAt = Number(reply[1]);
    const b = reply[2] as Buffer;
    const out: Outcome[] = [];
    const stale: SubmitResult[] = [];
    const byId = new Map<string, JobView>();
    let p = 0;
    for (const sent of jobs) {
      const code = b[p++] as number;
      if (code === ScriptCode.IDEMPOTENCY_CONFLICT) {
        out.push({ error: conflictError("") });
        continue;
      }
      if (code === ScriptCode.QUEUE_FULL) {
        const len = b.readUInt16LE(p);
        const route = b.toString("utf8", p + 2, p + 2 + len);
        p += 2 + len;
        out.push({ error: queueFullError(route, b.readUInt32LE(p), b.readUInt32LE(p + 4)) });
        p += 8;
        continue;
      }
      if (code === ScriptCode.RATE_LIMITED) {
        out.push({ error: rateLimitedError(b.readUInt32LE(p), b.readUInt32LE(p + 4)) });
        p += 8;
        continue;
      }
      if (code === ScriptCode.TENANT_FULL) {
        out.push({ error: tenantFullError(b.readUInt32LE(p), b.readUInt32LE(p + 4), b.readUInt32LE(p + 8)) });
        p += 12;
        continue;
      }
      if (code !== ScriptCode.OK) throw scriptError("submitJobs", code, "submit");
      const idLen = b[p] as number;
      const jobId = b.toString("latin1", p + 1, p + 1 + idLen);
      p += 1 + idLen;
      const deduplicated = b[p] === 1;
      const recLen = b.readUInt32LE(p + 1);
      p += 5;
      let job: JobView | undefined;
      if (recLen > 0) job = view(decodeJobRecord(jobId, b.subarray(p, p + recLen)));
      else if (deduplicated) job = byId.get(jobId); // the same request twice in this call (or a job gone since)
      else job = simpleView(sent, jobId, createdAt); // a new SIMPLE job: what was sent
      p += recLen;
      if (job && !deduplicated) byId.set(jobId, job);
      const result: SubmitResult = { jobId, deduplicated, job };
      if (deduplicated && recLen > 0) stale.push(result);
      out.push({ ok: result });
    }
    // A deduplicated job may be running: read it again for its leases.
    if (stale.length > 0) {
      const fresh = await o.loadJobs(stale.map((r) => r.jobId));
      stale.forEach((r, i) => (r.job = fresh[i]));
    }
    return out;
  }

  const shared = createCoalescer<PreparedJob, SubmitResult>({
    async send(jobs) {
      return (await outcomes(jobs, await call(jobs, "each"))).map((r) => ("ok" in r ? r.ok : r.error));
    },
  });

  return {
    /** Stores prepared jobs, all or none. */
    async all(jobs: readonly PreparedJob[]): Promise<SubmitResult[]> {
      if (jobs.length === 0) return [];
      const reply = await call(jobs, "atomic");
      const code = Number(reply[0]);
      if (code === ScriptCode.IDEMPOTENCY_CONFLICT) throw conflictError(jobs.length > 1 ? `requests[${Number(reply[1])}].` : "");
      if (code === ScriptCode.QUEUE_FULL) throw queueFullError(String(reply[1]), Number(reply[2]), Number(reply[3]));
      if (code === ScriptCode.RATE_LIMITED) throw rateLimitedError(Number(reply[1]), Number(reply[2]));
      if (code === ScriptCode.TENANT_FULL) throw tenantFullError(Number(reply[1]), Number(reply[2]), Number(reply[3]));
      if (code !== ScriptCode.OK) throw scriptError("submitJobs", code, "submit");
      return (await outcomes(jobs, reply)).map((r) => {
        if ("error" in r) throw r.error;
        return r.ok;
      });
    },

    /** Stores one prepared job, sharing a call with other submits in flight. */
    one: shared,
  };
}
