/**
 * Issue 18, items 3 and 4: the WebSocket feed of lifecycle events, with the
 * `ws` client as a monitor: a DAG job's events in order under both naming
 * styles, resumed from a cursor without a gap or a repeat, filtered by type
 * and route; the same keys and tenants as the RPCs; a page of another origin
 * refused; bad parameters refused before the upgrade; the old names counted.
 */
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createStepqClient } from "../clients/node/client.js";
import { QueueService } from "../gen/stepq/v1/queue_service_pb.js";
import { createApiKey } from "../queue/api-keys.js";
import { buildServer } from "../server/main.js";
import { connect } from "./helpers/redis.js";
import { echo, eventually, quiet, useStack } from "./helpers/stack.js";

const stack = await useStack();
void (await stack.worker({ concurrency: 2 })).runForever();
const wsBase = stack.server.url.replace(/^http/, "ws");

interface FeedMessage {
  cursor: string;
  name: string;
  style: "new" | "legacy";
  type: string;
  event: { jobId?: string; stepId?: string; route?: string };
  error?: { code: string; message: string };
}

/** Opens `query` on `base` and collects messages until `done` says so, the socket closes, or 10 s pass. */
function readFeed(query: string, done: (ms: FeedMessage[]) => boolean, options: WebSocket.ClientOptions = {}, base = wsBase): Promise<{ messages: FeedMessage[]; code: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base}/v1/events/ws?${query}`, options);
    const messages: FeedMessage[] = [];
    const timer = setTimeout(() => ws.close(), 10_000);
    ws.on("message", (data) => {
      messages.push(JSON.parse(String(data)) as FeedMessage);
      if (done(messages)) ws.close();
    });
    ws.on("close", (code) => {
      clearTimeout(timer);
      resolve({ messages, code });
    });
    ws.on("error", reject);
  });
}

/** A DAG job of two steps, and a cursor just before its first event (stream ids are "<ms>-<n>" by the server's clock). */
async function dagJob(client = stack.client) {
  const { job } = await client.jobs.submitJob({
    steps: [
      { name: "a", operation: echo({ text: "a" }) },
      { name: "b", operation: echo({ text: "b" }), dependsOn: ["a"] },
    ],
  });
  const created = Number(job!.createdAt!.seconds) * 1000 + Math.floor(job!.createdAt!.nanos / 1e6);
  return { jobId: job!.id, before: `${created - 1}-0` };
}

const jobDone = (ms: FeedMessage[]) => ms.some((m) => m.type === "EVENT_TYPE_JOB_SUCCEEDED");

describe("the event feed", () => {
  it("sends a job's events in order, each under its new and its old name with the same cursor", async () => {
    const { jobId, before } = await dagJob();
    const { messages } = await readFeed(`job_id=${jobId}&after=${before}&names=both`, jobDone);
    expect(messages.every((m) => m.event.jobId === jobId)).toBe(true);
    const pairs = messages.reduce<FeedMessage[][]>((acc, m, i) => (i % 2 === 0 ? [...acc, [m]] : (acc.at(-1)!.push(m), acc)), []);
    for (const [n, l] of pairs) {
      expect([n?.style, l?.style]).toEqual(["new", "legacy"]);
      expect(l?.cursor).toBe(n?.cursor);
      expect(l?.type).toBe(n?.type);
    }
    const names = pairs.map(([n, l]) => `${n?.name}/${l?.name}`);
    expect(names[0]).toBe("job_submitted/workflow_submitted");
    expect(names).toContain("step_submitted/job_submitted");
    expect(names).toContain("step_claimed/job_assigned");
    expect(names.filter((n) => n === "step_succeeded/job_completed")).toHaveLength(2);
    expect(names.at(-1)).toBe("job_succeeded/workflow_completed");
    const cursors = pairs.map(([n]) => n!.cursor);
    expect([...cursors].sort((a, b) => (BigInt(a.split("-")[0]!) - BigInt(b.split("-")[0]!) || Number(a.split("-")[1]) - Number(b.split("-")[1])) > 0n ? 1 : -1)).toEqual(cursors);
  });

  it("resumes after a cursor with nothing lost or repeated", async () => {
    const { jobId, before } = await dagJob();
    const whole = (await readFeed(`job_id=${jobId}&after=${before}`, jobDone)).messages;
    const last = whole.at(-1)!.cursor;
    // A monitor that read 3 events (and whatever came before its close took effect) resumes after the last it got.
    const head = (await readFeed(`job_id=${jobId}&after=${before}`, (ms) => ms.length === 3)).messages.slice(0, 3);
    const rest = (await readFeed(`job_id=${jobId}&after=${head.at(-1)!.cursor}`, (ms) => ms.some((m) => m.cursor === last))).messages;
    expect(whole.length).toBeGreaterThan(3);
    expect([...head, ...rest].map((m) => m.cursor)).toEqual(whole.map((m) => m.cursor));
  });

  it("filters by type, named in either style or as the contract's enum", async () => {
    const { jobId, before } = await dagJob();
    const { messages } = await readFeed(`job_id=${jobId}&after=${before}&types=job_completed,EVENT_TYPE_JOB_SUCCEEDED`, jobDone);
    expect(messages.map((m) => m.name)).toEqual(["step_succeeded", "step_succeeded", "job_succeeded"]);
  });

  it("refuses bad parameters and a page of another origin before upgrading", async () => {
    const status = (query: string, options: WebSocket.ClientOptions = {}) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`${wsBase}/v1/events/ws?${query}`, options);
        ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
        ws.on("open", () => resolve(101));
        ws.on("error", () => undefined);
      });
    expect(await status("names=bogus")).toBe(400);
    expect(await status("types=nothing_like_it")).toBe(400);
    expect(await status("", { origin: "http://evil.example" })).toBe(403);
    expect(await status("", { origin: stack.server.url })).toBe(101);
  });

  it("counts the old names it sent (ListLegacyUsage)", async () => {
    const { jobId, before } = await dagJob();
    await readFeed(`job_id=${jobId}&after=${before}&names=legacy`, jobDone);
    const queue = createClient(QueueService, createConnectTransport({ baseUrl: stack.server.url, httpVersion: "1.1" }));
    const { usage } = await eventually(() => queue.listLegacyUsage({}), (r) => r.usage.some((u) => u.name === "event job_completed" && u.uses > 0n));
    expect(usage.find((u) => u.name === "event workflow_completed")).toMatchObject({ kind: "event", replacement: "the event name job_succeeded" });
  });
});

describe("keys and tenants", () => {
  it("needs a key (header or ?access_token=) and shows a tenant only its own events", async () => {
    const guarded = await buildServer({ redisUrl: stack.redis.url, port: 0, logger: quiet, auth: "required" });
    try {
      const base = guarded.url.replace(/^http/, "ws");
      const redis = await connect(stack.redis.url);
      const make = async (tenant: string, roles: string[]) => (await createApiKey(redis, guarded.queue.keys, { name: tenant, tenant, roles })).secret;
      const [acme, globex] = [await make("acme", ["submit"]), await make("globex", ["submit"])];
      redis.disconnect();
      const anonymous = await readFeed("", () => false, {}, base);
      expect(anonymous.code).toBe(1008);
      expect(anonymous.messages[0]?.error?.code).toBe("unauthenticated");

      const { jobId, before } = await dagJob(createStepqClient({ baseUrl: guarded.url, apiKey: acme }));
      const own = await readFeed(`job_id=${jobId}&after=${before}&access_token=${acme}`, jobDone, {}, base);
      expect(own.messages.at(-1)?.type).toBe("EVENT_TYPE_JOB_SUCCEEDED");
      // globex reads from the same cursor until its own step, submitted after acme's job ended, succeeds.
      const marker = await createStepqClient({ baseUrl: guarded.url, apiKey: globex }).submit(echo({ text: "marker" }));
      const other = await readFeed(
        `after=${before}`,
        (ms) => ms.some((m) => m.event.stepId === marker.id && m.type === "EVENT_TYPE_STEP_SUCCEEDED"),
        { headers: { authorization: `Bearer ${globex}` } },
        base,
      );
      expect(other.messages.some((m) => m.event.stepId === marker.id)).toBe(true);
      expect(other.messages.filter((m) => m.event.jobId === jobId)).toEqual([]);
    } finally {
      await guarded.close();
    }
  }, 30_000);
});
