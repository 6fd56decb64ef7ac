/**
 * The audit after a chaos run: reads every acknowledged job and its whole
 * log straight from Redis and compares them with the plan. It counts what
 * the report shows: outcomes, loss, double completions, at-least-once
 * re-executions, lease recoveries, wrong results, and the stream checks.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { EventType } from "../../gen/stepq/v1/events_pb.js";
import { JobState } from "../../gen/stepq/v1/job_pb.js";
import { StepErrorCode, StepResultSchema, StepState } from "../../gen/stepq/v1/step_pb.js";
import type { EventFields, LogEntry } from "../../queue/log-entry.js";
import type { JobView, Queue } from "../../queue/queue.js";
import { emptyTotals, readRouteCounts, type RouteTotals, TOTAL_NAMES } from "../../queue/queue-stats.js";
import { isFinalJob, readJobs } from "./await-final.js";
import type { FollowRecord } from "./follower.js";
import { expectedText, type PlannedJob, ZONE_TAG } from "./job-plan.js";
import { checkStream } from "./stream-check.js";

/** What the audit found. */
export interface AuditResult {
  succeeded: number;
  failedAsIntended: number;
  failedUnexpectedly: number;
  lost: number;
  wrongResults: number;
  /** Entries in the queue's job index: more than acknowledged means a retried submit made a second job. */
  storedJobs: number;
  steps: number;
  completedTwice: number;
  /** Claims beyond the first that no designed failure explains: at-least-once re-runs. */
  duplicateExecutions: number;
  /** Steps requeued at least once because their worker stopped renewing the lease. */
  stepsRecovered: number;
  /** Retries caused by designed (engine) failures. */
  designedRetries: number;
  /**
   * Tenant load counts (unfinished and running steps, behind the quotas) left once every job is
   * final: each should be back at 0, so any left is a count some transition missed.
   */
  loadLeft: number;
  /**
   * How far the route counts behind GetQueueStats are from the truth once every job is final:
   * waiting, queued, scheduled or running counts left, plus the difference between the
   * dead-letter counts and the dead-letter set's size.
   */
  countsOff: number;
  /** The difference between the succeeded steps in the throughput buckets and those stored. */
  throughputOff: number;
  /** How far the route totals behind /metrics' step counters are from what the stored steps say (record-writes.lua addTotal). */
  totalsOff: number;
  /** Steps with requirements (ZONE_TAG). */
  zonedSteps: number;
  /** Claims of such a step by a worker without the tag (an odd slot): capability routing broken. */
  zonedMisrouted: number;
  streams: { followed: number; verified: number; defects: number; unverifiable: number; unfinished: number; reconnects: number };
  /** The first few problems, described (for troubleshooting a failed run). */
  problems: string[];
}

const MAX_PROBLEMS = 30;
const FINAL_STEP_STATES = new Set([StepState.SUCCEEDED, StepState.FAILED, StepState.CANCELLED]);

/** Every entry of a job's log. */
async function readWholeLog(queue: Queue, jobId: string): Promise<LogEntry[]> {
  const entries: LogEntry[] = [];
  for (let cursor = ""; ; ) {
    const page = await queue.readLog(jobId, cursor, 1000);
    entries.push(...page);
    if (page.length < 1000) return entries;
    cursor = (page[page.length - 1] as LogEntry).cursor;
  }
}

/** Runs `fn` over `items`, `width` at a time. */
async function inParallel<T, R>(items: readonly T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += width) out.push(...(await Promise.all(items.slice(i, i + width).map(fn))));
  return out;
}

type Problem = (text: string) => void;

