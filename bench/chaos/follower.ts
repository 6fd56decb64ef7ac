/**
 * Follows the token streams of the sampled jobs with the client's
 * `follow()` (StreamJobOutput, resuming from its cursor after a dropped
 * connection) through the dropping proxy, and records exactly what arrived,
 * for the stream check after the run.
 */
import { setMaxListeners } from "node:events";
import type { StepqClient } from "../../clients/node/client.js";
import type { PlannedJob, PlannedStep } from "./job-plan.js";

/** What one followed step's stream delivered. */
export interface FollowRecord {
  jobIndex: number;
  stepIndex: number;
  stepId: string;
  /** The step as planned (what it must emit). */
  planned: PlannedStep;
  /** Tokens in arrival order, each with the attempt that produced it. */
  tokens: { attempt: number; index: number; text: string }[];
  /** Attempts announced by restart messages, in arrival order. */
  restarts: number[];
  /** Times the stream broke and was reopened. */
  reconnects: number;
  /** The end message, once it arrived. */
  end?: { state: number };
  /** Why following stopped early, if it did. */
  error?: string;
}

/** The followers of one run. */
export interface Follower {
  /** Starts following every streaming step of an acknowledged job (queued behind the stream limit). */
  add(job: PlannedJob, jobId: string): void;
  /** Waits for every stream to end, aborting those still open after `timeoutMs`; returns the records. */
  finish(timeoutMs: number): Promise<FollowRecord[]>;
}

/** Creates a follower that keeps at most `maxStreams` streams open at once. */
export function createFollower(client: StepqClient, options: { maxStreams: number }): Follower {
  const records: FollowRecord[] = [];
  const waiting: FollowRecord[] = [];
  const active = new Set<Promise<void>>();
  const abort = new AbortController();
  // Each open stream listens on it (see follow()).
  setMaxListeners(options.maxStreams + 1, abort.signal);

  async function follow(record: FollowRecord): Promise<void> {
    // A signal per stream: follow() leaves a listener on its signal when it
    // stops at the step's end, and one shared signal would collect them all.
    const own = new AbortController();
    const stop = () => own.abort();
    abort.signal.addEventListener("abort", stop);
    try {
      const events = client.follow(record.stepId, {
        signal: own.signal,
        maxReconnects: 1000,
        onReconnect: () => record.reconnects++,
      });
      for await (const e of events) {
        if (e.type === "tokens") for (const t of e.tokens) record.tokens.push({ attempt: e.attempt, index: t.index, text: t.text });
        else if (e.type === "restart") record.restarts.push(e.attempt);
        else if (e.type === "end") record.end = { state: e.state };
      }
    } catch (e) {
      record.error = (e as Error).message;
    } finally {
      abort.signal.removeEventListener("abort", stop);
    }
  }

  function pump() {
    while (active.size < options.maxStreams && waiting.length > 0) {
      const p = follow(waiting.shift() as FollowRecord).finally(() => {
        active.delete(p);
        pump();
      });
      active.add(p);
    }
  }

  return {
    add(job, jobId) {
      job.steps.forEach((step, stepIndex) => {
        if (step.echo.tokenCount === 0) return;
        const stepId = `${jobId}.${stepIndex}`;
        const record: FollowRecord = { jobIndex: job.index, stepIndex, stepId, planned: step, tokens: [], restarts: [], reconnects: 0 };
        records.push(record);
        waiting.push(record);
      });
      pump();
    },
    async finish(timeoutMs) {
      const until = Date.now() + timeoutMs;
      while ((active.size > 0 || waiting.length > 0) && Date.now() < until) {
        await Promise.race([...active, new Promise((r) => setTimeout(r, 250))]);
      }
      for (const record of waiting.splice(0)) record.error = "not started before the deadline";
      abort.abort();
      await Promise.all(active);
      return records;
    },
  };
}
