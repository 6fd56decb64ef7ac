/**
 * The fuzz run: starts the stack, submits canaries, sends `count` generated
 * requests over `concurrency` lanes while probing /healthz and sampling the
 * server's RSS, restarts the server after a crash (and replays the requests
 * in flight one by one to name the one that killed it), then lets the
 * server settle and checks memory and canaries.
 */
import { changedCanaries, submitCanaries } from "./canaries.js";
import { classifyResponse, type Outcome } from "./classify-response.js";
import { createCrashTracker } from "./crash-tracker.js";
import { createFailureLog, type FailureClass, messagePattern } from "./failure-log.js";
import { listFuzzMethods } from "./fuzz-methods.js";
import { startFuzzStack } from "./fuzz-stack.js";
import { type HealthReport, startHealthProbe } from "./health-probe.js";
import { createIdPool } from "./id-pool.js";
import { DEFAULT_READ_LIMITS } from "./read-limits.js";
import { createRequestGenerator } from "./request-generator.js";
import { createH2cSender } from "./send-h2c.js";
import { createHttp1Sender } from "./send-http1.js";
import { sendRaw } from "./send-raw.js";
import type { WireRequest, WireResponse } from "./wire-request.js";

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

/**
 * The RSS the server may keep after the run: a ceiling against native leaks
 * and unbounded buffers, not "returned" (the allocator keeps freed memory
 * for reuse, ~55 MiB after 1,000 requests): start + max(128 MiB, 100%).
 */
export function allowedRssKb(baselineKb: number): number {
  return baselineKb + Math.max(128 * 1024, baselineKb);
}

/** The live memory the server must return to: start + max(16 MiB, 50%). */
export function allowedLiveKb(baselineKb: number): number {
  return baselineKb + Math.max(16 * 1024, Math.round(baselineKb * 0.5));
}

