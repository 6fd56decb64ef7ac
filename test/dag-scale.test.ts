import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { JobState } from "../gen/stepq/v1/job_pb.js";
import { StepErrorCode, StepState } from "../gen/stepq/v1/step_pb.js";
import { startProcess } from "./helpers/process.js";
import { echo, eventually, useStack } from "./helpers/stack.js";

const stack = await useStack({ limits: { retentionMs: 60 * 60_000 } });
const q = stack.server.queue;
const root = join(import.meta.dirname, "..");

async function countEvents(jobId: string, type: EventType, stepIndex: number) {
  const log = await q.readLog(jobId, "", 100_000);
  return log.filter((e) => e.kind === "event" && e.event.type === type && e.event.stepIndex === stepIndex).length;
}

describe("multi-step jobs at scale and under crashes", () => {
  it("1,000 jobs of 3 steps each all finish, each step exactly once, with consistent state", async () => {
    const workers = await Promise.all([stack.worker({ concurrency: 16 }), stack.worker({ concurrency: 16 })]);
    for (const w of workers) void w.runForever();
    const ids: string[] = [];
    for (let batch = 0; batch < 10; batch++) {
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          q.submit(
            q.prepare({
              steps: [
                { name: "a", operation: echo({ text: `a${batch * 100 + i}` }) },
                { name: "b", operation: echo({ text: `b${batch * 100 + i}` }) },
                { name: "c", operation: echo({ text: "{{steps.a.output}}{{steps.b.output}}" }), dependsOn: ["a", "b"] },
              ],
            }),
          ),
        ),
      );
      ids.push(...results.map((r) => r.jobId));
    }
    const final = await eventually(
      () => q.getJobs(ids),
      (jobs) => jobs.every((j) => j?.state === JobState.SUCCEEDED),
      60_000,
    );
    final.forEach((job, n) => {
      expect(job!.steps.map((s) => [s.state, s.attempt])).toEqual([
        [StepState.SUCCEEDED, 1],
        [StepState.SUCCEEDED, 1],
        [StepState.SUCCEEDED, 1],
      ]);
      expect(job!.finishedAt).toBeGreaterThanOrEqual(job!.steps[2]!.finishedAt!);
      void n;
    });
    const sample = await stack.client.jobs.getJob({ jobId: ids[777]! });
    expect(sample.job!.outputs[0]!.result!.text).toBe("a777b777");
    for (const id of ids.slice(0, 50)) for (let s = 0; s < 3; s++) expect(await countEvents(id, EventType.STEP_SUCCEEDED, s)).toBe(1);
    const redis = q.redis;
    expect(await redis.zcard(q.keys.leases)).toBe(0);
    expect(await redis.llen(q.keys.readyList("echo"))).toBe(0);
    expect(await redis.zcard(q.keys.readyZset("echo"))).toBe(0);
    for (const w of workers) await w.stop();
  }, 120_000);

  it("a worker killed in the middle of a DAG loses no step and runs none twice to completion", async () => {
    const crashing = startProcess(process.execPath, ["--import", "tsx", join(root, "worker/main.ts"), "--lease", "1s"], {
      REDIS_URL: stack.redis.url,
      STEPQ_LOG_LEVEL: "info",
    });
    await crashing.waitFor(/started routes=echo/);
    const { jobId } = await q.submit(
      q.prepare({
        steps: [
          { name: "a", operation: echo({ text: "A" }) },
          { name: "b", operation: echo({ text: "B", delayMs: 4000 }), dependsOn: ["a"] },
          { name: "c", operation: echo({ text: "{{steps.b.output}}!" }), dependsOn: ["b"] },
        ],
      }),
    );
    await eventually(() => q.getJob(jobId), (j) => j?.steps[1]?.state === StepState.RUNNING, 20_000);
    expect(await crashing.stop("SIGKILL")).toBe(null);

    const rescuer = await stack.worker();
    void rescuer.runForever();
    const done = await eventually(() => q.getJob(jobId), (j) => j?.state === JobState.SUCCEEDED, 30_000);
    const [a, b, c] = done!.steps;
    expect(a!.attempt).toBe(1);
    expect(b!.attempt).toBe(2);
    expect(b!.errors.map((e) => e.code)).toEqual([StepErrorCode.LEASE_EXPIRED]);
    expect(b!.workerId).toBe(rescuer.id);
    expect(c!.attempt).toBe(1);
    const result = await stack.client.jobs.getJob({ jobId });
    expect(result.job!.outputs[0]!.result!.text).toBe("B!");
    for (let s = 0; s < 3; s++) expect(await countEvents(jobId, EventType.STEP_SUCCEEDED, s)).toBe(1);
    await rescuer.stop();
  }, 60_000);
});

describe("retention", () => {
  it("a finished job, its log and its index entries are deleted once its retention has passed", async () => {
    const short = await useStack({ limits: { retentionMs: 300 }, sweepIntervalMs: 100 });
    const w = await short.worker();
    void w.runForever();
    const first = await short.client.submit(echo({ text: "ephemeral", tokenCount: 2 }), { idempotencyKey: "keep-once" });
    const done = await short.client.wait(first.id);
    expect(done.state).toBe(StepState.SUCCEEDED);
    const job = (await short.client.jobs.getJob({ jobId: first.jobId })).job!;
    const expiresAt = Number(job.expiresAt!.seconds) * 1000 + job.expiresAt!.nanos / 1e6;
    expect(expiresAt).toBeGreaterThan(Date.now() - 5000);

    const sq = short.server.queue;
    await eventually(() => sq.getJob(first.jobId), (j) => j === undefined, 10_000);
    await expect(short.client.get(first.id)).rejects.toSatisfy((e: unknown) => ConnectError.from(e).code === Code.NotFound);
    const listed = await short.client.jobs.listJobs({});
    expect(listed.jobs.map((j) => j.id)).not.toContain(first.jobId);
    const k = sq.keys;
    expect(await sq.redis.exists(k.job(first.jobId), k.log(first.jobId), k.outputSeq(first.jobId), k.idempotency("0:keep-once"))).toBe(0);
    expect(await sq.redis.xlen(k.jobIndex)).toBe(0);
    for (const rt of await sq.redis.smembers(k.retentions)) expect(await sq.redis.llen(k.expiries(rt))).toBe(0);
    // The idempotency key was released with the job: the same request makes a new job.
    const again = await short.client.steps.submitStep({ operation: echo({ text: "ephemeral", tokenCount: 2 }), idempotencyKey: "keep-once" });
    expect(again.deduplicated).toBe(false);
    expect(again.step!.jobId).not.toBe(first.jobId);
    await w.stop();
  });
});
