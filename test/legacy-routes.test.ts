/**
 * Issue 17, item 3: the old routes of the systems stepq replaces, on the
 * same server and queue, each in its old shape with Deprecation, Sunset and
 * Link headers, counted per route (QueueService.ListLegacyUsage), with real
 * curl as the old clients' HTTP: the job-queue style (/submit-job,
 * /submit-step, /job/:id, /step/:id, /jobs with old status names), the
 * worker style (POST /v1/jobs -> {job_id, sse_url}, its SSE stream ending
 * in [DONE] / [ERROR] / [CANCELLED], DELETE, the /v1/inference aliases);
 * bad input answered 4xx in each style's own error shape, never 500.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { QueueService } from "../gen/stepq/v1/queue_service_pb.js";
import { buildServer } from "../server/main.js";
import { runStepq } from "./helpers/cli.js";
import { eventually, quiet, useStack } from "./helpers/stack.js";

const run = promisify(execFile);
const stack = await useStack();
void (await stack.worker({ concurrency: 4 })).runForever();
const base = stack.server.url;
const calls = new Map<string, number>();

interface Reply {
  status: number;
  headers: string;
  body: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** The old routes by the name ListLegacyUsage counts them under. */
const NAMES: [string, RegExp, string][] = [
  ["POST", /^\/submit-job$/, "POST /submit-job"],
  ["POST", /^\/submit-step$/, "POST /submit-step"],
  ["GET", /^\/job\/[^/]+$/, "GET /job/:id"],
  ["GET", /^\/step\/[^/]+$/, "GET /step/:id"],
  ["GET", /^\/jobs(\?.*)?$/, "GET /jobs"],
  ["POST", /^\/v1\/jobs$/, "POST /v1/jobs"],
  ["GET", /^\/v1\/jobs\/[^/]+\/stream$/, "GET /v1/jobs/:id/stream"],
  ["DELETE", /^\/v1\/jobs\/[^/]+$/, "DELETE /v1/jobs/:id"],
  ["POST", /^\/v1\/inference$/, "POST /v1/inference"],
  ["GET", /^\/v1\/inference\/[^/]+\/stream$/, "GET /v1/inference/:id/stream"],
];

/** curl as an old client: `method path [json body]`; counts the call under its route's legacy name. */
async function curl(method: string, path: string, body?: unknown, more: string[] = []): Promise<Reply> {
  const name = NAMES.find(([m, re]) => m === method && re.test(path))?.[2];
  if (name) calls.set(name, (calls.get(name) ?? 0) + 1);
  const args = ["-s", "-i", "-N", "-m", "20", "-X", method, ...more];
  if (body !== undefined) args.push("-H", "content-type: application/json", "--data", typeof body === "string" ? body : JSON.stringify(body));
  const { stdout } = await run("curl", [...args, base + path]);
  const [headers = "", ...rest] = stdout.split("\r\n\r\n");
  const text = rest.join("\r\n\r\n");
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: Number(/^HTTP\/[\d.]+ (\d+)/.exec(headers)?.[1]), headers, body: text, json };
}

const header = (r: Reply, name: string) => new RegExp(`^${name}: (.*)$`, "im").exec(r.headers)?.[1]?.trim();

