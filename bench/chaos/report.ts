/**
 * The chaos report: every number a run produces, the table it prints, and
 * the rule for a failed run (any "must be 0" row above zero).
 */
import type { AuditResult } from "./audit.js";

/** Everything a chaos run measured. */
export interface ChaosReport extends AuditResult {
  seed: number;
  planned: number;
  workers: number;
  concurrency: number;
  leaseMs: number;
  /** Jobs the server acknowledged. */
  submitted: number;
  /** Jobs never acknowledged (every retry failed or the call was rejected). */
  notAcknowledged: number;
  unavailableRetries: number;
  droppedRetries: number;
  deduplicatedSubmits: number;
  workerKills: number;
  redisKills: number;
  /** Follower connections the proxy cut. */
  streamDrops: number;
  /** Submitter connections the proxy cut. */
  submitDrops: number;
  elapsedMs: number;
  /** Where the process logs and Redis data were kept, when they were. */
  keptDir: string | undefined;
}

interface Row {
  label: string;
  value: string | number;
  mustBeZero?: boolean;
}

function rows(r: ChaosReport): Row[] {
  const elapsedS = r.elapsedMs / 1000;
  return [
    { label: "submitted (acknowledged by the server)", value: r.submitted },
    { label: "  not acknowledged", value: r.notAcknowledged, mustBeZero: true },
    { label: "  submit calls retried after UNAVAILABLE", value: r.unavailableRetries },
    { label: "  submit calls retried after a dropped connection", value: r.droppedRetries },
    { label: "  answered as deduplicated (idempotency key)", value: r.deduplicatedSubmits },
    { label: "  duplicate jobs created", value: Math.max(0, r.storedJobs - r.submitted), mustBeZero: true },
    { label: "succeeded", value: r.succeeded },
    { label: "failed as intended", value: r.failedAsIntended },
    { label: "failed unexpectedly", value: r.failedUnexpectedly, mustBeZero: true },
    { label: "lost", value: r.lost, mustBeZero: true },
    { label: "wrong results", value: r.wrongResults, mustBeZero: true },
    { label: "steps", value: r.steps },
    { label: "  completed twice", value: r.completedTwice, mustBeZero: true },
    { label: "  duplicate executions observed (at-least-once)", value: r.duplicateExecutions },
    { label: "  recovered after lease expiry", value: r.stepsRecovered },
    { label: "  retried by design", value: r.designedRetries },
    { label: "  tenant load counts left when all were final", value: r.loadLeft, mustBeZero: true },
    { label: "  route state counts off (GetQueueStats)", value: r.countsOff, mustBeZero: true },
    { label: "  requiring a tag (capability routing)", value: r.zonedSteps, mustBeZero: false },
    { label: "  claimed by a worker without the tag", value: r.zonedMisrouted, mustBeZero: true },
    { label: "  succeeded steps miscounted in the throughput", value: r.throughputOff, mustBeZero: true },
    { label: "  route totals off (/metrics step counters)", value: r.totalsOff, mustBeZero: true },
    { label: "token streams followed", value: r.streams.followed },
    { label: "  verified gap-free and repeat-free", value: r.streams.verified },
    { label: "  with gaps, repeats or wrong tokens", value: r.streams.defects, mustBeZero: true },
    { label: "  not verifiable (final attempt cut short)", value: r.streams.unverifiable },
    { label: "  unfinished", value: r.streams.unfinished, mustBeZero: true },
    { label: "  resumed after a dropped connection", value: r.streams.reconnects },
    { label: "worker kills (SIGKILL)", value: r.workerKills },
    { label: "redis kills (SIGKILL, appendfsync always)", value: r.redisKills },
    { label: "stream connections dropped (proxy)", value: r.streamDrops },
    { label: "submit connections dropped (proxy)", value: r.submitDrops },
    { label: "elapsed", value: `${elapsedS.toFixed(1)} s` },
    { label: "throughput", value: `${(r.submitted / elapsedS).toFixed(1)} jobs/s` },
  ];
}

/** The "must be 0" rows that are not, as "label: value"; empty for a clean run. */
export function chaosViolations(r: ChaosReport): string[] {
  return rows(r)
    .filter((row) => row.mustBeZero && row.value !== 0)
    .map((row) => `${row.label.trim()}: ${row.value}`);
}

/** The report as a plain-text table, followed by the verdict and the first problems. */
export function formatChaosReport(r: ChaosReport): string {
  const all = rows(r);
  const width = Math.max(...all.map((row) => row.label.length)) + 2;
  const valueWidth = Math.max(...all.map((row) => String(row.value).length));
  const lines = [
    `stepq chaos run: seed ${r.seed}, ${r.planned} jobs, ${r.workers} workers x ${r.concurrency} slots, lease ${r.leaseMs} ms`,
    "",
    ...all.map((row) => `${row.label.padEnd(width)}${String(row.value).padStart(valueWidth)}${row.mustBeZero ? "   must be 0" : ""}`),
    "",
  ];
  const violations = chaosViolations(r);
  lines.push(violations.length === 0 ? "result: PASS" : `result: FAIL (${violations.join(", ")})`);
  if (r.problems.length > 0) lines.push("", "first problems:", ...r.problems.map((p) => `  ${p}`));
  if (r.keptDir) lines.push("", `process logs and Redis data kept in ${r.keptDir}`);
  return `${lines.join("\n")}\n`;
}
