/**
 * The short chaos run (`npm run chaos` is the long one, see docs/chaos.md):
 * real Redis, server and worker processes; workers SIGKILLed every couple of
 * seconds, Redis SIGKILLed once, client and submit connections dropped. And
 * a check that the audit behind it notices what it must report.
 */
import { describe, expect, it } from "vitest";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { JobState } from "../gen/stepq/v1/job_pb.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { oneStepJob } from "../queue/prepare-job.js";
import { auditRun } from "../bench/chaos/audit.js";
import type { FollowRecord } from "../bench/chaos/follower.js";
import type { PlannedJob } from "../bench/chaos/job-plan.js";
import { chaosViolations, formatChaosReport, runChaos } from "../bench/chaos/run-chaos.js";
import { echo, eventually, useStack } from "./helpers/stack.js";

describe("chaos", () => {
  it("loses no job and completes no step twice while workers and Redis are SIGKILLed and connections dropped", async () => {
    const lines: string[] = [];
    const report = await runChaos({
      jobs: 150,
      workers: 3,
      concurrency: 6,
      seed: 7,
      durationHintMs: 15_000,
      killEveryMs: 2000,
      redisKill: true,
      followFraction: 0.3,
      log: (line) => lines.push(line),
    });
    const details = `${formatChaosReport(report)}\n${lines.join("\n")}`;

    expect(report.submitted, details).toBe(150);
    expect(report.lost, details).toBe(0);
    expect(report.completedTwice, details).toBe(0);
    expect(report.failedUnexpectedly, details).toBe(0);
    expect(report.wrongResults, details).toBe(0);
    expect(report.storedJobs, details).toBe(report.submitted);
    expect(report.succeeded + report.failedAsIntended, details).toBe(150);
    expect(report.streams.verified, details).toBeGreaterThan(0);
    expect(report.streams.defects, details).toBe(0);
    expect(report.workerKills, details).toBeGreaterThan(0);
    expect(report.redisKills, details).toBe(1);
    expect(chaosViolations(report), details).toEqual([]);
  }, 90_000);

  it("the audit reports a missing job, a second completion and a stream with a gap", async () => {
    const stack = await useStack();
    const worker = await stack.worker();
    void worker.runForever();
    const queue = stack.server.queue;
    // zoned: the step requires the chaos run's tag, but the worker here has no chaos slot id, so its claim is misrouted.
    const step = { name: "main", dependsOn: [], design: "ok" as const, maxAttempts: 3, zoned: true };
    const echoPlan = { text: "a b", tokenCount: 3, tokenDelayMs: 0, delayMs: 0, failMessage: "", failAttempts: 0, failPermanently: false };
    const plan: PlannedJob[] = [0, 1].map((index) => ({
      index,
      idempotencyKey: `audit-${index}`,
      shape: "single",
      steps: [{ ...step, echo: echoPlan }],
      designedToFail: false,
      followed: true,
    }));
    const { jobId } = await queue.submit(queue.prepare(oneStepJob({ operation: echo(echoPlan) })));
    await eventually(() => queue.getJob(jobId), (j) => j?.state === JobState.SUCCEEDED);
    await queue.redis.xadd(queue.keys.log(jobId), "*", "k", "e", "t", EventType.STEP_SUCCEEDED, "j", jobId, "s", 0, "a", 1);
    const gappy: FollowRecord = {
      jobIndex: 0,
      stepIndex: 0,
      stepId: `${jobId}.0`,
      planned: plan[0]!.steps[0]!,
      tokens: [
        { attempt: 1, index: 0, text: "a " },
        { attempt: 1, index: 2, text: "a " },
      ],
      restarts: [],
      reconnects: 0,
      end: { state: StepState.SUCCEEDED },
    };

    const audit = await auditRun(queue, plan, new Map([[0, jobId], [1, "00000000missing0"]]), [gappy]);
    expect(audit).toMatchObject({ succeeded: 1, lost: 1, completedTwice: 1, zonedSteps: 2, zonedMisrouted: 1, streams: { verified: 0, defects: 1 } });
    expect(audit.problems.join("\n")).toMatch(/misrouted: \w+\.0 requires zone=eu but was claimed by /);
    expect(audit.problems.join("\n")).toMatch(/gap: token index 2 arrived in position 1/);
    await worker.stop();
  });
});
