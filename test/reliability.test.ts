import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { JobState } from "../gen/stepq/v1/job_pb.js";
import { StepErrorCode, StepState } from "../gen/stepq/v1/step_pb.js";
import { createLogger } from "../runtime/logger.js";
import { buildServer } from "../server/main.js";
import { postJson } from "./helpers/json-rpc.js";
import { startProcess } from "./helpers/process.js";
import { useRedis } from "./helpers/redis.js";
import { echo, eventually, quiet, useStack } from "./helpers/stack.js";

const root = join(import.meta.dirname, "..");
const infer = (model: string) => ({ kind: { case: "infer" as const, value: { model, prompt: "hi" } } });

describe("queue timeouts and limits", () => {
  it("a step nobody starts within queue_timeout_ms fails with QUEUE_TIMEOUT, and its dependants are cancelled", async () => {
    const stack = await useStack({ sweepIntervalMs: 100 });
    const { job } = await stack.client.jobs.submitJob({
      steps: [
        { name: "orphan", operation: infer("no-such-worker"), queueTimeoutMs: 200 },
        { name: "next", operation: echo({ text: "x" }), dependsOn: ["orphan"] },
      ],
      failurePolicy: 2,
    });
    const done = await eventually(async () => (await stack.client.jobs.getJob({ jobId: job!.id })).job!, (j) => j.state === JobState.FAILED);
    expect(done.steps[0]!.error?.code).toBe(StepErrorCode.QUEUE_TIMEOUT);
    expect(done.steps[0]!.error?.message).toMatch(/within queue_timeout_ms=200/);
    expect(done.steps[1]!.state).toBe(StepState.CANCELLED);
  });

  it("a route over max_queued_per_route refuses submits with RESOURCE_EXHAUSTED and the limit", async () => {
    const stack = await useStack({ limits: { maxQueuedPerRoute: 3 } });
    for (let i = 0; i < 3; i++) await stack.client.submit(infer("busy"));
    const res = await postJson(stack.server.url, "stepq.v1.StepService/SubmitStep", { operation: { infer: { model: "busy", prompt: "x" } } });
    expect(res.body.code).toBe("resource_exhausted");
    expect(res.body.message).toMatch(/route 'infer:busy' already holds 3 queued steps and its limit is 3/);
    await stack.client.submit(infer("quiet")); // other routes are not affected
    const batch = await postJson(stack.server.url, "stepq.v1.StepService/SubmitSteps", {
      requests: [{ operation: { infer: { model: "quiet", prompt: "a" } } }, { operation: { infer: { model: "busy", prompt: "b" } } }],
    });
    expect(batch.body.code).toBe("resource_exhausted");
    expect((await stack.client.steps.listSteps({ route: "infer:quiet" })).steps).toHaveLength(1); // all or none
  });

  it("a server with max_streams open streams refuses one more with RESOURCE_EXHAUSTED, and accepts it once one closes", async () => {
    const stack = await useStack({ maxStreams: 2 });
    const steps = await Promise.all([1, 2, 3].map(() => stack.client.submit(infer("nobody"))));
    const aborts = steps.map(() => new AbortController());
    const open = (i: number) =>
      (async () => {
        try {
          for await (const _ of stack.client.steps.streamTokens({ stepId: steps[i]!.id }, { signal: aborts[i]!.signal })) {
            /* nothing arrives: nobody serves the route */
          }
        } catch (e) {
          return ConnectError.from(e);
        }
        return undefined;
      })();
    const first = open(0);
    const second = open(1);
    await new Promise((r) => setTimeout(r, 200));
    const third = await open(2);
    expect(third?.code).toBe(Code.ResourceExhausted);
    expect(third?.rawMessage).toMatch(/already serves 2 streams, its limit \(max_streams=2\)/);
    aborts[0]!.abort();
    await first;
    await new Promise((r) => setTimeout(r, 100));
    const fourth = open(2);
    await new Promise((r) => setTimeout(r, 200));
    aborts[1]!.abort();
    aborts[2]!.abort();
    expect(await fourth).toMatchObject({ code: Code.Canceled });
    await second;
  });
  it("max_streams counts streams served by the output lane and by Connect together", async () => {
    const stack = await useStack({ maxStreams: 2 });
    const steps = await Promise.all([1, 2, 3].map(() => stack.client.submit(infer("nobody"))));
    const viaLane = createStepqClient({ baseUrl: stack.server.url }); // Connect binary: the output lane
    const viaConnect = createStepqClient({ baseUrl: stack.server.url, protocol: "grpc-web" }); // Connect's pipeline
    const abort = new AbortController();
    const follow = (client: typeof viaLane, stepId: string) =>
      (async () => {
        try {
          for await (const _ of client.steps.streamTokens({ stepId }, { signal: abort.signal })) {
            /* nothing arrives: nobody serves the route */
          }
        } catch (e) {
          return ConnectError.from(e);
        }
        return undefined;
      })();
    const open = [follow(viaLane, steps[0]!.id), follow(viaConnect, steps[1]!.id)];
    await new Promise((r) => setTimeout(r, 200));
    for (const client of [viaLane, viaConnect]) {
      const refused = await follow(client, steps[2]!.id);
      expect(refused?.code).toBe(Code.ResourceExhausted);
      expect(refused?.rawMessage).toMatch(/already serves 2 streams, its limit \(max_streams=2\)/);
    }
    abort.abort();
    await Promise.all(open);
  });
});

