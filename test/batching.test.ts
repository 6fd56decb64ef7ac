import { describe, expect, it } from "vitest";
import { AlreadyExistsError, LeaseLostError, ResourceExhaustedError } from "../queue/errors.js";
import { oneStepJob } from "../queue/prepare-job.js";
import type { Queue } from "../queue/queue.js";
import { useQueues } from "./helpers/queue.js";
import { echo } from "./helpers/stack.js";
import { untilRedisTimePasses } from "./helpers/waits.js";

const newQueue = await useQueues();

/** FCALLs Redis has run so far (all queues of this file share one Redis). */
async function fcalls(queue: Queue): Promise<number> {
  const m = /cmdstat_fcall:calls=(\d+)/.exec(await queue.redis.info("commandstats"));
  return Number(m?.[1] ?? 0);
}

describe("submits made together", () => {
  it("share calls, and each is stored or refused on its own: the route limit refuses only the jobs over it", async () => {
    const queue = newQueue({ limits: { maxQueuedPerRoute: 5 } });
    const before = await fcalls(queue);
    const outcomes = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => queue.submit(queue.prepare(oneStepJob({ operation: echo({ text: `s${i}` }) })))));
    // At most two calls in flight, each with its share of what waits.
    expect(await fcalls(queue)).toBe(before + 2);
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(5);
    const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected").map((o) => o.reason as Error);
    expect(refused).toHaveLength(3);
    for (const e of refused) {
      expect(e).toBeInstanceOf(ResourceExhaustedError);
      expect(e.message).toBe(
        "route 'echo' already holds 5 queued steps and its limit is 5 (max_queued_per_route); retry later or add workers for this route",
      );
    }
    expect(await queue.redis.llen(queue.keys.readyList("echo"))).toBe(5);
  });

  it("with one idempotency key and the same request get one job; a different request under it is ALREADY_EXISTS", async () => {
    const queue = newQueue();
    const same = oneStepJob({ idempotencyKey: "k-1", operation: echo({ text: "same" }) });
    const [a, b, c] = await Promise.allSettled([
      queue.submit(queue.prepare(same)),
      queue.submit(queue.prepare(same)),
      queue.submit(queue.prepare(oneStepJob({ idempotencyKey: "k-1", operation: echo({ text: "other" }) }))),
    ]);
    expect(a?.status === "fulfilled" && b?.status === "fulfilled").toBe(true);
    const [first, second] = [a, b].map((o) => (o as PromiseFulfilledResult<Awaited<ReturnType<Queue["submit"]>>>).value);
    expect(second?.jobId).toBe(first?.jobId);
    expect([first?.deduplicated, second?.deduplicated]).toEqual([false, true]);
    expect(second?.job?.steps[0]?.state).toBe(first?.job?.steps[0]?.state);
    expect(c?.status).toBe("rejected");
    expect((c as PromiseRejectedResult).reason).toBeInstanceOf(AlreadyExistsError);
    expect(((c as PromiseRejectedResult).reason as Error).message).toMatch(/^idempotency_key: already used with a different request/);
  });
});

describe("output appended together", () => {
  it("shares calls, each append fenced by its own lease: a lost lease refuses only its own output", async () => {
    const queue = newQueue();
    for (let i = 0; i < 20; i++) await queue.submit(queue.prepare(oneStepJob({ operation: echo({ text: `o${i}` }) })));
    const [lost] = (await queue.claim({ workerId: "w", routes: ["echo"], leaseMs: 50, max: 1 })).steps;
    const live = (await queue.claim({ workerId: "w", routes: ["echo"], leaseMs: 10_000, max: 19 })).steps;
    await untilRedisTimePasses(queue.redis, lost!.leaseDeadline);
    const before = await fcalls(queue);
    const outcomes = await Promise.allSettled(
      [lost!, ...live].map((s) => queue.appendOutput(s, { firstSeq: 0, entries: [{ kind: "tokens", firstIndex: 0, texts: [`t-${s.stepId}`] }] })),
    );
    // Several calls in flight at once (output is latency-bound), each carrying its share.
    expect(await fcalls(queue)).toBeLessThan(before + 20);
    expect(outcomes[0]?.status).toBe("rejected");
    expect((outcomes[0] as PromiseRejectedResult).reason).toBeInstanceOf(LeaseLostError);
    expect(outcomes.slice(1).every((o) => o.status === "fulfilled")).toBe(true);
    for (const s of live) {
      const tokens = (await queue.readLog(s.jobId, "", 100)).flatMap((e) => (e.kind === "tokens" ? e.texts : []));
      expect(tokens).toEqual([`t-${s.stepId}`]);
    }
    expect(await queue.redis.exists(queue.keys.log(lost!.jobId))).toBe(0);
  });
});

describe("the events stream", () => {
  it("is capped in events, not entries: an entry that holds the events of a whole batch counts them all", async () => {
    const queue = newQueue({ eventsMaxLen: 1000 });
    for (let b = 0; b < 300; b++) {
      await queue.submitAll(Array.from({ length: 10 }, (_, i) => queue.prepare(oneStepJob({ operation: echo({ text: `e${b}.${i}` }) }))));
    }
    // 300 entries of 20 events each (job and step submitted, per job).
    expect(await queue.redis.xlen(queue.keys.events)).toBe(300);
    expect((await queue.readEvents("", 1000)).length).toBe(6000);
    await queue.sweep();
    // About 1,000 events: 50 entries, trimmed by whole stream nodes (100 entries each).
    const kept = await queue.redis.xlen(queue.keys.events);
    expect(kept).toBeGreaterThanOrEqual(50);
    expect(kept).toBeLessThanOrEqual(150);
  });
});

