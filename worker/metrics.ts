/**
 * A worker's /metrics (--metrics-port): what this process did, per route,
 * counted from its own events (worker.on(...)), so claims and completions
 * cost no Redis work for metrics: attempts claimed, completed, failed
 * (retried or final), abandoned, errors outside steps, and histograms of
 * the steps it took: time queued, time held, submit → first token, submit →
 * done, run time, time to first token and tokens per second. The latency
 * histograms are observed here, where each step's times are known, rather
 * than by the servers reading every event (which cost a server ~21 µs of CPU
 * per step: bench `--only metrics`); sum them over workers. Queue-wide counts
 * and depth come from the servers' /metrics (server/metrics/). Served by a
 * tiny node:http listener that answers only GET /metrics; one Registry per
 * worker, not prom-client's global one.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import { answerMetrics, isMetricsRequest } from "../server/metrics/metrics-endpoint.js";
import { RouteHistogram } from "./route-histogram.js";
import type { Worker } from "./worker-options.js";

/** Seconds, from echo's milliseconds to long generations. */
const SECONDS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
/** Seconds a step spends in the queue: from a few ms to the longest waits and runs. */
const LATENCY = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];
const RATES = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 50_000];

/** A registry counting `worker`'s events from now on. */
export function createWorkerMetrics(worker: Worker): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "stepq_worker_" });
  const registers = [registry];
  // Per step, only plain numbers change (no label hashing or garbage per
  // step; see route-histogram.ts): a count per route, read into its Counter
  // at each scrape, and RouteHistograms. Rare events use prom-client's Counter.
  const counter = (name: string, help: string) => {
    const byRoute = new Map<string, number>();
    new Counter({
      name,
      help,
      labelNames: ["route"] as const,
      registers,
      collect() {
        this.reset();
        for (const [route, n] of byRoute) this.inc({ route }, n);
      },
    });
    return { inc: (route: string) => byRoute.set(route, (byRoute.get(route) ?? 0) + 1) };
  };
  const histogram = (name: string, help: string, buckets: number[]) => {
    const h = new RouteHistogram(name, help, buckets);
    registry.registerMetric(h.asMetric());
    return h;
  };
  const claims = counter("stepq_worker_claims_total", "Attempts this worker claimed, per route.");
  const completions = counter("stepq_worker_completions_total", "Steps this worker completed successfully, per route.");
  const failures = new Counter({
    name: "stepq_worker_failures_total",
    help: "Attempts that failed on this worker, per route and outcome (retry: the queue tries again; final: dead-lettered).",
    labelNames: ["route", "outcome"] as const,
    registers,
  });
  const abandoned = new Counter({
    name: "stepq_worker_abandoned_total",
    help: "Steps this worker stopped because they were no longer its own, per route and reason (cancelled, lease-lost, too-large).",
    labelNames: ["route", "reason"] as const,
    registers,
  });
  const errors = new Counter({ name: "stepq_worker_errors_total", help: "Errors outside a step (Redis away, a failed completion call); the worker carries on.", registers });
  const run = histogram("stepq_worker_run_seconds", "Time from a successful step's start on this worker to its completion call, per route.", SECONDS);
  const firstToken = histogram("stepq_worker_first_token_seconds", "Time from a step's start on this worker to its first token (engines that stream tokens), per route.", SECONDS);
  const submitToFirstToken = histogram(
    "stepq_submit_to_first_token_seconds",
    "Time from a step's job submit to its first token, for steps this worker completed with tokens, per route (the wait before the claim by Redis's clock, the rest by the worker's).",
    SECONDS,
  );
  const queued = histogram(
    "stepq_step_queued_seconds",
    "Time from a step becoming ready (submitted, dependencies met, retry or schedule due, handed back) to its claim by this worker, by Redis's clock, per route.",
    LATENCY,
  );
  const held = histogram("stepq_step_running_seconds", "Time from a claim by this worker to the end of that attempt (success or failure), per route.", LATENCY);
  const total = histogram(
    "stepq_step_submit_to_done_seconds",
    "Time from a step's job submit to its final outcome on this worker (succeeded, or failed for good), per route (before the claim by Redis's clock, after by the worker's).",
    LATENCY,
  );
  const rate = histogram(
    "stepq_worker_tokens_per_second",
    "Generation speed of each successful step that produced tokens: tokens after the first over the time after the first, per route.",
    RATES,
  );
  new Gauge({
    name: "stepq_worker_steps_held",
    help: "Steps this worker holds a lease on now (running, claimed ahead, or finishing).",
    registers,
    collect() {
      this.set(worker.running);
    },
  });
  worker.on("step:claimed", (e) => {
    claims.inc(e.route);
    queued.observe(e.route, e.queuedMs / 1000);
  });
  worker.on("step:completed", (e) => {
    const route = e.route;
    completions.inc(route);
    held.observe(route, e.heldMs / 1000);
    total.observe(route, e.submitToDoneMs / 1000);
    run.observe(route, e.durationMs / 1000);
    if (e.tokens > 0) {
      if (e.firstTokenMs !== undefined) firstToken.observe(route, e.firstTokenMs / 1000);
      if (e.submitToFirstTokenMs !== undefined) submitToFirstToken.observe(route, e.submitToFirstTokenMs / 1000);
      const genMs = e.durationMs - (e.firstTokenMs ?? 0);
      if (genMs > 0) rate.observe(route, (e.tokens * 1000) / genMs);
    }
  });
  worker.on("step:failed", (e) => {
    failures.inc({ route: e.route, outcome: e.retryAt === undefined ? "final" : "retry" });
    held.observe(e.route, e.heldMs / 1000);
    if (e.submitToDoneMs !== undefined) total.observe(e.route, e.submitToDoneMs / 1000);
  });
  worker.on("step:abandoned", (e) => abandoned.inc({ route: e.route, reason: e.reason }));
  worker.on("worker:error", () => errors.inc());
  return registry;
}

export interface MetricsListener {
  readonly port: number;
  close(): Promise<void>;
}

/** Serves `registry` at GET /metrics on `host`:`port` (0: any free port); everything else is 404. */
export async function listenForMetrics(registry: Registry, port: number, host: string, log: (err: Error) => void): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    if (isMetricsRequest(req)) {
      void answerMetrics(registry, res, log);
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("only GET /metrics here\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
