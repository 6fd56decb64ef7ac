/**
 * Turns a job as a client describes it (named steps with dependencies) into
 * the spec submitJobs.lua stores: validated, defaults applied, dependencies
 * as indexes, operations encoded. Everything a caller can get wrong is
 * caught here, before Redis is touched, with the field named.
 */
import { createHash } from "node:crypto";
import { toJsonString } from "@bufbuild/protobuf";
import { FailurePolicy } from "../gen/stepq/v1/job_pb.js";
import { type Operation, OperationSchema } from "../gen/stepq/v1/operation_pb.js";
import { quoted } from "./errors.js";
import type { Requirements } from "./requirements.js";
import { bad, checkInt, DAY_MS } from "./field-checks.js";
import { randomIdSuffix } from "./ids.js";
import { MAX_TENANT } from "./tenants.js";
import type { SubmitLimits } from "./limits.js";
import { pack, type Packable } from "../wire/msgpack.js";
import { encodeSimpleBody, type SimpleBody } from "./record-body.js";
import { prepareStep, type StepSpec, stepIndexes } from "./prepare-step.js";

/** One step of a job, as a client describes it. */
export interface StepInput {
  /** Unique within the job. */
  name: string;
  operation?: Operation;
  /** Names of steps of the same job that must succeed first. */
  dependsOn?: readonly string[];
  retry?: { maxAttempts?: number; initialBackoffMs?: number; maxBackoffMs?: number };
  timeoutMs?: number;
  queueTimeoutMs?: number;
  /** What a worker must have to claim it (queue/requirements.ts). */
  requirements?: Requirements;
}

/** A job as a client describes it. */
export interface JobInput {
  steps: readonly StepInput[];
  priority?: number;
  failurePolicy?: FailurePolicy;
  labels?: Readonly<Record<string, string>>;
  /** Unix ms before which no step starts. */
  notBefore?: number;
  idempotencyKey?: string;
  /**
   * The W3C traceparent of the submitting call's span (set by the server when
   * tracing is on): stored with the job, so the worker's spans continue the trace.
   */
  traceparent?: string;
  /** The number of the tenant it belongs to (queue/tenants.ts; set by the server from the caller's key); 0 or absent: the default tenant. */
  tenant?: number;
}

/** Where the fields of a job sit in the request, for error messages. */
export interface FieldPaths {
  /** Prefix of job-level fields, e.g. "" or "requests[3].". */
  job: string;
  /** Prefix of step i's fields, e.g. "steps[2]." or "" for SubmitStep. */
  step: (index: number) => string;
}

const SINGLE_STEP_PATHS: FieldPaths = { job: "", step: () => "" };

/** Field paths of SubmitJob requests. */
export function jobFieldPaths(prefix = ""): FieldPaths {
  return { job: prefix, step: (i) => `${prefix}steps[${i}].` };
}

/** Field paths of SubmitStep requests (the step's fields are top-level). */
export function stepFieldPaths(prefix = ""): FieldPaths {
  return prefix === "" ? SINGLE_STEP_PATHS : { job: prefix, step: () => prefix };
}

/** The name of the step of a one-step job (a SubmitStep request). */
const ONE_STEP_NAME = "main";

/** A one-step job as a SubmitStep request describes it: the step's fields and the job's side by side. */
export interface OneStepInput extends Omit<StepInput, "name" | "dependsOn">, Omit<JobInput, "steps" | "failurePolicy"> {}

/** `input` as a job of one step named "main" (what SubmitStep stores); prepared with stepFieldPaths(), errors name its fields as SubmitStep does. */
export function oneStepJob(input: OneStepInput): JobInput {
  return {
    steps: [
      {
        name: ONE_STEP_NAME,
        operation: input.operation,
        retry: input.retry,
        timeoutMs: input.timeoutMs,
        queueTimeoutMs: input.queueTimeoutMs,
        requirements: input.requirements,
      },
    ],
    priority: input.priority,
    idempotencyKey: input.idempotencyKey,
    labels: input.labels,
    notBefore: input.notBefore,
  };
}

