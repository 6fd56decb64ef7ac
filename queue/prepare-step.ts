/**
 * One step of a job checked and encoded for submitJobs.lua: its name, its
 * operation (validated, defaults applied, encoded), its dependencies as
 * indexes, and its retry and timeout policy. Every error names the field.
 */
import { clone } from "@bufbuild/protobuf";
import { type Operation, OperationSchema } from "../gen/stepq/v1/operation_pb.js";
import { ResourceExhaustedError, quoted } from "./errors.js";
import { bad, checkInt, DAY_MS } from "./field-checks.js";
import type { SubmitLimits } from "./limits.js";
import type { FieldPaths, StepInput } from "./prepare-job.js";
import { findReferences } from "./references.js";
import { routeWithRequirements } from "./requirements.js";
import { routeOf, validateOperation } from "./validate-operation.js";
import type { Packable } from "../wire/msgpack.js";
import { encodeOperation } from "../wire/operation-encoding.js";

const STEP_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** One step as submitJobs.lua's GENERIC spec holds it. */
export interface StepSpec {
  [key: string]: Packable;
  n: string;
  o: Uint8Array;
  r: string;
  d: number[];
  ma: number;
  bi: number;
  bm: number;
  to: number;
  qt: number;
}

/** Each step's index by name; throws INVALID_ARGUMENT for a bad or repeated name. */
export function stepIndexes(steps: readonly StepInput[], paths: FieldPaths): Map<string, number> {
  const index = new Map<string, number>();
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i] as StepInput;
    if (!STEP_NAME.test(s.name)) bad(`${paths.step(i)}name`, `${quoted(s.name)} must be 1-64 characters of [A-Za-z0-9_-]`);
    const other = index.get(s.name);
    if (other !== undefined) bad(`${paths.step(i)}name`, `'${s.name}' is also the name of steps[${other}]; step names must be unique`);
    index.set(s.name, i);
  }
  return index;
}

/**
 * Step `i` checked and encoded: its operation (infer's max_tokens filled
 * in), the 0-based indexes of its dependencies, and its spec; `p` is the
 * prefix of its fields in errors.
 */
export function prepareStep(s: StepInput, i: number, index: ReadonlyMap<string, number>, limits: SubmitLimits, p: string) {
  const kind = validateOperation(s.operation, `${p}operation`, limits);
  let op = s.operation as Operation;
  if (op.kind.case === "infer" && op.kind.value.maxTokens === 0) {
    op = clone(OperationSchema, op);
    if (op.kind.case === "infer") op.kind.value.maxTokens = limits.defaultMaxTokens;
  }
  const mine: number[] = [];
  for (const name of s.dependsOn ?? []) {
    const d = index.get(name);
    if (d === undefined) bad(`${p}depends_on`, `names unknown step ${quoted(name)}`);
    if (d === i) bad(`${p}depends_on`, `step '${name}' cannot depend on itself`);
    if (mine.includes(d)) bad(`${p}depends_on`, `names '${name}' twice`);
    mine.push(d);
  }
  for (const ref of findReferences(op)) {
    if (!(s.dependsOn ?? []).includes(ref.name)) {
      bad(
        `${p}operation.${ref.path}`,
        `references the output of step '${ref.name}', which is not in depends_on; add it there or remove the reference`,
      );
    }
  }
  const bytes = encodeOperation(op);
  if (bytes.length > limits.maxOperationBytes) {
    throw new ResourceExhaustedError(
      `${p}operation: ${bytes.length} bytes encoded, over this server's limit of ${limits.maxOperationBytes} bytes per step; ` +
        "store large inputs elsewhere and pass a reference",
    );
  }
  const defaults = limits.operations[kind];
  const retry = s.retry ?? {};
  const maxAttempts = retry.maxAttempts || defaults.maxAttempts;
  checkInt(p, "retry.max_attempts", maxAttempts, 1, 100);
  const backoffInitial = retry.initialBackoffMs || limits.backoffInitialMs;
  checkInt(p, "retry.initial_backoff_ms", backoffInitial, 1, DAY_MS, " ms");
  const backoffMax = retry.maxBackoffMs || Math.max(limits.backoffMaxMs, backoffInitial);
  checkInt(p, "retry.max_backoff_ms", backoffMax, backoffInitial, DAY_MS, " ms (and at least initial_backoff_ms)");
  const timeoutMs = s.timeoutMs || defaults.timeoutMs;
  checkInt(p, "timeout_ms", timeoutMs, 0, DAY_MS, " ms");
  const queueTimeoutMs = s.queueTimeoutMs || defaults.queueTimeoutMs;
  checkInt(p, "queue_timeout_ms", queueTimeoutMs, 0, 7 * DAY_MS, " ms");
  const spec: StepSpec = {
    n: s.name,
    o: bytes,
    r: routeWithRequirements(routeOf(op), s.requirements, `${p}requirements.`),
    d: mine.map((d) => d + 1),
    ma: maxAttempts,
    bi: backoffInitial,
    bm: backoffMax,
    to: timeoutMs,
    qt: queueTimeoutMs,
  };
  return { op, deps: mine, spec };
}
