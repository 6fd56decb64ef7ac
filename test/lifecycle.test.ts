import { describe, expect, it } from "vitest";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { JobState } from "../gen/stepq/v1/job_pb.js";
import { echo, useStack } from "./helpers/stack.js";

const stack = await useStack();

describe("a step's life through the real server", () => {
  it("submitted, claimed by a worker, streamed and completed, with every token followed in order", async () => {
    const worker = await stack.worker();
    const run = worker.runForever();
    const step = await stack.client.submit(echo({ text: "alpha beta gamma", tokenCount: 7, tokenDelayMs: 2 }));
    expect(step.state).toBe(StepState.QUEUED);
    expect(step.route).toBe("echo");

    const tokens: string[] = [];
    const narration: string[] = [];
    let end;
    for await (const e of stack.client.follow(step.id)) {
      if (e.type === "tokens") for (const t of e.tokens) tokens[t.index] = t.text;
      if (e.type === "narration") narration.push(e.text);
      if (e.type === "end") end = e;
    }
    expect(tokens.join("")).toBe("alpha beta gamma alpha beta gamma alpha ");
    expect(narration).toContain("echo: streaming 7 tokens");
    expect(end?.state).toBe(StepState.SUCCEEDED);
    expect(end?.usage?.completionTokens).toBe(7);

    const done = await stack.client.get(step.id);
    expect(done.state).toBe(StepState.SUCCEEDED);
    expect(done.result?.text).toBe(tokens.join(""));
    expect(done.attempt).toBe(1);
    expect(done.workerId).toBe(worker.id);
    const job = (await stack.client.jobs.getJob({ jobId: done.jobId })).job;
    expect(job?.state).toBe(JobState.SUCCEEDED);
    expect(job?.outputs[0]?.result?.text).toBe(tokens.join(""));
    await worker.stop();
    await run;
  });

  it("keeps label values byte for byte: ASCII, accented, emoji, and longer than 31 bytes", async () => {
    const labels = {
      team: "vision",
      team_fr: "équipe café crème",
      emoji: "🚀 launch 🌍",
      long: "a label value that is longer than thirty-one bytes, to leave the short form",
      "a.key-that_is/longer.than-thirty-one-bytes": "значение, длиннее тридцати одного байта",
    };
    const submitted = await stack.client.jobs.submitJob({ labels, steps: [{ name: "main", operation: echo({ text: "x" }) }] });
    const job = (await stack.client.jobs.getJob({ jobId: submitted.job?.id ?? "" })).job;
    expect(job?.labels).toEqual(labels);
  });
});
