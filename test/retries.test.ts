import { describe, expect, it } from "vitest";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { StepErrorCode, StepState } from "../gen/stepq/v1/step_pb.js";
import { echo, useStack } from "./helpers/stack.js";

const stack = await useStack();
const worker = await stack.worker({ concurrency: 4 });
void worker.runForever();

const ms = (t: { seconds: bigint; nanos: number } | undefined) => (t ? Number(t.seconds) * 1000 + t.nanos / 1e6 : 0);

describe("retries", () => {
  it("a failing step is retried with exponential backoff, then dead-lettered with every attempt's error", async () => {
    const step = await stack.client.submit(echo({ failMessage: "model exploded" }), {
      retry: { maxAttempts: 3, initialBackoffMs: 100, maxBackoffMs: 10_000 },
    });
    const done = await stack.client.wait(step.id);
    expect(done.state).toBe(StepState.FAILED);
    expect(done.attempt).toBe(3);
    expect(done.errors.map((e) => [e.attempt, e.code, e.message, e.retryable])).toEqual([
      [1, StepErrorCode.ENGINE_FAILED, "model exploded", true],
      [2, StepErrorCode.ENGINE_FAILED, "model exploded", true],
      [3, StepErrorCode.ENGINE_FAILED, "model exploded", true],
    ]);
    expect(done.error?.message).toBe("model exploded");

    // The next attempt never starts before its backoff (100 ms, then 200 ms, -20% jitter).
    const events = [];
    for await (const res of stack.client.jobs.watchJob({ jobId: step.jobId })) events.push(res.event!);
    const retrying = events.filter((e) => e.type === EventType.STEP_RETRYING).map((e) => ms(e.time));
    const claims = events.filter((e) => e.type === EventType.STEP_CLAIMED).map((e) => ms(e.time));
    expect(retrying).toHaveLength(2);
    expect(claims).toHaveLength(3);
    expect(claims[1]! - retrying[0]!).toBeGreaterThanOrEqual(80);
    expect(claims[2]! - retrying[1]!).toBeGreaterThanOrEqual(160);

    const dead = await stack.client.steps.listSteps({ state: StepState.FAILED });
    expect(dead.steps.map((s) => s.id)).toContain(step.id);
  });

  it("a step that fails once succeeds on its second attempt, and its token stream says the attempt restarted", async () => {
    const step = await stack.client.submit(echo({ text: "again", tokenCount: 2, failMessage: "flaky", failAttempts: 1 }), {
      retry: { initialBackoffMs: 20 },
    });
    const done = await stack.client.wait(step.id);
    expect(done.state).toBe(StepState.SUCCEEDED);
    expect(done.attempt).toBe(2);
    expect(done.errors).toHaveLength(1);
    expect(done.error).toBeUndefined();
    const seen: string[] = [];
    for await (const res of stack.client.steps.streamTokens({ stepId: step.id })) {
      if (res.event.case === "tokens") seen.push(`a${res.event.value.attempt}:${res.event.value.tokens.map((t) => t.text).join("")}`);
      else seen.push(res.event.case ?? "");
    }
    expect(seen).toEqual(["a1:again again ", "restart", "a2:again again ", "end"]);
  });

  it("a non-retryable failure fails at once without using its remaining attempts", async () => {
    const step = await stack.client.submit(echo({ failMessage: "bad input", failPermanently: true }), { retry: { maxAttempts: 5 } });
    const done = await stack.client.wait(step.id);
    expect(done.state).toBe(StepState.FAILED);
    expect(done.attempt).toBe(1);
    expect(done.errors[0]?.retryable).toBe(false);
  });

  it("an attempt that runs past timeout_ms fails with TIMEOUT", async () => {
    const step = await stack.client.submit(echo({ delayMs: 5000 }), { timeoutMs: 100, retry: { maxAttempts: 1 } });
    const done = await stack.client.wait(step.id);
    expect(done.state).toBe(StepState.FAILED);
    expect(done.error?.code).toBe(StepErrorCode.TIMEOUT);
    expect(done.error?.message).toMatch(/timeout_ms=100/);
  });
});
