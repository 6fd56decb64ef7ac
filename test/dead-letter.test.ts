import { describe, expect, it } from "vitest";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { FailurePolicy, JobState } from "../gen/stepq/v1/job_pb.js";
import { StepErrorCode, StepState } from "../gen/stepq/v1/step_pb.js";
import { postJson } from "./helpers/json-rpc.js";
import { echo, useStack } from "./helpers/stack.js";

const stack = await useStack();
const worker = await stack.worker({ concurrency: 2 });
void worker.runForever();
const steps = stack.client.steps;

describe("the dead-letter list", () => {
  it("a failed step is listed, can be retried with fresh attempts, keeps its earlier errors, and its stream continues to the new end", async () => {
    const step = await stack.client.submit(echo({ text: "second time lucky", tokenCount: 3, failMessage: "first try", failAttempts: 1 }), {
      retry: { maxAttempts: 1 },
    });
    expect((await stack.client.wait(step.id)).state).toBe(StepState.FAILED);
    expect((await steps.listSteps({ state: StepState.FAILED })).steps.map((s) => s.id)).toContain(step.id);

    const retried = await steps.retryStep({ stepId: step.id });
    expect(retried.step!.state).not.toBe(StepState.FAILED); // queued, or already taken by the worker
    expect((await steps.listSteps({ state: StepState.FAILED })).steps.map((s) => s.id)).not.toContain(step.id);
    const done = await stack.client.wait(step.id);
    expect(done.state).toBe(StepState.SUCCEEDED);
    expect(done.attempt).toBe(2);
    expect(done.errors.map((e) => e.message)).toEqual(["first try"]);

    // Replaying from the start passes the old failure and ends at the success.
    const seen: string[] = [];
    for await (const res of steps.streamTokens({ stepId: step.id })) seen.push(res.event.case === "end" ? `end:${res.event.value.state}` : (res.event.case ?? ""));
    expect(seen).toEqual(["tokens", "restart", "tokens", `end:${StepState.SUCCEEDED}`]);
  });

  it("retrying a failed step brings back the dependants its failure cancelled, and the job finishes", async () => {
    const { job } = await stack.client.jobs.submitJob({
      steps: [
        { name: "flaky", operation: echo({ text: "ok", failMessage: "down", failAttempts: 1 }), retry: { maxAttempts: 1 } },
        { name: "uses", operation: echo({ text: "{{steps.flaky.output}}!" }), dependsOn: ["flaky"] },
        { name: "other", operation: echo({ text: "slow", delayMs: 5000 }) },
      ],
      failurePolicy: FailurePolicy.FAIL_FAST,
    });
    let j = job!;
    for await (const _ of stack.client.jobs.watchJob({ jobId: j.id })) {
      /* to the end */
    }
    j = (await stack.client.jobs.getJob({ jobId: j.id })).job!;
    expect(j.state).toBe(JobState.FAILED);
    expect(j.steps.map((s) => s.state)).toEqual([StepState.FAILED, StepState.CANCELLED, StepState.CANCELLED]);
    expect(j.steps[1]!.error!.code).toBe(StepErrorCode.CANCELLED);

    const retried = await steps.retryStep({ stepId: j.steps[0]!.id });
    expect(retried.step!.state).not.toBe(StepState.FAILED);
    const queuedAgain: string[] = [];
    for await (const res of stack.client.jobs.watchJob({ jobId: j.id })) {
      const e = res.event!;
      if (e.type === EventType.STEP_QUEUED && e.message.includes("retr")) queuedAgain.push(`${e.stepName}: ${e.message}`);
    }
    expect(queuedAgain.sort()).toEqual(["flaky: retried from the dead-letter list", "other: brought back by the retry of step 'flaky'"]);
    const final = (await stack.client.jobs.getJob({ jobId: j.id })).job!;
    expect(final.state).toBe(JobState.SUCCEEDED);
    expect(final.steps[1]!.result!.text).toBe("ok!"); // "uses" came back waiting, then ran after "flaky" 
  });

  it("purging removes a step from the dead-letter list but keeps it readable", async () => {
    const step = await stack.client.submit(echo({ failMessage: "no" }), { retry: { maxAttempts: 1 } });
    await stack.client.wait(step.id);
    const purged = await steps.purgeStep({ stepId: step.id });
    expect(purged.step!.state).toBe(StepState.FAILED);
    expect((await steps.listSteps({ state: StepState.FAILED })).steps.map((s) => s.id)).not.toContain(step.id);
    const again = await postJson(stack.server.url, "stepq.v1.StepService/PurgeStep", { stepId: step.id });
    expect(again.body.code).toBe("failed_precondition");
    expect(again.body.message).toMatch(/is not in the dead-letter list/);
  });

  it("retrying a step that did not fail is FAILED_PRECONDITION", async () => {
    const step = await stack.client.submit(echo({ text: "fine" }));
    await stack.client.wait(step.id);
    const res = await postJson(stack.server.url, "stepq.v1.StepService/RetryStep", { stepId: step.id });
    expect(res.body.code).toBe("failed_precondition");
    expect(res.body.message).toMatch(/is succeeded; only FAILED \(dead-lettered\) steps can be retried/);
  });
});