/** A validated job, ready for submitJobs.lua (see its header for the fields). */
export interface PreparedJob {
  /**
   * SIMPLE (1): one ready step of default priority without a queue timeout,
   * whose record body the client writes (`simple`); GENERIC (2): any other
   * job, `body` is its msgpack spec.
   */
  readonly kind: typeof SIMPLE | typeof GENERIC;
  /** The random part of the job id. */
  readonly x: string;
  /** Its tenant's number (0: the default tenant). */
  readonly tenant: number;
  readonly idempotencyKey?: string;
  /** Digest of the request, to tell a resend from a different request under the same key. */
  readonly digest?: string;
  readonly retentionMs: number;
  readonly body: Buffer;
  /** A SIMPLE job's fields, from which its record right after the submit follows. */
  readonly simple?: SimpleBody;
  readonly stepCount: number;
  /** The routes its steps are queued on (for the servers' unserved-route policy). */
  readonly routes: readonly string[];
}

export const SIMPLE = 1;
export const GENERIC = 2;

const LABEL_KEY = /^[A-Za-z0-9_.\/-]{1,64}$/;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,128}$/;
/** W3C trace context, version 00: a traceparent that does not match is not stored. */
const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** Finds a dependency cycle, returned as names "a -> b -> a", or undefined. */
function findCycle(names: readonly string[], deps: readonly number[][]): string | undefined {
  const state = new Array<number>(names.length).fill(0); // 0 new, 1 on path, 2 done
  const path: number[] = [];
  const visit = (i: number): string | undefined => {
    state[i] = 1;
    path.push(i);
    for (const d of deps[i] ?? []) {
      if (state[d] === 1) {
        const loop = path.slice(path.indexOf(d)).concat(d);
        return loop.map((x) => names[x]).join(" -> ");
      }
      if (state[d] === 0) {
        const found = visit(d);
        if (found) return found;
      }
    }
    path.pop();
    state[i] = 2;
    return undefined;
  };
  for (let i = 0; i < names.length; i++) {
    if (state[i] === 0) {
      const found = visit(i);
      if (found) return found;
    }
  }
  return undefined;
}

