import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { JobState } from "../gen/stepq/v1/job_pb.js";
import { type Operation, OperationSchema } from "../gen/stepq/v1/operation_pb.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { pack } from "../wire/msgpack.js";
import { oneStepJob } from "../queue/prepare-job.js";
import type { Queue } from "../queue/queue.js";
import { resultBytes, useQueues } from "./helpers/queue.js";
import { echo } from "./helpers/stack.js";
import { untilRedisTimePasses } from "./helpers/waits.js";

const newQueue = await useQueues();

/**
 * A queued one-step job in a record format this version does not write:
 * one msgpack map (what 0.1.0 wrote, "format 1"), its id in the route's
 * ready list. Returns the job id.
 */
async function storeOtherFormatJob(queue: Queue, op: Operation): Promise<string> {
  const seq = await queue.redis.incr(queue.keys.seq);
  const jobId = `${seq.toString(36).padStart(8, "0")}abcdefgh`;
  const step = { n: "main", o: toBinary(OperationSchema, op), r: "echo", ma: 3, bi: 1000, bm: 60000, a: 0, st: StepState.QUEUED, q: "l" };
  await queue.redis.set(queue.keys.job(jobId), pack({ sq: seq, c: Date.now(), rt: 60_000, st: JobState.QUEUED, s: [step] } as never));
  await queue.redis.rpush(queue.keys.readyList("echo"), `${jobId}.0`);
  return jobId;
}

const firstByte = async (queue: Queue, jobId: string) => (await queue.redis.getBuffer(queue.keys.job(jobId)))?.[0];

describe("job records", () => {
  it("of another format are refused, naming the format, by reads and by the scripts (a later migration hooks in there)", async () => {
    const queue = newQueue();
    const jobId = await storeOtherFormatJob(queue, echo({ text: "from 0.1.0" }));
    expect((await firstByte(queue, jobId))! & 0xf0).toBe(0x80); // a msgpack map, not format 2
    await expect(queue.getJob(jobId)).rejects.toThrow(`job ${jobId} has record format ${0x80 | 0x05}; this stepq reads format 2 only`);
    await expect(queue.claim({ workerId: "w", routes: ["echo"], leaseMs: 10_000, max: 5 })).rejects.toThrow(
      `job ${jobId} has record format ${0x80 | 0x05}; this stepq reads format 2 only`,
    );
    const fresh = await queue.submit(queue.prepare(oneStepJob({ operation: echo({ text: "new" }) })));
    expect(await firstByte(queue, fresh.jobId)).toBe(2);
  });

  it("of a one-step job read back exactly as its submit described it", async () => {
    const queue = newQueue();
    const cases = [
      { operation: echo({ text: "plain" }) },
      { operation: echo({ text: "ünïcode 🙂" }), retry: { maxAttempts: 7, initialBackoffMs: 250, maxBackoffMs: 9000 }, timeoutMs: 1234 },
      { operation: echo({ text: "labelled" }), labels: { team: "ml", "x.y/z": "über" }, idempotencyKey: "rf-1" },
      { operation: create(OperationSchema, { kind: { case: "infer", value: { model: "tiny", prompt: "hi" } } }) },
    ];
    for (const input of cases) {
      const submitted = await queue.submit(queue.prepare(oneStepJob(input)));
      const stored = await queue.getJob(submitted.jobId);
      expect(submitted.job).toEqual(stored);
    }
  });

  it("of finished one-step jobs expire from the expiry list of their retention, oldest first", async () => {
    const queue = newQueue({ limits: { retentionMs: 50 } });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await queue.submit(queue.prepare(oneStepJob({ operation: echo({ text: `r${i}` }) })))).jobId);
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
