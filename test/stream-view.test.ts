/**
 * The stream view (queue/stream-view.ts, queue/scripts/streamView.lua):
 * what streams read of a job instead of its whole record. It must say what
 * the record says, for every shape a record takes, and cost Redis a few
 * bytes of reply however large the record is.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { JobState } from "../gen/stepq/v1/job_pb.js";
import { OperationSchema } from "../gen/stepq/v1/operation_pb.js";
import { StepResultSchema, StepState, StopReason } from "../gen/stepq/v1/step_pb.js";
import { pack } from "../wire/msgpack.js";
import type { JobView } from "../queue/queue.js";
import { readStreamView, type StreamView } from "../queue/stream-view.js";
import { connect } from "./helpers/redis.js";
import { echo, eventually, useStack } from "./helpers/stack.js";

const stack = await useStack();
const worker = await stack.worker({ concurrency: 4 });
void worker.runForever();
const queue = stack.server.queue;
const admin = await connect(stack.redis.url);

function usage(result: Uint8Array | undefined) {
  if (!result) return undefined;
  const r = fromBinary(StepResultSchema, result);
  return { usage: r.usage, stopReason: r.stopReason };
}

/** What the whole record says, in the view's terms. */
function fromRecord(job: JobView) {
  return {
    id: job.id,
    tenant: job.tenant,
    state: job.state,
    hasLog: job.hasLog,
    finalCursor: job.finalCursor,
    steps: job.steps.map((s) => ({ name: s.name, state: s.state, finalCursor: s.finalCursor, lastError: s.errors.at(-1), usage: usage(s.result) })),
  };
}

function fromView(view: StreamView) {
  return {
    ...view,
    steps: view.steps.map((s) => ({ name: s.name, state: s.state, finalCursor: s.finalCursor, lastError: s.errors.at(-1), usage: usage(s.result) })),
  };
}

async function expectSame(jobId: string) {
  const job = await queue.getJob(jobId);
  expect(job).toBeDefined();
  expect(fromView((await readStreamView(queue, jobId))!)).toEqual(fromRecord(job!));
}

async function follow(jobId: string) {
  for await (const _ of stack.client.jobs.streamJobOutput({ jobId })) {
    /* to the end */
  }
}

describe("the stream view says what the record says", () => {
  it("for a one-step job completed in place (its result in the record's tail), before and after its log is made", async () => {
    const step = await stack.client.submit(echo({ text: "in place ünïcode" }));
    // Not wait(): it follows the job, which would make its log.
    await eventually(() => stack.client.get(step.id), (s) => s.state === StepState.SUCCEEDED);
    const view = await readStreamView(queue, step.jobId);
    expect(view?.hasLog).toBe(false);
    expect(view?.state).toBe(JobState.SUCCEEDED);
    await expectSame(step.jobId);
    await follow(step.jobId); // makes the log, folding the tail into the cold map
    expect((await readStreamView(queue, step.jobId))?.hasLog).toBe(true);
    await expectSame(step.jobId);
  });

  it("for steps with output, usage, retries, failures and dependants cancelled by them", async () => {
    const { job } = await stack.client.jobs.submitJob({
      steps: [
        { name: "tokens", operation: echo({ text: "a b c", tokenCount: 7 }) },
        { name: "retried", operation: echo({ text: "r", tokenCount: 2, failMessage: "once", failAttempts: 1 }), retry: { maxAttempts: 2, initialBackoffMs: 10 } },
        { name: "doomed", operation: echo({ text: "d", failMessage: "always fails", failPermanently: true }), dependsOn: ["tokens"] },
        { name: "after-doomed", operation: echo({ text: "never" }), dependsOn: ["doomed"] },
      ],
      failurePolicy: 2,
    });
    await follow(job!.id);
    const view = await readStreamView(queue, job!.id);
    expect(view?.steps.map((s) => s.state)).toEqual([StepState.SUCCEEDED, StepState.SUCCEEDED, StepState.FAILED, StepState.CANCELLED]);
    expect(usage(view?.steps[0]?.result)?.usage?.completionTokens).toBe(7);
    expect(view?.steps[2]?.errors[0]?.message).toBe("always fails");
    expect(view?.steps[3]?.errors[0]?.causeIndex).toBe(2);
    await expectSame(job!.id);
  });

  it("for a dead-lettered step retried by a client (its old final cursor superseded)", async () => {
    const step = await stack.client.submit(echo({ text: "x", tokenCount: 2, failMessage: "first run fails", failAttempts: 1 }), { retry: { maxAttempts: 1 } });
    await stack.client.wait(step.id).catch(() => undefined);
    await follow(step.jobId);
    const failed = await readStreamView(queue, step.jobId);
    expect(failed?.steps[0]?.state).toBe(StepState.FAILED);
    await stack.client.steps.retryStep({ stepId: step.id });
    await follow(step.jobId);
    const retried = await readStreamView(queue, step.jobId);
    expect(retried?.steps[0]?.state).toBe(StepState.SUCCEEDED);
    expect(retried?.steps[0]?.finalCursor).not.toBe(failed?.steps[0]?.finalCursor);
    await expectSame(step.jobId);
  });

  it("for a record of another format: an error naming the format", async () => {
    const jobId = "zzzzzzzzabcdefgh";
    await queue.redis.set(queue.keys.job(jobId), pack({ sq: 1, c: Date.now(), st: JobState.SUCCEEDED, s: [] } as never));
    await expect(readStreamView(queue, jobId)).rejects.toThrow(`job ${jobId} has record format ${0x80 | 4}; this stepq reads format 2 only`);
  });

  it("for an unknown job: undefined", async () => {
    expect(await readStreamView(queue, "0000000000000000")).toBeUndefined();
  });
});

describe("the stream view's cost", () => {
  it("a job with a 2 MB result costs Redis a few hundred bytes of reply, not its record", async () => {
    const step = await stack.client.submit(echo({ text: "0123456789abcdef", tokenCount: 130_000 }));
    await stack.client.wait(step.id);
    await follow(step.jobId);
    const recordBytes = await queue.redis.strlen(queue.keys.job(step.jobId));
    expect(recordBytes).toBeGreaterThan(2_000_000);
    const sent = async () => Number(/total_net_output_bytes:(\d+)/.exec(await admin.info("stats"))?.[1]);
    const before = await sent();
    const view = await readStreamView(queue, step.jobId);
    const after = await sent();
    expect(usage(view?.steps[0]?.result)?.usage?.completionTokens).toBe(130_000);
    // The INFO reply itself is counted too (a few KB).
    expect(after - before).toBeLessThan(16_000);
  });
});
