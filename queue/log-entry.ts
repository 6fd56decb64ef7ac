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

/** A lifecycle event, from the events stream or a job's log. */
export interface EventFields {
  /** `stepq.v1.EventType` number. */
  type: number;
  jobId: string;
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

/** Orders two stream ids: negative when a < b. (Both parts stay below 2^53 in practice.) */
export function compareCursors(a: string, b: string): number {
  const ad = a.indexOf("-");
  const bd = b.indexOf("-");
  const ams = Number(a.slice(0, ad));
  const bms = Number(b.slice(0, bd));
  if (ams !== bms) return ams < bms ? -1 : 1;
  const as = Number(a.slice(ad + 1));
  const bs = Number(b.slice(bd + 1));
  return as === bs ? 0 : as < bs ? -1 : 1;
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

/** Parses one entry of the queue's events stream. */
export function parseEventEntry(id: string, fields: readonly string[]): { cursor: string; time: number; event: EventFields } {
  const f = fieldMap(fields);
  return { cursor: id, time: entryTime(id, f), event: eventFrom(f) };
}