function requestDigest(input: JobInput, ops: readonly Operation[], routes: readonly string[]): string {
  const canonical = JSON.stringify({
    steps: input.steps.map((s, i) => ({
      name: s.name,
      op: toJsonString(OperationSchema, ops[i] as Operation),
      deps: s.dependsOn ?? [],
      retry: s.retry ?? {},
      timeout: s.timeoutMs ?? 0,
      queueTimeout: s.queueTimeoutMs ?? 0,
      route: routes[i],
    })),
    priority: input.priority ?? 0,
    policy: input.failurePolicy ?? 0,
    labels: Object.entries(input.labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    notBefore: input.notBefore ?? 0,
  });
  return createHash("sha256").update(canonical).digest("base64url").slice(0, 22);
}

/** The job-level fields of `input`, checked; throws INVALID_ARGUMENT naming the field. */
function checkJobFields(input: JobInput, limits: SubmitLimits, paths: FieldPaths, now: number) {
  const steps = input.steps;
  if (steps.length === 0) bad(`${paths.job}steps`, "a job needs at least one step");
  if (steps.length > limits.maxStepsPerJob) {
    bad(`${paths.job}steps`, `${steps.length} steps exceed this server's limit of ${limits.maxStepsPerJob} per job`);
  }
  const priority = input.priority ?? 0;
  checkInt(paths.job, "priority", priority, -1000, 1000);
  const policy = input.failurePolicy ?? FailurePolicy.UNSPECIFIED;
  if (policy !== FailurePolicy.UNSPECIFIED && policy !== FailurePolicy.FAIL_FAST && policy !== FailurePolicy.CONTINUE) {
    bad(`${paths.job}failure_policy`, `must be FAILURE_POLICY_FAIL_FAST or FAILURE_POLICY_CONTINUE (got ${policy})`);
  }
  const labels = input.labels ? Object.entries(input.labels) : [];
  if (labels.length > 32) bad(`${paths.job}labels`, `has ${labels.length} entries; at most 32`);
  for (const [k, v] of labels) {
    if (!LABEL_KEY.test(k)) bad(`${paths.job}labels`, `key ${quoted(k)} must be 1-64 characters of [A-Za-z0-9_./-]`);
    if (v.length > 256) bad(`${paths.job}labels[${quoted(k)}]`, `is ${v.length} characters; at most 256`);
  }
  if (input.idempotencyKey !== undefined && input.idempotencyKey !== "" && !IDEMPOTENCY_KEY.test(input.idempotencyKey)) {
    bad(`${paths.job}idempotency_key`, "must be 1-128 printable ASCII characters without spaces");
  }
  let notBefore: number | undefined;
  if (input.notBefore !== undefined && input.notBefore > now) {
    if (input.notBefore > now + 366 * DAY_MS) bad(`${paths.job}not_before`, "is more than a year ahead");
    notBefore = Math.floor(input.notBefore);
  }
  const tenant = input.tenant ?? 0;
  checkInt(paths.job, "tenant", tenant, 0, MAX_TENANT);
  const failurePolicy = policy === FailurePolicy.CONTINUE ? FailurePolicy.CONTINUE : FailurePolicy.FAIL_FAST;
  return { priority, failurePolicy, flatLabels: labels.length === 0 ? NO_LABELS : labels.flat(), notBefore, tenant };
}

/** Validates `input` and builds its stored spec. Throws InvalidArgumentError or ResourceExhaustedError. */
export function prepareJob(input: JobInput, limits: SubmitLimits, paths: FieldPaths, now = Date.now()): PreparedJob {
  const steps = input.steps;
  const { priority, failurePolicy, flatLabels, notBefore, tenant } = checkJobFields(input, limits, paths, now);
  const index = stepIndexes(steps, paths);
  const ops: Operation[] = [];
  const deps: number[][] = [];
  const stepSpecs: StepSpec[] = [];
  for (let i = 0; i < steps.length; i++) {
    const step = prepareStep(steps[i] as StepInput, i, index, limits, paths.step(i));
    ops.push(step.op);
    deps.push(step.deps);
    stepSpecs.push(step.spec);
  }
  const cycle = steps.length > 1 ? findCycle(
    steps.map((s) => s.name),
    deps,
  ) : undefined;
  if (cycle) bad(`${paths.job}steps`, `dependency cycle ${cycle}; a job's steps must form a DAG`);

  const key = input.idempotencyKey || undefined;
  const traceparent = input.traceparent && TRACEPARENT.test(input.traceparent) ? input.traceparent : undefined;
  const digest = key ? requestDigest(input, ops, stepSpecs.map((s) => s.r)) : undefined;
  const only = stepSpecs[0] as StepSpec;
  // A traced job is stored the generic way: its header flag (record.lua TRACE_FLAG) sends its
  // claims down the path that reads the stored context and hands it to the worker with the step.
  if (steps.length === 1 && priority === 0 && notBefore === undefined && only.qt === 0 && traceparent === undefined) {
    const simple: SimpleBody = {
      name: only.n,
      route: only.r,
      operation: only.o,
      timeoutMs: only.to,
      maxAttempts: only.ma,
      backoffInitialMs: only.bi,
      backoffMaxMs: only.bm,
      idempotencyKey: key,
      labels: flatLabels,
      failurePolicy,
    };
    return {
      kind: SIMPLE,
      stepCount: 1,
      routes: [only.r],
      x: randomIdSuffix(),
      tenant,
      idempotencyKey: key,
      digest,
      retentionMs: limits.retentionMs,
      body: encodeSimpleBody(simple),
      simple,
    };
  }
  const spec: { [key: string]: Packable } = { p: priority, fp: failurePolicy, nb: notBefore, lb: flatLabels, s: stepSpecs, tp: traceparent };
  return { kind: GENERIC, stepCount: steps.length, routes: [...new Set(stepSpecs.map((s) => s.r))], x: randomIdSuffix(), tenant, idempotencyKey: key, digest, retentionMs: limits.retentionMs, body: pack(spec) };
}

const NO_LABELS: readonly string[] = [];
