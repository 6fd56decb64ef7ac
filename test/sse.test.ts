/**
 * Issue 17, item 1: server-sent events of a step's and a job's output, read
 * with real curl: every token once and in order, ids that resume with
 * Last-Event-ID or ?after= with nothing lost or repeated, 204 after the end
 * (EventSource stops), the job's stream with each step's end then the job's;
 * errors as Connect JSON with the right status before the stream starts; the
 * same keys and tenants as the RPCs; the same stream limit. The browser's
 * EventSource is in test/sse-browser.test.ts.
 */
import { execFile } from "node:child_process";
import { get, type IncomingMessage } from "node:http";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { createApiKey } from "../queue/api-keys.js";
import { buildServer } from "../server/main.js";
import { connect } from "./helpers/redis.js";
import { echo, quiet, useStack } from "./helpers/stack.js";

const run = promisify(execFile);
const stack = await useStack();
void (await stack.worker({ concurrency: 4 })).runForever();
const base = stack.server.url;

interface SseEvent {
  id?: string;
  event: string;
  data: Record<string, unknown>;
}

/** curl -N of `path` (with `headers`): the status, headers and parsed events. */
async function curlSse(url: string, headers: string[] = []): Promise<{ status: number; headers: string; body: string; events: SseEvent[] }> {
  const args = ["-sN", "-i", "-m", "20", ...headers.flatMap((h) => ["-H", h]), url];
  const { stdout } = await run("curl", args);
  const [head = "", ...rest] = stdout.split("\r\n\r\n");
  const body = rest.join("\r\n\r\n");
  const status = Number(/^HTTP\/[\d.]+ (\d+)/.exec(head)?.[1]);
  const events = body
    .split("\n\n")
    .filter((block) => /^(event|id):/m.test(block))
    .map((block) => {
      const field = (name: string) => new RegExp(`^${name}: (.*)$`, "m").exec(block)?.[1];
      return { id: field("id"), event: field("event") as string, data: JSON.parse(field("data") ?? "null") as Record<string, unknown> };
    });
  return { status, headers: head, body, events };
}

const textOf = (events: SseEvent[]) =>
  events.filter((e) => e.event === "token").flatMap((e) => (e.data.tokens as { text: string }[]).map((t) => t.text)).join("");

describe("GET /v1/steps/{id}/events", () => {
  it("streams the step's narration and every token once, in order, each with its cursor as id, and ends with its end", async () => {
    const step = await stack.client.submit(echo({ text: "one two three", tokenCount: 30, tokenDelayMs: 2 }));
    const res = await curlSse(`${base}/v1/steps/${step.id}/events`);
    expect(res.status).toBe(200);
    expect(res.headers).toMatch(/content-type: text\/event-stream/i);
    expect(res.body.startsWith("retry: 1000\n\n")).toBe(true);
    expect(res.events[0]).toMatchObject({ event: "state", data: { type: "snapshot", id: step.id } });
    expect(res.events[0]?.id).toBeUndefined();
    expect(textOf(res.events)).toBe("one two three ".repeat(10));
    expect(res.events.some((e) => e.event === "narration" && e.data.text === "echo: streaming 30 tokens")).toBe(true);
    const last = res.events.at(-1) as SseEvent;
    expect(last).toMatchObject({ event: "end", data: { stepId: step.id, state: "STEP_STATE_SUCCEEDED" } });
    for (const e of res.events.slice(1)) expect(e.id).toBe(e.data.cursor);
  });

  it("resumes after Last-Event-ID or ?after= with nothing lost or repeated, and answers 204 after the end", async () => {
    const step = await stack.client.submit(echo({ text: "a b c d", tokenCount: 40 }));
    const whole = await curlSse(`${base}/v1/steps/${step.id}/events`);
    const tokens = whole.events.filter((e) => e.event === "token");
    const middle = tokens[Math.floor(tokens.length / 2)] as SseEvent;
    const before = whole.events.slice(1, whole.events.indexOf(middle) + 1);
    for (const resumed of [
      await curlSse(`${base}/v1/steps/${step.id}/events`, [`Last-Event-ID: ${middle.id}`]),
      await curlSse(`${base}/v1/steps/${step.id}/events?after=${middle.id}`),
    ]) {
      expect(resumed.events[0]?.event).not.toBe("state"); // no snapshot on a resume
      expect(textOf(before) + textOf(resumed.events)).toBe(textOf(whole.events));
      expect(resumed.events.at(-1)?.event).toBe("end");
    }
    const afterEnd = await curlSse(`${base}/v1/steps/${step.id}/events`, [`Last-Event-ID: ${whole.events.at(-1)?.id}`]);
    expect(afterEnd.status).toBe(204);
  });

  it("answers a bad id, an unknown step and a wrong method before any stream, as Connect JSON with the status of its code", async () => {
    const bad = await curlSse(`${base}/v1/steps/nope/events`);
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toEqual({ code: "invalid_argument", message: expect.stringMatching(/^step_id: "nope" is not a step id/) });
    const unknown = await curlSse(`${base}/v1/steps/0000000000000000.0/events`);
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body).code).toBe("not_found");
    const { stdout } = await run("curl", ["-s", "-i", "-X", "POST", `${base}/v1/steps/x/events`]);
    expect(stdout).toMatch(/^HTTP\/1\.1 405/);
    expect(stdout).toMatch(/^allow: GET/im);
    expect(stdout).toContain('{"code":"unimplemented","message":"/v1/steps/x/events takes GET, not POST"}');
  });
});

