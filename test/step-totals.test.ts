/**
 * Issue 20, item 1: the step counters of /metrics come from totals the
 * scripts keep per route (record-writes.lua addTotal), and the queue-wait
 * histogram from the time each claimed step became ready (CLAIMED's
 * readyAt). Checked at the queue itself, without a server in between:
 * - a workload through every kind of transition (success, retry, failure for
 *   good and what it does to a dependant, lease expiry, cancel) gives exact
 *   totals, and the same counts as the queue's events stream says;
 * - readyAt is the job's submit for a step ready at once, and the time it
 *   became ready for a dependant, a retry and a scheduled job.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { StepErrorCode } from "../gen/stepq/v1/step_pb.js";
import { oneStepJob } from "../queue/prepare-job.js";
import type { Queue } from "../queue/queue.js";
import { emptyTotals, readRouteCounts, type RouteTotals } from "../queue/queue-stats.js";
import { resultBytes, useQueues } from "./helpers/queue.js";
import { echo } from "./helpers/stack.js";
import { redisNow, untilRedisTimePasses } from "./helpers/waits.js";

const newQueue = await useQueues();
let queue: Queue;
beforeEach(() => {
  queue = newQueue();
});

const claimOne = async (workerId = "w", leaseMs = 10_000) => {
  const [step] = (await queue.claim({ workerId, routes: ["echo"], leaseMs, max: 1 })).steps;
  if (!step) throw new Error("nothing to claim");
  return step;
};
const totalsOf = async (route: string): Promise<RouteTotals | undefined> => (await readRouteCounts(queue.redis, queue.keys)).totals.find((t) => t.route === route);
const failure = (retryable: boolean) => ({ code: StepErrorCode.ENGINE_FAILED, message: "boom", retryable });

/** What the events stream says, counted as the totals count (the mapping the servers used when they read it). */
async function countedFromEvents(route: string): Promise<RouteTotals> {
  const n = emptyTotals(route);
  const running = new Set<string>();
  for (const { event: e } of await queue.readEvents("", 10_000)) {
    if (e.route !== route) continue;
    const id = `${e.jobId}.${e.stepIndex}`;
    const expired = e.error?.code === StepErrorCode.LEASE_EXPIRED ? 1 : 0;
    switch (e.type) {
      case EventType.STEP_SUBMITTED:
        n.submitted++;
        break;
      case EventType.STEP_CLAIMED:
        n.claimed++;
        running.add(id);
        break;
      case EventType.STEP_SUCCEEDED:
        n.succeeded++;
        running.delete(id);
        break;
      case EventType.STEP_RETRYING:
        n.retried++;
        n.failedAttempts++;
        n.leaseExpired += expired;
        running.delete(id);
        break;
      case EventType.STEP_FAILED:
        n.deadLettered++;
        if (running.delete(id)) n.failedAttempts++;
        n.leaseExpired += expired;
        break;
      case EventType.STEP_CANCELLED:
        n.cancelled++;
        running.delete(id);
        break;
    }
  }
  return n;
}

