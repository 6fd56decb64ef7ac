import { describe, expect, it } from "vitest";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { StepErrorCode, StepState } from "../gen/stepq/v1/step_pb.js";
import type { WorkerEvents } from "../worker/worker.js";
import { echo, eventually, useStack } from "./helpers/stack.js";

const stack = await useStack();

describe("cancel", () => {
  it("a queued step that is cancelled never runs", async () => {
    const worker = await stack.worker();
    const step = await stack.client.submit(echo({ text: "never" }));
    const cancelled = await stack.client.cancel(step.id, "not needed");
    expect(cancelled.state).toBe(StepState.CANCELLED);
    expect(cancelled.error?.code).toBe(StepErrorCode.CANCELLED);
    expect(await worker.runOnce()).toBe(0);
    expect((await stack.client.get(step.id)).attempt).toBe(0);
  });

  it("a running step that is cancelled is stopped on its worker, and writes nothing after the cancel", async () => {
    const worker = await stack.worker();
    const abandoned: WorkerEvents["step:abandoned"][] = [];
    worker.on("step:abandoned", (e) => abandoned.push(e));
    void worker.runForever();
    const step = await stack.client.submit(echo({ tokenCount: 10_000, tokenDelayMs: 2 }));
    await eventually(() => stack.client.get(step.id), (s) => s.state === StepState.RUNNING);
    let tokensBefore = 0;
    for await (const e of stack.client.follow(step.id)) {
      if (e.type === "tokens") tokensBefore += e.tokens.length;
      if (tokensBefore >= 20) break;
    }
    await stack.client.cancel(step.id, "user pressed stop");
    await eventually(async () => abandoned, (a) => a.some((x) => x.stepId === step.id));
    expect(abandoned.find((x) => x.stepId === step.id)?.reason).toBe("cancelled");
    expect(worker.running).toBe(0);

    const log = await stack.server.queue.readLog(step.jobId, "", 100_000);
    const cancelAt = log.findIndex((e) => e.kind === "event" && e.event.type === EventType.STEP_CANCELLED);
    expect(cancelAt).toBeGreaterThan(0);
    expect(log.slice(cancelAt).some((e) => e.kind === "tokens")).toBe(false);
    const final = await stack.client.get(step.id);
    expect(final.state).toBe(StepState.CANCELLED);
    expect(final.error?.message).toBe("user pressed stop");
    let last;
    for await (const e of stack.client.follow(step.id)) last = e;
    expect(last).toMatchObject({ type: "end", state: StepState.CANCELLED });
    await worker.stop();
  });

  it("cancelling twice is fine", async () => {
    const step = await stack.client.submit(echo({ text: "x" }), { priority: -5 });
    await stack.client.cancel(step.id);
    const again = await stack.client.cancel(step.id);
    expect(again.state).toBe(StepState.CANCELLED);
    expect(again.errors).toHaveLength(1);
  });
});
