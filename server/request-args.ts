/**
 * Checks of request fields that are not part of a submission: ids, cursors,
 * page sizes, enum filters. Each failure names the field and shows what a
 * valid value looks like.
 */
import { InvalidArgumentError } from "../queue/errors.js";
import { isEventCursor, isStreamId, JOB_ID_PATTERN, parseStepId } from "../queue/ids.js";

/** The parts of step id `value` in field `field`. */
export function stepIdArg(field: string, value: string): { jobId: string; index: number } {
  if (value === "") throw new InvalidArgumentError(field, "is required");
  const ref = parseStepId(value);
  if (!ref) {
    throw new InvalidArgumentError(
      field,
      `${JSON.stringify(value.slice(0, 80))} is not a step id; step ids look like "0000a1b2c3d4e5f6.0" (job id, dot, step index)`,
    );
  }
  return ref;
}

/** Job id `value` in field `field`. */
export function jobIdArg(field: string, value: string): string {
  if (value === "") throw new InvalidArgumentError(field, "is required");
  if (!JOB_ID_PATTERN.test(value)) {
    const hint = parseStepId(value) ? " (that is a step id; its job id is the part before the dot)" : "";
    throw new InvalidArgumentError(
      field,
      `${JSON.stringify(value.slice(0, 80))} is not a job id; job ids are 16 characters of [0-9a-z]${hint}`,
    );
  }
  return value;
}

/** A resume cursor ("" when absent); `events`: a cursor of WatchSteps, which may point into a batch entry. */
export function cursorArg(field: string, value: string, events = false): string {
  if (value !== "" && !(events ? isEventCursor : isStreamId)(value)) {
    const shape = events ? '"1700000000000-0" or "1700000000000-0.3"' : '"1700000000000-0"';
    throw new InvalidArgumentError(
      field,
      `${JSON.stringify(value.slice(0, 80))} is not a cursor; pass the cursor of a message you received, or leave it empty ` +
        `(cursors look like ${shape}, each number below 2^64)`,
    );
  }
  return value;
}

/** page_size with its default and maximum. */
export function pageSizeArg(field: string, value: number, fallback: number, max: number): number {
  if (value === 0) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new InvalidArgumentError(field, `must be from 1 to ${max}, or 0 for the default of ${fallback} (got ${value})`);
  }
  return value;
}

/** An enum filter: 0 (any) or one of the enum's values. */
export function enumArg(field: string, value: number, e: Record<string, string | number>, prefix: string): number {
  if (value === 0) return 0;
  if (typeof e[value] !== "string") {
    const names = Object.entries(e)
      .filter(([k, v]) => typeof v === "number" && v !== 0 && k !== "UNSPECIFIED")
      .map(([k]) => `${prefix}${k}`);
    throw new InvalidArgumentError(field, `unknown value ${value}; use one of ${names.join(", ")}`);
  }
  return value;
}

/** An optional free-text reason, capped. */
export function reasonArg(field: string, value: string): string {
  if (value.length > 256) throw new InvalidArgumentError(field, `is ${value.length} characters; at most 256`);
  return value;
}
