/**
 * Issue 15, item 4: a tenant's own quota values. TenantService (admins
 * only) and `stepq tenants` list each tenant's load against its quotas and
 * set a tenant's own values, which replace the servers' defaults on the
 * next submit or claim (0: no quota; unset: the default again).
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { OperationSchema } from "../gen/stepq/v1/operation_pb.js";
import { TenantService } from "../gen/stepq/v1/tenant_service_pb.js";
import { createApiKey } from "../queue/api-keys.js";
import { oneStepJob } from "../queue/prepare-job.js";
import { setTenantQuotas } from "../queue/tenant-quotas.js";
import { tenantNumber } from "../queue/tenants.js";
import { useQueues } from "./helpers/queue.js";
import { runStepq } from "./helpers/cli.js";
import { connect } from "./helpers/redis.js";
import { echo, useStack } from "./helpers/stack.js";

const stack = await useStack({ auth: "required", limits: { maxQueuedPerTenant: 1, maxRunningPerTenant: 0, maxSubmitsPerSecond: 0 } });
const redis = await connect(stack.redis.url);
const keys = stack.server.queue.keys;
const secret = async (tenant: string, roles: string[]) => (await createApiKey(redis, keys, { name: tenant, tenant, roles })).secret;
const tenants = (apiKey: string) =>
  createClient(
    TenantService,
    createConnectTransport({
      baseUrl: stack.server.url,
      httpVersion: "1.1",
      interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${apiKey}`), next(req))],
    }),
  );
const admin = tenants(await secret("ops", ["admin"]));
const steps = (n: number) => Array.from({ length: n }, () => ({ operation: echo({ text: "x" }) }));
const refusedWith = async (p: Promise<unknown>) => {
  const e = ConnectError.from(await p.then(() => "no error", (err: unknown) => err));
  return [e.code, e.rawMessage];
};

describe("TenantService and a tenant's own quotas", () => {
  it("a tenant's own waiting quota replaces the default; 0 lifts it; unset goes back to the default", async () => {
    const big = createStepqClient({ baseUrl: stack.server.url, apiKey: await secret("big", ["submit"]) });
    const small = createStepqClient({ baseUrl: stack.server.url, apiKey: await secret("small", ["submit"]) });
    // The default (--max-queued-per-tenant 1) for both.
    await small.steps.submitSteps({ requests: steps(1) });
    expect(await refusedWith(big.steps.submitSteps({ requests: steps(2) }))).toEqual([
      Code.ResourceExhausted,
      // The call's first job would be the one waiting step allowed; its second is refused.
      "your tenant's quota is 1 steps waiting to run (max_queued_per_tenant); it has 1 and this job would add 1; " +
        "wait for some to run, or ask the operator for a higher quota",
    ]);
    const set = await admin.setTenantQuotas({ tenant: "big", quotas: { maxWaitingSteps: 0, maxSubmitsPerSecond: 2 } });
    expect(set.tenant).toMatchObject({ name: "big", quotas: { maxWaitingSteps: 0, maxSubmitsPerSecond: 2 }, waitingSteps: 0n });
    expect(set.tenant?.quotas?.maxRunningSteps).toBeUndefined();
    // No waiting quota now, but its own submit rate: two jobs in a call pass, three do not.
    expect((await big.steps.submitSteps({ requests: steps(2) })).responses).toHaveLength(2);
    expect(await refusedWith(big.steps.submitSteps({ requests: steps(3) }))).toEqual([
      Code.ResourceExhausted,
      "your tenant's quota is 2 submitted jobs per second (max_submits_per_second) and this would be job 3 of this second; " +
        "retry in a second, or ask the operator for a higher quota",
    ]);
    // The other tenant still has the default.
    expect((await refusedWith(small.steps.submitSteps({ requests: steps(1) })))[0]).toBe(Code.ResourceExhausted);

    const listed = await admin.listTenants({});
    expect(listed.defaults).toMatchObject({ maxWaitingSteps: 1, maxRunningSteps: 0, maxSubmitsPerSecond: 0 });
    expect(listed.tenants.map((t) => t.name)).toEqual(["default", "ops", "big", "small"]);
    expect(listed.tenants.find((t) => t.name === "big")).toMatchObject({ waitingSteps: 2n, runningSteps: 0n, quotas: { maxWaitingSteps: 0 } });
    expect(listed.tenants.find((t) => t.name === "small")).toMatchObject({ waitingSteps: 1n, quotas: {} });

    // Back to the defaults.
    const reset = await admin.setTenantQuotas({ tenant: "big", quotas: {} });
    const { maxWaitingSteps, maxRunningSteps, maxSubmitsPerSecond } = reset.tenant?.quotas ?? {};
    expect([maxWaitingSteps, maxRunningSteps, maxSubmitsPerSecond]).toEqual([undefined, undefined, undefined]);
    expect((await refusedWith(big.steps.submitSteps({ requests: steps(1) })))[0]).toBe(Code.ResourceExhausted);
  });

  it("a tenant's own running quota holds its claims to it, on every worker", async () => {
    const newQueue = await useQueues();
    const queue = newQueue();
    const op = create(OperationSchema, { kind: { case: "echo", value: { text: "x" } } });
    await setTenantQuotas(queue.redis, queue.keys, "capped", { running: 1 });
    const capped = await tenantNumber(queue.redis, queue.keys, "capped");
    for (const tenant of [capped, capped, capped, 0, 0]) await queue.submit(queue.prepare({ ...oneStepJob({ operation: op }), tenant }));
    const { steps: taken } = await queue.claim({ workerId: "w", routes: ["echo"], leaseMs: 60_000, max: 10 });
    const owners = await Promise.all(taken.map((s) => queue.tenantOf(s.jobId)));
    expect(owners.sort()).toEqual([0, 0, capped]);
  });

  it("bad input names the field; only admins may call it", async () => {
    expect(await refusedWith(admin.setTenantQuotas({ tenant: "Not A Name", quotas: {} }))).toEqual([
      Code.InvalidArgument,
      'tenant: "Not A Name" must be 1-64 characters of [a-z0-9_-], starting with one of [a-z0-9]',
    ]);
    const submitter = tenants(await secret("someone", ["submit"]));
    expect(await refusedWith(submitter.listTenants({}))).toEqual([Code.PermissionDenied, expect.stringMatching(/TenantService\.ListTenants needs the role admin$/)]);
  });
});

describe("stepq tenants", () => {
  const stepq = (...args: string[]) => runStepq(["tenants", ...args], { REDIS_URL: stack.redis.url, STEPQ_QUEUE: "cli-tenants" });

  it("set gives a tenant its own values, list shows them with its load; bad values exit 2", async () => {
    const made = await stepq("set", "team-a", "--max-running", "3", "--max-waiting", "0");
    expect(made.code).toBe(0);
    expect(made.stderr).toBe("set the quotas of tenant team-a: team-a  waiting 0 (quota none)  running 0 (quota 3)  submits/s quota default\n");
    const listed = await stepq("list");
    expect(listed.stdout).toBe(
      "default  waiting 0 (quota default)  running 0 (quota default)  submits/s quota default\n" +
        "team-a  waiting 0 (quota none)  running 0 (quota 3)  submits/s quota default\n",
    );
    expect(await stepq("set", "team-a", "--max-running", "lots")).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--max-running: "lots" is not a quota; give a whole number (0: no quota) or "default"'),
    });
    expect(await stepq("set")).toMatchObject({ code: 2 });
  });
});
