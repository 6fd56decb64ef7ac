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

/** A stream entry id used as a cursor: `<ms>-<seq>`. */
export const CURSOR_PATTERN = /^\d{1,20}-\d{1,20}$/;

/** A cursor of the events stream: an entry id, or `<entry id>.<n>` for the n-th event of a batch entry. */
export const EVENT_CURSOR_PATTERN = /^\d{1,20}-\d{1,20}(\.\d{1,6})?$/;
