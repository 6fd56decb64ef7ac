/**
 * Issue 20, item 5 (Prometheus part): a real Prometheus (Debian's
 * `prometheus` package) scrapes a stepq server and a worker process started
 * with --metrics-port every second while they run a workload, and its query
 * API returns exactly what was done. Also checks that the example alert
 * rules in docs/operations.md pass `promtool check rules`, and that
 * docs/grafana-stepq.json is a dashboard whose every query names a metric
 * the processes export.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { buildServer } from "../server/main.js";
import { startProcess } from "./helpers/process.js";
import { useRedis } from "./helpers/redis.js";
import { echo, quiet } from "./helpers/stack.js";

const root = join(import.meta.dirname, "..");
const PROMETHEUS = "/usr/bin/prometheus";
const PROMTOOL = "/usr/bin/promtool";
const missing = !existsSync(PROMETHEUS);
if (missing) console.warn(`skipping test/metrics-prometheus.test.ts: ${PROMETHEUS} is missing (apt-get install -y prometheus)`);

/** A port free now: bound on port 0, then released. */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** Calls `fn` until it returns a value other than undefined, or throws naming `what` after `timeoutMs`. */
async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${String(last)})` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The docs' alert rules, as the YAML block under "## Alerts" of docs/operations.md. */
export function alertRulesYaml(): string {
  const doc = readFileSync(join(root, "docs/operations.md"), "utf8");
  const m = /```yaml\n(groups:[\s\S]*?)```/.exec(doc);
  if (!m) throw new Error("docs/operations.md has no ```yaml block starting with groups:");
  return m[1] as string;
}

