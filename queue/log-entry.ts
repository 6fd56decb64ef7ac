/**
 * Entries of a job's log and of the queue's events stream, parsed.
 *
 * A job's log (`j:<id>:log`) interleaves three kinds of entries, told apart
 * by field `k`: lifecycle events (`e`), token chunks (`t`) and narration
 * lines (`n`). One stream per job, rather than two per step, keeps one
 * cursor for the job's whole output and costs one stream's memory (Redis
 * preallocates ~4 KB per stream). Entry ids are the cursors clients resume
 * from.
 */

import { EventType } from "../gen/stepq/v1/events_pb.js";
import { JobState } from "../gen/stepq/v1/job_pb.js";

/** A lifecycle event, from the events stream or a job's log. */
export interface EventFields {
  /** `stepq.v1.EventType` number. */
  type: number;
  jobId: string;
  /** The number of the job's tenant (queue/tenants.ts; 0: default). Worker events have none. */
  tenant?: number;
  stepIndex?: number;
  stepName?: string;
  route?: string;
  attempt: number;
  /** `stepq.v1.StepState` number after the event. */
  stepState?: number;
  /** `stepq.v1.JobState` number after the event. */
  jobState?: number;
  workerId?: string;
  progress?: number;
  message?: string;
  error?: { code: number; message: string; retryable: boolean };
}

export type LogEntry =
  | { kind: "event"; cursor: string; time: number; event: EventFields }
  | {
      kind: "tokens";
      cursor: string;
      time: number;
      stepIndex: number;
      attempt: number;
      firstIndex: number;
      texts: string[];
    }
  | { kind: "narration"; cursor: string; time: number; stepIndex: number; attempt: number; level: number; text: string };

/** The millisecond part of a stream id. */
export function cursorTime(id: string): number {
  const dash = id.indexOf("-");
  return Number(dash < 0 ? id : id.slice(0, dash));
}

/**
 * Orders two stream ids: negative when a < b. Both parts are unsigned 64-bit
 * integers in Redis, past what a double holds exactly (2^53), so long parts
 * are compared as digit strings; short ones, nearly all of them, as numbers.
 */
export function compareCursors(a: string, b: string): number {
  const ad = a.indexOf("-");
  const bd = b.indexOf("-");
  const ms = compareDigits(ad < 0 ? a : a.slice(0, ad), bd < 0 ? b : b.slice(0, bd));
  return ms !== 0 ? ms : compareDigits(ad < 0 ? "0" : a.slice(ad + 1), bd < 0 ? "0" : b.slice(bd + 1));
}

/** Orders two unsigned decimal integers of any length. */
function compareDigits(a: string, b: string): number {
  if (a.length <= 15 && b.length <= 15) {
    const x = Number(a);
    const y = Number(b);
    return x === y ? 0 : x < y ? -1 : 1;
  }
  const x = a.replace(/^0+(?=\d)/, "");
  const y = b.replace(/^0+(?=\d)/, "");
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x === y ? 0 : x < y ? -1 : 1;
}

function fieldMap(fields: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) m.set(fields[i] as string, fields[i + 1] as string);
  return m;
}

function optNumber(v: string | undefined): number | undefined {
  return v === undefined ? undefined : Number(v);
}

function eventFrom(f: Map<string, string>): EventFields {
  const ec = f.get("ec");
  return {
    type: Number(f.get("t") ?? 0),
    jobId: f.get("j") ?? "",
    tenant: Number(f.get("tn") ?? 0),
    stepIndex: optNumber(f.get("s")),
    stepName: f.get("n"),
    route: f.get("r"),
    attempt: Number(f.get("a") ?? 0),
    stepState: optNumber(f.get("st")),
    jobState: optNumber(f.get("js")),
    workerId: f.get("w") || undefined,
    progress: optNumber(f.get("p")),
    message: f.get("m") || undefined,
    error: ec === undefined ? undefined : { code: Number(ec), message: f.get("em") ?? "", retryable: f.get("er") === "1" },
  };
}

/** Time of an entry: its id, or the explicit `ts` of the fixed-id submit entries. */
function entryTime(id: string, f: Map<string, string>): number {
  const ts = f.get("ts");
  return ts !== undefined ? Number(ts) : cursorTime(id);
}