/** Audits the run: `acknowledged` maps plan index to job id. */
export async function auditRun(
  queue: Queue,
  plan: readonly PlannedJob[],
  acknowledged: ReadonlyMap<number, string>,
  follows: readonly FollowRecord[],
): Promise<AuditResult> {
  const r: AuditResult = {
    succeeded: 0,
    failedAsIntended: 0,
    failedUnexpectedly: 0,
    lost: 0,
    wrongResults: 0,
    storedJobs: 0,
    steps: 0,
    completedTwice: 0,
    duplicateExecutions: 0,
    stepsRecovered: 0,
    designedRetries: 0,
    loadLeft: 0,
    countsOff: 0,
    throughputOff: 0,
    totalsOff: 0,
    zonedSteps: 0,
    zonedMisrouted: 0,
    streams: { followed: follows.length, verified: 0, defects: 0, unverifiable: 0, unfinished: 0, reconnects: 0 },
    problems: [],
  };
  const problem: Problem = (text) => {
    if (r.problems.length < MAX_PROBLEMS) r.problems.push(text);
  };
  const indexes = [...acknowledged.keys()];
  const ids = indexes.map((i) => acknowledged.get(i) as string);
  const views = await readJobs(queue, ids);
  const logs = await inParallel(ids, 32, (id) => readWholeLog(queue, id));
  r.storedJobs = await queue.redis.xlen(queue.keys.jobIndex);
  for (const [field, n] of Object.entries(await queue.redis.hgetall(queue.keys.load))) {
    r.loadLeft += Math.abs(Number(n));
    problem(`tenant load count ${field} is ${n} with every job final (should be 0)`);
  }

  await auditCounts(r, queue, views, problem);
  await auditTotals(r, queue, views, problem);

  indexes.forEach((planIndex, n) => {
    const job = plan[planIndex] as PlannedJob;
    const id = ids[n] as string;
    auditJob(r, job, id, views[n], problem);
    const events = (logs[n] ?? []).flatMap((e) => (e.kind === "event" ? [e.event] : []));
    job.steps.forEach((planned, s) => {
      const mine = events.filter((e) => e.stepIndex === s);
      countStep(r, mine, `${id}.${s}`, problem);
      if (planned.zoned) auditZoned(r, mine, `${id}.${s}`, problem);
    });
  });

  const viewByPlanIndex = new Map(indexes.map((planIndex, n) => [planIndex, views[n]]));
  for (const record of follows) {
    r.streams.reconnects += record.reconnects;
    const verdict = checkStream(record, viewByPlanIndex.get(record.jobIndex)?.steps[record.stepIndex]);
    if (verdict.kind === "verified") r.streams.verified++;
    else if (verdict.kind === "unverifiable") r.streams.unverifiable++;
    else {
      r.streams[verdict.kind === "defect" ? "defects" : "unfinished"]++;
      problem(`stream ${verdict.kind}: ${record.stepId}: ${verdict.why}`);
    }
  }
  return r;
}

/** Compares the route counts and throughput buckets the scripts keep with the stored steps. */
async function auditCounts(r: AuditResult, queue: Queue, views: readonly (JobView | undefined)[], problem: Problem): Promise<void> {
  let dead = 0;
  for (const [field, n] of Object.entries(await queue.redis.hgetall(queue.keys.counts))) {
    if (field.startsWith("d:")) dead += Number(n);
    else if (field.startsWith("+")) continue; // a route total (auditTotals)
    else {
      r.countsOff += Math.abs(Number(n));
      problem(`route count ${field} is ${n} with every job final (should be 0)`);
    }
  }
  const inSet = await queue.redis.zcard(queue.keys.dead);
  if (dead !== inSet) {
    r.countsOff += Math.abs(dead - inSet);
    problem(`the dead-letter counts add up to ${dead}, the dead-letter set holds ${inSet}`);
  }
  let counted = 0;
  for (const key of await queue.redis.keys(queue.keys.throughput("*"))) {
    for (const [field, n] of Object.entries(await queue.redis.hgetall(key))) if (field.startsWith("s:")) counted += Number(n);
  }
  const stored = views.reduce((sum, v) => sum + (v?.steps.filter((s) => s.state === StepState.SUCCEEDED).length ?? 0), 0);
  if (counted !== stored) {
    r.throughputOff = Math.abs(counted - stored);
    problem(`the throughput buckets count ${counted} succeeded steps, ${stored} are stored`);
  }
}

/** Errors that end a step without an attempt failing (record-writes.lua counts no failed attempt for them). */
const NOT_AN_ATTEMPT = new Set([StepErrorCode.CANCELLED, StepErrorCode.DEPENDENCY_FAILED, StepErrorCode.QUEUE_TIMEOUT]);

