/**
 * Issue 16, item 3: QueueService.GetQueueStats counts each route's steps by
 * state from counters the scripts keep, and its throughput from 10-second
 * buckets. Checked against a known workload, step by step (submit, DAG,
 * schedule, cancel, claim, succeed, fail, retry, purge), and at each point
 * against what a scan of every step says; over curl's JSON; scoped to the
 * caller's tenant; and a bad window is refused naming the field.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { type GetQueueStatsResponse, QueueService, type RouteStats } from "../gen/stepq/v1/queue_service_pb.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createApiKey } from "../queue/api-keys.js";
import { buildServer } from "../server/main.js";
import { connect } from "./helpers/redis.js";
import { echo, eventually, quiet, useStack } from "./helpers/stack.js";

const stack = await useStack();
const { steps, jobs } = stack.client;
const queueClient = createClient(QueueService, createConnectTransport({ baseUrl: stack.server.url, httpVersion: "1.1" }));

type Counts = Pick<RouteStats, "waiting" | "queued" | "scheduled" | "running" | "deadLettered">;
const STATES = ["waiting", "queued", "scheduled", "running", "deadLettered"] as const;

const statsOf = async (windowMinutes = 1) => queueClient.getQueueStats({ windowMinutes });
const countsOf = (res: GetQueueStatsResponse, route: string) => {
  const row = res.routes.find((r) => r.route === route);
  return Object.fromEntries(STATES.map((s) => [s, Number(row?.[s] ?? 0n)])) as Record<keyof Counts, number>;
};
const finishedOf = (res: GetQueueStatsResponse, route: string) => {
  let succeeded = 0;
  let failed = 0;
  for (const b of res.throughput) {
    for (const r of b.routes) {
      if (r.route !== route) continue;
      succeeded += Number(r.succeeded);
      failed += Number(r.failed);
    }
  }
  return { succeeded, failed };
};

/** The same counts by listing every step (the scan the counters spare GetQueueStats). */
async function scannedCounts(route: string): Promise<Record<keyof Counts, number>> {
  const out = { waiting: 0, queued: 0, scheduled: 0, running: 0, deadLettered: 0 };
  const byState: Partial<Record<StepState, keyof Counts>> = {
    [StepState.WAITING]: "waiting",
    [StepState.QUEUED]: "queued",
    [StepState.SCHEDULED]: "scheduled",
    [StepState.RUNNING]: "running",
  };
  for (const state of [0, StepState.FAILED]) {
    let pageToken = "";
    do {
      const page = await steps.listSteps({ state, route, pageSize: 100, pageToken });
      for (const s of page.steps) {
        const name = state === StepState.FAILED ? "deadLettered" : byState[s.state];
        if (name) out[name]++;
      }
      pageToken = page.nextPageToken;
    } while (pageToken);
  }
  return out;
}

/** Waits until the stats of `route` say `expected`, then checks a scan agrees. */
async function expectCounts(route: string, expected: Record<keyof Counts, number>) {
  await eventually(statsOf, (res) => JSON.stringify(countsOf(res, route)) === JSON.stringify(expected));
  expect(await scannedCounts(route)).toEqual(expected);
}

const stateOf = async (stepId: string) => (await steps.getStep({ stepId })).step?.state;

