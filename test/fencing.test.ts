import { beforeEach, describe, expect, it } from "vitest";
import { StepErrorCode, StepState } from "../gen/stepq/v1/step_pb.js";
import { LeaseLostError, StepCancelledError } from "../queue/errors.js";
import { oneStepJob } from "../queue/prepare-job.js";
import { resultBytes, useQueues } from "./helpers/queue.js";
import type { Queue } from "../queue/queue.js";
import { echo } from "./helpers/stack.js";
import { redisNow, untilRedisTimePasses } from "./helpers/waits.js";

const newQueue = await useQueues();
let queue: Queue;
beforeEach(() => {
  queue = newQueue();
});

async function submitEcho(text: string) {
  const { jobId } = await queue.submit(queue.prepare(oneStepJob({ operation: echo({ text }) })));
  return jobId;
}

describe("leases and fencing", () => {
  it("a stale worker cannot complete, append, report progress or fail after its lease expired and the step was re-claimed", async () => {
    const jobId = await submitEcho("fenced");
    const [stale] = (await queue.claim({ workerId: "stale", routes: ["echo"], leaseMs: 100, max: 1 })).steps;
    expect(stale?.jobId).toBe(jobId);
    await untilRedisTimePasses(queue.redis, stale!.leaseDeadline);
    expect((await queue.sweep()).recovered).toBe(1);
    const [fresh] = (await queue.claim({ workerId: "fresh", routes: ["echo"], leaseMs: 10_000, max: 1 })).steps;
    expect(fresh?.attempt).toBe(2);

    const s = stale!;
    await expect(queue.complete(s, resultBytes("stale"))).rejects.toBeInstanceOf(LeaseLostError);
    // Re-claimed, not cancelled: the refusal must not tell the stale worker it was cancelled.
    await expect(queue.complete(s, resultBytes("stale"))).rejects.not.toBeInstanceOf(StepCancelledError);
    await expect(queue.appendOutput(s, { firstSeq: 0, entries: [{ kind: "tokens", firstIndex: 0, texts: ["x"] }] })).rejects.toBeInstanceOf(LeaseLostError);
    await expect(queue.reportProgress(s, 0.5)).rejects.toBeInstanceOf(LeaseLostError);
    await expect(queue.fail(s, { code: StepErrorCode.ENGINE_FAILED, message: "late", retryable: true })).rejects.toBeInstanceOf(LeaseLostError);

    await queue.complete(fresh!, resultBytes("fresh"));
    const job = await queue.getJob(jobId);
    expect(job?.steps[0]?.state).toBe(StepState.SUCCEEDED);
    expect(job?.steps[0]?.errors.map((e) => e.code)).toEqual([StepErrorCode.LEASE_EXPIRED]);
    const tokens = (await queue.readLog(jobId, "", 100)).filter((e) => e.kind === "tokens");
    expect(tokens).toEqual([]);
  });

  it("every write refused because the step was cancelled says so, whichever path refuses it", async () => {
    const jobId = await submitEcho("to cancel");
    const [step] = (await queue.claim({ workerId: "w", routes: ["echo"], leaseMs: 10_000, max: 1 })).steps;
    await queue.cancel(jobId, 0, "no longer needed");
    const s = step!;
    const refusals = [
      queue.appendOutput(s, { firstSeq: 0, entries: [{ kind: "tokens", firstIndex: 0, texts: ["x"] }] }),
      queue.reportProgress(s, 0.5),
      queue.complete(s, resultBytes("late")),
      queue.fail(s, { code: StepErrorCode.ENGINE_FAILED, message: "late", retryable: true }),
    ];
    // Settled together: awaited one by one, a refusal that comes back while
    // an earlier one is still awaited has no handler yet (an unhandled
    // rejection; the appends go through a coalescer and answer last).
    for (const outcome of await Promise.allSettled(refusals)) {
      expect(outcome.status).toBe("rejected");
      const reason = (outcome as PromiseRejectedResult).reason as Error;
      expect(reason).toBeInstanceOf(StepCancelledError);
      expect(reason.message).toContain(`step ${jobId}.0 was cancelled`);
    }
    const settled = await queue.settle({
      workerId: "w",
      routes: ["echo"],
      leaseMs: 10_000,
      claimMax: 0,
      completions: [{ step: s, result: resultBytes("late"), trailing: { firstSeq: 0, entries: [] } }],
    });
    expect(settled.outcomes[0]).toBeInstanceOf(StepCancelledError);
    const [renewed] = await queue.extendLeases([s], 10_000);
    expect(renewed).toBeInstanceOf(StepCancelledError);
    const job = await queue.getJob(jobId);
    expect(job?.steps[0]).toMatchObject({ state: StepState.CANCELLED, attempt: 1 });
  });

  it("an expired lease cannot be renewed, even before anyone recovered it", async () => {
    await submitEcho("expire");
    const [step] = (await queue.claim({ workerId: "w", routes: ["echo"], leaseMs: 50, max: 1 })).steps;
    await untilRedisTimePasses(queue.redis, step!.leaseDeadline);
    const [lost] = await queue.extendLeases([step!], 10_000);
    expect(lost).toBeInstanceOf(LeaseLostError);
    expect(lost).not.toBeInstanceOf(StepCancelledError);
    await expect(queue.complete(step!, resultBytes("late"))).rejects.toBeInstanceOf(LeaseLostError);
    await queue.sweep();
  });

  it("a live lease is renewed and the step can then complete", async () => {
    const jobId = await submitEcho("renew");
    const [step] = (await queue.claim({ workerId: "w", routes: ["echo"], leaseMs: 200, max: 1 })).steps;
    let deadline = step!.leaseDeadline;
    for (let i = 0; i < 4; i++) {
      // Renewed past the first deadline: without the renewals the lease would have expired.
      await untilRedisTimePasses(queue.redis, deadline - 100);
      const [renewed] = await queue.extendLeases([step!], 200);
      expect(typeof renewed).toBe("number");
      deadline = renewed as number;
    }
    expect(await redisNow(queue.redis)).toBeGreaterThan(step!.leaseDeadline);
    await queue.complete(step!, resultBytes("ok"));
    expect((await queue.getJob(jobId))?.steps[0]?.state).toBe(StepState.SUCCEEDED);
  });

  it("a completion sent twice (a lost reply) takes effect once", async () => {
    const jobId = await submitEcho("twice");
    const [step] = (await queue.claim({ workerId: "w", routes: ["echo"], leaseMs: 5000, max: 1 })).steps;
    await queue.complete(step!, resultBytes("once"));
    await expect(queue.complete(step!, resultBytes("once"))).rejects.toBeInstanceOf(LeaseLostError);
    const events = (await queue.readLog(jobId, "", 100)).filter((e) => e.kind === "event").map((e) => e.kind === "event" && e.event.type);
    expect(events.filter((t) => t === 5 /* STEP_SUCCEEDED */)).toHaveLength(1);
  });

  it("output resent after a lost reply is written once", async () => {
    const jobId = await submitEcho("resend");
    const [step] = (await queue.claim({ workerId: "w", routes: ["echo"], leaseMs: 5000, max: 1 })).steps;
    const batch = { firstSeq: 0, entries: [{ kind: "tokens" as const, firstIndex: 0, texts: ["a", "b"] }] };
    await queue.appendOutput(step!, batch);
    await queue.appendOutput(step!, batch);
    await queue.complete(step!, resultBytes("ab"), {
      firstSeq: 0,
      entries: [...batch.entries, { kind: "tokens", firstIndex: 2, texts: ["c"] }],
    });
    const tokens = (await queue.readLog(jobId, "", 100)).flatMap((e) => (e.kind === "tokens" ? e.texts : []));
    expect(tokens).toEqual(["a", "b", "c"]);
  });
});

describe("the record of a job without a log", () => {
  it("does not grow with progress reports", async () => {
    const queue = newQueue();
    const { jobId } = await queue.submit(queue.prepare(oneStepJob({ operation: echo({ text: "p" }) })));
    const [step] = (await queue.claim({ workerId: "w", routes: ["echo"], leaseMs: 10_000, max: 1 })).steps;
    // The first report rewrites the record whole (its claim was appended in place); later ones must not add to it.
    await queue.reportProgress(step!, 0.01, "at 1");
    const size = await queue.redis.strlen(queue.keys.job(jobId));
    for (let i = 2; i <= 50; i++) await queue.reportProgress(step!, i / 100, `at ${i}`);
    expect(await queue.redis.strlen(queue.keys.job(jobId))).toBeLessThanOrEqual(size + 8);
    expect((await queue.getJob(jobId))?.steps[0]?.progress).toBeCloseTo(0.5);
  });
});
