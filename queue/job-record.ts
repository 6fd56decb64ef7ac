/**
 * The stored form of a job and its steps.
 *
 * A job is one string `j:<jobId>`, written by the Lua scripts (and, for a
 * new job, its spec part by queue/record-body.ts). One key per job (not a
 * hash per step) keeps a queued one-step job under 200 bytes of value and
 * lets the scripts resolve a DAG inside a single key. The layout (format 2:
 * fixed headers, specs, a msgpack map of the rest, appended items) is
 * described in queue/scripts/lib/record.lua. This module decodes a record
 * into typed objects.
 */
import { FailedPreconditionError } from "./errors.js";
import { jobSeqOf } from "./ids.js";
import { fixedSize, LAYOUTS, offsetsOf } from "../wire/layouts.js";
import { unpackAll, type Unpacked } from "../wire/msgpack.js";
import { STEP_DEFAULTS as DEFAULTS } from "./record-body.js";

/** One attempt's error, as stored. */
export interface ErrorRecord {
  /** `stepq.v1.StepErrorCode` number. */
  code: number;
  message: string;
  attempt: number;
  workerId: string;
  /** Unix ms. */
  time: number;
  retryable: boolean;
  /** For automatic cancellations: index of the step whose failure caused it. */
  causeIndex?: number;
}

/** One step as stored inside its job's record. */
export interface StepRecord {
  index: number;
  name: string;
  /** `stepq.v1.Operation` in protobuf binary. */
  operation: Uint8Array;
  route: string;
  /** `stepq.v1.StepState` number. */
  state: number;
  /** Attempts started (claims); also the fencing token of the latest claim. */
  attempt: number;
  /** Attempts handed back by a stopping worker; they do not count against maxAttempts. */
  released: number;
  maxAttempts: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  timeoutMs: number;
  queueTimeoutMs: number;
  /** Indexes of the steps this one depends on. */
  dependsOn: number[];
  /** Unix ms of the latest claim. */
  startedAt?: number;
  finishedAt?: number;
  /** When a SCHEDULED step becomes due. */
  scheduledAt?: number;
  readyAt?: number;
  workerId?: string;
  leaseDeadline?: number;
  progress: number;
  progressMessage: string;
  errors: ErrorRecord[];
  /** `stepq.v1.StepResult` in protobuf binary, once SUCCEEDED. */
  result?: Uint8Array;
  /** Log cursor of the step's latest final event. */
  finalCursor?: string;
}

/** A job as stored. */
export interface JobRecord {
  id: string;
  seq: number;
  /** The number of its tenant (queue/tenants.ts; 0: the default tenant). */
  tenant: number;
  priority: number;
  /** `stepq.v1.FailurePolicy` number (1 fail fast, 2 continue). */
  failurePolicy: number;
  /** `stepq.v1.JobState` number. */
  state: number;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  expiresAt?: number;
  idempotencyKey?: string;
  labels: Record<string, string>;
  /** The W3C traceparent of the call that submitted it (stored when tracing is on). */
  traceparent?: string;
  notBefore?: number;
  /** Whether the job's log exists yet (it is created on first use). */
  hasLog: boolean;
  /** Log cursor of the job's final event. */
  finalCursor?: string;
  steps: StepRecord[];
}

const BINARY_KEYS = new Set(["o", "rs"]);
/** `stepq.v1.FailurePolicy.FAIL_FAST`, the policy of records that leave `fp` out. */
const FAIL_FAST = 1;

type Table = { [key: string]: Unpacked };

function table(v: Unpacked | undefined): Table {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Uint8Array) ? v : {};
}
function list(v: Unpacked | undefined): Unpacked[] {
  // cmsgpack writes an empty Lua table as an empty array, and a table whose
  // integer keys have holes as a map; both read back as a list here.
  if (Array.isArray(v)) return v;
  if (v !== null && typeof v === "object" && !(v instanceof Uint8Array)) return Object.values(v);
  return [];
}
function num(v: Unpacked | undefined): number {
  return typeof v === "number" ? v : 0;
}
function optNum(v: Unpacked | undefined): number | undefined {
  return typeof v === "number" ? v : undefined;
}
function str(v: Unpacked | undefined): string {
  return typeof v === "string" ? v : v instanceof Uint8Array ? Buffer.from(v).toString("utf8") : "";
}
function bytes(v: Unpacked | undefined): Uint8Array | undefined {
  return v instanceof Uint8Array ? v : typeof v === "string" ? Buffer.from(v, "utf8") : undefined;
}

function decodeError(v: Unpacked): ErrorRecord {
  const t = table(v);
  return {
    code: num(t.c),
    message: str(t.m),
    attempt: num(t.a),
    workerId: str(t.w),
    time: num(t.t),
    retryable: t.r === true || t.r === 1,
    causeIndex: typeof t.by === "number" ? t.by - 1 : undefined,
  };
}

function decodeStep(v: Unpacked, index: number): StepRecord {
  const t = table(v);
  return {
    index,
    name: str(t.n),
    operation: bytes(t.o) ?? new Uint8Array(),
    route: str(t.r),
    state: num(t.st),
    attempt: num(t.a),
    released: num(t.rl),
    maxAttempts: num(t.ma),
    backoffInitialMs: num(t.bi),
    backoffMaxMs: num(t.bm),
    timeoutMs: num(t.to),
    queueTimeoutMs: num(t.qt),
    dependsOn: list(t.d).map((d) => num(d) - 1),
    startedAt: optNum(t.sa),
    finishedAt: optNum(t.f),
    scheduledAt: optNum(t.nb),
    readyAt: optNum(t.rdy),
    workerId: typeof t.wk === "string" ? t.wk : undefined,
    leaseDeadline: optNum(t.ld),
    progress: num(t.pg),
    progressMessage: str(t.pm),
    errors: list(t.e).map(decodeError),
    result: bytes(t.rs),
    finalCursor: typeof t.fc === "string" ? t.fc : undefined,
  };
}