/** Parses one entry of a job's log. */
export function parseLogEntry(id: string, fields: readonly string[]): LogEntry {
  const f = fieldMap(fields);
  const time = entryTime(id, f);
  switch (f.get("k")) {
    case "t":
      return {
        kind: "tokens",
        cursor: id,
        time,
        stepIndex: Number(f.get("s")),
        attempt: Number(f.get("a")),
        firstIndex: Number(f.get("i")),
        texts: JSON.parse(f.get("x") ?? "[]") as string[],
      };
    case "n":
      return {
        kind: "narration",
        cursor: id,
        time,
        stepIndex: Number(f.get("s")),
        attempt: Number(f.get("a")),
        level: Number(f.get("l")),
        text: f.get("x") ?? "",
      };
    default:
      return { kind: "event", cursor: id, time, event: eventFrom(f) };
  }
}

/** One event of the queue's events stream. */
export interface StreamEvent {
  /** The entry id, or `<entry id>.<n>` for the n-th event of a batch entry. */
  cursor: string;
  time: number;
  event: EventFields;
}

/** The job state a job event leaves the job in. */
const JOB_STATE_AFTER: Record<number, JobState> = {
  [EventType.JOB_SUBMITTED]: JobState.QUEUED,
  [EventType.JOB_SUCCEEDED]: JobState.SUCCEEDED,
  [EventType.JOB_FAILED]: JobState.FAILED,
  [EventType.JOB_CANCELLED]: JobState.CANCELLED,
};

/**
 * The events of one entry of the queue's events stream. Most entries hold
 * one event. A batch entry, written by the transitions that move many steps
 * at once (claims, completions and submits of one-step jobs), holds many of
 * one type: field `b` has one line per step, `<jobId> <index> <name> <route>
 * <attempt>`, then ` <tenant number>` unless it is 0; `t`, `st` and `js` are the step event's type and the step and
 * job states after it; `w` the worker; and `jt`, when present, a job event
 * that goes with each step event (JOB_SUBMITTED before it, any other after).
 */
function parseEventEntries(id: string, fields: readonly string[]): StreamEvent[] {
  const f = fieldMap(fields);
  const time = entryTime(id, f);
  const batch = f.get("b");
  if (batch === undefined) return [{ cursor: id, time, event: eventFrom(f) }];
  const type = Number(f.get("t") ?? 0);
  const stepState = Number(f.get("st") ?? 0);
  const jobState = Number(f.get("js") ?? 0);
  const workerId = f.get("w") || undefined;
  const jobType = f.get("jt") === undefined ? undefined : Number(f.get("jt"));
  const out: StreamEvent[] = [];
  const add = (event: EventFields) => out.push({ cursor: `${id}.${out.length}`, time, event });
  for (const line of batch.split("\n")) {
    const [jobId = "", index, stepName, route, attempt, tenantNumber] = line.split(" ");
    const tenant = tenantNumber === undefined ? 0 : Number(tenantNumber);
    const step: EventFields = {
      type,
      jobId,
      tenant,
      stepIndex: Number(index),
      stepName,
      route,
      attempt: Number(attempt),
      stepState,
      jobState,
      workerId,
      progress: undefined,
      message: undefined,
      error: undefined,
    };
    const job: EventFields | undefined =
      jobType === undefined ? undefined : { type: jobType, jobId, tenant, attempt: 0, jobState: JOB_STATE_AFTER[jobType] ?? JobState.UNSPECIFIED };
    if (job && jobType === EventType.JOB_SUBMITTED) add(job);
    add(step);
    if (job && jobType !== EventType.JOB_SUBMITTED) add(job);
  }
  return out;
}

/** A parsed events-stream cursor: an entry id, and the event within a batch entry (undefined: the whole entry). */
export interface EventCursor {
  id: string;
  index?: number;
}

/** An events-stream cursor's parts. */
export function parseEventCursor(cursor: string): EventCursor {
  const dot = cursor.indexOf(".");
  return dot < 0 ? { id: cursor } : { id: cursor.slice(0, dot), index: Number(cursor.slice(dot + 1)) };
}

/**
 * The events of one entry that come after cursor `after`: all of them,
 * unless the cursor points inside this very entry (then those after it).
 */
export function eventsAfter(id: string, fields: readonly string[], after: EventCursor | undefined): StreamEvent[] {
  const events = parseEventEntries(id, fields);
  return after?.index !== undefined && after.id === id ? events.slice(after.index + 1) : events;
}

/** The stream id just before `id` (so that reading after it starts at `id`). */
export function previousStreamId(id: string): string {
  const dash = id.indexOf("-");
  const ms = BigInt(id.slice(0, dash));
  const seq = BigInt(id.slice(dash + 1));
  if (seq > 0n) return `${ms}-${seq - 1n}`;
  return ms > 0n ? `${ms - 1n}-18446744073709551615` : "0-0";
}
