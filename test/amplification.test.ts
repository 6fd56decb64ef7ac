/**
 * Size caps after expansion: references to other steps' outputs are
 * resolved after the submit-time size check, and engines produce output of
 * any size, so a 2 KB job could once grow 64 MB outputs and a 134 MB record.
 * Resolved operations, outputs, results and job records are each capped
 * where they are stored, and listings are paged by bytes.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { JobState } from "../gen/stepq/v1/job_pb.js";
import { StepErrorCode, StepState } from "../gen/stepq/v1/step_pb.js";
import type { FollowEvent } from "../clients/node/follow.js";
import { echo, eventually, useStack } from "./helpers/stack.js";

const KIB = 1024;
const limits = { maxOperationBytes: 64 * KIB, maxOutputBytes: 48 * KIB, maxJobBytes: 256 * KIB };
const stack = await useStack({ limits });
const { jobs, steps: stepService } = stack.client;
const worker = await stack.worker({ concurrency: 4 });
const abandoned: { stepId: string; reason: string }[] = [];
worker.on("step:abandoned", (e) => abandoned.push(e));
void worker.runForever();
const redis = new Redis(stack.redis.url);
afterAll(() => redis.disconnect());
const recordBytes = (jobId: string) => redis.strlen(`stepq:{default}:j:${jobId}`);

async function finished(jobId: string) {
  for await (const _ of jobs.watchJob({ jobId })) {
    /* until the job's final event */
  }
  return (await jobs.getJob({ jobId })).job!;
}

describe("resolved operations", () => {
  it("a step whose references would resolve past max-operation-bytes fails with OPERATION_TOO_LARGE instead of running", async () => {
    // Each step references the previous one twice: 2 KiB doubles every step.
    const steps = [{ name: "s0", operation: echo({ text: "x".repeat(2 * KIB) }), dependsOn: [] as string[] }];
    for (let i = 1; i < 12; i++) {
      steps.push({ name: `s${i}`, operation: echo({ text: `{{steps.s${i - 1}.output}}{{steps.s${i - 1}.output}}` }), dependsOn: [`s${i - 1}`] });
    }
    const { job } = await jobs.submitJob({ steps });
    const done = await finished(job!.id);

    expect(done.state).toBe(JobState.FAILED);
    // 2, 4, 8, 16 and 32 KiB run; s5 would be 64 KiB of text plus its encoding.
    expect(done.steps.slice(0, 5).map((s) => s.state)).toEqual(Array(5).fill(StepState.SUCCEEDED));
    expect(done.steps[4]!.result!.text.length).toBe(32 * KIB);
    const s5 = done.steps[5]!;
    expect(s5.state).toBe(StepState.FAILED);
    expect(s5.error?.code).toBe(StepErrorCode.OPERATION_TOO_LARGE);
    expect(s5.error?.retryable).toBe(false);
    expect(s5.errors).toHaveLength(1); // not retried
    expect(s5.error?.message).toMatch(/about 655\d\d bytes once the dependency outputs .* over the queue's max-operation-bytes of 65536/);
    // Shown as submitted: resolved, it would be over the cap.
    expect(s5.operation?.kind.value).toMatchObject({ text: "{{steps.s4.output}}{{steps.s4.output}}" });
    // The job fails fast: what had not run is cancelled.
    expect(done.steps.slice(6).map((s) => s.error?.code)).toEqual(Array(6).fill(StepErrorCode.CANCELLED));
    expect(await recordBytes(job!.id)).toBeLessThan(limits.maxJobBytes);
  });

  it("a step that references every earlier step many times is refused before its operation is built", async () => {
    const steps = [{ name: "s0", operation: echo({ text: "y".repeat(1000) }), dependsOn: [] as string[] }];
    for (let i = 1; i < 8; i++) {
      const names = steps.map((s) => s.name);
      steps.push({ name: `s${i}`, operation: echo({ text: names.map((n) => `{{steps.${n}.output}}`.repeat(20)).join("") }), dependsOn: names });
    }
    const { job } = await jobs.submitJob({ steps });
    const done = await finished(job!.id);
    expect(done.state).toBe(JobState.FAILED);
    expect(done.steps[0]!.state).toBe(StepState.SUCCEEDED);
    // s1 alone resolves to 20 KB; s2 references s0 and s1 twenty times each: 420 KB.
    expect(done.steps[1]!.state).toBe(StepState.SUCCEEDED);
    expect(done.steps[2]!.error?.code).toBe(StepErrorCode.OPERATION_TOO_LARGE);
    expect(await recordBytes(job!.id)).toBeLessThan(limits.maxJobBytes);
    // GetJob shows what is stored, not the expansion.
    const reply = await fetch(`${stack.server.url}/stepq.v1.JobService/GetJob`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jobId: job!.id }),
    });
    expect((await reply.arrayBuffer()).byteLength).toBeLessThan(200 * KIB);
  });
});