describe("Redis faults", () => {
  it("scripts are reloaded by themselves after Redis forgets them (NOSCRIPT)", async () => {
    const stack = await useStack();
    const w = await stack.worker();
    await stack.client.submit(echo({ text: "before" }));
    await w.runOnce();
    await stack.server.queue.redis.script("FLUSH");
    const step = await stack.client.submit(echo({ text: "after flush" }));
    expect(await w.runOnce()).toBe(1);
    expect((await stack.client.get(step.id)).result?.text).toBe("after flush");
  });

  it("the server warns at start when Redis is unsafe for a queue (no AOF, evicting policy)", async () => {
    const redis = await useRedis();
    const lines: string[] = [];
    const logger = createLogger("server", { level: "warn", write: (l) => lines.push(l) });
    const probe = await buildServer({ redisUrl: redis.url, port: 0, logger });
    await probe.queue.redis.config("SET", "maxmemory-policy", "allkeys-lru");
    await probe.close();
    const second = await buildServer({ redisUrl: redis.url, port: 0, logger });
    await eventually(async () => lines.join("\n"), (t) => t.includes("maxmemory-policy is allkeys-lru"));
    expect(lines.join("\n")).toMatch(/Redis runs without AOF \(appendonly no\)/);
    await second.close();
  });

  it("a client following a step loses nothing when Redis restarts mid-stream", async () => {
    const redis = await useRedis({ appendFsync: "always" });
    const server = await buildServer({ redisUrl: redis.url, port: 0, logger: quiet, shutdownGraceMs: 200 });
    const client = createStepqClient({ baseUrl: server.url });
    const { createWorker } = await import("../worker/worker.js");
    const { createEchoEngine } = await import("../worker/engines/echo.js");
    const w = createWorker({ redisUrl: redis.url, engines: [createEchoEngine()], logger: quiet, leaseMs: 10_000, idleBlockMs: 500 });
    await w.start();
    const running = w.runForever();
    const step = await client.submit(echo({ text: "steady", tokenCount: 150, tokenDelayMs: 10 }));
    const seen = new Map<number, string>();
    let end;
    let restarted = false;
    for await (const e of client.follow(step.id)) {
      if (e.type === "tokens") {
        for (const t of e.tokens) {
          expect(seen.has(t.index), `token ${t.index} twice`).toBe(false);
          seen.set(t.index, t.text);
        }
        if (!restarted && seen.size > 30) {
          restarted = true;
          await redis.kill("SIGKILL");
          await new Promise((r) => setTimeout(r, 300));
          await redis.restart();
        }
      }
      if (e.type === "end") end = e;
    }
    expect(restarted).toBe(true);
    expect(end?.state).toBe(StepState.SUCCEEDED);
    expect([...seen.keys()].sort((a, b) => a - b)).toEqual([...Array(150).keys()]);
    await w.stop(200);
    await running;
    await server.close();
  }, 60_000);
});