/** Compares the route totals the scripts keep (the servers' step counters) with what the stored steps say, per route. */
async function auditTotals(r: AuditResult, queue: Queue, views: readonly (JobView | undefined)[], problem: Problem): Promise<void> {
  const expected = new Map<string, RouteTotals>();
  for (const step of views.flatMap((v) => v?.steps ?? [])) {
    let t = expected.get(step.route);
    if (!t) expected.set(step.route, (t = emptyTotals(step.route)));
    t.submitted++;
    t.claimed += step.attempt;
    if (step.state === StepState.SUCCEEDED) t.succeeded++;
    if (step.state === StepState.FAILED) t.deadLettered++;
    if (step.state === StepState.CANCELLED) t.cancelled++;
    const attemptErrors = step.errors.filter((e) => !NOT_AN_ATTEMPT.has(e.code));
    t.failedAttempts += attemptErrors.length;
    t.leaseExpired += step.errors.filter((e) => e.code === StepErrorCode.LEASE_EXPIRED).length;
    // Every failed attempt was retried, but the one that ended a failed step.
    const last = step.errors[step.errors.length - 1];
    t.retried += attemptErrors.length - (step.state === StepState.FAILED && last && !NOT_AN_ATTEMPT.has(last.code) ? 1 : 0);
  }
  const { totals } = await readRouteCounts(queue.redis, queue.keys);
  const routes = new Set([...expected.keys(), ...totals.map((t) => t.route)]);
  for (const route of routes) {
    const want = expected.get(route);
    const got = totals.find((t) => t.route === route);
    for (const k of TOTAL_NAMES) {
      const [w, g] = [want?.[k] ?? 0, got?.[k] ?? 0];
      if (w === g) continue;
      r.totalsOff += Math.abs(w - g);
      problem(`route total ${k} of ${route} is ${g}, the stored steps say ${w}`);
    }
  }
}

/** Classifies one job's outcome against its design and checks its results. */
function auditJob(r: AuditResult, job: PlannedJob, id: string, view: JobView | undefined, problem: Problem): void {
  const label = `job #${job.index} ${id}`;
  if (!view || !isFinalJob(view) || view.steps.some((s) => !FINAL_STEP_STATES.has(s.state))) {
    r.lost++;
    problem(`lost: ${label} ${view ? `is ${JobState[view.state]}, steps ${view.steps.map((s) => StepState[s.state]).join(",")}` : "is missing"}`);
    return;
  }
  if (job.designedToFail ? view.state === JobState.SUCCEEDED : view.state !== JobState.SUCCEEDED) {
    r.failedUnexpectedly++;
    const errors = view.steps.flatMap((s) => s.errors.map((e) => `${s.name}#${e.attempt} ${StepErrorCode[e.code]}: ${e.message}`));
    problem(`unexpected outcome: ${label} ${JobState[view.state]} (designed to ${job.designedToFail ? "fail" : "succeed"}); ${errors.join("; ")}`);
  } else if (job.designedToFail) r.failedAsIntended++;
  else r.succeeded++;

  view.steps.forEach((stored, s) => {
    const planned = job.steps[s];
    if (!planned || stored.state !== StepState.SUCCEEDED || !stored.result) return;
    const text = fromBinary(StepResultSchema, stored.result).text;
    if (text !== expectedText(planned.echo)) {
      r.wrongResults++;
      problem(`wrong result: step ${id}.${s} returned ${JSON.stringify(text.slice(0, 60))}`);
    }
  });
}

/** A step that requires ZONE_TAG: every claim of it must be by an even worker slot (`chaos-w<slot>-g<gen>`, cluster.ts). */
function auditZoned(r: AuditResult, events: readonly EventFields[], stepId: string, problem: Problem): void {
  r.zonedSteps++;
  for (const e of events) {
    if (e.type !== EventType.STEP_CLAIMED) continue;
    const slot = Number(/^chaos-w(\d+)-g\d+$/.exec(e.workerId ?? "")?.[1]);
    if (Number.isInteger(slot) && slot % 2 === 0) continue;
    r.zonedMisrouted++;
    problem(`misrouted: ${stepId} requires ${ZONE_TAG} but was claimed by ${e.workerId ?? "an unnamed worker"}`);
  }
}

/** Adds one step's lifecycle events (from its job's log) to the counts. */
function countStep(r: AuditResult, events: readonly EventFields[], stepId: string, problem: Problem): void {
  const count = (type: EventType, code?: StepErrorCode) => events.filter((e) => e.type === type && (code === undefined || e.error?.code === code)).length;
  const claims = count(EventType.STEP_CLAIMED);
  const successes = count(EventType.STEP_SUCCEEDED);
  const designed = count(EventType.STEP_RETRYING, StepErrorCode.ENGINE_FAILED);
  const recoveries = count(EventType.STEP_RETRYING, StepErrorCode.LEASE_EXPIRED);
  r.steps++;
  r.designedRetries += designed;
  r.duplicateExecutions += Math.max(0, claims - 1 - designed);
  if (recoveries > 0) r.stepsRecovered++;
  if (successes > 1) {
    r.completedTwice++;
    problem(`completed twice: step ${stepId} has ${successes} STEP_SUCCEEDED events`);
  }
}