describe("route totals", () => {
  it("count every transition exactly, as the events stream does", async () => {
    // Succeeds at once.
    await queue.submit(queue.prepare(oneStepJob({ operation: echo({ text: "ok" }) })));
    await queue.complete(await claimOne(), resultBytes("done"));
    // a fails for good; its dependant b can no longer run.
    await queue.submit(
      queue.prepare({
        steps: [
          { name: "a", operation: echo({ text: "a" }) },
          { name: "b", operation: echo({ text: "b" }), dependsOn: ["a"] },
        ],
      }),
    );
    await queue.fail(await claimOne(), failure(false));
    // Fails once, then succeeds.
    await queue.submit(queue.prepare(oneStepJob({ operation: echo({ text: "again" }), retry: { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 1 } })));
    await queue.fail(await claimOne(), failure(true));
    await untilRedisTimePasses(queue.redis, (await redisNow(queue.redis)) + 5);
    await queue.complete(await claimOne(), resultBytes("done"));
    // Its worker stops renewing: the sweeper requeues it, and it succeeds.
    await queue.submit(queue.prepare(oneStepJob({ operation: echo({ text: "lost" }) })));
    const lost = await claimOne("gone", 50);
    await untilRedisTimePasses(queue.redis, lost.leaseDeadline);
    expect((await queue.sweep()).recovered).toBe(1);
    await queue.complete(await claimOne(), resultBytes("done"));
    // Cancelled while queued.
    const { jobId } = await queue.submit(queue.prepare(oneStepJob({ operation: echo({ text: "never" }) })));
    await queue.cancel(jobId, undefined, "not needed");

    const totals = await totalsOf("echo");
    expect(totals).toMatchObject({ submitted: 6, claimed: 6, succeeded: 3, retried: 2, failedAttempts: 3, leaseExpired: 1 });
    // a, and b either dead-lettered or cancelled with it; the cancelled job.
    expect((totals?.deadLettered ?? 0) + (totals?.cancelled ?? 0)).toBe(3);
    expect(totals?.deadLettered).toBeGreaterThanOrEqual(1);
    expect(totals?.cancelled).toBeGreaterThanOrEqual(1);
    expect(totals).toEqual(await countedFromEvents("echo"));
  });

  it("are per route, over all tenants, and not read as step states", async () => {
    await queue.submit(queue.prepare({ ...oneStepJob({ operation: echo({ text: "t1" }) }), tenant: 1 }));
    await queue.submit(queue.prepare({ ...oneStepJob({ operation: echo({ text: "t2" }) }), tenant: 2 }));
    const { routes, totals } = await readRouteCounts(queue.redis, queue.keys);
    expect(totals).toEqual([expect.objectContaining({ route: "echo", submitted: 2, claimed: 0 })]);
    expect(routes).toEqual([{ route: "echo", waiting: 0, queued: 2, scheduled: 0, running: 0, deadLettered: 0 }]);
    // A tenant's view of the states is its own; the totals stay queue-wide.
    expect((await readRouteCounts(queue.redis, queue.keys, 1)).routes).toEqual([{ route: "echo", waiting: 0, queued: 1, scheduled: 0, running: 0, deadLettered: 0 }]);
  });
});

describe("a claimed step's readyAt", () => {
  it("is its job's submit when it was ready at once", async () => {
    await queue.submit(queue.prepare(oneStepJob({ operation: echo({ text: "now" }) })));
    const step = await claimOne();
    expect(step.readyAt).toBe(step.submittedAt);
  });

  it("is when its dependency succeeded, for a dependant", async () => {
    await queue.submit(
      queue.prepare({
        steps: [
          { name: "a", operation: echo({ text: "a" }) },
          { name: "b", operation: echo({ text: "b" }), dependsOn: ["a"] },
        ],
      }),
    );
    const a = await claimOne();
    expect(a.readyAt).toBe(a.submittedAt);
    await untilRedisTimePasses(queue.redis, a.submittedAt + 30);
    const before = await redisNow(queue.redis);
    await queue.complete(a, resultBytes("done"));
    const b = await claimOne();
    expect(b.name).toBe("b");
    expect(b.submittedAt).toBe(a.submittedAt);
    expect(b.readyAt).toBeGreaterThanOrEqual(before);
    expect(b.readyAt).toBeLessThanOrEqual(b.leaseDeadline - 10_000);
  });

  it("is when its retry was due, for a second attempt", async () => {
    await queue.submit(queue.prepare(oneStepJob({ operation: echo({ text: "again" }), retry: { maxAttempts: 2, initialBackoffMs: 40, maxBackoffMs: 40 } })));
    const first = await claimOne();
    const { retryAt } = await queue.fail(first, failure(true));
    expect(retryAt).toBeGreaterThan(first.submittedAt);
    await untilRedisTimePasses(queue.redis, retryAt as number);
    const second = await claimOne();
    expect(second.attempt).toBe(2);
    expect(second.readyAt).toBeGreaterThanOrEqual(retryAt as number);
    expect(second.readyAt).toBeLessThanOrEqual(second.leaseDeadline - 10_000);
  });

  it("is when its job's not-before time came, for a scheduled job", async () => {
    const notBefore = (await redisNow(queue.redis)) + 60;
    await queue.submit(queue.prepare(oneStepJob({ operation: echo({ text: "later" }), notBefore })));
    await untilRedisTimePasses(queue.redis, notBefore);
    const step = await claimOne();
    expect(step.submittedAt).toBeLessThan(notBefore);
    expect(step.readyAt).toBeGreaterThanOrEqual(notBefore);
  });
});
