import { describe, expect, it } from "vitest";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { FailurePolicy, JobState } from "../gen/stepq/v1/job_pb.js";
import { StepErrorCode, StepState } from "../gen/stepq/v1/step_pb.js";
import { oneStepJob } from "../queue/prepare-job.js";
import { postJson } from "./helpers/json-rpc.js";
import { echo, eventually, useStack } from "./helpers/stack.js";

const stack = await useStack();
const jobs = stack.client.jobs;

const echoStep = (name: string, value: Parameters<typeof echo>[0], dependsOn: string[] = []) => ({
  name,
  operation: echo(value),
  dependsOn,
});

async function waitJob(jobId: string) {
  for await (const _ of jobs.watchJob({ jobId })) {
    /* until the job's final event */
  }
  return (await jobs.getJob({ jobId })).job!;
}

describe("multi-step jobs", () => {
  it("a three-step DAG (two parallel, one joining) runs on two workers and the join sees both outputs", async () => {
    const w1 = await stack.worker();
    const w2 = await stack.worker();
    void w1.runForever();
    void w2.runForever();
    const { job } = await jobs.submitJob({
      steps: [
        echoStep("left", { text: "LEFT", delayMs: 300 }),
        echoStep("right", { text: "RIGHT", delayMs: 300 }),
        echoStep("join", { text: "{{steps.left.output}} + {{ steps.right.output }}" }, ["left", "right"]),
      ],
    });
    expect(job!.steps.map((s) => s.state)).toEqual([StepState.QUEUED, StepState.QUEUED, StepState.WAITING]);
    const done = await waitJob(job!.id);
    expect(done.state).toBe(JobState.SUCCEEDED);
    const [left, right, join] = done.steps;
    expect(new Set([left!.workerId, right!.workerId]).size).toBe(2); // ran in parallel on both workers
    expect(join!.result?.text).toBe("LEFT + RIGHT");
    expect(join!.operation?.kind.value).toMatchObject({ text: "LEFT + RIGHT" }); // resolved once ready
    expect(done.outputs.map((o) => [o.stepName, o.result?.text])).toEqual([["join", "LEFT + RIGHT"]]);
    expect(done.progress).toBe(1);
    await w1.stop();
    await w2.stop();
  });

  it("fail_fast cancels the rest of the job when a step fails", async () => {
    const w = await stack.worker({ concurrency: 2 });
    void w.runForever();
    const { job } = await jobs.submitJob({
      steps: [
        { name: "bad", operation: echo({ failMessage: "boom", delayMs: 100 }), retry: { maxAttempts: 1 } },
        echoStep("slow", { delayMs: 5000 }),
        echoStep("after", { text: "x" }, ["slow"]),
      ],
      failurePolicy: FailurePolicy.FAIL_FAST,
    });
    const done = await waitJob(job!.id);
    expect(done.state).toBe(JobState.FAILED);
    expect(done.steps.map((s) => s.state)).toEqual([StepState.FAILED, StepState.CANCELLED, StepState.CANCELLED]);
    expect(done.steps[1]!.error?.message).toBe("step 'bad' failed and the job fails fast");
    await eventually(async () => w.running, (n) => n === 0); // the running "slow" step was stopped
    await w.stop();
  });

  it("continue runs every step that still can, and cancels only the failed step's dependants", async () => {
    const w = await stack.worker({ concurrency: 2 });
    void w.runForever();
    const { job } = await jobs.submitJob({
      steps: [
        { name: "bad", operation: echo({ failMessage: "boom" }), retry: { maxAttempts: 1 } },
        echoStep("child", { text: "never" }, ["bad"]),
        echoStep("grandchild", { text: "never" }, ["child"]),
        echoStep("independent", { text: "fine", delayMs: 200 }),
      ],
      failurePolicy: FailurePolicy.CONTINUE,
    });
    const done = await waitJob(job!.id);
    expect(done.state).toBe(JobState.FAILED);
    expect(done.steps.map((s) => s.state)).toEqual([StepState.FAILED, StepState.CANCELLED, StepState.CANCELLED, StepState.SUCCEEDED]);
    expect(done.steps[1]!.error?.code).toBe(StepErrorCode.DEPENDENCY_FAILED);
    expect(done.steps[1]!.error?.message).toBe("dependency 'bad' failed");
    expect(done.steps[2]!.error?.message).toBe("dependency 'child' was cancelled");
    expect(done.steps[1]!.attempt).toBe(0); // dependants never ran
    await w.stop();
  });

  it("CancelJob stops running steps on their workers and cancels the waiting ones", async () => {
    const w = await stack.worker();
    const abandoned: string[] = [];
    w.on("step:abandoned", (e) => abandoned.push(`${e.stepId}:${e.reason}`));
    void w.runForever();
    const { job } = await jobs.submitJob({
      steps: [echoStep("long", { tokenCount: 100_000, tokenDelayMs: 5 }), echoStep("next", { text: "x" }, ["long"])],
    });
    await eventually(async () => (await jobs.getJob({ jobId: job!.id })).job!.steps[0]!.state, (s) => s === StepState.RUNNING);
    const res = await jobs.cancelJob({ jobId: job!.id, reason: "enough" });
    expect(res.job!.state).toBe(JobState.CANCELLED);
    expect(res.job!.steps.map((s) => [s.state, s.error?.message])).toEqual([
      [StepState.CANCELLED, "enough"],
      [StepState.CANCELLED, "enough"],
    ]);
    await eventually(async () => abandoned, (a) => a.includes(`${job!.id}.0:cancelled`));
    await w.stop();
  });

  it("StreamJobOutput names the step on every message and resumes from a cursor", async () => {
    const w = await stack.worker({ concurrency: 2 });
    void w.runForever();
    const { job } = await jobs.submitJob({
      steps: [echoStep("a", { text: "aa", tokenCount: 5 }), echoStep("b", { text: "bb", tokenCount: 5 }, ["a"])],
    });
    const all: string[] = [];
    let cursor = "";
    for await (const res of jobs.streamJobOutput({ jobId: job!.id })) {
      const e = res.event;
      if (e.case === "tokens") all.push(`${e.value.stepName}:${e.value.tokens.map((t) => t.text).join("")}`);
      if (e.case === "stepEnd") all.push(`${e.value.stepName}:end`);
      if (e.case === "jobEnd") all.push("job:end");
      if (all.length === 1 && e.case !== undefined) cursor = e.value.cursor;
    }
    expect(all.filter((x) => x.startsWith("a:")).join("|")).toMatch(/^a:(aa )+.*a:end$/);
    expect(all.indexOf("a:end")).toBeLessThan(all.findIndex((x) => x.startsWith("b:")));
    expect(all[all.length - 1]).toBe("job:end");
    const resumed: string[] = [];
    for await (const res of jobs.streamJobOutput({ jobId: job!.id, afterCursor: cursor })) {
      const e = res.event;
      if (e.case === "tokens") resumed.push(`${e.value.stepName}:${e.value.tokens.map((t) => t.text).join("")}`);
      if (e.case === "stepEnd") resumed.push(`${e.value.stepName}:end`);
      if (e.case === "jobEnd") resumed.push("job:end");
    }
    expect(resumed).toEqual(all.slice(1));
    await w.stop();
  });
});

