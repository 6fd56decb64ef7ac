/**
 * The fuzz run: starts the stack, submits canaries, sends `count` generated
 * requests over `concurrency` lanes while probing /healthz and sampling the
 * server's RSS, restarts the server after a crash (and replays the requests
 * in flight one by one to name the one that killed it), then lets the
 * server settle and checks memory and canaries.
 */
import { changedCanaries, submitCanaries } from "./canaries.js";
import { createCrashTracker } from "./crash-tracker.js";
import type { FailureClass } from "./failure-log.js";
import { createFuzzExchange } from "./fuzz-exchange.js";
import { allowedLiveKb, allowedRssKb, settleMemory } from "./fuzz-memory.js";
import { listFuzzMethods } from "./fuzz-methods.js";
import { startFuzzStack } from "./fuzz-stack.js";
import { createFuzzTally } from "./fuzz-tally.js";
import type { HealthReport } from "./health-probe.js";
import { startHealthProbe } from "./health-probe.js";
import { createIdPool } from "./id-pool.js";
import { createCrashIdentifier } from "./identify-crash.js";
import { DEFAULT_READ_LIMITS } from "./read-limits.js";
import { createRequestGenerator } from "./request-generator.js";

export interface FuzzOptions {
  seed: number;
  count: number;
  concurrency: number;
  /** Send only this request index (reproduce one failure). */
  only?: number;
  /** First request index (default 0); `count` is the end. */
  from?: number;
  /** Server flags, e.g. a smaller --max-request-bytes. */
  serverArgs?: readonly string[];
  /** The server's request cap, for oversize bodies (must match serverArgs). */
  maxRequestBytes?: number;
  /** How long to wait for RSS to settle after the run. */
  settleMs?: number;
  log?: (line: string) => void;
}

export interface FuzzReport {
  seed: number;
  sent: number;
  /** Requests cut off by a server crash (not judged; the crash is). */
  victims: number;
  /** Requests the client library refused to send (invalid header values): not counted as sent. */
  skipped: number;
  /** Why the client library refused them, by message pattern. */
  refusals: Record<string, number>;
  durationMs: number;
  /** Answers by "protocol/transport code". */
  codes: Record<string, number>;
  failures: FailureClass[];
  failureCount: number;
  crashes: number;
  health: HealthReport;
  /** RSS (kB): at the start and after settling, both right after a full collection, and the highest sampled. */
  memory: { baselineKb: number; peakKb: number; finalKb: number; allowedKb: number };
  /** Live memory (JS heap in use + external, kB) after a full collection, at the start and after settling. */
  live: { baselineKb: number; finalKb: number; allowedKb: number };
  canariesChanged: { id: string; before: string; after: string }[];
  canaryCount: number;
}

export async function runFuzz(o: FuzzOptions): Promise<FuzzReport> {
  const log = o.log ?? (() => {});
  const stack = await startFuzzStack({ serverArgs: o.serverArgs ?? [], log });
  try {
    const canaries = await submitCanaries(stack.url());
    const pool = createIdPool(new Set([...canaries.jobIds, ...canaries.stepIds]));
    const generate = createRequestGenerator({
      seed: o.seed,
      methods: listFuzzMethods(),
      pool,
      limits: { maxStringLength: 200_000, maxListLength: 300 },
      maxRequestBytes: o.maxRequestBytes ?? 8 * 1024 * 1024,
    });
    const tracker = createCrashTracker(stack);
    const wire = createFuzzExchange(stack, tracker, DEFAULT_READ_LIMITS);
    const tally = createFuzzTally(pool);
    const crashes = createCrashIdentifier({ stack, tracker, failures: tally.failures, exchange: wire.exchange, log });

    const baseline = await stack.serverMemoryAfterGc();
    let peakKb = baseline.rssKb;
    const rssTimer = setInterval(() => (peakKb = Math.max(peakKb, stack.serverRssKb())), 250);
    const health = startHealthProbe(stack.url, stack.serverUp, () => stack.crashes().length);
    const started = performance.now();

    let next = o.only ?? o.from ?? 0;
    const end = o.only !== undefined ? o.only + 1 : o.count;
    let victims = 0;
    let crashWork: Promise<void> | undefined;
    const lane = async () => {
      while (next < end) {
        if (crashWork) await crashWork;
        const req = generate(next++);
        const { res, outcome, crashed } = await wire.exchange(req);
        if (crashed) {
          victims++;
          crashWork ??= crashes.identify().finally(() => (crashWork = undefined));
          continue;
        }
        tally.record(req, res, outcome);
        const sent = tally.sent();
        if (sent > 0 && sent % 1000 === 0) {
          log(`${sent} sent, ${tally.failures.total()} failures, ${stack.crashes().length} crashes, ${Math.round(performance.now() - started)} ms`);
        }
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, lane));
    if (crashWork) await crashWork;
    const durationMs = performance.now() - started;
    wire.close();
    clearInterval(rssTimer);
    const healthReport = await health.stop();

    const final = await settleMemory(stack, baseline, o.settleMs ?? 15_000);
    return {
      seed: o.seed,
      sent: tally.sent(),
      victims,
      skipped: tally.skipped(),
      refusals: tally.refusals,
      durationMs,
      codes: tally.codes,
      failures: tally.failures.classes(),
      failureCount: tally.failures.total(),
      crashes: stack.crashes().length - crashes.replayCrashes(),
      health: healthReport,
      memory: { baselineKb: baseline.rssKb, peakKb, finalKb: final.rssKb, allowedKb: allowedRssKb(baseline.rssKb) },
      live: { baselineKb: baseline.liveKb, finalKb: final.liveKb, allowedKb: allowedLiveKb(baseline.liveKb) },
      canariesChanged: await changedCanaries(stack.url(), canaries),
      canaryCount: canaries.snapshot.size,
    };
  } finally {
    await stack.stop();
  }
}