describe("GetQueueStats", () => {
  it("follows a known workload through every transition, and a scan of the steps agrees at each point", async () => {
    const route = "echo";
    // No worker yet: three queued, a DAG (one queued, one waiting), one scheduled an hour out.
    const singles = await Promise.all([1, 2, 3].map(async () => (await stack.client.submit(echo({ text: "x" }))).id));
    const { job } = await jobs.submitJob({
      steps: [
        { name: "a", operation: echo({ text: "a" }) },
        { name: "b", operation: echo({ text: "b" }), dependsOn: ["a"] },
      ],
    });
    await stack.client.submit(echo({ text: "later" }), { notBefore: timestampFromMs(Date.now() + 3_600_000) });
    await expectCounts(route, { waiting: 1, queued: 4, scheduled: 1, running: 0, deadLettered: 0 });
    await steps.cancelStep({ stepId: singles[0] as string });
    await expectCounts(route, { waiting: 1, queued: 3, scheduled: 1, running: 0, deadLettered: 0 });

    // A worker runs what is queued (the DAG's second step after its first), then holds a long step,
    // and two steps fail for good: one fails its first attempt only, one always.
    void (await stack.worker({ concurrency: 2 })).runForever();
    const long = await stack.client.submit(echo({ text: "long", delayMs: 60_000 }));
    const once = await stack.client.submit(echo({ text: "once", failMessage: "boom", failAttempts: 1 }), { retry: { maxAttempts: 1 } });
    const always = await stack.client.submit(echo({ text: "always", failMessage: "boom", failPermanently: true }));
    await expectCounts(route, { waiting: 0, queued: 0, scheduled: 1, running: 1, deadLettered: 2 });
    const done = await statsOf();
    expect(finishedOf(done, route)).toEqual({ succeeded: 4, failed: 2 }); // 2 singles, a and b; once and always
    expect((await jobs.getJob({ jobId: job!.id })).job?.steps.map((s) => s.state)).toEqual([StepState.SUCCEEDED, StepState.SUCCEEDED]);
    const row = done.routes.find((r) => r.route === route)!;
    expect(row.succeededPerSecond).toBeGreaterThan(0);
    expect(row.failedPerSecond).toBeGreaterThan(0);

    // A retry takes a dead letter out (and it succeeds this time); a purge takes one out and
    // leaves the step FAILED; a cancel ends the running step.
    await steps.retryStep({ stepId: once.id });
    await eventually(() => stateOf(once.id), (s) => s === StepState.SUCCEEDED);
    await steps.purgeStep({ stepId: always.id });
    expect(await stateOf(always.id)).toBe(StepState.FAILED);
    await steps.cancelStep({ stepId: long.id });
    await expectCounts(route, { waiting: 0, queued: 0, scheduled: 1, running: 0, deadLettered: 0 });
    expect(finishedOf(await statsOf(), route)).toEqual({ succeeded: 5, failed: 2 });
  });

  it("returns every 10-second bucket of the window, oldest first, the last holding now", async () => {
    const res = await statsOf(3);
    expect(res.bucketSeconds).toBe(10);
    expect(res.throughput).toHaveLength(18);
    const starts = res.throughput.map((b) => Number(b.start!.seconds));
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBe(10);
    const now = Number(res.now!.seconds);
    expect(now - starts.at(-1)!).toBeGreaterThanOrEqual(0);
    expect(now - starts.at(-1)!).toBeLessThan(10);
    expect((await queueClient.getQueueStats({})).throughput).toHaveLength(30); // 0 means 5 minutes
  });

  it("answers curl's JSON, every route listed with its counts", async () => {
    const { stdout } = await promisify(execFile)("curl", [
      "-sS", "-X", "POST", "-H", "content-type: application/json", "--data", '{"windowMinutes":1}',
      `${stack.server.url}/stepq.v1.QueueService/GetQueueStats`,
    ]);
    const body = JSON.parse(stdout) as { routes: { route: string; scheduled?: string }[]; bucketSeconds: number; throughput: unknown[] };
    expect(body.bucketSeconds).toBe(10);
    expect(body.throughput).toHaveLength(6);
    expect(body.routes.find((r) => r.route === "echo")?.scheduled).toBe("1");
  });

  it("refuses a window over 15 minutes, naming the field and the range", async () => {
    const err = await queueClient.getQueueStats({ windowMinutes: 16 }).catch((e: unknown) => ConnectError.from(e));
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect((err as ConnectError).rawMessage).toMatch(/window_minutes: must be 1 to 15 \(0 means 5\), got 16/);
  });

  it("shows a tenant's key its own steps only, and an admin key every tenant's", async () => {
    const guarded = await buildServer({ redisUrl: stack.redis.url, port: 0, logger: quiet, auth: "required", queue: "tenanted" });
    try {
      const redis = await connect(stack.redis.url);
      const make = async (tenant: string, roles: string[]) => (await createApiKey(redis, guarded.queue.keys, { name: tenant, tenant, roles })).secret;
      const [acme, globex, admin] = [await make("acme", ["submit"]), await make("globex", ["submit"]), await make("ops", ["admin"])];
      const as = (apiKey: string) => createStepqClient({ baseUrl: guarded.url, apiKey });
      await as(acme).submit(echo({ text: "a" }));
      await as(globex).submit(echo({ text: "g1" }));
      await as(globex).submit(echo({ text: "g2" }));
      const queuedAs = async (apiKey: string) => {
        const c = createClient(QueueService, createConnectTransport({ baseUrl: guarded.url, httpVersion: "1.1" }));
        return countsOf(await c.getQueueStats({}, { headers: { authorization: `Bearer ${apiKey}` } }), "echo").queued;
      };
      expect(await queuedAs(acme)).toBe(1);
      expect(await queuedAs(globex)).toBe(2);
      expect(await queuedAs(admin)).toBe(3);
      redis.disconnect();
    } finally {
      await guarded.close();
    }
  });
});
