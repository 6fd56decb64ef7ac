/**
 * Issue 19, item 2: capability routing. Workers advertise tags, memory and
 * the tenants they take; a step may require tags, memory and models, and be
 * restricted to or excluded from workers. Checked over many steps and
 * workers: every step runs, and no step is ever claimed by a worker that
 * does not meet it. Also: a step with requirements no step had before is
 * claimed at once by an idle worker that meets them; a step that failed on
 * one worker goes to another when one serves its route; bad requirements
 * are refused naming the field; --unserved-routes reject names what each
 * worker lacks.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { QueueService } from "../gen/stepq/v1/queue_service_pb.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { oneStepJob } from "../queue/prepare-job.js";
import { createQueue } from "../queue/queue.js";
import { type Requirements, requirementsOf, unmetRequirement } from "../queue/requirements.js";
import { tenantNumber } from "../queue/tenants.js";
import { buildServer } from "../server/main.js";
import { runStepq } from "./helpers/cli.js";
import { echo, eventually, quiet, useStack } from "./helpers/stack.js";

const stack = await useStack();
const redis = new Redis(stack.redis.url);
const queue = createQueue({ redis });
afterAll(() => redis.quit());
const queueService = createClient(QueueService, createConnectTransport({ baseUrl: stack.server.url, httpVersion: "1.1" }));

/** Who claimed what: step id -> worker ids, one per attempt. */
const claims = new Map<string, string[]>();
async function worker(id: string, opts: { tags?: string[]; memoryMb?: number; tenants?: string[]; excludeTenants?: string[]; concurrency?: number }) {
  const w = await stack.worker({ workerId: id, concurrency: opts.concurrency ?? 3, heartbeatMs: 200, ...opts });
  w.on("step:claimed", ({ stepId }) => claims.set(stepId, [...(claims.get(stepId) ?? []), id]));
  void w.runForever();
  return w;
}

