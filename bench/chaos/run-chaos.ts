/**
 * A chaos run: a real Redis with AOF, a server and several worker
 * processes; jobs submitted through the server while workers are SIGKILLed
 * and restarted, Redis is SIGKILLed once and restarted, and client streams
 * are dropped; then an audit of every job against the plan. `npm run chaos`
 * is the CLI (bench/chaos.ts); test/chaos.test.ts runs a short version.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createStepqClient } from "../../clients/node/client.js";
import { createRedis, waitReady } from "../../queue/connection.js";
import { createQueue } from "../../queue/queue.js";
import { auditRun } from "./audit.js";
import { awaitFinal } from "./await-final.js";
import { startChaosMonkey } from "./chaos-monkey.js";
import { startCluster } from "./cluster.js";
import { STREAM_DROPS, SUBMIT_DROPS, startDropProxy } from "./drop-proxy.js";
import { createFollower } from "./follower.js";
import { planJobs } from "./job-plan.js";
import { createPrng } from "./prng.js";
import { type ChaosReport, chaosViolations } from "./report.js";
import { submitPlan } from "./submitter.js";

export { type ChaosReport, chaosViolations, formatChaosReport } from "./report.js";

/** What to run. Only the first six are required. */
export interface ChaosOptions {
  jobs: number;
  workers: number;
  seed: number;
  /** Mean time between two worker kills, ms. */
  killEveryMs: number;
  /** Whether to SIGKILL Redis once, halfway through the submissions. */
  redisKill: boolean;
  /** Progress lines (kills, drain progress). */
  log: (line: string) => void;
  /** How long submissions, and with them the chaos, last, ms. Default: 50 jobs/s, at least 10 s. */
  durationHintMs?: number;
  /** Steps each worker runs at once. Default 8. */
  concurrency?: number;
  /** Worker lease, ms. Default 2000. */
  leaseMs?: number;
  /** Share of streaming jobs whose streams are followed. Default 0.15. */
  followFraction?: number;
  /** Most streams followed at once. Default 24. */
  maxStreams?: number;
  /** How long Redis stays down. Default 1000 ms. */
  redisDownMs?: number;
  /** The drain gives up once no job has finished for this long, ms. Default 30 s. */
  stallMs?: number;
  /** Keep process logs and Redis data even when the run passes. Default false (kept on failure). */
  keepDir?: boolean;
}

/** Runs the chaos scenario and resolves with its report (it does not throw on violations: see chaosViolations). */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const { log } = options;
  const concurrency = options.concurrency ?? 8;
  const leaseMs = options.leaseMs ?? 2000;
  const durationMs = options.durationHintMs ?? Math.max(10_000, (options.jobs / 50) * 1000);
  const rng = createPrng(options.seed);
  const plan = planJobs(options.jobs, rng.fork("plan"), { followFraction: options.followFraction ?? 0.15, keyPrefix: `chaos-${options.seed}` });
  const dir = mkdtempSync(join(tmpdir(), "stepq-chaos-"));
  const cleanup: (() => Promise<void> | void)[] = [];
  let keep = options.keepDir ?? false;
  try {
    const cluster = await startCluster({ dir, workers: options.workers, concurrency, leaseMs });
    cleanup.push(() => cluster.stop());
    const streamProxy = await startDropProxy(cluster.serverUrl, rng.fork("stream-proxy"), STREAM_DROPS);
    cleanup.push(() => streamProxy.close());
    const submitProxy = await startDropProxy(cluster.serverUrl, rng.fork("submit-proxy"), SUBMIT_DROPS);
    cleanup.push(() => submitProxy.close());
    const follower = createFollower(createStepqClient({ baseUrl: streamProxy.url }), { maxStreams: options.maxStreams ?? 24 });
    const acknowledged = new Map<number, string>();
    log(`started redis, a server and ${options.workers} workers in ${dir}; submitting ${options.jobs} jobs over ${(durationMs / 1000).toFixed(0)} s`);

    const started = Date.now();
    const monkey = startChaosMonkey(cluster, rng.fork("monkey"), {
      killEveryMs: options.killEveryMs,
      redisKillAtMs: options.redisKill ? durationMs / 2 : undefined,
      redisDownMs: options.redisDownMs ?? 1000,
      log,
    });
    const progress = setInterval(() => log(`submitted ${acknowledged.size}/${options.jobs}`), 5000);
    cleanup.push(() => clearInterval(progress));
    const submitted = await submitPlan(createStepqClient({ baseUrl: submitProxy.url }), plan, {
      durationMs,
      onAcknowledged(job, jobId) {
        acknowledged.set(job.index, jobId);
        if (job.followed) follower.add(job, jobId);
      },
    });
    await sleep(Math.max(0, started + durationMs - Date.now()));
    clearInterval(progress);
    await monkey.stop();
    log(`chaos over after ${((Date.now() - started) / 1000).toFixed(1)} s; waiting for every acknowledged job to finish`);

    const redis = createRedis(cluster.redis.url, "command", { name: "stepq-chaos-audit" });
    cleanup.push(() => redis.disconnect());
    await waitReady(redis);
    const queue = createQueue({ redis });
    await awaitFinal(queue, [...acknowledged.values()], { stallMs: options.stallMs ?? 30_000, maxMs: 30 * 60_000, log });
    const elapsedMs = Date.now() - started;
    const follows = await follower.finish(15_000);
    const audit = await auditRun(queue, plan, acknowledged, follows);

    const report: ChaosReport = {
      ...audit,
      seed: options.seed,
      planned: options.jobs,
      workers: options.workers,
      concurrency,
      leaseMs,
      submitted: acknowledged.size,
      notAcknowledged: options.jobs - acknowledged.size,
      unavailableRetries: submitted.unavailableRetries,
      droppedRetries: submitted.droppedRetries,
      deduplicatedSubmits: submitted.deduplicated,
      workerKills: monkey.workerKills,
      redisKills: monkey.redisKills,
      streamDrops: streamProxy.cuts,
      submitDrops: submitProxy.cuts,
      elapsedMs,
      keptDir: undefined,
    };
    for (const r of submitted.rejected.slice(0, 5)) report.problems.push(`not acknowledged: job #${r.index}: ${r.message}`);
    keep ||= chaosViolations(report).length > 0;
    if (keep) report.keptDir = dir;
    return report;
  } catch (e) {
    keep = true;
    log(`chaos run failed; process logs and Redis data kept in ${dir}`);
    throw e;
  } finally {
    for (const step of cleanup.reverse()) await step();
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}