/** The error line a dying server printed, with ids and numbers blanked. */
export function crashSignature(outputTail: string): string {
  const lines = outputTail.split("\n");
  const line =
    lines.find((l) => /^\s*rawMessage: /.test(l)) ??
    [...lines].reverse().find((l) => /^[A-Za-z]*Error\b/.test(l)) ??
    lines.find((l) => /Error\b|error:/.test(l)) ??
    "exited without an error line";
  return messagePattern(line.trim());
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
    const limits = DEFAULT_READ_LIMITS;
    const http1 = createHttp1Sender(stack.url, limits);
    const h2c = createH2cSender(stack.url, limits);
    const send = (req: WireRequest): Promise<WireResponse> =>
      req.transport === "raw" ? sendRaw(stack.url(), req, limits) : req.transport === "h2c" ? h2c.send(req) : http1.send(req);

    const failures = createFailureLog();
    const codes: Record<string, number> = {};
    let sent = 0;
    let victims = 0;
    const refusals: Record<string, number> = {};
    let skipped = 0;
    const tracker = createCrashTracker(stack);
    // Crash signature (the error the server printed) -> the request that reproduced it.
    const knownCrashes = new Map<string, WireRequest>();
    let replayCrashes = 0;

    const baseline = await stack.serverMemoryAfterGc();
    const baselineKb = baseline.rssKb;
    let peakKb = baselineKb;
    const rssTimer = setInterval(() => (peakKb = Math.max(peakKb, stack.serverRssKb())), 250);
    const health = startHealthProbe(stack.url, stack.serverUp, () => stack.crashes().length);
    const started = performance.now();

    const exchange = async (req: WireRequest, alwaysWait = false): Promise<{ outcome: Outcome; crashed: boolean; res: WireResponse }> => {
      const at = tracker.begin(req);
      const logFrom = stack.serverLogOffset();
      const res = await send(req);
      tracker.end(req);
      const outcome = classifyResponse(req, res, limits);
      if (outcome.code === "internal" || outcome.code === "unknown") {
        // The server logs the cause of an internal error: keep the line(s) logged meanwhile.
        const logged = stack.serverLogSince(logFrom).split("\n").filter((l) => / ERROR /.test(l));
        if (logged.length > 0) outcome.serverLog = logged.slice(0, 3).join("\n").slice(0, 1500);
      }
      const suspicious = alwaysWait || outcome.failure !== undefined || res.status === 0;
      return { res, outcome, crashed: await tracker.crashedSince(at, suspicious) };
    };

    const record = (req: WireRequest, res: WireResponse, outcome: Outcome) => {
      if (res.end === "client-refused") {
        skipped++;
        const why = messagePattern(res.error ?? "?");
        refusals[why] = (refusals[why] ?? 0) + 1;
        return;
      }
      sent++;
      const key = `${req.protocol}/${req.transport} ${outcome.code}`;
      codes[key] = (codes[key] ?? 0) + 1;
      if (outcome.failure) failures.add(req, outcome as Outcome & { failure: string }, outcome.serverLog);
      if (res.status === 200 && /json/.test(res.headers["content-type"] ?? "")) pool.learn(res.body.toString("utf8"));
    };

    // After a crash: restart, then (for a crash not seen before) replay the
    // suspects one at a time until one kills the server again.
    const identifyCrash = async () => {
      await stack.restartAfterCrash();
      const crash = stack.crashes()[stack.crashes().length - 1];
      const signature = crashSignature(crash?.outputTail ?? "");
      const suspects = tracker.takeSuspects().sort((a, b) => Number(b.transport === "raw") - Number(a.transport === "raw"));
      const crashOutcome = (message: string) => ({ code: "crash", message, failure: "the server process exited" });
      const known = knownCrashes.get(signature);
      if (known) {
        failures.add(known, crashOutcome(signature), crash?.outputTail);
        return;
      }
      for (const req of suspects.slice(0, 60)) {
        const { crashed } = await exchange(req, true);
        if (crashed) {
          replayCrashes++;
          knownCrashes.set(signature, req);
          failures.add(req, crashOutcome(signature), crash?.outputTail);
          log(`crash reproduced by request ${req.index} (${req.protocol}/${req.transport} ${req.rpc} ${req.mutations.join(" ")})`);
          await stack.restartAfterCrash();
          tracker.takeSuspects();
          return;
        }
      }
      const first = suspects[0];
      if (first) failures.add(first, crashOutcome(`${signature} (not reproduced by any single suspect request)`), crash?.outputTail);
    };

    let next = o.only ?? o.from ?? 0;
    const end = o.only !== undefined ? o.only + 1 : o.count;
    let crashWork: Promise<void> | undefined;
    const lane = async () => {
      while (next < end) {
        if (crashWork) await crashWork;
        const req = generate(next++);
        const { res, outcome, crashed } = await exchange(req);
        if (crashed) {
          victims++;
          crashWork ??= identifyCrash().finally(() => (crashWork = undefined));
          continue;
        }
        record(req, res, outcome);
        if (sent > 0 && sent % 1000 === 0) log(`${sent} sent, ${failures.total()} failures, ${stack.crashes().length} crashes, ${Math.round(performance.now() - started)} ms`);
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, lane));
    if (crashWork) await crashWork;
    const durationMs = performance.now() - started;
    http1.close();
    h2c.close();
    clearInterval(rssTimer);
    const healthReport = await health.stop();

    // Settle: RSS after a full collection, sampled until it stops falling
    // (or settleMs passes); the baseline was taken the same way.
    const settleUntil = performance.now() + (o.settleMs ?? 15_000);
    let final = await stack.serverMemoryAfterGc();
    const samples: number[] = [final.liveKb];
    const settled = () => final.rssKb <= allowedRssKb(baselineKb) && final.liveKb <= allowedLiveKb(baseline.liveKb);
    while (performance.now() < settleUntil && !settled()) {
      await new Promise((r) => setTimeout(r, 500));
      final = await stack.serverMemoryAfterGc();
      samples.push(final.liveKb);
      const last = samples.slice(-4);
      if (last.length === 4 && Math.max(...last) - Math.min(...last) < 256) break;
    }
    const finalKb = final.rssKb;
    const canariesChanged = await changedCanaries(stack.url(), canaries);
    return {
      seed: o.seed,
      sent,
      victims,
      skipped,
      refusals,
      durationMs,
      codes,
      failures: failures.classes(),
      failureCount: failures.total(),
      crashes: stack.crashes().length - replayCrashes,
      health: healthReport,
      memory: { baselineKb, peakKb, finalKb, allowedKb: allowedRssKb(baselineKb) },
      live: { baselineKb: baseline.liveKb, finalKb: final.liveKb, allowedKb: allowedLiveKb(baseline.liveKb) },
      canariesChanged,
      canaryCount: canaries.snapshot.size,
    };
  } finally {
    await stack.stop();
  }
}