describe("GET /v1/jobs/{id}/events", () => {
  it("streams every step's output, a state event at each step's end, then the job's end", async () => {
    const { job } = await stack.client.jobs.submitJob({
      steps: [
        { name: "first", operation: echo({ text: "x", tokenCount: 3 }) },
        { name: "second", operation: echo({ text: "y", tokenCount: 2 }), dependsOn: ["first"] },
      ],
    });
    const res = await curlSse(`${base}/v1/jobs/${job!.id}/events`);
    expect(res.status).toBe(200);
    expect(textOf(res.events)).toBe("x x x y y ");
    const ends = res.events.filter((e) => e.event === "state" && e.data.type === "step_end").map((e) => [e.data.stepName, e.data.state]);
    expect(ends).toEqual([
      ["first", "STEP_STATE_SUCCEEDED"],
      ["second", "STEP_STATE_SUCCEEDED"],
    ]);
    expect(res.events.at(-1)).toMatchObject({ event: "end", data: { jobId: job!.id, state: "JOB_STATE_SUCCEEDED" } });
    const afterEnd = await curlSse(`${base}/v1/jobs/${job!.id}/events?after=${res.events.at(-1)?.id}`);
    expect(afterEnd.status).toBe(204);
  });
});

describe("keys, tenants and limits", () => {
  it("needs a key like the RPCs (Authorization or ?access_token=), and another tenant's job does not exist", async () => {
    const guarded = await buildServer({ redisUrl: stack.redis.url, port: 0, logger: quiet, auth: "required", queue: "sse-keys" });
    try {
      const redis = await connect(stack.redis.url);
      const acme = (await createApiKey(redis, guarded.queue.keys, { name: "a", tenant: "acme", roles: ["submit"] })).secret;
      const globex = (await createApiKey(redis, guarded.queue.keys, { name: "g", tenant: "globex", roles: ["read"] })).secret;
      redis.disconnect();
      const step = await createStepqClient({ baseUrl: guarded.url, apiKey: acme }).submit(echo({ text: "secret" }));
      const url = `${guarded.url}/v1/jobs/${step.jobId}/events`;
      const anonymous = await curlSse(url);
      expect(anonymous.status).toBe(401);
      expect(JSON.parse(anonymous.body).code).toBe("unauthenticated");
      expect((await curlSse(url, [`Authorization: Bearer ${globex}`])).status).toBe(404);
      // The job is queued (no worker serves this queue): the stream opens and waits; curl's -m ends it.
      const { stdout } = await run("curl", ["-sN", "-i", "-m", "1", `${url}?access_token=${acme}`]).catch((e: { stdout: string }) => e);
      expect(stdout).toMatch(/^HTTP\/1\.1 200/);
    } finally {
      await guarded.close();
    }
  });

  it("sends a comment line every --sse-keep-alive while a stream is idle", async () => {
    const idle = await buildServer({ redisUrl: stack.redis.url, port: 0, logger: quiet, sseKeepAliveMs: 100, queue: "sse-idle" });
    try {
      const step = await createStepqClient({ baseUrl: idle.url }).submit(echo({ text: "nobody runs this queue" }));
      const { stdout } = await run("curl", ["-sN", "-m", "1", `${idle.url}/v1/steps/${step.id}/events`]).catch((e: { stdout: string }) => e);
      expect(stdout.match(/^: keep-alive$/gm)?.length).toBeGreaterThanOrEqual(5);
      expect(stdout).toMatch(/^event: state$/m); // the snapshot, then only comments: the step waits in the queue
    } finally {
      await idle.close();
    }
  });

  it("counts against --max-streams like any stream: one over it is refused with 429", async () => {
    const small = await buildServer({ redisUrl: stack.redis.url, port: 0, logger: quiet, maxStreams: 1, queue: "sse-slots" });
    try {
      const step = await createStepqClient({ baseUrl: small.url }).submit(echo({ text: "waits" }));
      const url = `${small.url}/v1/steps/${step.id}/events`;
      // The first stream holds the only slot once its headers came (the step waits: nobody serves this queue).
      const holder = await new Promise<IncomingMessage>((resolve) => get(url, resolve));
      expect(holder.statusCode).toBe(200);
      const refused = await curlSse(url);
      expect(refused.status).toBe(429);
      expect(JSON.parse(refused.body).code).toBe("resource_exhausted");
      holder.destroy();
    } finally {
      await small.close();
    }
  });
});
