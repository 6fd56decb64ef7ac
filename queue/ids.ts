/**
 * Job and step identifiers.
 *
 * A job id is 16 lowercase base-36 characters: 8 encode the queue's job
 * sequence number (so ids sort by submission and the ready list can compare
 * ages without a lookup), 8 are random (so ids cannot be guessed). A step id
 * is `<jobId>.<index>` with the step's 0-based position in its job.
 */
import { randomBytes } from "node:crypto";

export const JOB_ID_PATTERN = /^[0-9a-z]{16}$/;
export const STEP_ID_PATTERN = /^([0-9a-z]{16})\.(\d{1,4})$/;

const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";

// Random bytes are drawn in blocks: one randomBytes call per id costs more
// than the rest of preparing a small submit. Bytes ≥ 252 are skipped so
// every character is equally likely (252 = 7 × 36).
const POOL_SIZE = 4096;
let pool = randomBytes(POOL_SIZE);
let poolPos = 0;

function randomByte(): number {
  for (;;) {
    if (poolPos === POOL_SIZE) {
      pool = randomBytes(POOL_SIZE);
      poolPos = 0;
    }
    const b = pool[poolPos++] as number;
    if (b < 252) return b;
  }
}

/** 8 random base-36 characters, the part of a job id the queue does not assign. */
export function randomIdSuffix(): string {
  let out = "";
  for (let i = 0; i < 8; i++) out += ALPHABET[randomByte() % 36];
  return out;
}

/** The parts of a well-formed step id, or undefined. */
export function parseStepId(stepId: string): { jobId: string; index: number } | undefined {
  const m = STEP_ID_PATTERN.exec(stepId);
  if (!m) return undefined;
  return { jobId: m[1] as string, index: Number(m[2]) };
}

/** The id of step `index` of job `jobId`. */
export function stepIdOf(jobId: string, index: number): string {
  return `${jobId}.${index}`;
}

/** The queue's sequence number that job id `jobId` starts with. */
export function jobSeqOf(jobId: string): number {
  return parseInt(jobId.slice(0, 8), 36);
}

/** The shape of a stream entry id used as a cursor, `<ms>-<seq>` (isStreamId also checks the range). */
export const CURSOR_PATTERN = /^\d{1,20}-\d{1,20}$/;

/** The largest part of a stream id: Redis keeps each as an unsigned 64-bit integer. */
const U64_MAX = "18446744073709551615";

/** Whether the digits `d` (at most 20) are a number below 2^64. */
function fitsU64(d: string): boolean {
  const s = d.length > 1 ? d.replace(/^0+(?=\d)/, "") : d;
  return s.length < 20 || (s.length === 20 && s <= U64_MAX);
}

/**
 * Whether `value` is a Redis stream id, `<ms>-<seq>` with both parts below
 * 2^64: what log cursors and job-index page tokens are. Checked before any
 * reaches Redis, which refuses larger ones (a client's typo would otherwise
 * come back as an internal error).
 */
export function isStreamId(value: string): boolean {
  const dash = value.indexOf("-");
  return CURSOR_PATTERN.test(value) && fitsU64(value.slice(0, dash)) && fitsU64(value.slice(dash + 1));
}

/** Whether `value` is a cursor of the events stream: an entry id, or `<entry id>.<n>` for the n-th event of a batch entry. */
export function isEventCursor(value: string): boolean {
  const dot = value.indexOf(".");
  if (dot < 0) return isStreamId(value);
  return isStreamId(value.slice(0, dot)) && /^\d{1,6}$/.test(value.slice(dot + 1));
}

/**
 * Whether `token` can be a job-index page token (ListJobs, and ListSteps
 * after `j:`): an index entry id, never 0-0 (nothing comes before it, and
 * Redis refuses a range that ends before 0-0).
 */
export function isIndexToken(token: string): boolean {
  return isStreamId(token) && /[1-9]/.test(token);
}
