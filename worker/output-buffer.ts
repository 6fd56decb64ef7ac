/**
 * Batches a running step's tokens and narration into log appends.
 *
 * At most one append is in flight per step, and appends are at least
 * `flushMs` apart: the first token goes out at once, and under a fast engine
 * tokens gather into larger entries instead of one Redis call each. Each
 * entry has a sequence number within the attempt; once sent, an entry is
 * frozen, so resending a batch whose reply was lost (Redis away) is
 * byte-identical and the script skips what it already wrote. Output is
 * never dropped or duplicated, only delayed.
 */
import type { OutputBatch, OutputEntry } from "../queue/leases.js";

export interface OutputBufferOptions {
  /** Writes one batch (appendOutput). */
  write(batch: OutputBatch): Promise<void>;
  /** Minimum time between two appends, ms. */
  flushMs: number;
  /** Whether a failed write should be retried (Redis unreachable) rather than given up. */
  isRetryable(err: unknown): boolean;
  /** Called once when a write fails for good (the lease is gone). */
  onFatal(err: Error): void;
  /** Most tokens per log entry. Default 256. */
  maxTokensPerEntry?: number;
  /** Most entries per append. Default 64. */
  maxEntriesPerBatch?: number;
  /** Delay before retrying a failed write, ms. Default 200. */
  retryMs?: number;
}

interface Item {
  entry: OutputEntry;
  seq: number;
  /** Sent at least once: must not change any more. */
  frozen: boolean;
}

export interface OutputBuffer {
  token(text: string): void;
  narrate(level: number, text: string): void;
  /** Number of tokens so far. */
  readonly tokenCount: number;
  /**
   * Stops flushing, waits for the append in flight, and returns what is left
   * to write with the final complete/fail call.
   */
  finish(): Promise<OutputBatch>;
}

export function createOutputBuffer(o: OutputBufferOptions): OutputBuffer {
  const maxTokens = o.maxTokensPerEntry ?? 256;
  const maxEntries = o.maxEntriesPerBatch ?? 64;
  const unsent: Item[] = [];
  let nextSeq = 0;
  let tokenIndex = 0;
  let inFlight: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let lastWrite = 0;
  let finished = false;
  let dead = false;

  function schedule(delay?: number) {
    if (finished || dead || inFlight || timer || unsent.length === 0) return;
    const wait = delay ?? lastWrite + o.flushMs - Date.now();
    if (wait > 0) {
      timer = setTimeout(() => {
        timer = undefined;
        send();
      }, wait);
    } else send();
  }

  function send() {
    if (finished || dead || inFlight || unsent.length === 0) return;
    const batch = unsent.splice(0, maxEntries);
    for (const item of batch) item.frozen = true;
    lastWrite = Date.now();
    inFlight = o.write({ firstSeq: (batch[0] as Item).seq, entries: batch.map((b) => b.entry) }).then(
      () => {
        inFlight = undefined;
        schedule();
      },
      (err: unknown) => {
        inFlight = undefined;
        if (o.isRetryable(err)) {
          unsent.unshift(...batch);
          schedule(o.retryMs ?? 200);
        } else {
          dead = true;
          o.onFatal(err instanceof Error ? err : new Error(String(err)));
        }
      },
    );
  }

  return {
    get tokenCount() {
      return tokenIndex;
    },
    token(text: string) {
      if (finished || dead) return;
      const last = unsent[unsent.length - 1];
      if (last && !last.frozen && last.entry.kind === "tokens" && last.entry.texts.length < maxTokens) {
        last.entry.texts.push(text);
      } else {
        unsent.push({ entry: { kind: "tokens", firstIndex: tokenIndex, texts: [text] }, seq: nextSeq++, frozen: false });
      }
      tokenIndex++;
      schedule();
    },
    narrate(level: number, text: string) {
      if (finished || dead) return;
      unsent.push({ entry: { kind: "narration", level, text }, seq: nextSeq++, frozen: false });
      schedule();
    },
    async finish(): Promise<OutputBatch> {
      finished = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      while (inFlight) await inFlight;
      const rest = unsent.splice(0);
      return { firstSeq: rest[0]?.seq ?? nextSeq, entries: rest.map((i) => i.entry) };
    },
  };
}
