/**
 * Issue 20, item 1: GET /metrics on the server's API port, in the
 * Prometheus text format, over the same request chain as /healthz (no API
 * key, even with auth required), with bounded labels (never a step or job
 * id), and gone with --metrics off.
 */
import { request } from "node:http";
import { describe, expect, it } from "vitest";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { buildServer } from "../server/main.js";
import { serverConfig, SERVER_HELP } from "../server/config.js";
import { WORKER_HELP, workerConfig } from "../worker/config.js";
import { createWorkerMetrics, listenForMetrics } from "../worker/metrics.js";
import { useRedis } from "./helpers/redis.js";
import { createStepqClient } from "../clients/node/client.js";
import { echo, eventually, quiet, useStack } from "./helpers/stack.js";

/** GET `url` with node:http; resolves with the status, content type and body. */
function get(url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"]), body }));
    })
      .on("error", reject)
      .end();
  });
}

/** The value of the sample `series` (name and labels as printed), or undefined. */
function sample(body: string, series: string): number | undefined {
  const line = body.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const stack = await useStack({ queue: "metrics" });

describe("GET /metrics on the server", () => {
  it("answers without an API key, in the text format, with the counts of what was done and no step or job id", async () => {
    const url = `${stack.server.url}/metrics`;
    const before = await get(url);
    expect(before.status).toBe(200);
    expect(before.type).toMatch(/^text\/plain; version=0\.0\.4/);

    // 3 steps succeed, 1 fails for good.
    const worker = await stack.worker({ queue: "metrics", concurrency: 2 });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await stack.client.submit(echo({ text: `hello ${i}`, tokenCount: 2 }))).id);
    ids.push((await stack.client.submit(echo({ text: "no", failMessage: "boom", failPermanently: true }))).id);
    void worker.runForever();
    const body = (
      await eventually(
        () => get(url),
        (r) => sample(r.body, 'stepq_steps_succeeded_total{route="echo"}') === 3 && sample(r.body, 'stepq_dead_letters_total{route="echo"}') === 1,
      )
    ).body;
    expect(sample(body, 'stepq_steps_submitted_total{route="echo"}')).toBe(4);
    expect(sample(body, 'stepq_steps_claimed_total{route="echo"}')).toBe(4);
    expect(sample(body, 'stepq_step_failures_total{route="echo"}')).toBe(1);
    expect(sample(body, 'stepq_step_retries_total{route="echo"}') ?? 0).toBe(0);
    expect(sample(body, 'stepq_queue_steps{route="echo",state="dead_lettered"}')).toBe(1);
    expect(sample(body, 'stepq_queue_steps{route="echo",state="queued"}')).toBe(0);
    // The latency histograms are the workers' (their own test below): a server reads no events.
    expect(body).not.toMatch(/^stepq_step_\w+_seconds/m);
    expect(sample(body, "stepq_redis_ping_seconds_count")).toBeGreaterThanOrEqual(1);
    expect(sample(body, "stepq_open_streams")).toBe(0);

    // Every stepq metric has its HELP and TYPE; names follow the conventions.
    const names = new Set([...body.matchAll(/^# TYPE (stepq_\w+) (\w+)$/gm)].map((m) => [m[1], m[2]] as const).map(([n, t]) => `${n} ${t}`));
    for (const entry of names) {
      const [name, type] = entry.split(" ") as [string, string];
      expect(body).toMatch(new RegExp(`^# HELP ${name} \\S`, "m"));
      if (type === "counter") expect(name).toMatch(/_total$/);
      if (type === "histogram") expect(name).toMatch(/_seconds$|_per_second$/);
    }
    // Bounded labels only, and no id anywhere.
    const labels = new Set([...body.matchAll(/[{,](\w+)="/g)].map((m) => m[1]));
    for (const l of labels) expect(["route", "state", "kind", "name", "le", "version", "major", "minor", "patch", "space", "type"]).toContain(l);
    for (const id of ids) {
      expect(body).not.toContain(id);
      expect(body).not.toContain(id.split(".")[0] as string);
    }
    expect((await stack.client.wait(ids[0] as string)).state).toBe(StepState.SUCCEEDED);
  });

  it("needs no API key when every RPC needs one, like /healthz", async () => {
    const redis = await useRedis();
    const server = await buildServer({ redisUrl: redis.url, port: 0, logger: quiet, auth: "required" });
    try {
      const res = await get(`${server.url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.body).toMatch(/^# TYPE stepq_queue_steps gauge$/m);
      const rpc = await get(`${server.url}/stepq.v1.QueueService/GetQueueStats?encoding=json&message=%7B%7D`);
      expect(rpc.status).toBe(401);
    } finally {
      await server.close();
    }
  });

  it("is not served with --metrics off, and the flag shows in --help", async () => {
    expect(SERVER_HELP).toMatch(/--metrics\b/);
    expect(serverConfig(["--metrics", "off"]).metrics).toBe(false);
    expect(() => serverConfig(["--metrics", "maybe"])).toThrow(/--metrics/);
    const redis = await useRedis();
    const server = await buildServer({ redisUrl: redis.url, port: 0, logger: quiet, metrics: false });
    try {
      const res = await get(`${server.url}/metrics`);
      expect(res.status).toBe(404);
      expect(server.metrics).toBeUndefined();
    } finally {
      await server.close();
    }
  });
});

describe("GET /metrics on a worker (--metrics-port)", () => {
  it("counts this worker's claims, completions and failures per route, with histograms, and answers nothing else", async () => {
    expect(WORKER_HELP).toMatch(/--metrics-port\b/);
    expect(workerConfig([]).metricsPort).toBe(0);
    expect(workerConfig(["--metrics-port", "9464"]).metricsPort).toBe(9464);
    const worker = await stack.worker({ queue: "metrics-w", concurrency: 2 });
    const listener = await listenForMetrics(createWorkerMetrics(worker), 0, "127.0.0.1", (e) => {
      throw e;
    });
    try {
      const url = `http://127.0.0.1:${listener.port}/metrics`;
      expect((await get(`http://127.0.0.1:${listener.port}/`)).status).toBe(404);
      void worker.runForever();
      const server = await buildServer({ redisUrl: stack.redis.url, port: 0, logger: quiet, queue: "metrics-w" });
      try {
        const c = createStepqClient({ baseUrl: server.url });
        const ok = await c.submit(echo({ text: "one two three four", tokenCount: 4 }));
        const retried = await c.submit(echo({ text: "x", failMessage: "again", failAttempts: 1 }), { retry: { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 1 } });
        const failed = await c.submit(echo({ text: "x", failMessage: "never", failPermanently: true }));
        for (const s of [ok, retried]) expect((await c.wait(s.id)).state).toBe(StepState.SUCCEEDED);
        expect((await c.wait(failed.id)).state).toBe(StepState.FAILED);
        const body = (await eventually(() => get(url), (r) => sample(r.body, 'stepq_worker_completions_total{route="echo"}') === 2)).body;
        expect(sample(body, 'stepq_worker_claims_total{route="echo"}')).toBe(4);
        expect(sample(body, 'stepq_worker_failures_total{route="echo",outcome="retry"}')).toBe(1);
        expect(sample(body, 'stepq_worker_failures_total{route="echo",outcome="final"}')).toBe(1);
        expect(sample(body, 'stepq_worker_run_seconds_count{route="echo"}')).toBe(2);
        // Each claim's wait, each attempt's hold, each final outcome's time since submit.
        expect(sample(body, 'stepq_step_queued_seconds_count{route="echo"}')).toBe(4);
        expect(sample(body, 'stepq_step_running_seconds_count{route="echo"}')).toBe(4);
        expect(sample(body, 'stepq_step_submit_to_done_seconds_count{route="echo"}')).toBe(3);
        expect(sample(body, 'stepq_step_submit_to_done_seconds_sum{route="echo"}')).toBeGreaterThanOrEqual(sample(body, 'stepq_worker_run_seconds_sum{route="echo"}') as number);
        expect(sample(body, 'stepq_worker_first_token_seconds_count{route="echo"}')).toBe(1);
        // Submit to first token: one step with tokens, and it cannot be shorter than its run's part.
        expect(sample(body, 'stepq_submit_to_first_token_seconds_count{route="echo"}')).toBe(1);
        expect(sample(body, 'stepq_submit_to_first_token_seconds_sum{route="echo"}')).toBeGreaterThanOrEqual(sample(body, 'stepq_worker_first_token_seconds_sum{route="echo"}') as number);
        expect(sample(body, 'stepq_worker_tokens_per_second_count{route="echo"}')).toBe(1);
        expect(sample(body, "stepq_worker_steps_held")).toBe(0);
        expect(body).toMatch(/^# HELP stepq_worker_claims_total /m);
        for (const s of [ok, retried, failed]) expect(body).not.toContain(s.id.split(".")[0] as string);
      } finally {
        await server.close();
      }
    } finally {
      await listener.close();
    }
  });
});