/** Sizes, offsets and codes of format 2 (wire/layouts.ts, queue/scripts/lib/record.lua). */
const JOB_HDR_SIZE = fixedSize(LAYOUTS.JOB_HDR);
const STEP_HDR_SIZE = fixedSize(LAYOUTS.STEP_HDR);
const JOB = offsetsOf(LAYOUTS.JOB_HDR);
const STEP = offsetsOf(LAYOUTS.STEP_HDR);
const Q_NAME = ["", "l", "z", "d"];
const STEP_DEFAULTS = { ma: DEFAULTS.maxAttempts, bi: DEFAULTS.backoffInitialMs, bm: DEFAULTS.backoffMaxMs };
const TAIL_CLAIMED = 1;
const TAIL_SUCCEEDED = 2;

/** The format of the records this version writes and reads: their first byte (a later migration starts here). */
export const RECORD_FORMAT = 2;

/** Throws FAILED_PRECONDITION, naming the format, unless `data` (a record or its header) is of RECORD_FORMAT. */
export function checkRecordFormat(jobId: string, data: Uint8Array): void {
  if (data[JOB.format] !== RECORD_FORMAT) {
    throw new FailedPreconditionError(`job ${jobId} has record format ${data[0]}; this stepq reads format ${RECORD_FORMAT} only`);
  }
}

/** A format-2 record as a table of its fields (the short names of queue/scripts/lib/record.lua). */
function tableOfFormat2(data: Uint8Array): Table {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const time = (at: number) => b.readIntLE(at, 6) || undefined;
  const n = b.readUInt16LE(JOB.steps);
  const steps: Table[] = [];
  let pos = JOB_HDR_SIZE;
  for (let i = 0; i < n; i++, pos += STEP_HDR_SIZE) {
    steps.push({
      ...STEP_DEFAULTS,
      st: b[pos + STEP.state] as number,
      q: Q_NAME[b[pos + STEP.queuedIn] as number] || null,
      a: b.readUInt32LE(pos + STEP.attempt),
      ld: time(pos + STEP.leaseDeadline) ?? null,
      sa: time(pos + STEP.startedAt) ?? null,
      f: time(pos + STEP.finishedAt) ?? null,
    });
  }
  for (const s of steps) {
    const nameLen = b[pos] as number;
    s.n = b.toString("utf8", pos + 1, pos + 1 + nameLen);
    pos += 1 + nameLen;
    const routeLen = b.readUInt16LE(pos);
    s.r = b.toString("utf8", pos + 2, pos + 2 + routeLen);
    pos += 2 + routeLen;
    const opLen = b.readUInt32LE(pos);
    s.o = data.slice(pos + 4, pos + 4 + opLen);
    pos += 4 + opLen;
    const to = b.readUInt32LE(pos);
    if (to > 0) s.to = to;
    pos += 4;
  }
  const [cold, ...tail] = unpackAll(data.subarray(pos), BINARY_KEYS);
  const job = { ...table(cold) };
  const coldSteps = list(job.s);
  steps.forEach((s, i) => Object.assign(s, table(coldSteps[i])));
  job.s = steps;
  job.st = b[JOB.state] as number;
  job.c = time(JOB.createdAt) ?? 0;
  job.sa = time(JOB.startedAt) ?? null;
  job.f = time(JOB.finishedAt) ?? null;
  job.rt = time(JOB.retentionMs) ?? 0;
  job.tn = b.readUInt16LE(JOB.tenant);
  job.x = typeof job.f === "number" ? job.f + job.rt : null;
  if ((b[JOB.flags] as number) & 1) job.lg = 1;
  for (const item of tail) {
    const [kind, idx, , , value] = list(item);
    const s = steps[num(idx) - 1];
    if (!s) continue;
    if (kind === TAIL_CLAIMED) s.wk = str(value);
    else if (kind === TAIL_SUCCEEDED) {
      s.rs = bytes(value) ?? null;
      s.pg = 1;
    }
  }
  return job;
}

/** Labels stored as a flat key, value list, as a map. */
export function labelsOf(flat: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) labels[flat[i] as string] = flat[i + 1] as string;
  return labels;
}

/** Decodes the record stored at `j:<jobId>`. */
export function decodeJobRecord(jobId: string, data: Uint8Array): JobRecord {
  checkRecordFormat(jobId, data);
  const t = tableOfFormat2(data);
  return {
    id: jobId,
    seq: num(t.sq) || jobSeqOf(jobId),
    tenant: num(t.tn),
    priority: num(t.p),
    failurePolicy: num(t.fp) || FAIL_FAST,
    state: num(t.st),
    createdAt: num(t.c),
    startedAt: optNum(t.sa),
    finishedAt: optNum(t.f),
    expiresAt: optNum(t.x),
    idempotencyKey: typeof t.ik === "string" ? t.ik : undefined,
    labels: labelsOf(list(t.lb).map(str)),
    traceparent: typeof t.tp === "string" ? t.tp : undefined,
    notBefore: optNum(t.nb),
    hasLog: t.lg === 1,
    finalCursor: typeof t.fc === "string" ? t.fc : undefined,
    steps: list(t.s).map(decodeStep),
  };
}
