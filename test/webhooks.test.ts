/**
 * Issue 18: webhooks, with real receivers on loopback (node:http). Every
 * event of a DAG job arrives once by id, in order, signed so that the
 * documented snippet (docs/webhooks.md, run as written) accepts it and
 * refuses a forged or a stale one; old names come too when asked; a
 * receiver that fails, then recovers, gets everything in order; one that
 * keeps failing is disabled with an event, and gets its deliveries after
 * EnableWebhook; WebhookService's calls and errors.
 */
import { readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, describe, expect, it } from "vitest";
import { StepService } from "../gen/stepq/v1/step_service_pb.js";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { QueueService } from "../gen/stepq/v1/queue_service_pb.js";
import { WebhookService } from "../gen/stepq/v1/webhook_service_pb.js";
import { setTimeout as sleep } from "node:timers/promises";
import type { Engine } from "../worker/engines/engine.js";
import { echo, eventually, useStack } from "./helpers/stack.js";

const stack = await useStack({ webhookDisableAfter: 3, webhookTimeoutMs: 2000 });
void (await stack.worker({ concurrency: 2 })).runForever();
const transport = createConnectTransport({ baseUrl: stack.server.url, httpVersion: "1.1" });
const webhooks = createClient(WebhookService, transport);

/** The docs' verification snippet, as written. */
const docs = readFileSync(join(import.meta.dirname, "../docs/webhooks.md"), "utf8");
const snippetFile = join(mkdtempSync(join(tmpdir(), "stepq-snippet-")), "verify.mjs");
writeFileSync(snippetFile, /```js\n([\s\S]*?)```/.exec(docs.slice(docs.indexOf("**Checking a delivery.**")))?.[1] ?? "");
const { verifyStepqWebhook } = (await import(pathToFileURL(snippetFile).href)) as {
  verifyStepqWebhook(secret: string, headers: IncomingHttpHeaders, body: string, tolerance?: number, now?: number): { ok: boolean; why?: string };
};

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  json: { id: string; name: string; style: string; type: string; cursor: string; event: { jobId?: string } };
}