describe("crashed and paused workers", () => {
  it("a worker SIGKILLed mid-step: another worker re-runs the step and it completes once", async () => {
    const stack = await useStack({ sweepIntervalMs: 200 });
    const doomed = startProcess(process.execPath, ["--import", "tsx", join(root, "worker/main.ts"), "--lease", "1s"], {
      REDIS_URL: stack.redis.url,
    });
    await doomed.waitFor(/started routes=echo/);
    const step = await stack.client.submit(echo({ text: "survivor", delayMs: 3000 }));
    await eventually(() => stack.client.get(step.id), (s) => s.state === StepState.RUNNING);
    await doomed.stop("SIGKILL");
    const rescuer = await stack.worker();
    void rescuer.runForever();
    const done = await stack.client.wait(step.id);
    expect(done.state).toBe(StepState.SUCCEEDED);
    expect(done.attempt).toBe(2);
    expect(done.errors.map((e) => e.code)).toEqual([StepErrorCode.LEASE_EXPIRED]);
    const log = await stack.server.queue.readLog(step.jobId, "", 1000);
    expect(log.filter((e) => e.kind === "event" && e.event.type === EventType.STEP_SUCCEEDED)).toHaveLength(1);
    await rescuer.stop();
  }, 30_000);

  it("a worker paused past its lease cannot write when it wakes up", async () => {
    const stack = await useStack({ sweepIntervalMs: 200 });
    const sleeper = startProcess(process.execPath, ["--import", "tsx", join(root, "worker/main.ts"), "--lease", "1s"], {
      REDIS_URL: stack.redis.url,
      STEPQ_LOG_LEVEL: "info",
    });
    await sleeper.waitFor(/started routes=echo/);
    const step = await stack.client.submit(echo({ text: "tick", tokenCount: 200, tokenDelayMs: 10 }));
    await eventually(() => stack.server.queue.readLog(step.jobId, "", 1000), (log) => log.some((e) => e.kind === "tokens"));
    sleeper.child.kill("SIGSTOP");
    const rescuer = await stack.worker();
    void rescuer.runForever();
    const done = await stack.client.wait(step.id);
    expect(done.state).toBe(StepState.SUCCEEDED);
    expect(done.attempt).toBe(2);
    expect(done.workerId).toBe(rescuer.id);

    sleeper.child.kill("SIGCONT");
    await sleeper.waitFor(/step abandoned .*reason=lease-lost/);
    const log = await stack.server.queue.readLog(step.jobId, "", 100_000);
    const secondClaim = log.findIndex((e) => e.kind === "event" && e.event.type === EventType.STEP_CLAIMED && e.event.attempt === 2);
    expect(secondClaim).toBeGreaterThan(0);
    // Nothing from attempt 1 was written after attempt 2 began, and the step succeeded once.
    expect(log.slice(secondClaim).some((e) => (e.kind === "tokens" || e.kind === "narration") && e.attempt === 1)).toBe(false);
    expect(log.filter((e) => e.kind === "event" && e.event.type === EventType.STEP_SUCCEEDED)).toHaveLength(1);
    expect((await stack.client.get(step.id)).result?.text).toBe(done.result?.text);
    await sleeper.stop("SIGKILL");
    await rescuer.stop();
  }, 40_000);
});