describe.skipIf(missing)("a real Prometheus scraping a server and a worker", () => {
  it("reads exactly the submits, claims, completions, retries, failures and dead letters of a workload", { timeout: 90_000 }, async () => {
    const redis = await useRedis();
    const server = await buildServer({ redisUrl: redis.url, port: 0, logger: quiet, queue: "prom" });
    onTestFinished(() => server.close());
    const workerPort = await freePort();
    const worker = startProcess(process.execPath, ["--import", "tsx", join(root, "worker/main.ts"), "--queue", "prom", "--concurrency", "4", "--metrics-port", String(workerPort)], {
      REDIS_URL: redis.url,
      STEPQ_LOG_LEVEL: "debug",
      STEPQ_LOG_FORMAT: "json",
    });
    onTestFinished(async () => void (await worker.stop("SIGTERM", 5000)));
    const workerMetrics = `http://127.0.0.1:${workerPort}/metrics`;
    await until("the worker's /metrics answers", async () => ((await fetch(workerMetrics)).ok ? true : undefined));

    const dir = mkdtempSync(join(tmpdir(), "stepq-prom-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const promPort = await freePort();
    const config = [
      "global:",
      "  scrape_interval: 1s",
      "  scrape_timeout: 900ms",
      "scrape_configs:",
      "  - job_name: stepq-server",
      "    static_configs:",
      `      - targets: ["127.0.0.1:${server.port}"]`,
      "  - job_name: stepq-worker",
      "    static_configs:",
      `      - targets: ["127.0.0.1:${workerPort}"]`,
      "",
    ].join("\n");
    writeFileSync(join(dir, "prometheus.yml"), config);
    const prom = startProcess(PROMETHEUS, [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      "--log.level=warn",
    ]);
    onTestFinished(async () => void (await prom.stop("SIGTERM", 5000)));
    const api = `http://127.0.0.1:${promPort}`;
    await until("Prometheus is ready", async () => ((await fetch(`${api}/-/ready`)).ok ? true : undefined));
    /** The value of instant query `q` (the sum of its series; undefined when it has none). */
    const query = async (q: string): Promise<number | undefined> => {
      const res = (await (await fetch(`${api}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as {
        status: string;
        data: { result: { value: [number, string] }[] };
      };
      expect(res.status).toBe("success");
      if (res.data.result.length === 0) return undefined;
      return res.data.result.reduce((sum, r) => sum + Number(r.value[1]), 0);
    };
    await until("both targets are up", async () => ((await query('sum(up{job=~"stepq-.*"})')) === 2 ? true : undefined));

    // The workload: 45 steps succeed, 2 fail once then succeed on their retry, 3 fail for good.
    const client = createStepqClient({ baseUrl: server.url });
    const retry = { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 1 };
    const submitted = await Promise.all([
      ...Array.from({ length: 45 }, (_, i) => client.submit(echo({ text: `step ${i} says hello`, tokenCount: 3 }))),
      ...Array.from({ length: 2 }, () => client.submit(echo({ text: "second time", tokenCount: 3, failMessage: "once", failAttempts: 1 }), { retry })),
      ...Array.from({ length: 3 }, () => client.submit(echo({ text: "never", failMessage: "always", failPermanently: true }))),
    ]);
    const states = await Promise.all(submitted.map(async (s) => (await client.wait(s.id)).state));
    expect(states.filter((s) => s === StepState.SUCCEEDED)).toHaveLength(47);
    expect(states.filter((s) => s === StepState.FAILED)).toHaveLength(3);

    const expected: Record<string, number> = {
      'stepq_steps_submitted_total{job="stepq-server",route="echo"}': 50,
      'stepq_steps_claimed_total{job="stepq-server",route="echo"}': 52,
      'stepq_steps_succeeded_total{job="stepq-server",route="echo"}': 47,
      'stepq_step_failures_total{job="stepq-server",route="echo"}': 5,
      'stepq_step_retries_total{job="stepq-server",route="echo"}': 2,
      'stepq_dead_letters_total{job="stepq-server",route="echo"}': 3,
      'stepq_queue_steps{job="stepq-server",route="echo",state="dead_lettered"}': 3,
      'stepq_queue_steps{job="stepq-server",route="echo",state="queued"}': 0,
      'stepq_queue_steps{job="stepq-server",route="echo",state="running"}': 0,
      'stepq_step_queued_seconds_count{job="stepq-worker",route="echo"}': 52,
      'stepq_step_running_seconds_count{job="stepq-worker",route="echo"}': 52,
      'stepq_step_submit_to_done_seconds_count{job="stepq-worker",route="echo"}': 50,
      'stepq_worker_claims_total{job="stepq-worker",route="echo"}': 52,
      'stepq_worker_completions_total{job="stepq-worker",route="echo"}': 47,
      'stepq_worker_failures_total{job="stepq-worker",route="echo",outcome="retry"}': 2,
      'stepq_worker_failures_total{job="stepq-worker",route="echo",outcome="final"}': 3,
      'stepq_worker_first_token_seconds_count{job="stepq-worker",route="echo"}': 47,
      'stepq_submit_to_first_token_seconds_count{job="stepq-worker",route="echo"}': 47,
      'stepq_worker_run_seconds_count{job="stepq-worker",route="echo"}': 47,
    };
    const read = async () => Object.fromEntries(await Promise.all(Object.keys(expected).map(async (q) => [q, await query(q)] as const)));
    let seen: Record<string, number | undefined> = {};
    await until(
      `Prometheus's values reach the workload's counts (last seen: ${JSON.stringify(seen)})`,
      async () => {
        seen = await read();
        return Object.entries(expected).every(([q, v]) => seen[q] === v) ? true : undefined;
      },
    ).catch((e: unknown) => {
      expect(seen).toEqual(expected); // names what differs
      throw e;
    });
    // Scrapes later, the counts have not moved: nothing was counted twice.
    const after = Date.now() / 1000 + 1;
    for (const job of ["stepq-server", "stepq-worker"]) {
      await until(`two more scrapes of ${job}`, async () => ((await query(`timestamp(up{job="${job}"})`)) ?? 0) > after ? true : undefined);
    }
    expect(await read()).toEqual(expected);
    expect(await query('stepq_worker_tokens_per_second_count{route="echo"}')).toBeGreaterThan(0);
    expect(await query('histogram_quantile(0.99, sum by (le) (stepq_step_submit_to_done_seconds_bucket{route="echo"}))')).toBeGreaterThan(0);
    expect(await query("stepq_redis_ping_seconds_count")).toBeGreaterThan(0);

    // The worker's log: JSON lines (pino) naming the worker, and none per step or token, even at debug.
    const lines = worker.stderr().trim().split("\n");
    const logged = lines.map((l) => JSON.parse(l) as { level: string; component: string; msg: string; worker?: string });
    expect(logged.find((l) => l.msg === "started")).toMatchObject({ level: "info", component: "worker", worker: expect.any(String) });
    expect(logged.find((l) => l.msg === "metrics listening")).toMatchObject({ url: `http://127.0.0.1:${workerPort}/metrics` });
    expect(lines.length).toBeLessThan(10);

    // Bounded labels: no label holds an id.
    const labels = (await (await fetch(`${api}/api/v1/labels`)).json()) as { data: string[] };
    const stepqLabels = new Set<string>();
    for (const name of labels.data) {
      const values = (await (await fetch(`${api}/api/v1/label/${name}/values?match[]=${encodeURIComponent('{__name__=~"stepq_.+"}')}`)).json()) as { data: string[] };
      if (values.data.length > 0) stepqLabels.add(name);
      for (const v of values.data) for (const s of submitted) expect(v).not.toContain(s.id.split(".")[0] as string);
    }
    for (const l of stepqLabels) expect(["__name__", "instance", "job", "route", "state", "kind", "name", "le", "outcome", "reason", "version", "major", "minor", "patch", "space", "type"]).toContain(l);
  });
});

describe.skipIf(!existsSync(PROMTOOL))("docs/operations.md's alert rules", () => {
  it("pass promtool check rules", () => {
    const dir = mkdtempSync(join(tmpdir(), "stepq-rules-"));
    try {
      writeFileSync(join(dir, "stepq-alerts.yml"), alertRulesYaml());
      const out = execFileSync(PROMTOOL, ["check", "rules", join(dir, "stepq-alerts.yml")], { encoding: "utf8" });
      expect(out).toMatch(/SUCCESS: \d+ rules found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("docs/grafana-stepq.json", () => {
  it("is a dashboard whose every panel queries a metric that the server or the worker exports", () => {
    const dashboard = JSON.parse(readFileSync(join(root, "docs/grafana-stepq.json"), "utf8")) as { panels: { title: string; targets?: { expr: string }[] }[] };
    expect(dashboard.panels.length).toBeGreaterThan(5);
    const exported = execFileSync("grep", ["-rhoE", '"stepq_[a-z_]+"', join(root, "server/metrics"), join(root, "worker/metrics.ts")], { encoding: "utf8" })
      .split("\n")
      .filter(Boolean)
      .map((l) => l.slice(1, -1));
    /** prom-client's process and Node.js metrics, under each process's prefix. */
    const builtIn = /^stepq_(server|worker)_(process|nodejs)_/;
    for (const panel of dashboard.panels) {
      for (const t of panel.targets ?? []) {
        const names = [...t.expr.matchAll(/\b(stepq_[a-z0-9_]+?)(?:_bucket|_count|_sum)?\b(?=[{[(\s)]|$)/g)].map((m) => m[1] as string);
        expect(names.length, `${panel.title}: ${t.expr}`).toBeGreaterThan(0);
        for (const n of names) if (!builtIn.test(n)) expect(exported, `${panel.title}: ${n}`).toContain(n);
      }
    }
  });
});
