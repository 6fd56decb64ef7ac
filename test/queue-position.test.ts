/**
 * Issue 19, items 3 and 4: where a queued step stands. While a followed
 * step waits, its narration says its place in line and what the workers
 * serving it are doing ("3rd in line for echo — 1 worker busy"), updated
 * as it moves; a step no live worker could take says why it waits. Nothing
 * in Redis keeps this: the server computes it for the steps someone follows.
 */
import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { createQueue } from "../queue/queue.js";
import { queuePosition } from "../queue/queue-position.js";
import { ordinal } from "../server/queue-position.js";
import { echo, eventually, useStack } from "./helpers/stack.js";

const stack = await useStack();
const solo = await stack.worker({ workerId: "solo", concurrency: 1, prefetchMs: 0, heartbeatMs: 100 });

/** The narration texts of step `stepId` until `stop` says enough (or the step ends). */
async function narration(stepId: string, stop: (texts: string[]) => boolean): Promise<{ texts: string[]; cursors: string[] }> {
  const texts: string[] = [];
  const cursors: string[] = [];
  const abort = new AbortController();
  try {
    for await (const m of stack.client.steps.streamNarration({ stepId }, { signal: abort.signal })) {
      if (m.event.case === "narration") {
        texts.push(m.event.value.text);
        cursors.push(m.event.value.cursor);
        if (stop(texts)) break;
      }
    }
  } catch (e) {
    if (!abort.signal.aborted) throw e;
  } finally {
    abort.abort();
  }
  return { texts, cursors };
}

describe("queue position narration", () => {
  it("ordinals", () => {
    expect([1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111, 1002].map(ordinal)).toEqual([
      "1st",
      "2nd",
      "3rd",
      "4th",
      "11th",
      "12th",
      "13th",
      "21st",
      "22nd",
      "101st",
      "111th",
      "1,002nd",
    ]);
  });

  it("a followed step hears its place in line move up as the steps ahead of it run", async () => {
    void solo.runForever();
    const running = await stack.client.submit(echo({ text: "ahead", delayMs: 1500 }));
    await eventually(() => stack.client.get(running.id), (s) => s.state === StepState.RUNNING);
    const b = await stack.client.submit(echo({ text: "b", delayMs: 1200 }));
    const c = await stack.client.submit(echo({ text: "c", delayMs: 1200 }));
    const d = await stack.client.submit(echo({ text: "d" }));
    const { texts } = await narration(d.id, (t) => t.some((x) => x.startsWith("1st")));
    // Its first line says where it stands at once, and says that the only worker is busy.
    expect(texts[0]).toBe("3rd in line for echo — 1 worker busy");
    // Then it moves up, one place at a time, never back (each step ahead runs longer than the 1 s between looks).
    const places = texts.map((t) => /^(\d+)(st|nd|rd|th) in line for echo — /.exec(t)?.[1]).map(Number);
    expect([...new Set(places)]).toEqual([3, 2, 1]);
    expect((await stack.client.wait(d.id)).state).toBe(StepState.SUCCEEDED);
    for (const s of [b, c]) expect((await stack.client.get(s.id)).state).toBe(StepState.SUCCEEDED);
  });

  it("a step no live worker could take says why it waits, and the job's output stream carries the same line", async () => {
    const nobody = await stack.client.submit({ kind: { case: "infer", value: { model: "nobody", prompt: "x" } } });
    const first = await narration(nobody.id, (t) => t.length >= 1);
    expect(first.texts).toEqual(["1st in line for infer:nobody — no live worker serves infer:nobody; it waits until one starts"]);
    // Nothing was in its log yet: the line carries the cursor the stream started from.
    expect(first.cursors).toEqual([""]);

    const picky = await stack.client.submit(echo({ text: "needs an h100" }), { requirements: { tags: ["gpu=h100"] } });
    const line = "1st in line for echo?tag=gpu=h100 — no live worker could take it (solo has no tag gpu=h100); it waits until one can";
    expect((await narration(picky.id, (t) => t.length >= 1)).texts).toEqual([line]);

    const abort = new AbortController();
    const seen: string[] = [];
    try {
      for await (const m of stack.client.jobs.streamJobOutput({ jobId: picky.jobId }, { signal: abort.signal })) {
        if (m.event.case === "narration") {
          seen.push(`${m.event.value.stepId} ${m.event.value.text}`);
          break;
        }
      }
    } finally {
      abort.abort();
    }
    expect(seen).toEqual([`${picky.id} ${line}`]);

    // A worker that meets the requirements arrives: the step runs, and its follower's stream ends with it.
    const h100 = await stack.worker({ workerId: "h100", tags: ["gpu=h100"] });
    void h100.runForever();
    expect((await stack.client.wait(picky.id)).state).toBe(StepState.SUCCEEDED);
    await stack.client.cancel(nobody.id);
  });

  it("counts every step ahead in its line: higher priority first, then older jobs, across the lane's list and zset", async () => {
    const redis = new Redis(stack.redis.url);
    try {
      const queue = createQueue({ redis });
      const op = { kind: { case: "infer" as const, value: { model: "line", prompt: "x" } } };
      const submit = async (priority: number) => (await stack.client.submit(op, { priority })).id;
      const fresh1 = await submit(0); // list
      const low = await submit(-5); // zset, after every default-priority step
      const fresh2 = await submit(0); // list
      const high1 = await submit(5); // zset, first
      const fresh3 = await submit(0); // list
      const high2 = await submit(5); // zset, second
      const at = async (id: string) => (await queuePosition(queue, id.split(".")[0] as string, 0)).position;
      const order = [high1, high2, fresh1, fresh2, fresh3, low];
      expect(await Promise.all(order.map(at))).toEqual([1, 2, 3, 4, 5, 6]);
      // A cancelled step leaves the line for those behind it in the zset at once.
      await stack.client.cancel(high1);
      expect(await at(high2)).toBe(1);
      expect(await at(low)).toBe(5);
      expect(await at(high1)).toBe(0);
      for (const id of order.slice(1)) await stack.client.cancel(id);
    } finally {
      await redis.quit();
    }
  });

  it("a step whose only worker failed it is retried by that worker at once", async () => {
    const t0 = Date.now();
    const step = await stack.client.submit(echo({ text: "flaky", failMessage: "first attempt fails", failAttempts: 1 }), {
      retry: { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 1 },
      requirements: { onlyWorkers: ["solo"] },
    });
    const done = await stack.client.wait(step.id);
    expect(done.state).toBe(StepState.SUCCEEDED);
    expect(done.errors.map((e) => e.workerId)).toEqual(["solo"]);
    expect(done.workerId).toBe("solo");
    // No other worker claims from its route, so it does not wait for one (10 s).
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});
