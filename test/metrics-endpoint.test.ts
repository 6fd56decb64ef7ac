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
import { useRedis } from "./helpers/redis.js";
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
export function sample(body: string, series: string): number | undefined {
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
    expect(sample(body, 'stepq_step_submit_to_done_seconds_count{route="echo"}')).toBe(4);
    expect(sample(body, 'stepq_step_queued_seconds_count{route="echo"}')).toBe(4);
    expect(sample(body, 'stepq_step_running_seconds_count{route="echo"}')).toBe(4);
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
