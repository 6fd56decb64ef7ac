import { describe, expect, it } from "vitest";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { echo, eventually, useStack } from "./helpers/stack.js";

const stack = await useStack();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ms = (t: { seconds: bigint; nanos: number } | undefined) => (t ? Number(t.seconds) * 1000 + t.nanos / 1e6 : 0);

describe("the worker", () => {
  it("an idle worker is woken by a submit, not by its idle timeout", async () => {
    const worker = await stack.worker({ idleBlockMs: 60_000 });
    const run = worker.runForever();
    await sleep(200); // now blocked on the wake-up marker
    const step = await stack.client.submit(echo({ text: "wake up" }));
    const done = await stack.client.wait(step.id);
    expect(done.state).toBe(StepState.SUCCEEDED);
    await worker.stop();
    await run;
  });

  it("a scheduled step starts once its not_before has come, waking a blocked worker", async () => {
    const worker = await stack.worker({ idleBlockMs: 60_000 });
    const run = worker.runForever();
    await sleep(100);
    const notBefore = Date.now() + 400;
    const step = await stack.client.submit(echo({ text: "later" }), { notBefore: timestampFromMs(notBefore) });
    expect(step.state).toBe(StepState.SCHEDULED);
    expect(ms(step.scheduledAt)).toBe(notBefore);
    const done = await stack.client.wait(step.id);
    expect(done.state).toBe(StepState.SUCCEEDED);
    expect(ms(done.startedAt)).toBeGreaterThanOrEqual(notBefore);
    await worker.stop();
    await run;
  });

  it("runs up to `concurrency` steps at once", async () => {
    const worker = await stack.worker({ concurrency: 3 });
    const run = worker.runForever();
    const steps = await Promise.all([1, 2, 3, 4].map(() => stack.client.submit(echo({ delayMs: 600 }))));
    await eventually(
      async () => (await stack.client.steps.listSteps({ state: StepState.RUNNING })).steps.length,
      (n) => n === 3,
    );
    expect(worker.running).toBe(3);
    for (const s of steps) expect((await stack.client.wait(s.id)).state).toBe(StepState.SUCCEEDED);
    await worker.stop();
    await run;
  });

  it("reports every step it completes once, and no errors, when nothing goes wrong", async () => {
    const worker = await stack.worker({ concurrency: 8 });
    const completed: string[] = [];
    const errors: Error[] = [];
    const abandoned: string[] = [];
    worker.on("step:completed", (e) => completed.push(e.stepId));
    worker.on("worker:error", (e) => errors.push(e.error));
    worker.on("step:abandoned", (e) => abandoned.push(e.stepId));
    const steps = await Promise.all(Array.from({ length: 40 }, (_, i) => stack.client.submit(echo({ text: `n${i}` }))));
    const run = worker.runForever();
    for (const s of steps) expect((await stack.client.wait(s.id)).state).toBe(StepState.SUCCEEDED);
    await eventually(async () => completed.length, (n) => n === steps.length);
    await worker.stop();
    await run;
    expect(errors.map((e) => e.message)).toEqual([]);
    expect(abandoned).toEqual([]);
    expect([...completed].sort()).toEqual(steps.map((s) => s.id).sort());
  });

  it("claims only steps of the routes it serves", async () => {
    const worker = await stack.worker();
    const step = await stack.client.submit({ kind: { case: "infer", value: { model: "not-here", prompt: "hi" } } });
    expect(worker.routes).toEqual(["echo"]);
    expect(await worker.runOnce()).toBe(0);
    expect((await stack.client.get(step.id)).state).toBe(StepState.QUEUED);
    await stack.client.cancel(step.id);
  });

  it("a graceful stop lets a short step finish", async () => {
    const worker = await stack.worker();
    const run = worker.runForever();
    const step = await stack.client.submit(echo({ delayMs: 300 }));
    await eventually(() => stack.client.get(step.id), (s) => s.state === StepState.RUNNING);
    await worker.stop(5000);
    await run;
    expect((await stack.client.get(step.id)).state).toBe(StepState.SUCCEEDED);
  });

  it("a graceful stop hands a long step back, and another worker completes it without losing an attempt", async () => {
    const first = await stack.worker();
    const released: string[] = [];
    first.on("step:released", (e) => released.push(e.stepId));
    const run = first.runForever();
    const step = await stack.client.submit(echo({ delayMs: 1500 }), { retry: { maxAttempts: 1 } });
    await eventually(() => stack.client.get(step.id), (s) => s.state === StepState.RUNNING);
    await first.stop(100);
    await run;
    expect(released).toEqual([step.id]);
    const back = await stack.client.get(step.id);
    expect(back.state).toBe(StepState.QUEUED);

    const second = await stack.worker();
    void second.runForever();
    const done = await stack.client.wait(step.id);
    expect(done.state).toBe(StepState.SUCCEEDED);
    expect(done.attempt).toBe(2); // the released attempt did not use up max_attempts=1
    expect(done.workerId).toBe(second.id);
    await second.stop();
  });

  it("announces itself on the events stream when it joins and leaves", async () => {
    const abort = new AbortController();
    const seen: string[] = [];
    const watching = (async () => {
      try {
        for await (const res of stack.client.steps.watchSteps({ types: [EventType.WORKER_JOINED, EventType.WORKER_LEFT] }, { signal: abort.signal })) {
          seen.push(`${EventType[res.event!.type]}:${res.event!.workerId}:${res.event!.message}`);
        }
      } catch {
        /* aborted */
      }
    })();
    await sleep(200);
    const worker = await stack.worker();
    await worker.stop();
    await eventually(async () => seen.length, (n) => n >= 2);
    abort.abort();
    await watching;
    expect(seen).toEqual([`WORKER_JOINED:${worker.id}:echo`, `WORKER_LEFT:${worker.id}:echo`]);
  });
});