describe("capability routing", () => {
  it("every step runs, each only on a worker that meets its requirements and takes its tenant", async () => {
    const acme = await tenantNumber(redis, queue.keys, "acme");
    const beta = await tenantNumber(redis, queue.keys, "beta");
    const fleet = {
      "gpu-a100": { tags: ["gpu=a100", "zone=eu"], memoryMb: 81920 },
      "gpu-t4": { tags: ["gpu=t4", "zone=eu"], memoryMb: 16384 },
      "acme-only": { memoryMb: 8192, tenants: ["acme"] },
      "not-acme": { tags: ["gpu=a100"], memoryMb: 40960, excludeTenants: ["acme"] },
    };
    for (const [id, opts] of Object.entries(fleet)) await worker(id, opts);

    const asks: Requirements[] = [
      {},
      { tags: ["gpu=a100"] },
      { tags: ["zone=eu", "gpu=t4"] },
      { minMemoryMb: 32768 },
      { onlyWorkers: ["gpu-t4", "acme-only"] },
      { excludeWorkers: ["gpu-a100"] },
      { tags: ["gpu=a100"], minMemoryMb: 65536 },
    ];
    const tenants = [0, acme, beta];
    const names = new Map([
      [0, "default"],
      [acme, "acme"],
      [beta, "beta"],
    ]);
    const submitted: { id: string; tenant: number; ask: Requirements }[] = [];
    for (let i = 0; i < 210; i++) {
      const ask = asks[i % asks.length] as Requirements;
      const tenant = tenants[Math.floor(i / asks.length) % tenants.length] as number;
      // acme's steps that need an a100 can only go to gpu-a100 (not-acme excludes acme).
      const r = await queue.submit(queue.prepare({ ...oneStepJob({ operation: echo({ text: `s${i}`, delayMs: 3 }), requirements: ask }), tenant }));
      submitted.push({ id: `${r.jobId}.0`, tenant, ask });
    }
    for (const s of submitted) expect((await stack.client.wait(s.id)).state, s.id).toBe(StepState.SUCCEEDED);

    const caps = (id: string) => {
      const f = fleet[id as keyof typeof fleet] as { tags?: string[]; memoryMb: number; tenants?: string[]; excludeTenants?: string[] };
      return { id, routes: ["echo"], tags: f.tags ?? [], memoryMb: f.memoryMb, tenants: f.tenants ?? [], except: f.excludeTenants ?? [] };
    };
    const wrong: string[] = [];
    const byWorker = new Map<string, number>();
    for (const s of submitted) {
      const step = await stack.client.get(s.id);
      const ran = claims.get(s.id) ?? [];
      expect(ran.length, s.id).toBe(1);
      const w = caps(ran[0] as string);
      byWorker.set(w.id, (byWorker.get(w.id) ?? 0) + 1);
      const unmet = unmetRequirement(step.route, w);
      const tenant = names.get(s.tenant) as string;
      if (unmet) wrong.push(`${s.id} (${step.route}) ran on ${w.id}, which ${unmet}`);
      if (w.tenants.length > 0 && !w.tenants.includes(tenant)) wrong.push(`${s.id} of ${tenant} ran on ${w.id}, which takes only ${w.tenants}`);
      if (w.except.includes(tenant)) wrong.push(`${s.id} of ${tenant} ran on ${w.id}, which excludes it`);
      // The route carries the requirements, and the Step message shows them as submitted.
      expect(requirementsOf(step.route).tags.sort()).toEqual([...(s.ask.tags ?? [])].sort());
      expect(step.requirements?.minMemoryMb ?? 0).toBe(s.ask.minMemoryMb ?? 0);
    }
    expect(wrong).toEqual([]);
    // Every worker had work it could take, so each took some.
    expect([...byWorker.keys()].sort()).toEqual(Object.keys(fleet).sort());

    // ListWorkers shows what each worker has and the routes it claims from now.
    const listed = (await queueService.listWorkers({})).workers;
    const a100 = listed.find((w) => w.id === "gpu-a100");
    expect(a100?.tags).toEqual(["gpu=a100", "zone=eu"]);
    expect(a100?.memoryMb).toBe(81920);
    expect(a100?.engines).toEqual(["echo"]);
    expect(a100?.claimRoutes).toContain("echo?tag=gpu=a100");
    expect(a100?.claimRoutes).not.toContain("echo?tag=gpu=t4;tag=zone=eu");
    expect(listed.find((w) => w.id === "acme-only")?.tenants).toEqual(["acme"]);
    expect(listed.find((w) => w.id === "not-acme")?.excludedTenants).toEqual(["acme"]);
  });

  it("a step with requirements no step had before is claimed at once by an idle worker that meets them", async () => {
    await eventually(async () => (await queueService.listWorkers({})).workers.every((w) => w.stepsInHand === 0), (idle) => idle);
    const t0 = Date.now();
    const step = await stack.client.submit(echo({ text: "new route" }), { requirements: { tags: ["zone=eu"], minMemoryMb: 12_000 } });
    expect((await stack.client.wait(step.id)).state).toBe(StepState.SUCCEEDED);
    // Without the new-route signal, the worker would notice at its next idle wake-up (1 s here, 5 s by default).
    expect(Date.now() - t0).toBeLessThan(700);
    // gpu-a100 and gpu-t4 are in zone eu with 12,000 MiB or more.
    expect(["gpu-a100", "gpu-t4"]).toContain(claims.get(step.id)?.[0]);
  });

  it("a step that failed on one worker is retried on another that serves its route", async () => {
    // Both zone-eu workers claim from the route already (a worker joins a new
    // route's live-worker set within its first claim after the route appears).
    const first = await stack.client.submit(echo({ text: "opens the route" }), { requirements: { tags: ["zone=eu"] } });
    await stack.client.wait(first.id);
    await eventually(
      async () => (await queueService.listWorkers({})).workers.filter((w) => w.claimRoutes.includes("echo?tag=zone=eu")).map((w) => w.id).sort(),
      (ids) => ids.join() === "gpu-a100,gpu-t4",
    );
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const s = await stack.client.submit(echo({ text: "flaky", failMessage: "first attempt fails", failAttempts: 1 }), {
        retry: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 1 },
        requirements: { tags: ["zone=eu"] }, // gpu-a100 and gpu-t4 only
      });
      ids.push(s.id);
    }
    for (const id of ids) {
      // The stored step says who ran each attempt (a claim handed back unstarted is not an attempt).
      const step = await stack.client.wait(id);
      expect(step.state).toBe(StepState.SUCCEEDED);
      expect(step.attempt).toBe(2);
      const failedOn = step.errors[0]?.workerId;
      expect(["gpu-a100", "gpu-t4"]).toContain(failedOn);
      expect(step.workerId, `${id}: attempt 2 ran where attempt 1 failed`).not.toBe(failedOn);
    }
  });

  it("refuses bad requirements naming the field", async () => {
    const refusal = async (requirements: Requirements) => {
      const err = await stack.client.submit(echo(), { requirements: requirements as never }).catch((e: unknown) => ConnectError.from(e));
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.InvalidArgument);
      return (err as ConnectError).rawMessage;
    };
    expect(await refusal({ tags: ["gpu"] })).toBe('requirements.tags[0]: "gpu" is not a tag: "key=value", each side 1-64 characters of [A-Za-z0-9._-], e.g. "gpu=a100"');
    expect(await refusal({ tags: ["gpu=a;b"] })).toMatch(/^requirements\.tags\[0\]: "gpu=a;b" is not a tag/);
    expect(await refusal({ onlyWorkers: ["w1"], excludeWorkers: ["w1"] })).toBe(
      "requirements.exclude_workers: names w1, which only_workers also names: no worker could claim the step",
    );
    expect(await refusal({ models: ["bad model"] })).toMatch(/^requirements\.models\[0\]: "bad model" is not a model name/);
    expect(await refusal({ tags: Array.from({ length: 17 }, (_, i) => `k${i}=v`) })).toBe("requirements.tags: has 17 entries; at most 16");
    const job = await stack.client.jobs.submitJob({ steps: [{ name: "a", operation: echo(), requirements: { tags: ["x"] } }] }).catch((e: unknown) => ConnectError.from(e));
    expect((job as ConnectError).rawMessage).toMatch(/^steps\[0\]\.requirements\.tags\[0\]: "x" is not a tag/);
  });

  it("the CLI submits with requirements and refuses a bad size or tag", async () => {
    const run = (args: string[]) => runStepq(args, {});
    const ok = await run(["submit", "echo", "--server", stack.server.url, "--text", "cli", "--require-tag", "zone=eu,gpu=t4", "--min-memory", "8g", "--json"]);
    expect(ok.code).toBe(0);
    const step = JSON.parse(ok.stdout) as { id: string; route: string; requirements: { tags: string[]; minMemoryMb: number } };
    expect(step.route).toBe("echo?mem=8192;tag=gpu=t4;tag=zone=eu");
    expect(step.requirements).toEqual({ tags: ["gpu=t4", "zone=eu"], minMemoryMb: 8192 });
    expect((await stack.client.wait(step.id)).state).toBe(StepState.SUCCEEDED);
    expect(claims.get(step.id)).toEqual(["gpu-t4"]);

    const size = await run(["submit", "echo", "--server", stack.server.url, "--min-memory", "lots"]);
    expect(size.code).toBe(2);
    expect(size.stderr).toContain('--min-memory "lots": give MiB as a number, or a size such as 40g or 512m');
    const tag = await run(["worker", "--redis-url", stack.redis.url, "--tag", "gpu"]);
    expect(tag.code).not.toBe(0);
    expect(tag.stderr).toContain('tag "gpu" must be "key=value", each side 1-64 characters of [A-Za-z0-9._-] (--tag)');
  });

  it("--unserved-routes reject names what each worker serving the route lacks", async () => {
    const strict = await buildServer({ redisUrl: stack.redis.url, port: 0, logger: quiet, unservedRoutes: "reject" });
    try {
      const client = createStepqClient({ baseUrl: strict.url });
      const err = await client.submit(echo(), { requirements: { tags: ["gpu=h100"] } }).catch((e: unknown) => ConnectError.from(e));
      expect((err as ConnectError).code).toBe(Code.FailedPrecondition);
      const msg = (err as ConnectError).rawMessage;
      expect(msg).toMatch(/^operation: no live worker could claim a step of route "echo\?tag=gpu=h100" for tenant default: of the workers serving echo, /);
      expect(msg).toContain("gpu-a100 has no tag gpu=h100");
      const only = await client.submit(echo(), { requirements: { onlyWorkers: ["acme-only"] } }).catch((e: unknown) => ConnectError.from(e));
      expect((only as ConnectError).rawMessage).toContain("acme-only takes only tenants acme; gpu-a100 is not one of only_workers (acme-only)");
      // What some worker meets is accepted.
      const ok = await client.submit(echo(), { requirements: { tags: ["gpu=t4"] } });
      expect((await client.wait(ok.id)).state).toBe(StepState.SUCCEEDED);
    } finally {
      await strict.close();
    }
  });
});
