/**
 * Issue 15, item 4 (fair share): tenants with ready steps on a route take
 * turns, one step each, whatever their backlogs, so a tenant flooding a
 * route cannot starve another's steps on it. Within a tenant the order is
 * unchanged (priority, then job age). Checked on the Redis layer (claim
 * order, the rotation emptying as lanes run dry, max-queued-per-route
 * counting every tenant), then end to end with a real worker process.
 */
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { type Operation, OperationSchema } from "../gen/stepq/v1/operation_pb.js";
import { createApiKey } from "../queue/api-keys.js";
import { oneStepJob } from "../queue/prepare-job.js";
import type { Queue } from "../queue/queue.js";
import { useQueues } from "./helpers/queue.js";
import { connect } from "./helpers/redis.js";
import { echo, useStack } from "./helpers/stack.js";

const newQueue = await useQueues();
const op = (text: string): Operation => create(OperationSchema, { kind: { case: "echo", value: { text } } });
const embed = (text: string): Operation => create(OperationSchema, { kind: { case: "embed", value: { model: "m", inputs: [text] } } });

async function submit(queue: Queue, tenant: number, text: string, more: { priority?: number; operation?: Operation } = {}): Promise<string> {
  const r = await queue.submit(queue.prepare({ ...oneStepJob({ operation: more.operation ?? op(text) }), tenant, priority: more.priority ?? 0 }));
  return r.jobId;
}

/** Claims one step at a time until none is left; the texts of the steps' jobs, in claim order. */
async function claimAll(queue: Queue, texts: Map<string, string>, routes = ["echo"]): Promise<string[]> {
  const order: string[] = [];
  for (;;) {
    const { steps } = await queue.claim({ workerId: "w", routes, leaseMs: 60_000, max: 1 });
    if (steps.length === 0) return order;
    for (const s of steps) order.push(texts.get(s.jobId) ?? `? ${s.jobId}`);
  }
}

describe("fair share between tenants on a route", () => {
  it("a tenant submitting after another's backlog of 200 is served in turn, not after it", async () => {
    const queue = newQueue();
    const texts = new Map<string, string>();
    for (let i = 0; i < 200; i++) texts.set(await submit(queue, 1, `a${i}`), `a${i}`);
    for (let i = 0; i < 3; i++) texts.set(await submit(queue, 2, `b${i}`), `b${i}`);
    const order = await claimAll(queue, texts);
    expect(order).toHaveLength(203);
    // Turns alternate while both have ready steps (tenant 1 was served first, so tenant 2 joined at its time).
    expect(order.slice(0, 7)).toEqual(["a0", "b0", "a1", "b1", "a2", "b2", "a3"]);
    expect(order.slice(7)).toEqual(Array.from({ length: 196 }, (_, i) => `a${i + 4}`));
    // Every lane ran dry: no tenant is left in the route's rotation.
    expect(await queue.redis.exists(queue.keys.fair("echo"))).toBe(0);
  });

  it("a claim of many steps at once shares them out; within a tenant, priority then age", async () => {
    const queue = newQueue();
    const texts = new Map<string, string>();
    for (const [tenant, text, priority] of [
      [0, "x-low", 0],
      [0, "x-high", 5],
      [3, "y1", 0],
      [3, "y2", 0],
      [7, "z1", 0],
    ] as const) {
      texts.set(await submit(queue, tenant, text, { priority }), text);
    }
    const { steps } = await queue.claim({ workerId: "w", routes: ["echo"], leaseMs: 60_000, max: 10 });
    const order = steps.map((s) => texts.get(s.jobId));
    // One step per tenant per turn: the three tenants, then the two with steps left.
    expect(order.slice(0, 3).sort()).toEqual(["x-high", "y1", "z1"]);
    expect(order.slice(3).sort()).toEqual(["x-low", "y2"]);
  });

  it("a worker serving two routes takes turns between the tenants of each route", async () => {
    const queue = newQueue();
    const texts = new Map<string, string>();
    for (let i = 0; i < 20; i++) texts.set(await submit(queue, 1, `a${i}`), `a${i}`);
    for (let i = 0; i < 20; i++) texts.set(await submit(queue, 1, `e${i}`, { operation: embed(`e${i}`) }), `e${i}`);
    texts.set(await submit(queue, 2, "b0", { operation: embed("b0") }), "b0");
    const order = await claimAll(queue, texts, ["echo", "embed:m"]);
    expect(order).toHaveLength(41);
    // Across routes the older step goes first (as without tenants); on embed:m,
    // tenant 2's step is not behind tenant 1's 20: it is the second one taken.
    expect(order.filter((t) => t.startsWith("e") || t === "b0").slice(0, 3)).toEqual(["e0", "b0", "e1"]);
  });

  it("a tenant whose ready steps were all cancelled leaves the rotation; max-queued-per-route counts every tenant's lane", async () => {
    const queue = newQueue({ limits: { maxQueuedPerRoute: 4 } });
    const cancelled = await submit(queue, 5, "gone", { priority: 1 });
    await queue.cancel(cancelled, undefined, "test");
    const texts = new Map<string, string>();
    texts.set(await submit(queue, 6, "kept"), "kept");
    // Tenant 5's only ready step was cancelled: its lane is empty, but it leaves the rotation only when a claimer finds that.
    expect(await queue.redis.zrange(queue.keys.fair("echo"), "0", "-1")).toEqual(["5", "6"]);
    expect(await claimAll(queue, texts)).toEqual(["kept"]);
    expect(await queue.redis.exists(queue.keys.fair("echo"))).toBe(0);
    // Four queued across three tenants: the fifth is refused, whoever submits it.
    for (const t of [1, 2, 3, 3]) await submit(queue, t, "q");
    await expect(submit(queue, 4, "q")).rejects.toThrow(/echo/);
  });
});

describe("fair share end to end", () => {
  it("with one busy worker, a tenant's steps submitted behind another tenant's backlog finish long before the backlog", async () => {
    const stack = await useStack({ auth: "required" });
    const redis = await connect(stack.redis.url);
    const keyOf = async (tenant: string) => (await createApiKey(redis, stack.server.queue.keys, { name: tenant, tenant, roles: ["submit"] })).secret;
    const flood = createStepqClient({ baseUrl: stack.server.url, apiKey: await keyOf("flood") });
    const small = createStepqClient({ baseUrl: stack.server.url, apiKey: await keyOf("small") });
    const slow = { text: "x", delayMs: 20 };
    const backlog = await flood.steps.submitSteps({ requests: Array.from({ length: 100 }, () => ({ operation: echo(slow) })) });
    const mine = await small.steps.submitSteps({ requests: Array.from({ length: 3 }, () => ({ operation: echo(slow) })) });
    // One worker, one step at a time, nothing claimed ahead: it takes steps in the order the queue gives them.
    void (await stack.worker({ concurrency: 1, prefetchMs: 0 })).runForever();
    const finishedAt = async (client: typeof small, stepId: string) => {
      const step = await client.wait(stepId);
      return Number(step.finishedAt?.seconds ?? 0n) * 1000 + Math.floor((step.finishedAt?.nanos ?? 0) / 1e6);
    };
    const mineDone = Math.max(...(await Promise.all(mine.responses.map((r) => finishedAt(small, r.step?.id ?? "")))));
    const floodTimes = await Promise.all(backlog.responses.map((r) => finishedAt(flood, r.step?.id ?? "")));
    // Served in turn: when the small tenant's third step finished, most of the backlog was still waiting.
    const floodBefore = floodTimes.filter((t) => t <= mineDone).length;
    expect(floodBefore).toBeLessThan(20);
  }, 60_000);
});
