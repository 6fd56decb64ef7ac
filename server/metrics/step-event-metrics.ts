/**
 * The queue's step counters and latency histograms, read from the
 * queue-wide `events` stream that the scripts already write on every
 * transition: one blocking XREAD on the server's own connection, off the
 * path of submits, claims and completions (they do no extra Redis work for
 * metrics). Each step event carries its route and its time (the entry id,
 * by Redis's clock), so the counts are exact and queue-wide, and the
 * histograms need only the times of the steps in flight, kept in memory
 * (at most MAX_TRACKED steps; the oldest are forgotten first).
 *
 * Every server of a queue reads every event: all servers report the same
 * counts (aggregate them with max, not sum: docs/operations.md).
 */
import { Counter, Histogram, type Registry } from "prom-client";
import type { Redis } from "ioredis";
import { EventType } from "../../gen/stepq/v1/events_pb.js";
import { StepErrorCode, StepState } from "../../gen/stepq/v1/step_pb.js";
import { coerceError } from "../../queue/errors.js";
import { eventsAfter, type StreamEvent } from "../../queue/log-entry.js";
import { lastEntryId, readLive } from "../../queue/stream-reads.js";

/** Steps whose times are kept for the histograms at most. */
const MAX_TRACKED = 100_000;
/** Seconds: from a few ms (echo) to the longest inference runs and queue waits. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

interface Times {
  submitted?: number;
  ready?: number;
  claimed?: number;
}

export interface StepEventMetrics {
  /** Stops reading (the reader connection is disconnected). */
  stop(): void;
}

/**
 * Registers the counters and histograms and starts reading the events
 * stream `eventsKey` from its end on `reader` (a blocking connection of its
 * own); `redis` reads where the end is.
 */
export async function startStepEventMetrics(
  registry: Registry,
  opts: { redis: Redis; reader: Redis; eventsKey: string; onError: (err: Error) => void },
): Promise<StepEventMetrics> {
  const counter = (name: string, help: string) => new Counter({ name, help, labelNames: ["route"] as const, registers: [registry] });
  const histogram = (name: string, help: string) => new Histogram({ name, help, labelNames: ["route"] as const, buckets: LATENCY_BUCKETS, registers: [registry] });
  const submitted = counter("stepq_steps_submitted_total", "Steps submitted, per route (events stream: STEP_SUBMITTED).");
  const claimed = counter("stepq_steps_claimed_total", "Attempts claimed by workers, per route (STEP_CLAIMED).");
  const succeeded = counter("stepq_steps_succeeded_total", "Steps completed successfully, per route (STEP_SUCCEEDED).");
  const failures = counter("stepq_step_failures_total", "Attempts that failed, lease expiries included, per route (STEP_RETRYING + STEP_FAILED).");
  const retries = counter("stepq_step_retries_total", "Failed attempts that will be tried again, per route (STEP_RETRYING).");
  const expiries = counter("stepq_lease_expiries_total", "Attempts whose worker stopped renewing the lease, per route (error LEASE_EXPIRED).");
  const dead = counter("stepq_dead_letters_total", "Steps that failed for good and went to the dead letters, per route (STEP_FAILED).");
  const cancelled = counter("stepq_steps_cancelled_total", "Steps cancelled, per route (STEP_CANCELLED).");
  const queued = histogram("stepq_step_queued_seconds", "Time from a step becoming ready (submitted, dependencies met, retry or schedule due) to its claim, per route.");
  const running = histogram("stepq_step_running_seconds", "Time from a claim to the end of that attempt (success or failure), per route.");
  const total = histogram("stepq_step_submit_to_done_seconds", "Time from submit to the step's final outcome (succeeded or failed for good), per route.");

  const times = new Map<string, Times>();
  const track = (id: string): Times => {
    let t = times.get(id);
    if (!t) {
      if (times.size >= MAX_TRACKED) times.delete(times.keys().next().value as string);
      times.set(id, (t = {}));
    }
    return t;
  };

  const observe = ({ time, event: e }: StreamEvent): void => {
    if (e.route === undefined || e.stepIndex === undefined) return;
    const route = e.route;
    const id = `${e.jobId}.${e.stepIndex}`;
    const t = e.type === EventType.STEP_SUBMITTED ? track(id) : times.get(id);
    const seconds = (from: number | undefined) => (from === undefined ? undefined : Math.max(0, time - from) / 1000);
    const endAttempt = () => {
      const s = seconds(t?.claimed);
      if (s !== undefined) running.observe({ route }, s);
      if (t) t.claimed = undefined;
    };
    const finish = () => {
      const s = seconds(t?.submitted);
      if (s !== undefined) total.observe({ route }, s);
      times.delete(id);
    };
    switch (e.type) {
      case EventType.STEP_SUBMITTED:
        submitted.inc({ route });
        (t as Times).submitted = time;
        break;
      case EventType.STEP_CLAIMED: {
        claimed.inc({ route });
        const s = seconds(t?.ready);
        if (s !== undefined) queued.observe({ route }, s);
        if (t) t.claimed = time;
        break;
      }
      case EventType.STEP_SUCCEEDED:
        succeeded.inc({ route });
        endAttempt();
        finish();
        break;
      case EventType.STEP_RETRYING:
        failures.inc({ route });
        retries.inc({ route });
        if (e.error?.code === StepErrorCode.LEASE_EXPIRED) expiries.inc({ route });
        endAttempt();
        break;
      case EventType.STEP_FAILED:
        dead.inc({ route });
        // A step failed without an attempt of its own (a dependency failed, a queue timeout) is no failed attempt.
        if (t?.claimed !== undefined) failures.inc({ route });
        if (e.error?.code === StepErrorCode.LEASE_EXPIRED) expiries.inc({ route });
        endAttempt();
        finish();
        break;
      case EventType.STEP_CANCELLED:
        cancelled.inc({ route });
        times.delete(id);
        break;
    }
    // Ready to claim now (submitted ready, dependencies met, scheduled time reached, retried, handed back).
    if (t && e.stepState === StepState.QUEUED && times.has(id)) t.ready = time;
  };

  // From the stream's end now (Redis away: from its end once it is back).
  const end = async () => (await lastEntryId(opts.redis, opts.eventsKey)) || "0-0";
  let last = await end().catch(() => undefined);
  let stopped = false;
  const loop = async () => {
    let backoff = 100;
    while (!stopped) {
      try {
        last ??= await end();
        const reply = await readLive(opts.reader, ["COUNT", 1000, "BLOCK", 5000, "STREAMS", opts.eventsKey, last]);
        backoff = 100;
        for (const [, entries] of reply ?? []) {
          for (const entry of entries) {
            last = entry.id;
            for (const ev of eventsAfter(entry.id, entry.fields, undefined)) observe(ev);
          }
        }
      } catch (e) {
        if (stopped) return;
        opts.onError(coerceError(e));
        await new Promise((r) => setTimeout(r, backoff).unref());
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  };
  void loop();
  return {
    stop() {
      stopped = true;
      opts.reader.disconnect();
    },
  };
}