describe("the job-queue routes", () => {
  it("submit, read and list in the old shape, with the deprecation headers", async () => {
    const submitted = await curl("POST", "/submit-job", { service_required: "echo", payload: { text: "hello old world" }, customer_id: "c-1" });
    expect(submitted.status).toBe(200);
    expect(submitted.json).toEqual({ success: true, job_id: expect.stringMatching(/^[0-9a-z]{16}\.0$/) });
    expect(header(submitted, "deprecation")).toBe(`@${Math.floor(Date.UTC(2026, 11, 5) / 1000)}`);
    expect(header(submitted, "sunset")).toBe("Wed, 30 Jun 2027 00:00:00 GMT");
    expect(header(submitted, "link")).toBe('</docs/migration.md>; rel="deprecation"; type="text/markdown", </stepq.v1.StepService/SubmitStep>; rel="successor-version"');
    const id = submitted.json.job_id as string;

    const done = await eventually(() => curl("GET", `/job/${id}`), (r) => r.json?.job?.status === "completed");
    expect(done.json.job).toMatchObject({ id, service_required: "echo", status: "completed", result: "hello old world", retry_count: 0, max_retries: 2, error: null });
    expect(done.json.job.payload).toEqual({ echo: { text: "hello old world" } });
    expect((await stack.client.jobs.getJob({ jobId: id.split(".")[0] as string })).job?.labels).toEqual({ customer_id: "c-1", api: "legacy.submit-job" });
    // A one-step job's id reads as its step.
    expect((await curl("GET", `/job/${id.split(".")[0]}`)).json.job.id).toBe(id);

    const step = await curl("POST", "/submit-step", { service_required: "echo", payload: { text: "x" }, max_retries: 0 });
    expect(step.json).toEqual({ success: true, step_id: expect.any(String) });
    const read = await eventually(() => curl("GET", `/step/${step.json.step_id}`), (r) => r.json?.step?.status === "completed");
    expect(read.json.step.max_retries).toBe(0);
  });

  it("lists by old status names, paged by limit and offset, and maps failures to failed", async () => {
    const failing = await curl("POST", "/submit-job", { service_required: "echo", payload: { fail_message: "boom", fail_permanently: true } });
    await eventually(() => curl("GET", `/job/${failing.json.job_id}`), (r) => r.json?.job?.status === "failed");
    for (let i = 0; i < 3; i++) await curl("POST", "/submit-job", { service_required: "echo", payload: { text: `n${i}` } });
    await eventually(() => curl("GET", "/jobs?status=completed&limit=100"), (r) => r.json?.jobs?.length >= 5);
    const first = await curl("GET", "/jobs?status=completed&limit=2");
    const second = await curl("GET", "/jobs?status=completed&limit=2&offset=2");
    expect(first.json).toMatchObject({ success: true, limit: 2, offset: 0, has_more: true });
    expect(first.json.jobs).toHaveLength(2);
    expect(second.json.jobs).toHaveLength(2);
    const ids = [...first.json.jobs, ...second.json.jobs].map((j: { id: string }) => j.id);
    expect(new Set(ids).size).toBe(4);
    expect([...first.json.jobs, ...second.json.jobs].every((j: { status: string }) => j.status === "completed")).toBe(true);
    const failed = await curl("GET", "/jobs?status=failed");
    expect(failed.json.jobs.map((j: { id: string }) => j.id)).toContain(failing.json.job_id);
    expect(failed.json.jobs[0].error).toBe("boom");
  });

  it("answers bad input 4xx as {success: false, error}", async () => {
    const cases: [string, string, unknown, number, RegExp][] = [
      ["POST", "/submit-job", "{nope", 400, /^the body is not JSON/],
      ["POST", "/submit-job", { service_required: "comfyui", payload: {} }, 400, /service_required: "comfyui" has no stepq operation/],
      ["POST", "/submit-job", { payload: { text: "x" } }, 400, /service_required is required/],
      ["POST", "/submit-job", { service_required: "echo", payload: { text: 5 } }, 400, /^payload: .*text/],
      ["POST", "/submit-job", { service_required: "echo", payload: {}, max_retries: -1 }, 400, /max_retries: must be an integer from 0 to 99/],
      ["POST", "/submit-job", { service_required: "infer", payload: { prompt: "x" } }, 400, /model/],
      ["GET", "/job/nope", undefined, 400, /step_id: "nope.0" is not a step id/],
      ["GET", "/job/0000000000000000.0", undefined, 404, /not found/],
      ["GET", "/jobs?status=unworkable", undefined, 400, /unworkable" has no stepq state/],
      ["GET", "/jobs?status=bogus", undefined, 400, /is not a status; use one of pending, queued/],
      ["GET", "/jobs?limit=500", undefined, 400, /limit: must be an integer from 0 to 100/],
      ["DELETE", "/jobs", undefined, 405, /takes GET, not DELETE/],
    ];
    for (const [method, path, body, status, message] of cases) {
      const r = await curl(method, path, body);
      expect(r.status, `${method} ${path} ${JSON.stringify(body)}: ${r.body}`).toBe(status);
      expect(r.json).toEqual({ success: false, error: expect.stringMatching(message) });
      expect(header(r, "deprecation")).toBeDefined();
    }
  });
});

/** The `data:` payloads of an SSE body. */
const dataOf = (body: string) => [...body.matchAll(/^data: (.*)$/gm)].map((m) => m[1] as string);

describe("the worker routes", () => {
  it("submits an operation, streams it as the old events ending in [DONE], and resumes by Last-Event-ID", async () => {
    const submitted = await curl("POST", "/v1/jobs", { operation: "echo", text: "a b", token_count: 6 });
    expect(submitted.json).toEqual({ job_id: expect.any(String), sse_url: `/v1/jobs/${submitted.json.job_id}/stream` });
    const streamed = await curl("GET", submitted.json.sse_url);
    expect(header(streamed, "content-type")).toMatch(/text\/event-stream/);
    expect(header(streamed, "sunset")).toBe("Wed, 30 Jun 2027 00:00:00 GMT");
    const data = dataOf(streamed.body);
    expect(data.at(-1)).toBe("[DONE]");
    const events = data.slice(0, -1).map((d) => JSON.parse(d));
    expect(events.filter((e) => e.type === "token").map((e) => [e.t, e.i])).toEqual([["a ", 0], ["b ", 1], ["a ", 2], ["b ", 3], ["a ", 4], ["b ", 5]]);
    expect(events.at(-1)).toEqual({ type: "end", tokens_out: 6, decode_time_ms: expect.any(Number), stop_reason: "end_of_text" });
    const third = /id: (\S+)/.exec(streamed.body.split("\n\n").filter((b) => b.includes('"type":"token"'))[2] ?? "")?.[1] as string;
    const resumed = await curl("GET", submitted.json.sse_url, undefined, ["-H", `Last-Event-ID: ${third}`]);
    expect(dataOf(resumed.body).filter((d) => d.includes('"token"')).map((d) => JSON.parse(d).i)).toEqual([3, 4, 5]);
  });

  it("ends a failed step with [ERROR] and a cancelled one with [CANCELLED]; DELETE cancels; /v1/inference is an alias", async () => {
    const failing = await curl("POST", "/v1/inference", { operation: "echo", fail_message: "engine on fire", fail_permanently: true });
    expect(failing.json.sse_url).toBe(`/v1/inference/${failing.json.job_id}/stream`);
    const failed = dataOf((await curl("GET", failing.json.sse_url)).body);
    expect(failed.slice(-2)).toEqual([JSON.stringify({ type: "error", code: "INFERENCE_FAILED", message: "engine on fire" }), "[ERROR] engine on fire"]);

    const slow = await curl("POST", "/v1/jobs", { operation: "echo", text: "x", delay_ms: 60_000 });
    const cancelled = await curl("DELETE", `/v1/jobs/${slow.json.job_id}`);
    expect(cancelled.json).toEqual({ job_id: slow.json.job_id, status: "cancelled" });
    expect(dataOf((await curl("GET", slow.json.sse_url)).body)).toEqual(["[CANCELLED]"]);
  });

  it("answers bad input 4xx as {error: {code, message}}", async () => {
    const cases: [string, string, unknown, number, string, RegExp][] = [
      ["POST", "/v1/jobs", { operation: "spawn_worker" }, 400, "INVALID_REQUEST", /operation: "spawn_worker" is not supported/],
      ["POST", "/v1/jobs", { model: "x" }, 400, "INVALID_REQUEST", /operation is required/],
      ["POST", "/v1/jobs", { operation: "echo", token_count: "many" }, 400, "INVALID_REQUEST", /^body: .*token_count/],
      ["POST", "/v1/jobs", "[1]", 400, "INVALID_REQUEST", /must be a JSON object/],
      ["GET", "/v1/jobs/nope/stream", undefined, 400, "INVALID_REQUEST", /^job_id: "nope" is not a job id/],
      ["GET", "/v1/jobs/0000000000000000.0/stream", undefined, 404, "NOT_FOUND", /not found/],
      ["DELETE", "/v1/jobs/0000000000000000.0", undefined, 404, "NOT_FOUND", /not found/],
      ["PUT", "/v1/jobs", undefined, 405, "METHOD_NOT_ALLOWED", /takes POST, not PUT/],
    ];
    for (const [method, path, body, status, code, message] of cases) {
      const r = await curl(method, path, body);
      expect(r.status, `${method} ${path}: ${r.body}`).toBe(status);
      expect(r.json).toEqual({ error: { code, message: expect.stringMatching(message) } });
    }
  });
});

describe("usage and switching them off", () => {
  it("counts each old route's uses for operators (ListLegacyUsage), the unused ones at 0", async () => {
    const queue = createClient(QueueService, createConnectTransport({ baseUrl: base, httpVersion: "1.1" }));
    const { usage } = await queue.listLegacyUsage({});
    expect(usage.filter((u) => u.kind === "event").map((u) => u.name)).toContain("event job_completed"); // the old event names (events-ws.test.ts)
    for (const u of usage.filter((x) => x.kind === "route")) {
      expect(Number(u.uses), u.name).toBe(calls.get(u.name) ?? 0);
      expect(u.kind).toBe("route");
      expect(u.replacement).not.toBe("");
      expect(u.lastUsedAt === undefined).toBe(!calls.has(u.name));
    }
    expect(usage.map((u) => u.name)).toContain("POST /submit-job");
  });

  it("stepq stats lists the old routes still in use; the Link header's guide is served", async () => {
    const res = await runStepq(["stats", "--server", base], {});
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^old routes still in use \(docs\/migration\.md\):$/m);
    expect(res.stdout).toMatch(new RegExp(`^ {2}POST /submit-job {2}${calls.get("POST /submit-job")} uses, last \\S+; use StepService\\.SubmitStep`, "m"));
    const guide = await curl("GET", "/docs/migration.md");
    expect(guide.status).toBe(200);
    expect(header(guide, "content-type")).toBe("text/markdown; charset=utf-8");
    expect(guide.body).toContain("# Moving to stepq from the systems it replaces");
  });

  it("--legacy-routes off: the old paths are not served, the new ones are", async () => {
    const off = await buildServer({ redisUrl: stack.redis.url, port: 0, logger: quiet, legacyRoutes: false, queue: "no-legacy" });
    try {
      const { stdout } = await run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--data", "{}", `${off.url}/submit-job`]);
      expect(stdout).toBe("404");
      const models = await run("curl", ["-s", `${off.url}/v1/models`]);
      expect(JSON.parse(models.stdout)).toEqual({ object: "list", data: [] });
    } finally {
      await off.close();
    }
  });
});