describe("priority and fairness", () => {
  it("higher priority runs first, and among equal priority an older job's later step goes before newer jobs", async () => {
    const q = stack.server.queue;
    const claimOne = async () => (await q.claim({ workerId: "t", routes: ["echo"], leaseMs: 10_000, max: 1 })).steps[0]!;
    // Drain what earlier tests left.
    while ((await q.claim({ workerId: "drain", routes: ["echo"], leaseMs: 60_000, max: 100 })).steps.length > 0);
    const old = await q.submit(
      q.prepare({
        steps: [
          { name: "first", operation: echo({ text: "1" }) },
          { name: "second", operation: echo({ text: "2" }), dependsOn: ["first"] },
        ],
      }),
    );
    const newer = await q.submit(q.prepare(oneStepJob({ operation: echo({ text: "new" }) })));
    const newest = await q.submit(q.prepare(oneStepJob({ operation: echo({ text: "newest" }) })));
    const urgent = await q.submit(q.prepare(oneStepJob({ priority: 10, operation: echo({ text: "urgent" }) })));

    expect((await claimOne()).jobId).toBe(urgent.jobId);
    const first = await claimOne();
    expect(first.stepId).toBe(`${old.jobId}.0`);
    await q.complete(first, new Uint8Array());
    expect((await claimOne()).stepId).toBe(`${old.jobId}.1`); // before the newer jobs
    expect((await claimOne()).jobId).toBe(newer.jobId);
    expect((await claimOne()).jobId).toBe(newest.jobId);
  });
});

