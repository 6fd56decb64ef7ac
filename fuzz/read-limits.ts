/**
 * How long and how much the senders read. A stream without a deadline is
 * followed for `streamReadMs` and then cancelled (an open stream is a fine
 * answer); one with a deadline must end within the deadline plus
 * `deadlineGraceMs`; a unary call must answer within `unaryTimeoutMs`.
 */
export interface ReadLimits {
  unaryTimeoutMs: number;
  streamReadMs: number;
  deadlineGraceMs: number;
  /**
   * Bytes of each answer kept for classification (the rest is read and
   * dropped). The status of gRPC-Web and Connect streams is in the last
   * frame, so this is above the largest answer the server's caps allow
   * (a 16 MiB job record); an answer cut by it is "truncated", not judged.
   */
  bodyCap: number;
}

export const DEFAULT_READ_LIMITS: ReadLimits = { unaryTimeoutMs: 15_000, streamReadMs: 1500, deadlineGraceMs: 5000, bodyCap: 32 * 1024 * 1024 };

/** Milliseconds the sender waits for `streaming` with optional deadline before giving up. */
export function readBudgetMs(limits: ReadLimits, streaming: boolean, deadlineMs: number | undefined): number {
  if (deadlineMs !== undefined) return deadlineMs + limits.deadlineGraceMs;
  return streaming ? limits.streamReadMs : limits.unaryTimeoutMs;
}

/** Appends `chunk` to `kept` without passing `cap` bytes. */
export function keep(kept: Buffer[], size: { n: number; truncated?: boolean }, chunk: Buffer, cap: number): void {
  if (size.n + chunk.length > cap) size.truncated = true;
  if (size.n >= cap) return;
  const part = chunk.subarray(0, cap - size.n);
  kept.push(part);
  size.n += part.length;
}