/** A receiver on loopback; `answer(n)` gives the status of the n-th request (from 0). */
async function receiver(answer: (n: number) => number = () => 200) {
  const got: Received[] = [];
  let n = 0;
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const status = answer(n++);
      if (status === 200) got.push({ headers: req.headers, body, json: JSON.parse(body) });
      res.writeHead(status).end(status === 200 ? "ok" : "busy");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`, got, calls: () => n };
}

async function dagJob() {
  const { job } = await stack.client.jobs.submitJob({
    steps: [
      { name: "a", operation: echo({ text: "a" }) },
      { name: "b", operation: echo({ text: "b" }), dependsOn: ["a"] },
    ],
  });
  return job!.id;
}

const ofJob = (got: Received[], jobId: string) => got.filter((r) => r.json.event.jobId === jobId);
const jobEnded = (got: Received[], jobId: string) => ofJob(got, jobId).some((r) => r.json.type === "EVENT_TYPE_JOB_SUCCEEDED");

describe("deliveries", () => {
  it("delivers every event of a DAG job once, in order, signed as the docs say", async () => {
    const r = await receiver();
    const { webhook, secret } = await webhooks.createWebhook({ webhook: { url: r.url } });
    expect(secret).toMatch(/^whsec_/);
    const jobId = await dagJob();
    await eventually(async () => r.got, (got) => jobEnded(got, jobId));
    const mine = ofJob(r.got, jobId);
    expect(new Set(mine.map((m) => m.json.id)).size).toBe(mine.length);
    const cursorKey = (c: string) => c.split(/[-.]/).map((x) => x.padStart(20, "0")).join("-");
    expect(mine.map((m) => cursorKey(m.json.cursor))).toEqual([...mine.map((m) => cursorKey(m.json.cursor))].sort());
    expect(mine[0]?.json.name).toBe("job_submitted");
    expect(mine.at(-1)?.json.name).toBe("job_succeeded");
    expect(mine.filter((m) => m.json.name === "step_succeeded")).toHaveLength(2);
    for (const m of mine) {
      expect(m.headers["webhook-id"]).toBe(m.json.id);
      expect(verifyStepqWebhook(secret, m.headers, m.body)).toEqual({ ok: true, id: m.json.id });
    }
    const one = mine[0] as Received;
    expect(verifyStepqWebhook(secret, one.headers, one.body.replace("job_submitted", "job_cancelled"))).toEqual({ ok: false, why: "bad signature" });
    expect(verifyStepqWebhook("whsec_someone-else", one.headers, one.body).ok).toBe(false);
    expect(verifyStepqWebhook(secret, one.headers, one.body, 300, Number(one.headers["webhook-timestamp"]) + 301)).toEqual({ ok: false, why: "stale: too old or from the future" });
    await webhooks.deleteWebhook({ id: webhook!.id });
  });

  it("with legacy_names sends each event under both names, each its own delivery", async () => {
    const r = await receiver();
    const { webhook } = await webhooks.createWebhook({ webhook: { url: r.url, legacyNames: true, eventTypes: ["EVENT_TYPE_STEP_SUCCEEDED", "EVENT_TYPE_JOB_SUCCEEDED"] } });
    const jobId = await dagJob();
    await eventually(async () => r.got, (got) => ofJob(got, jobId).filter((m) => m.json.type === "EVENT_TYPE_JOB_SUCCEEDED").length === 2);
    const names = ofJob(r.got, jobId).map((m) => `${m.json.style}:${m.json.name}`);
    expect(names).toEqual(["new:step_succeeded", "legacy:job_completed", "new:step_succeeded", "legacy:job_completed", "new:job_succeeded", "legacy:workflow_completed"]);
    expect(new Set(ofJob(r.got, jobId).map((m) => m.json.id)).size).toBe(6);
    // A use is counted once its delivery is answered, after the receiver has the body: wait for it.
    const usage = async () => (await createClient(QueueService, transport).listLegacyUsage({})).usage;
    await eventually(usage, (u) => u.find((x) => x.name === "event workflow_completed")?.uses === 1n);
    expect((await usage()).find((u) => u.name === "event job_completed")?.uses).toBe(2n);
    await webhooks.deleteWebhook({ id: webhook!.id });
  });

  it("retries a receiver that fails, and it gets everything in order once it recovers", async () => {
    const r = await receiver((n) => (n < 2 ? 500 : 200));
    const { webhook } = await webhooks.createWebhook({ webhook: { url: r.url, eventTypes: ["step_succeeded", "job_succeeded"] } });
    const jobId = await dagJob();
    await eventually(async () => r.got, (got) => jobEnded(got, jobId), 15_000);
    expect(ofJob(r.got, jobId).map((m) => m.json.name)).toEqual(["step_succeeded", "step_succeeded", "job_succeeded"]);
    const { deliveries } = await webhooks.listDeliveries({ id: webhook!.id });
    expect(deliveries.slice(-2).map((d) => [d.status, d.responseCode, d.responseBody, d.attempt])).toEqual([
      ["failed", 500, "busy", 2],
      ["failed", 500, "busy", 1],
    ]);
    expect((await webhooks.getWebhook({ id: webhook!.id })).webhook?.consecutiveFailures).toBe(0);
    await webhooks.deleteWebhook({ id: webhook!.id });
  }, 20_000);

  it("disables a webhook that keeps failing, with an event, and delivers what it kept after EnableWebhook", async () => {
    let healthy = false;
    const r = await receiver(() => (healthy ? 200 : 503));
    const { webhook } = await webhooks.createWebhook({ webhook: { url: r.url, eventTypes: ["job_succeeded"] } });
    const id = webhook!.id;
    const jobId = await dagJob();
    const disabled = await eventually(() => webhooks.getWebhook({ id }), (res) => res.webhook?.enabled === false, 15_000);
    expect(disabled.webhook?.disabledReason).toMatch(/^3 deliveries in a row failed; the last: the receiver answered 503$/);
    const events = createClient(StepService, transport).watchSteps({ types: [EventType.WEBHOOK_DISABLED], afterCursor: "0-0" }, { signal: AbortSignal.timeout(5000) });
    for await (const { event } of events) {
      if (event?.message.startsWith(`webhook ${id} disabled`)) break;
    }
    const calls = r.calls();
    healthy = true;
    expect((await webhooks.enableWebhook({ id })).webhook?.enabled).toBe(true);
    await eventually(async () => r.got, (got) => jobEnded(got, jobId), 10_000);
    expect(r.calls()).toBe(calls + 1); // nothing was sent while it was disabled
    await webhooks.deleteWebhook({ id });
  }, 30_000);
});

describe("progress", () => {
  it("sends at most one step_progress per step per progress_interval_ms", async () => {
    // A model that reports progress for ~2.2 s; the worker sends it on every 250 ms at most.
    const steady: Engine = {
      name: "steady",
      routes: () => ["infer:steady"],
      async run(_step, ctx) {
        for (let i = 1; i <= 22; i++) {
          ctx.progress(i / 22, `part ${i}`);
          await sleep(100, undefined, { signal: ctx.signal });
        }
        return { text: "done" };
      },
    };
    void (await stack.worker({ engines: [steady] })).runForever();
    const r = await receiver();
    const { webhook } = await webhooks.createWebhook({ webhook: { url: r.url, eventTypes: ["step_progress", "step_succeeded"], progressIntervalMs: 1000 } });
    const step = await stack.client.submit({ kind: { case: "infer", value: { model: "steady", prompt: "x" } } });
    await eventually(async () => r.got, (got) => got.some((g) => g.json.type === "EVENT_TYPE_STEP_SUCCEEDED" && g.json.event.jobId === step.jobId), 15_000);
    const sent = r.got.filter((g) => g.json.event.jobId === step.jobId && g.json.type === "EVENT_TYPE_STEP_PROGRESS");
    expect(sent.length).toBeGreaterThanOrEqual(2);
    expect(sent.length).toBeLessThanOrEqual(3);
    const times = sent.map((g) => Date.parse((g.json.event as { time?: string }).time ?? ""));
    for (let i = 1; i < times.length; i++) expect((times[i] as number) - (times[i - 1] as number)).toBeGreaterThanOrEqual(1000);
    await webhooks.deleteWebhook({ id: webhook!.id });
  }, 30_000);
});

describe("WebhookService", () => {
  it("tests, updates, lists and deletes; refuses bad fields naming them", async () => {
    const r = await receiver();
    const { webhook } = await webhooks.createWebhook({ webhook: { url: r.url } });
    const id = webhook!.id;
    const test = await webhooks.testWebhook({ id });
    expect(test.delivery).toMatchObject({ eventName: "webhook_test", status: "succeeded", responseCode: 200, responseBody: "ok" });
    expect(r.got.at(-1)?.json.name).toBe("webhook_test");
    const updated = await webhooks.updateWebhook({ id, webhook: { routes: ["echo"], eventTypes: ["step_failed"] }, replaceLists: true });
    expect(updated.webhook).toMatchObject({ url: r.url, routes: ["echo"], eventTypes: ["step_failed"] });
    expect((await webhooks.listWebhooks({})).webhooks.map((w) => w.id)).toContain(id);
    const bad = async (p: Promise<unknown>, message: RegExp) => {
      const err = await p.catch((e: unknown) => ConnectError.from(e));
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.InvalidArgument);
      expect((err as ConnectError).rawMessage).toMatch(message);
    };
    await bad(webhooks.createWebhook({ webhook: { url: "ftp://x" } }), /^webhook\.url: "ftp:\/\/x" is not an http or https URL$/);
    await bad(webhooks.createWebhook({ webhook: {} }), /^webhook\.url: is required/);
    await bad(webhooks.createWebhook({ webhook: { url: r.url, eventTypes: ["step_exploded"] } }), /^webhook\.event_types\[0\]: "step_exploded" is not an event name/);
    await bad(webhooks.createWebhook({ webhook: { url: r.url, secret: "short" } }), /^webhook\.secret: must be 16 to 256 characters/);
    await webhooks.deleteWebhook({ id });
    const gone = await webhooks.getWebhook({ id }).catch((e: unknown) => ConnectError.from(e));
    expect((gone as ConnectError).code).toBe(Code.NotFound);
  });
});