describe("outputs, results and job records", () => {
  it("a result over max-output-bytes is not stored: the step fails with OUTPUT_TOO_LARGE and is not retried", async () => {
    const step = await stepService.submitStep({ operation: echo({ text: "z".repeat(50 * KIB) }), retry: { maxAttempts: 3 } });
    const done = await stack.client.wait(step.step!.id);
    expect(done.state).toBe(StepState.FAILED);
    expect(done.result).toBeUndefined();
    expect(done.errors).toHaveLength(1);
    expect(done.error).toMatchObject({ code: StepErrorCode.OUTPUT_TOO_LARGE, retryable: false });
    expect(done.error?.message).toMatch(/the result is 512\d\d bytes, over the queue's max-output-bytes of 49152; it was not stored/);
    expect(abandoned).toContainEqual(expect.objectContaining({ stepId: done.id, reason: "too-large" }));
  });

  it("streamed output past max-output-bytes is not written: the step fails and its engine is stopped", async () => {
    // 1,001-byte tokens, one every 2 ms, 1,000 of them: 1 MB, far past the 48 KiB cap. Paced, so
    // that the first appends fit under the cap whatever the machine's speed (an append is refused
    // whole when it would cross the cap, and 100,000 tokens at once can cross it in the first one).
    const step = await stack.client.submit(echo({ text: "w".repeat(1000), tokenCount: 1000, tokenDelayMs: 2 }));
    let tokenBytes = 0;
    let end: FollowEvent | undefined;
    for await (const e of stack.client.follow(step.id)) {
      if (e.type === "tokens") for (const t of e.tokens) tokenBytes += Buffer.byteLength(t.text);
      if (e.type === "end") end = e;
    }
    expect(end?.type === "end" && end.state).toBe(StepState.FAILED);
    const error = end?.type === "end" ? end.error : undefined;
    expect(error?.code).toBe(StepErrorCode.OUTPUT_TOO_LARGE);
    expect(error?.message).toMatch(/the output of this attempt reached \d+ bytes, over the queue's max-output-bytes of 49152/);
    expect(tokenBytes).toBeGreaterThan(0);
    expect(tokenBytes).toBeLessThanOrEqual(limits.maxOutputBytes);
    expect(abandoned).toContainEqual(expect.objectContaining({ stepId: step.id, reason: "too-large" }));
  });

  it("a job's record never passes max-job-bytes: the results that would take it past fail with OUTPUT_TOO_LARGE", async () => {
    // Twelve parallel steps of ~24 KB results each: ~290 KB, over 256 KiB.
    const steps = Array.from({ length: 12 }, (_, i) => ({ name: `p${i}`, operation: echo({ text: "", tokenCount: 4000 }) }));
    const { job } = await jobs.submitJob({ steps, failurePolicy: 2 /* CONTINUE */ });
    const done = await finished(job!.id);
    const succeeded = done.steps.filter((s) => s.state === StepState.SUCCEEDED);
    const refused = done.steps.filter((s) => s.error?.code === StepErrorCode.OUTPUT_TOO_LARGE);
    expect(succeeded.length).toBeGreaterThanOrEqual(8);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(succeeded.length + refused.length).toBe(12);
    expect(refused[0]!.error?.message).toMatch(new RegExp(`would make job ${job!.id}'s record \\d+ bytes, over the queue's max-job-bytes of 262144`));
    expect(await recordBytes(job!.id)).toBeLessThanOrEqual(limits.maxJobBytes);
  });
});

describe("listings", () => {
  it("ListJobs pages by bytes: a page of large jobs is short, and the pages together list every job once", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const s = await stack.client.submit(echo({ text: `${i}`.repeat(30 * KIB) }));
      ids.push(s.jobId);
      await stack.client.wait(s.id);
    }
    // Each record holds ~30 KiB of spec and ~30 KiB of result: after four the
    // page is under 256 KiB, the fifth takes it past and ends it.
    const first = await jobs.listJobs({ pageSize: 50 });
    expect(first.jobs.map((j) => j.id)).toEqual(ids.slice(1).reverse());
    expect(first.nextPageToken).not.toBe("");
    const seen = new Set(first.jobs.map((j) => j.id));
    let token = first.nextPageToken;
    while (token !== "") {
      const page = await jobs.listJobs({ pageSize: 50, pageToken: token });
      for (const j of page.jobs) {
        expect(seen.has(j.id)).toBe(false);
        seen.add(j.id);
      }
      token = page.nextPageToken;
    }
    for (const id of ids) expect(seen.has(id)).toBe(true);
  });

  it("a page token at the very start of the index (0-0) is refused as no token, not answered internal", async () => {
    for (const call of [jobs.listJobs({ pageToken: "0-0" }), stepService.listSteps({ pageToken: "j:0-0" })]) {
      const err = await call.then(() => undefined, (e: unknown) => ConnectError.from(e));
      expect(err?.code).toBe(Code.InvalidArgument);
      expect(err?.rawMessage).toMatch(/^page_token: is not a token returned by a previous List(Jobs|Steps) response/);
    }
  });

  it("ListSteps of FAILED with a route that matches nothing examines at most the scan budget per call", async () => {
    const fail = echo({ failMessage: "on purpose", failPermanently: true });
    for (let i = 0; i < 3; i++) {
      await stepService.submitSteps({ requests: Array.from({ length: 850 }, () => ({ operation: fail })) });
    }
    await eventually(() => redis.zcard("stepq:{default}:dead"), (n) => n >= 2550, 30_000);

    const first = await stepService.listSteps({ state: StepState.FAILED, route: "no-such-route" });
    expect(first.steps).toEqual([]);
    expect(first.nextPageToken).toBe("d:2000");
    const second = await stepService.listSteps({ state: StepState.FAILED, route: "no-such-route", pageToken: first.nextPageToken });
    expect(second.steps).toEqual([]);
    expect(second.nextPageToken).toBe("");
  });
});
