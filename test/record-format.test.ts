import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { JobState } from "../gen/stepq/v1/job_pb.js";
import { type Operation, OperationSchema } from "../gen/stepq/v1/operation_pb.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { pack } from "../wire/msgpack.js";
import type { Queue } from "../queue/queue.js";
import { resultBytes, useQueues } from "./helpers/queue.js";
import { echo } from "./helpers/stack.js";
import { untilRedisTimePasses } from "./helpers/waits.js";

const newQueue = await useQueues();

/**
 * A one-step job as stepq wrote it before record format 2: one msgpack map
 * (record.ts's field names), its id in the route's ready list and in the
 * job index. Returns the job id.
 */
async function storeFormat1Job(queue: Queue, op: Operation, finishedAt?: number): Promise<string> {
  const seq = await queue.redis.incr(queue.keys.seq);
  const jobId = `${seq.toString(36).padStart(8, "0")}abcdefgh`;
  const now = Date.now();
  const ix = await queue.redis.xadd(queue.keys.jobIndex, "*", "j", jobId);
  const step: Record<string, unknown> = { n: "main", o: toBinary(OperationSchema, op), r: "echo", ma: 3, bi: 1000, bm: 60000, a: 0 };
  const job: Record<string, unknown> = { sq: seq, c: now, rt: 60_000, ix, s: [step] };
  if (finishedAt === undefined) {
    Object.assign(step, { st: StepState.QUEUED, q: "l" });
    job.st = JobState.QUEUED;
    await queue.redis.rpush(queue.keys.readyList("echo"), `${jobId}.0`);
  } else {
    Object.assign(step, { st: StepState.SUCCEEDED, a: 1, sa: finishedAt - 5, f: finishedAt, pg: 1, rs: resultBytes("old"), wk: "w-old" });
    Object.assign(job, { st: JobState.SUCCEEDED, sa: finishedAt - 5, f: finishedAt, x: finishedAt + 1 });
    // Earlier versions kept finished jobs in a zset by expiry time.
    await queue.redis.zadd(queue.keys.done, finishedAt + 1, jobId);
  }
  await queue.redis.set(queue.keys.job(jobId), pack(job as never));
  return jobId;
}

const firstByte = async (queue: Queue, jobId: string) => (await queue.redis.getBuffer(queue.keys.job(jobId)))?.[0];

describe("job records", () => {
  it("written by an earlier version (format 1) are read, claimed and completed, and rewritten in format 2", async () => {
    const queue = newQueue();
    const jobId = await storeFormat1Job(queue, echo({ text: "from before" }));
    expect((await firstByte(queue, jobId))! & 0xf0).toBe(0x80); // a msgpack map

    const before = await queue.getJob(jobId);
    expect(before?.state).toBe(JobState.QUEUED);
    expect(before?.steps[0]?.state).toBe(StepState.QUEUED);
    expect(before?.steps[0]?.maxAttempts).toBe(3);

    const { steps } = await queue.claim({ workerId: "w-new", routes: ["echo"], leaseMs: 10_000, max: 5 });
    expect(steps.map((s) => s.stepId)).toEqual([`${jobId}.0`]);
    expect(steps[0]?.operation.kind.case === "echo" && steps[0].operation.kind.value.text).toBe("from before");
    expect(await firstByte(queue, jobId)).toBe(2);

    const settled = await queue.settle({
      workerId: "w-new",
      routes: ["echo"],
      leaseMs: 10_000,
      claimMax: 0,
      completions: [{ step: steps[0]!, result: resultBytes("done"), trailing: { firstSeq: 0, entries: [] } }],
    });
    expect(settled.outcomes).toEqual([undefined]);
    const after = await queue.getJob(jobId);
    expect(after?.state).toBe(JobState.SUCCEEDED);
    expect(after?.steps[0]).toMatchObject({ state: StepState.SUCCEEDED, attempt: 1, workerId: "w-new", progress: 1 });
    expect(Buffer.from(after!.steps[0]!.result!).equals(Buffer.from(resultBytes("done")))).toBe(true);
  });

  it("of jobs finished by an earlier version are deleted once their retention has passed", async () => {
    const queue = newQueue();
    const expired = await storeFormat1Job(queue, echo({ text: "old" }), Date.now() - 10_000);
    const kept = await storeFormat1Job(queue, echo({ text: "old" }), Date.now() + 60_000);
    expect((await queue.getJob(expired))?.steps[0]?.workerId).toBe("w-old");
    const { purged } = await queue.sweep();
    expect(purged).toBe(1);
    expect(await queue.getJob(expired)).toBeUndefined();
    expect((await queue.getJob(kept))?.state).toBe(JobState.SUCCEEDED);
    expect(await queue.redis.zrange(queue.keys.done, "0", "-1")).toEqual([kept]);
  });

  it("of a one-step job read back exactly as its submit described it", async () => {
    const queue = newQueue();
    const cases = [
      { step: { operation: echo({ text: "plain" }) } },
      { step: { operation: echo({ text: "ünïcode 🙂" }), retry: { maxAttempts: 7, initialBackoffMs: 250, maxBackoffMs: 9000 }, timeoutMs: 1234 } },
      { step: { operation: echo({ text: "labelled" }) }, labels: { team: "ml", "x.y/z": "über" }, idempotencyKey: "rf-1" },
      { step: { operation: create(OperationSchema, { kind: { case: "infer", value: { model: "tiny", prompt: "hi" } } }) } },
    ];
    for (const input of cases) {
      const submitted = await queue.submitStep(input);
      const stored = await queue.getJob(submitted.jobId);
      expect(submitted.job).toEqual(stored);
    }
  });

  it("of finished one-step jobs expire from the expiry list of their retention, oldest first", async () => {
    const queue = newQueue({ limits: { retentionMs: 50 } });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await queue.submitStep({ step: { operation: echo({ text: `r${i}` }) } })).jobId);
    const { steps } = await queue.claim({ workerId: "w", routes: ["echo"], leaseMs: 10_000, max: 3 });
    const settled = await queue.settle({
      workerId: "w",
      routes: ["echo"],
      leaseMs: 10_000,
      claimMax: 0,
      completions: steps.map((s) => ({ step: s, result: resultBytes("ok"), trailing: { firstSeq: 0, entries: [] } })),
    });
    const list = await queue.redis.lrange(queue.keys.expiries("50"), 0, -1);
    expect(list.filter((_, i) => i % 2 === 1)).toEqual(ids);
    expect(await queue.redis.smembers(queue.keys.retentions)).toEqual(["50"]);
    // Finished at Redis's `redisNow`: due 50 ms later, by the same clock.
    await untilRedisTimePasses(queue.redis, settled.redisNow + 50);
    expect((await queue.sweep()).purged).toBe(3);
    expect(await queue.redis.llen(queue.keys.expiries("50"))).toBe(0);
    for (const id of ids) expect(await queue.getJob(id)).toBeUndefined();
  });
});
