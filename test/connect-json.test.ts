import { describe, expect, it } from "vitest";
import { getJson, postJson } from "./helpers/json-rpc.js";
import { useStack } from "./helpers/stack.js";

const stack = await useStack();
const base = stack.server.url;
const S = "stepq.v1.StepService";
const J = "stepq.v1.JobService";

type StepJson = { id: string; jobId: string; state: string; route: string; result?: { text: string } };

describe("unary RPCs with plain JSON over HTTP/1.1 (what curl sends)", () => {
  it("SubmitStep, GetStep (POST and GET), ListSteps and CancelStep", async () => {
    const sub = await postJson(base, `${S}/SubmitStep`, { operation: { echo: { text: "hello" } }, labels: { team: "a" } });
    expect(sub.status).toBe(200);
    const step = sub.body.step as StepJson;
    expect(step.id).toMatch(/^[0-9a-z]{16}\.0$/);
    expect(step.state).toBe("STEP_STATE_QUEUED");
    expect(step.route).toBe("echo");

    const got = await postJson(base, `${S}/GetStep`, { stepId: step.id });
    expect((got.body.step as StepJson).id).toBe(step.id);
    const viaGet = await getJson(base, `${S}/GetStep`, { stepId: step.id });
    expect(viaGet.status).toBe(200);
    expect((viaGet.body.step as StepJson).state).toBe("STEP_STATE_QUEUED");

    const listed = await postJson(base, `${S}/ListSteps`, { state: "STEP_STATE_QUEUED", route: "echo" });
    expect((listed.body.steps as StepJson[]).map((s) => s.id)).toContain(step.id);

    const cancelled = await postJson(base, `${S}/CancelStep`, { stepId: step.id, reason: "changed my mind" });
    const c = cancelled.body.step as StepJson & { error: { code: string; message: string } };
    expect(c.state).toBe("STEP_STATE_CANCELLED");
    expect(c.error.code).toBe("STEP_ERROR_CODE_CANCELLED");
    expect(c.error.message).toBe("changed my mind");
    const again = await postJson(base, `${S}/CancelStep`, { stepId: step.id });
    expect(again.status).toBe(200);
  });

  it("SubmitSteps stores a batch and answers in order", async () => {
    const res = await postJson(base, `${S}/SubmitSteps`, {
      requests: [{ operation: { echo: { text: "a" } } }, { operation: { echo: { text: "b" } }, priority: 5 }],
    });
    expect(res.status).toBe(200);
    const responses = res.body.responses as { step: StepJson & { priority?: number } }[];
    expect(responses).toHaveLength(2);
    expect(responses[1]?.step.priority).toBe(5);
    expect(new Set(responses.map((r) => r.step.jobId)).size).toBe(2);
  });

  it("SubmitJob, GetJob (POST and GET), ListJobs and CancelJob", async () => {
    const sub = await postJson(base, `${J}/SubmitJob`, {
      steps: [
        { name: "first", operation: { echo: { text: "one" } } },
        { name: "second", operation: { echo: { text: "{{steps.first.output}} two" } }, dependsOn: ["first"] },
      ],
      failurePolicy: "FAILURE_POLICY_CONTINUE",
    });
    expect(sub.status).toBe(200);
    const job = sub.body.job as { id: string; state: string; steps: StepJson[] };
    expect(job.state).toBe("JOB_STATE_QUEUED");
    expect(job.steps.map((s) => s.state)).toEqual(["STEP_STATE_QUEUED", "STEP_STATE_WAITING"]);

    const viaGet = await getJson(base, `${J}/GetJob`, { jobId: job.id });
    expect((viaGet.body.job as { id: string }).id).toBe(job.id);
    const listed = await postJson(base, `${J}/ListJobs`, { state: "JOB_STATE_QUEUED" });
    expect((listed.body.jobs as { id: string }[]).map((j) => j.id)).toContain(job.id);

    const cancelled = await postJson(base, `${J}/CancelJob`, { jobId: job.id });
    const cj = cancelled.body.job as { state: string; steps: StepJson[] };
    expect(cj.state).toBe("JOB_STATE_CANCELLED");
    expect(cj.steps.map((s) => s.state)).toEqual(["STEP_STATE_CANCELLED", "STEP_STATE_CANCELLED"]);
  });

  it("GET /healthz answers 200 with Redis reachable", async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok", redis: "ok", queue: "default" });
  });

  it("an unknown path is 404", async () => {
    const res = await fetch(`${base}/stepq.v1.StepService/Nope`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(res.status).toBe(404);
  });
});
