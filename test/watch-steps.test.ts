import { describe, expect, it } from "vitest";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { JobState } from "../gen/stepq/v1/job_pb.js";
import type { Event } from "../gen/stepq/v1/events_pb.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { echo, useStack } from "./helpers/stack.js";

const stack = await useStack();

/** Reads WatchSteps from `afterCursor` until `until` says stop. */
async function watch(afterCursor: string, until: (seen: Event[]) => boolean, filter: { jobId?: string } = {}): Promise<Event[]> {
  const abort = new AbortController();
  const seen: Event[] = [];
  try {
    for await (const res of stack.client.steps.watchSteps({ afterCursor, ...filter }, { signal: abort.signal })) {
      seen.push(res.event!);
      if (until(seen)) abort.abort();
    }
  } catch (e) {
    if (!abort.signal.aborted) throw e;
  }
  return seen;
}

const LIFE = [EventType.JOB_SUBMITTED, EventType.STEP_SUBMITTED, EventType.STEP_CLAIMED, EventType.STEP_SUCCEEDED, EventType.JOB_SUCCEEDED];

describe("WatchSteps", () => {
  it("shows every event of steps submitted, claimed and completed in batches, each with its own cursor, in order", async () => {
    const worker = await stack.worker({ concurrency: 4 });
    const requests = Array.from({ length: 20 }, (_, i) => ({ operation: echo({ text: `b${i}` }) }));
    const batch = (await stack.client.steps.submitSteps({ requests })).responses.map((r) => r.step!);
    const jobs = new Set(batch.map((s) => s.jobId));
    const run = worker.runForever();
    // From the start of the events stream.
    const events = await watch("0-0", (s) => s.filter((e) => e.type === EventType.JOB_SUCCEEDED && jobs.has(e.jobId)).length === jobs.size);
    await worker.stop();
    await run;

    const mine = events.filter((e) => jobs.has(e.jobId));
    for (const job of jobs) {
      const life = mine.filter((e) => e.jobId === job);
      expect(life.map((e) => e.type)).toEqual(LIFE);
      const [jobSubmitted, submitted, claimed, succeeded, jobSucceeded] = life as [Event, Event, Event, Event, Event];
      expect(jobSubmitted).toMatchObject({ stepId: "", jobState: JobState.QUEUED });
      expect(submitted).toMatchObject({ stepId: `${job}.0`, stepName: "main", route: "echo", attempt: 0, stepState: StepState.QUEUED, jobState: JobState.QUEUED });
      expect(claimed).toMatchObject({ stepId: `${job}.0`, route: "echo", attempt: 1, stepState: StepState.RUNNING, jobState: JobState.RUNNING, workerId: worker.id });
      expect(succeeded).toMatchObject({ stepId: `${job}.0`, attempt: 1, stepState: StepState.SUCCEEDED, jobState: JobState.RUNNING, workerId: worker.id });
      expect(jobSucceeded).toMatchObject({ stepId: "", jobState: JobState.SUCCEEDED });
    }
    // Events of one batch entry share a stream entry but not a cursor.
    const cursors = mine.map((e) => e.cursor);
    expect(new Set(cursors).size).toBe(cursors.length);
    expect(cursors.some((c) => c.includes("."))).toBe(true);

    // Resuming from any cursor, inside a batch entry or not, continues with the next event: no gap, no repeat.
    for (const at of [1, Math.floor(mine.length / 3), Math.floor(mine.length / 2) + 1, mine.length - 2]) {
      const rest = (await watch(mine[at]!.cursor, (s) => s.filter((e) => jobs.has(e.jobId)).length === mine.length - at - 1)).filter((e) =>
        jobs.has(e.jobId),
      );
      expect(rest.map((e) => e.cursor)).toEqual(cursors.slice(at + 1));
    }
  });
});
