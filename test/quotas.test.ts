/**
 * Issue 15, item 4: quotas per tenant. Each tenant may submit at most
 * --max-submits-per-second jobs per second (Redis's clock, across every
 * server), have at most --max-queued-per-tenant steps waiting to run, and
 * have at most --max-running-per-tenant steps running (claims skip a tenant
 * at its quota; its steps wait). A refusal is RESOURCE_EXHAUSTED naming the
 * quota and its numbers; one tenant at its quota leaves another untouched.
 * The counts behind them (the `load` hash) return to zero whatever path
 * the steps took to their end.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { JobState } from "../gen/stepq/v1/job_pb.js";
import { OperationSchema } from "../gen/stepq/v1/operation_pb.js";
import { createApiKey } from "../queue/api-keys.js";
import { type JobInput, oneStepJob, type PreparedJob } from "../queue/prepare-job.js";
import type { Queue } from "../queue/queue.js";
import { resultBytes } from "./helpers/queue.js";
import { useQueues } from "./helpers/queue.js";
import { connect } from "./helpers/redis.js";
import { echo, useStack } from "./helpers/stack.js";

const MAX = 5;
const newQueue = await useQueues({ limits: { maxSubmitsPerSecond: MAX } });
const op = create(OperationSchema, { kind: { case: "echo", value: { text: "x" } } });
const refusal = (nth: number) =>
  `your tenant's quota is ${MAX} submitted jobs per second (max_submits_per_second) and this would be job ${nth} ` +
  "of this second; retry in a second, or ask the operator for a higher quota";

describe("submits per second per tenant", () => {
  it("an all-or-none submit over the quota stores nothing; tenants are counted apart", async () => {
    const queue = newQueue();
    const jobs = (tenant: number, n: number): PreparedJob[] =>
      Array.from({ length: n }, () => queue.prepare({ steps: [{ name: "main", operation: op }], tenant }));
    // One call, one second: deterministic.
    await expect(queue.submitAll([...jobs(1, MAX + 1), ...jobs(2, 1)])).rejects.toThrow(refusal(MAX + 1));
    expect(await queue.redis.keys(`${queue.keys.prefix}j:*`)).toEqual([]);
    const both = await queue.submitAll([...jobs(1, MAX), ...jobs(2, MAX)]);
    expect(both.map((r) => r.job?.tenant)).toEqual([...Array(MAX).fill(1), ...Array(MAX).fill(2)]);
  });

  it("submits sharing calls are refused one by one past the quota, each naming it", async () => {
    const queue = newQueue();
    const outcomes = await Promise.allSettled(
      Array.from({ length: 3 * MAX }, () => queue.submit(queue.prepare({ steps: [{ name: "main", operation: op }], tenant: 7 }))),
    );
    const stored = outcomes.filter((o) => o.status === "fulfilled");
    const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected");
    // Within one second MAX are stored; should the burst straddle a second, at most 2 × MAX.
    expect(stored.length).toBeGreaterThanOrEqual(MAX);
    expect(stored.length).toBeLessThanOrEqual(2 * MAX);
    for (const r of refused) expect((r.reason as Error).message).toMatch(/^your tenant's quota is 5 submitted jobs per second \(max_submits_per_second\) and this would be job 6 of/);
    // A deduplicated resend is no new submit: it is not refused.
    const keyed = queue.prepare({ steps: [{ name: "main", operation: op }], tenant: 8, idempotencyKey: "same" });
    const first = await queue.submit(keyed);
    const again = await Promise.all(Array.from({ length: 2 * MAX }, () => queue.submit(keyed)));
    expect(again.every((r) => r.deduplicated && r.jobId === first.jobId)).toBe(true);
  });

  it("over the API: RESOURCE_EXHAUSTED for the tenant over its quota, not for another tenant", async () => {
    const stack = await useStack({ auth: "required", limits: { maxSubmitsPerSecond: MAX } });
    const redis = await connect(stack.redis.url);
    const keyOf = async (tenant: string) => (await createApiKey(redis, stack.server.queue.keys, { name: tenant, tenant, roles: ["submit"] })).secret;
    const acme = createStepqClient({ baseUrl: stack.server.url, apiKey: await keyOf("acme") });
    const globex = createStepqClient({ baseUrl: stack.server.url, apiKey: await keyOf("globex") });
    const requests = (n: number) => Array.from({ length: n }, () => ({ operation: echo({ text: "x" }) }));
    const err = ConnectError.from(await acme.steps.submitSteps({ requests: requests(MAX + 1) }).catch((e: unknown) => e));
    expect([err.code, err.rawMessage]).toEqual([Code.ResourceExhausted, refusal(MAX + 1)]);
    expect((await globex.steps.submitSteps({ requests: requests(MAX) })).responses).toHaveLength(MAX);
  });
});

const one = (tenant: number, more: Partial<JobInput> = {}): JobInput => ({ ...oneStepJob({ operation: op }), tenant, ...more });
const claim = (queue: Queue, max: number, leaseMs = 60_000) => queue.claim({ workerId: "w", routes: ["echo"], leaseMs, max });
const load = async (queue: Queue) => queue.redis.hgetall(queue.keys.load);

describe("steps waiting per tenant (--max-queued-per-tenant)", () => {
  const WAITING = 3;
  const waitingRefusal = (has: number, adds: number) =>
    `your tenant's quota is ${WAITING} steps waiting to run (max_queued_per_tenant); it has ${has} and this job would add ${adds}; ` +
    "wait for some to run, or ask the operator for a higher quota";

  it("refuses a job that would take the tenant past its quota, counting every step of a DAG; running steps do not count", async () => {
    const queue = newQueue({ limits: { maxQueuedPerTenant: WAITING } });
    for (let i = 0; i < WAITING; i++) await queue.submit(queue.prepare(one(1)));
    await expect(queue.submit(queue.prepare(one(1)))).rejects.toThrow(waitingRefusal(3, 1));
    // Another tenant is not affected.
    await queue.submit(queue.prepare(one(2)));
    // A step that starts running no longer waits: room for one more, not for a two-step job.
    expect((await claim(queue, 1)).steps).toHaveLength(1);
    const dag = { steps: [{ name: "a", operation: op }, { name: "b", operation: op, dependsOn: ["a"] }], tenant: 1 };
    await expect(queue.submit(queue.prepare(dag))).rejects.toThrow(waitingRefusal(2, 2));
    await queue.submit(queue.prepare(one(1)));
    // All or none: a batch that would pass the quota stores nothing.
    await expect(queue.submitAll([queue.prepare(one(5)), queue.prepare(dag), queue.prepare(one(5))])).rejects.toThrow(waitingRefusal(3, 2));
    expect(await load(queue)).toMatchObject({ "u:1": "4", "r:1": "1", "u:2": "1" });
    expect((await load(queue))["u:5"]).toBeUndefined();
  });

  it("over the API: RESOURCE_EXHAUSTED with the quota's numbers, per submit of a batch", async () => {
    const stack = await useStack({ auth: "required", limits: { maxQueuedPerTenant: WAITING } });
    const redis = await connect(stack.redis.url);
    const key = (await createApiKey(redis, stack.server.queue.keys, { name: "t", tenant: "waiting", roles: ["submit"] })).secret;
    const client = createStepqClient({ baseUrl: stack.server.url, apiKey: key });
    const requests = (n: number) => Array.from({ length: n }, () => ({ operation: echo({ text: "x" }) }));
    const err = ConnectError.from(await client.steps.submitSteps({ requests: requests(WAITING + 1) }).catch((e: unknown) => e));
    expect([err.code, err.rawMessage]).toEqual([Code.ResourceExhausted, waitingRefusal(3, 1)]);
    expect((await client.steps.submitSteps({ requests: requests(WAITING) })).responses).toHaveLength(WAITING);
    const again = ConnectError.from(await client.steps.submitStep({ operation: echo({ text: "x" }) }).catch((e: unknown) => e));
    expect([again.code, again.rawMessage]).toEqual([Code.ResourceExhausted, waitingRefusal(3, 1)]);
  });
});

describe("steps running per tenant (--max-running-per-tenant)", () => {
  it("claims skip a tenant at its quota and serve the others; a step that ends makes room", async () => {
    const queue = newQueue({ limits: { maxRunningPerTenant: 2 } });
    await queue.publishLimits();
    for (let i = 0; i < 5; i++) await queue.submit(queue.prepare(one(1)));
    await queue.submit(queue.prepare(one(2)));
    const first = await claim(queue, 10);
    const tenantOf = async (jobId: string) => queue.tenantOf(jobId);
    expect((await Promise.all(first.steps.map((s) => tenantOf(s.jobId)))).sort()).toEqual([1, 1, 2]);
    // Tenant 1 is at its quota: nothing more for it, however many are asked for.
    expect((await claim(queue, 10)).steps).toHaveLength(0);
    const mine = first.steps.filter((s) => s.jobId !== undefined);
    const ofOne = [];
    for (const s of mine) if ((await tenantOf(s.jobId)) === 1) ofOne.push(s);
    await queue.complete(ofOne[0] as (typeof mine)[number], resultBytes("done"));
    const next = await claim(queue, 10);
    expect(next.steps).toHaveLength(1);
    expect(await tenantOf(next.steps[0]?.jobId ?? "")).toBe(1);
    expect(await load(queue)).toMatchObject({ "r:1": "2", "u:1": "4", "r:2": "1", "u:2": "1" });
  });

  it("the single-tenant fast path claims only up to the quota", async () => {
    const queue = newQueue({ limits: { maxRunningPerTenant: 3 } });
    await queue.publishLimits();
    for (let i = 0; i < 10; i++) await queue.submit(queue.prepare(one(0)));
    expect((await claim(queue, 8)).steps).toHaveLength(3);
    expect((await claim(queue, 8)).steps).toHaveLength(0);
  });
});

describe("the counts behind the quotas", () => {
  it("return to zero whatever path each step took to its end", async () => {
    const queue = newQueue({ limits: {} });
    const tenant = 4;
    const fast = { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 1 };
    const submit = async (input: Partial<JobInput>) => (await queue.submit(queue.prepare({ steps: [], tenant, ...input } as JobInput))).jobId;
    const a = await submit({ steps: [{ name: "main", operation: op }] });
    const b = await submit({ steps: [{ name: "b1", operation: op }, { name: "b2", operation: op, dependsOn: ["b1"] }] });
    const c = await submit({ steps: [{ name: "main", operation: op, retry: fast }] });
    const d = await submit({ steps: [{ name: "main", operation: op }] });
    const e = await submit({ steps: [{ name: "main", operation: op }] });
    const g = await submit({ steps: [{ name: "g1", operation: op, retry: { maxAttempts: 1 } }, { name: "g2", operation: op, dependsOn: ["g1"] }] });
    expect(await load(queue)).toEqual({ [`u:${tenant}`]: "8" });

    const taken = new Map<string, Awaited<ReturnType<typeof claim>>["steps"][number]>();
    const take = async (max: number, leaseMs?: number) => {
      for (const s of (await claim(queue, max, leaseMs)).steps) taken.set(s.stepId, s);
    };
    const lease = (stepId: string) => {
      const s = taken.get(stepId);
      if (!s) throw new Error(`${stepId} was not claimed`);
      return s;
    };
    const permanent = { code: 1, message: "no", retryable: false };
    await queue.cancel(e, undefined, "queued, then cancelled");
    await take(10);
    expect(await load(queue)).toEqual({ [`u:${tenant}`]: "7", [`r:${tenant}`]: "5" });
    await queue.complete(lease(`${a}.0`), resultBytes("a"));
    await queue.complete(lease(`${b}.0`), resultBytes("b1"));
    await queue.fail(lease(`${c}.0`), { code: 1, message: "again", retryable: true });
    await queue.release("w", [lease(`${d}.0`)], "busy");
    await queue.fail(lease(`${g}.0`), permanent);
    // g2 was cancelled with g1; b2 is ready; c waits out its backoff; d is back in line.
    await new Promise((r) => setTimeout(r, 5));
    await take(10, 50);
    await queue.fail(lease(`${b}.1`), permanent);
    await queue.retryStep(b, 1);
    await queue.cancel(d, undefined, "cancelled while running");
    // c's lease runs out: the sweeper takes it back (its second and last attempt) and it fails.
    await new Promise((r) => setTimeout(r, 80));
    await queue.sweep();
    await take(10);
    await queue.complete(lease(`${b}.1`), resultBytes("b2"));
    const states = await Promise.all([a, b, c, d, e, g].map(async (id) => (await queue.getJob(id))?.state));
    const { SUCCEEDED, FAILED, CANCELLED } = JobState;
    expect(states).toEqual([SUCCEEDED, SUCCEEDED, FAILED, CANCELLED, CANCELLED, FAILED]);
    expect(await load(queue)).toEqual({});
  });
});