describe("validation of a job's DAG", () => {
  const J = "stepq.v1.JobService/SubmitJob";
  const expectInvalid = async (body: unknown, pattern: RegExp) => {
    const res = await postJson(stack.server.url, J, body);
    expect(res.body.code).toBe("invalid_argument");
    expect(res.body.message).toMatch(pattern);
  };
  const op = { echo: { text: "x" } };
  it("no steps", () => expectInvalid({ steps: [] }, /^steps: a job needs at least one step/));
  it("duplicate names", () =>
    expectInvalid({ steps: [{ name: "a", operation: op }, { name: "a", operation: op }] }, /^steps\[1\]\.name: 'a' is also the name of steps\[0\]/));
  it("a dependency on an unknown step", () =>
    expectInvalid({ steps: [{ name: "a", operation: op, dependsOn: ["ghost"] }] }, /^steps\[0\]\.depends_on: names unknown step "ghost"/));
  it("a cycle", () =>
    expectInvalid(
      {
        steps: [
          { name: "a", operation: op, dependsOn: ["c"] },
          { name: "b", operation: op, dependsOn: ["a"] },
          { name: "c", operation: op, dependsOn: ["b"] },
        ],
      },
      /^steps: dependency cycle a -> c -> b -> a; a job's steps must form a DAG/,
    ));
  it("a step depending on itself", () =>
    expectInvalid({ steps: [{ name: "a", operation: op, dependsOn: ["a"] }] }, /cannot depend on itself/));
  it("too many steps", () =>
    expectInvalid({ steps: Array.from({ length: 101 }, (_, i) => ({ name: `s${i}`, operation: op })) }, /^steps: 101 steps exceed this server's limit of 100 per job/));
  it("a reference to a step that is not a dependency", () =>
    expectInvalid(
      {
        steps: [
          { name: "a", operation: op },
          { name: "b", operation: { infer: { model: "m", prompt: "Summarise {{steps.a.output}}" } } },
        ],
      },
      /^steps\[1\]\.operation\.infer\.prompt: references the output of step 'a', which is not in depends_on/,
    ));
  it("a bad step name", () => expectInvalid({ steps: [{ name: "has space", operation: op }] }, /^steps\[0\]\.name: "has space" must be 1-64 characters/));
});

describe("listing and retention", () => {
  it("ListJobs lists newest first, filters by state and pages with a token", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await stack.client.submit(echo({ text: `p${i}` }), { priority: -999 })).jobId);
    const page1 = await jobs.listJobs({ state: JobState.QUEUED, pageSize: 3 });
    expect(page1.jobs.map((j) => j.id)).toEqual(ids.slice(-3).reverse());
    const page2 = await jobs.listJobs({ state: JobState.QUEUED, pageSize: 2, pageToken: page1.nextPageToken });
    expect(page2.jobs.map((j) => j.id)).toEqual(ids.slice(0, 2).reverse());
    for (const id of ids) await jobs.cancelJob({ jobId: id });
    const cancelled = await jobs.listJobs({ state: JobState.CANCELLED, pageSize: 5 });
    expect(cancelled.jobs.map((j) => j.id)).toEqual([...ids].reverse());
  });
});

describe("events of a DAG", () => {
  it("a step becomes QUEUED in the completing script when its last dependency succeeds", async () => {
    const w = await stack.worker();
    void w.runForever();
    const { job } = await jobs.submitJob({ steps: [echoStep("a", { text: "x" }), echoStep("b", { text: "y" }, ["a"])] });
    const events: string[] = [];
    for await (const res of jobs.watchJob({ jobId: job!.id })) {
      const e = res.event!;
      events.push(`${EventType[e.type]}${e.stepName ? `:${e.stepName}` : ""}`);
    }
    const aDone = events.indexOf("STEP_SUCCEEDED:a");
    expect(events[aDone + 1]).toBe("STEP_QUEUED:b");
    expect(events[events.length - 1]).toBe("JOB_SUCCEEDED");
    await w.stop();
  });
});
