/**
 * Issue 15, item 4 (first part): each tenant may submit at most
 * --max-submits-per-second jobs per second (Redis's clock, across every
 * server); beyond that RESOURCE_EXHAUSTED names the quota and its numbers.
 * One tenant using up its quota leaves another's untouched.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { OperationSchema } from "../gen/stepq/v1/operation_pb.js";
import { createApiKey } from "../queue/api-keys.js";
import type { PreparedJob } from "../queue/prepare-job.js";
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
