import { describe, expect, it } from "vitest";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { createEchoEngine } from "../worker/engines/echo.js";
import type { Engine } from "../worker/engines/engine.js";
import { workerConfig } from "../worker/config.js";
import type { Worker } from "../worker/worker.js";
import { connect } from "./helpers/redis.js";
import { echo, eventually, useStack } from "./helpers/stack.js";
import { untilBlocked } from "./helpers/waits.js";

const stack = await useStack();
const redis = await connect(stack.redis.url);
const ms = (t: { seconds: bigint; nanos: number } | undefined) => (t ? Number(t.seconds) * 1000 + t.nanos / 1e6 : 0);

describe("the worker", () => {
  it("an idle worker is woken by a submit, not by its idle timeout", async () => {
    const worker = await stack.worker({ idleBlockMs: 60_000 });
    const run = worker.runForever();
    await untilBlocked(redis, "blpop"); // idle: blocked on the wake-up marker
    const step = await stack.client.submit(echo({ text: "wake up" }));
    const done = await stack.client.wait(step.id);
    expect(done.state).toBe(StepState.SUCCEEDED);
    await worker.stop();
    await run;
  });

  it("a scheduled step starts once its not_before has come, waking a blocked worker", async () => {
    const worker = await stack.worker({ idleBlockMs: 60_000 });
    const run = worker.runForever();
    await untilBlocked(redis, "blpop");
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
    // Watching from now on once the server follows the events stream.
    await eventually(async () => stack.server.hub.size, (n) => n >= 1);
    const worker = await stack.worker();
    await worker.stop();
    await eventually(async () => seen.length, (n) => n >= 2);
    abort.abort();
    await watching;
    expect(seen).toEqual([`WORKER_JOINED:${worker.id}:echo`, `WORKER_LEFT:${worker.id}:echo`]);
  });
});

/** The echo engine, counting how many of its runs overlap. */
function countingEcho() {
  const echoEngine = createEchoEngine();
  const stats = { now: 0, max: 0 };
  const engine: Engine = {
    name: "echo",
    routes: () => ["echo"],
    async run(step, ctx) {
      stats.max = Math.max(stats.max, ++stats.now);
      try {
        return await echoEngine.run(step, ctx);
      } finally {
        stats.now--;
      }
    },
  };
  return { engine, stats };
}

describe("claiming ahead", () => {
  /**
   * Runs `worker` until `n` new echo steps all succeeded, then stops it;
   * returns the most steps it held (leased) at once.
   */
  async function drainCountingHeld(worker: Worker, n: number, tag: string): Promise<number> {
    let held = 0;
    worker.on("step:claimed", () => (held = Math.max(held, worker.running)));
    const steps = await stack.client.steps.submitSteps({ requests: Array.from({ length: n }, (_, i) => ({ operation: echo({ text: `${tag}${i}` }) })) });
    const run = worker.runForever();
    for (const r of steps.responses) expect((await stack.client.wait(r.step!.id)).state).toBe(StepState.SUCCEEDED);
    await worker.stop();
    await run;
    return held;
  }

  it("a worker holds more short steps than it runs, and never runs more than its concurrency at once", async () => {
    const { engine, stats } = countingEcho();
    const held = await drainCountingHeld(await stack.worker({ concurrency: 2, engines: [engine] }), 300, "p");
    expect(stats.max).toBe(2);
    expect(held).toBeGreaterThan(2);
  });

  it("is off with prefetchMs 0: a worker holds no more steps than its concurrency", async () => {
    const held = await drainCountingHeld(await stack.worker({ concurrency: 2, prefetchMs: 0 }), 100, "n");
    expect(held).toBe(2);
  });

  it("is set by --prefetch or STEPQ_PREFETCH, and a value that is not a duration is refused with what to write instead", () => {
    expect(workerConfig([], {}).prefetchMs).toBe(2);
    expect(workerConfig(["--prefetch", "0"], {}).prefetchMs).toBe(0);
    expect(workerConfig([], { STEPQ_PREFETCH: "5ms" }).prefetchMs).toBe(5);
    expect(() => workerConfig(["--prefetch", "soon"], {})).toThrow(/--prefetch: "soon" is not a duration \(examples: 500ms, 30s, 5m, 24h\)/);
    expect(() => workerConfig([], { STEPQ_PREFETCH: "-1ms" })).toThrow(/STEPQ_PREFETCH: "-1ms" is not a duration/);
  });

  /** A worker that has learnt that steps are short (it claims ahead from now on). */
  async function warmWorker() {
    const worker = await stack.worker({ concurrency: 1 });
    const warm = await stack.client.steps.submitSteps({ requests: Array.from({ length: 40 }, (_, i) => ({ operation: echo({ text: `w${i}` }) })) });
    const run = worker.runForever();
    for (const r of warm.responses) await stack.client.wait(r.step!.id);
    return { worker, run };
  }

  it("steps claimed ahead go back to the queue when the step before them runs long, and another worker runs them", async () => {
    const { worker: busy, run } = await warmWorker();
    const released: string[] = [];
    busy.on("step:released", (e) => released.push(e.stepId));
    const long = await stack.client.submit(echo({ delayMs: 3000 }));
    const short = (await stack.client.steps.submitSteps({ requests: Array.from({ length: 10 }, (_, i) => ({ operation: echo({ text: `s${i}` }) })) })).responses.map((r) => r.step!.id);
    await eventually(async () => busy.running, (n) => n > 1);
    const other = await stack.worker({ concurrency: 4 });
    const otherRun = other.runForever();
    for (const id of short) {
      const done = await stack.client.wait(id);
      expect(done.state).toBe(StepState.SUCCEEDED);
      expect(done.workerId).toBe(other.id);
    }
    expect((await stack.client.get(long.id)).state).toBe(StepState.RUNNING);
    expect(released.length).toBeGreaterThan(0);
    expect(short).toEqual(expect.arrayContaining(released));
    await Promise.all([busy.stop(5000), other.stop()]);
    await Promise.all([run, otherRun]);
    expect((await stack.client.get(long.id)).state).toBe(StepState.SUCCEEDED);
  });

  it("a stopping worker hands back the steps it claimed ahead at once, before its grace period ends", async () => {
    const { worker, run } = await warmWorker();
    const long = await stack.client.submit(echo({ delayMs: 1500 }));
    const short = (await stack.client.steps.submitSteps({ requests: Array.from({ length: 5 }, (_, i) => ({ operation: echo({ text: `h${i}` }) })) })).responses.map((r) => r.step!.id);
    await eventually(async () => worker.running, (n) => n > 1);
    const stopping = worker.stop(10_000);
    for (const id of short) await eventually(() => stack.client.get(id), (s) => s.state === StepState.QUEUED, 1000);
    expect((await stack.client.get(long.id)).state).toBe(StepState.RUNNING);
    await stopping;
    await run;
    expect((await stack.client.get(long.id)).state).toBe(StepState.SUCCEEDED);
    const other = await stack.worker({ concurrency: 4 });
    void other.runForever();
    for (const id of short) expect((await stack.client.wait(id)).state).toBe(StepState.SUCCEEDED);
    await other.stop();
  });
});

